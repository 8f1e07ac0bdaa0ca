package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBench(t *testing.T) {
	out := "goos: linux\n" +
		"BenchmarkInventory-2   \t2026/11/24 11:53:15 http: TLS handshake error\n" +
		"      30\t  39842265 ns/op\t         3.000 roundtrips/op\t 9810727 B/op\t  168798 allocs/op\n" +
		"BenchmarkInventory-2   \t      20\t  41000000 ns/op\t         3.000 roundtrips/op\t 9810000 B/op\t  168000 allocs/op\n" +
		"BenchmarkMask-2 \t 9000\t 131547 ns/op\t 89352 B/op\t 1412 allocs/op\n" +
		"PASS\n"
	got := parseBench("./p", out)
	require.Len(t, got, 2)
	assert.Equal(t, "BenchmarkInventory-2", got[0].Name)
	assert.Equal(t, 2, got[0].Metrics["ns/op"].N)
	assert.InDelta(t, 40421132.5, got[0].Metrics["ns/op"].Median, 0.1)
	assert.InDelta(t, 3.0, got[0].Metrics["roundtrips/op"].Median, 0)
	assert.Equal(t, 1, got[1].Metrics["allocs/op"].N)
	assert.InDelta(t, 1412.0, got[1].Metrics["allocs/op"].Median, 0)
}

func TestStat(t *testing.T) {
	assert.Equal(t, Stat{N: 4, Median: 2.5, Min: 1, Max: 4, Values: []float64{4, 1, 3, 2}}, stat([]float64{4, 1, 3, 2}))
	assert.Equal(t, 3.0, stat([]float64{5, 3, 1}).Median)
	assert.Equal(t, Stat{}, stat(nil))
}
