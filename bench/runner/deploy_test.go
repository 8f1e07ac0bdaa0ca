package main

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCPUFloor(t *testing.T) {
	ran := func(name string, own, lab []float64) *contender {
		c := &contender{name: name, labCPU: lab}
		for _, s := range own {
			c.series.Samples = append(c.series.Samples, Sample{CPUSeconds: s})
		}
		return c
	}
	failed := ran("broken", []float64{1}, []float64{1})
	failed.err = errors.New("did not deploy")
	cores := float64(runtime.NumCPU())
	tests := []struct {
		name string
		cs   []*contender
		want []string // parts the note holds
	}{
		{"nothing measured", []*contender{failed, ran("no lab figure", []float64{0.2}, nil)}, nil},
		{"medians, summed, over the cores", []*contender{
			ran("svm_deploy", []float64{0.30, 0.36, 0.34}, []float64{0.33, 0.40, 0.35}),
			ran("govc", []float64{0.20}, []float64{0.32}),
			failed,
		}, []string{
			fmt.Sprintf("svm_deploy 0.34 + 0.35 = 0.69 CPU-s, at least %.3f s", 0.69/cores),
			fmt.Sprintf("govc 0.20 + 0.32 = 0.52 CPU-s, at least %.3f s", 0.52/cores),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cpuFloor(tt.cs)
			if tt.want == nil {
				assert.Empty(t, got)
				return
			}
			for _, w := range tt.want {
				assert.Contains(t, got, w)
			}
			assert.NotContains(t, got, "broken", "a command that failed has no figure")
		})
	}
}

// The lab's CPU is taken around the run only: before runs the cleanup
// first (its cost is not the run's), after records then hands over.
func TestWithLabCPU(t *testing.T) {
	var order []string
	c := &contender{
		before: func() error { order = append(order, "cleanup"); return nil },
		after:  func(Sample) error { order = append(order, "check"); return nil },
	}
	withLabCPU(c)
	for range 2 {
		require.NoError(t, c.before())
		for start := selfCPU(); selfCPU()-start < 0.01; { // a run that costs this process CPU
		}
		require.NoError(t, c.after(Sample{}))
	}
	assert.Equal(t, []string{"cleanup", "check", "cleanup", "check"}, order)
	require.Len(t, c.labCPU, 2)
	for _, v := range c.labCPU {
		assert.GreaterOrEqual(t, v, 0.01)
	}

	bare := &contender{} // curl's PUT: neither hook
	withLabCPU(bare)
	require.NoError(t, bare.before())
	require.NoError(t, bare.after(Sample{}))
	assert.Len(t, bare.labCPU, 1)
}
