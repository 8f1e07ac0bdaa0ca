package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The barrier design waits, batch after batch, for each batch's slowest
// host; waves wait for the slowest host once.
func TestBarrierWait(t *testing.T) {
	s := time.Second
	times := []time.Duration{1 * s, 9 * s, 2 * s, 3 * s, 4 * s}
	assert.Equal(t, 9*s+3*s+4*s, barrierWait(times, 2))
	assert.Equal(t, 9*s, barrierWait(times, 8))
	assert.Equal(t, 9*s, slowestOf(times))
	assert.Equal(t, "1s–3s–9s", spreadText(times))
	assert.Equal(t, "b 3, a 1, c 1", callsText(map[string]int{"a": 1, "b": 3, "c": 1}))
}
