package kscpurge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
)

// BenchmarkPurge1000 removes 1000 records named one by one, on both KSC
// behaviours, and reports the KSC round trips one purge takes.
func BenchmarkPurge1000(b *testing.B) {
	for _, forceIgnored := range []bool{false, true} {
		b.Run(fmt.Sprintf("forceIgnored=%v", forceIgnored), func(b *testing.B) {
			l := startKSC(b, forceIgnored)
			names := make([]any, 1000)
			for i := range names {
				names[i] = fmt.Sprintf("svm-bench-%04d", i)
			}
			args := l.args(map[string]any{"names": names})
			calls := 0
			for b.Loop() {
				b.StopTimer()
				for _, n := range names {
					l.s.UpsertHost(kscsim.Host{DisplayName: n.(string), GroupID: l.svm, LastVisible: t0.Add(-time.Hour)})
				}
				l.s.ResetCalls()
				b.StartTimer()
				res := ansibletest.Run(b, context.Background(), "ksc_purge", New(), args, ansibletest.Mode{})
				if res.Failed() || len(res["removed"].([]any)) != 1000 {
					b.Fatalf("purge failed: %v", res.Msg())
				}
				for _, n := range l.s.Calls() {
					calls += n
				}
			}
			b.ReportMetric(float64(calls)/float64(b.N), "roundtrips/op")
		})
	}
}
