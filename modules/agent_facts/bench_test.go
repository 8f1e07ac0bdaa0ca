package agentfacts

import (
	"context"
	"testing"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// BenchmarkFacts1024 reads a 32-host, 1024-VM fleet in one DRS cluster
// in-process: many hosts, so work per SVM and agent (every SVM's gate
// looks at every agent DRS may move onto its host) shows; its CPU profile
// shows where the module's time goes beside the lab's.
func BenchmarkFacts1024(b *testing.B) {
	l := labtest.Start(b, sim.Config{Hosts: 32, VMsPerHost: 32, DRSInterval: -1})
	args := labArgs(l)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if res := ansibletest.Run(b, ctx, "agent_facts", New(), args, ansibletest.Mode{}); res.Failed() {
			b.Fatal(res.Msg())
		}
	}
}
