package vsphere

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The upload gets exactly the file's bytes, in the transport's small
// reads, whatever the chunking; every byte sent was hashed; a source that
// ends early or fails ends the upload with its error.
func TestPrefetch(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, (prefetchBuffers+3)*prefetchChunk+12345)
	for i := range data {
		data[i] = byte(i*7 + i/prefetchChunk)
	}
	broken := errors.New("disk read error")
	tests := []struct {
		name   string
		size   int64 // bytes asked for
		source []byte
		fail   error // the source's error after its bytes
		err    error
	}{
		{"empty", 0, nil, nil, nil},
		{"one byte", 1, data[:1], nil, nil},
		{"just under a chunk", prefetchChunk - 1, data[:prefetchChunk-1], nil, nil},
		{"one chunk", prefetchChunk, data[:prefetchChunk], nil, nil},
		{"more chunks than buffers", int64(len(data)), data, nil, nil},
		{"source shorter than the file", int64(len(data)), data[:3*prefetchChunk+5], nil, io.ErrUnexpectedEOF},
		{"source fails", int64(len(data)), data[:2*prefetchChunk], broken, broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(tt.source)
			if tt.fail != nil {
				src = io.MultiReader(src, iotest.ErrReader(tt.fail))
			}
			h := sha256.New()
			pf, err := startPrefetch(ctx, func(context.Context) (io.ReadCloser, error) { return io.NopCloser(src), nil }, tt.size, h)
			require.NoError(t, err)
			var got []byte
			buf := make([]byte, 32<<10) // what the transport reads at a time
			for {
				n, err := pf.Read(buf)
				got = append(got, buf[:n]...)
				clear(buf) // the transport reuses its buffer
				if err == io.EOF {
					break
				}
				if err != nil {
					pf.close()
					require.ErrorIs(t, err, tt.err)
					assert.Equal(t, tt.source[:len(got)], got, "what was sent before the error")
					return
				}
			}
			pf.close()
			require.NoError(t, tt.err, "the upload should have failed")
			assert.Equal(t, tt.source, got)
			want := sha256.Sum256(tt.source)
			assert.Equal(t, want[:], h.Sum(nil), "the hash covers the bytes sent")
			n, err := pf.Read(buf)
			assert.Equal(t, 0, n)
			assert.ErrorIs(t, err, io.EOF, "a read after the end")
		})
	}
}

// close ends the reading at once even when the upload stops reading and
// the source stalls (an image URL that stops sending): it cancels the
// context the file was opened with.
func TestPrefetchCloseStopsAStalledSource(t *testing.T) {
	opened := make(chan context.Context, 1)
	pf, err := startPrefetch(context.Background(), func(ctx context.Context) (io.ReadCloser, error) {
		opened <- ctx
		return io.NopCloser(ctxReader{ctx, stalled{ctx}}), nil
	}, 10*prefetchChunk)
	require.NoError(t, err)
	ctx := <-opened
	done := make(chan struct{})
	go func() { pf.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close waits for a stalled source")
	}
	assert.ErrorIs(t, context.Cause(ctx), errPrefetchClosed)
	_, err = pf.Read(make([]byte, 10))
	assert.ErrorIs(t, err, errPrefetchClosed, "a read after close")
}

// stalled blocks until its context ends.
type stalled struct{ ctx context.Context }

func (s stalled) Read([]byte) (int, error) {
	<-s.ctx.Done()
	return 0, context.Cause(s.ctx)
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
			a := &archiveHash{b: b, h: sha256.New(), want: tt.want, src: "a.ova", desc: tt.desc, descOff: descOff}
			require.NoError(t, a.catchUp(ctx, diskOff))
			_, _ = a.Write(data[diskOff:diskEnd]) // what the upload sends
			err := a.finish(ctx)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
		})
	}
}
