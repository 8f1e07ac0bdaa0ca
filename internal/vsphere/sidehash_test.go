package vsphere

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSideHasher(t *testing.T) {
	tests := []struct {
		name   string
		writes []int // sizes of the successive writes
	}{
		{"nothing", nil},
		{"one byte", []int{1}},
		{"transport reads", []int{32 << 10, 32 << 10, 32 << 10, 100}},
		{"just under a chunk", []int{sideChunk - 1}},
		{"chunk boundary crossed", []int{sideChunk - 1, 2, sideChunk}},
		{"more chunks than buffers", []int{sideChunk, sideChunk, sideChunk, sideChunk, sideChunk, sideChunk + 7, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := sha256.New()
			s := newSideHasher(sha256.New())
			for i, n := range tt.writes {
				p := []byte(strings.Repeat(fmt.Sprint(i%10), n))
				want.Write(p)
				s.write(p)
				clear(p) // the transport reuses its buffer: the copy must be hashed
			}
			assert.Equal(t, want.Sum(nil), s.sum().Sum(nil))
			s.write([]byte("late")) // a read after the request gave up is dropped
			assert.Equal(t, want.Sum(nil), s.sum().Sum(nil), "sum is final")
		})
	}
}

// The archive's checksum is computed from the uploaded bytes and the gaps
// between them, and a descriptor that differs from the archive's bytes is
// reported even when the checksum matches.
func TestArchiveHash(t *testing.T) {
	ctx := context.Background()
	data := []byte(strings.Repeat("header-descriptor-disk-manifest ", 4000))
	p := filepath.Join(t.TempDir(), "a.ova")
	require.NoError(t, os.WriteFile(p, data, 0o600))
	b, err := openLocal(os.OpenFile, p)
	require.NoError(t, err)
	defer b.Close()
	sum := fmt.Sprintf("%x", sha256.Sum256(data))
	descOff, descEnd := int64(512), int64(2048)
	diskOff, diskEnd := int64(5000), int64(90000)

	tests := []struct {
		name string
		want string
		desc []byte
		err  string
	}{
		{"matches", sum, data[descOff:descEnd], ""},
		{"other checksum", strings.Repeat("0", 64), data[descOff:descEnd], "SHA-256 " + sum + " does not match the expected 000"},
		{"descriptor read before a rewrite", sum, append([]byte("X"), data[descOff+1:descEnd]...), "its descriptor changed while it was imported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &archiveHash{b: b, h: newSideHasher(sha256.New()), want: tt.want, src: "a.ova", desc: tt.desc, descOff: descOff}
			require.NoError(t, a.catchUp(ctx, diskOff))
			a.write(data[diskOff:diskEnd]) // what the upload sends
			err := a.finish(ctx)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
		})
	}
}
