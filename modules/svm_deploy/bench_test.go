package svmdeploy

import (
	"context"
	"fmt"
	"testing"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
)

// BenchmarkDeploy measures a whole svm_deploy run (connect, observe, the
// streaming import of a 64 MiB image, marks, power on, wait for the IP)
// against the lab's vCenter. Run with -benchmem; the VM is deleted outside
// the timer after each iteration.
func BenchmarkDeploy(b *testing.B) {
	e := newEnv(b, sim.Config{Hosts: 1, VMsPerHost: -1, ImageBytes: 64 << 20})
	host := e.v.ESXiHosts[0]
	b.SetBytes(imageDiskBytes(b, e.v.NewImage.Path))
	b.ReportAllocs()
	ctx := context.Background()
	var mibs float64
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("bench-svm-%d", i)
		res := ansibletest.Run(b, ctx, "svm_deploy", New(), e.args(host, name, nil), ansibletest.Mode{})
		if res.Failed() || !res.Changed() {
			b.Fatalf("deploy %s: %s", name, res.Msg())
		}
		b.StopTimer()
		mib, _ := ansibletest.Get(res, "upload", "mib_per_s").(float64)
		mibs += mib
		vm, err := e.s.VM(ctx, nil, name)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.s.Destroy(ctx, vm); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(mibs/float64(b.N), "upload-MiB/s")
}
