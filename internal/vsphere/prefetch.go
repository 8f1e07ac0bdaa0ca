package vsphere

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// prefetch reads one file of an image ahead of its upload, on a goroutine
// of its own, in chunks of prefetchChunk bytes, and hands each chunk to
// the hashes (the manifest's digest, the archive's checksum) before the
// upload sends it. The bytes verified are the bytes sent: the upload copies
// them out of the chunk they were hashed in.
//
// Hashing ahead of the wire rather than behind it lets the hash start
// before there is a wire: Import starts the first file's prefetch while
// vCenter still prepares the import (import spec, lease), time in which the
// client only waits, so up to prefetchBuffers chunks are hashed before the
// first byte is sent. SHA-256 of a disk is most of the module's CPU (about
// 0.14 s per 256 MiB on a core with SHA extensions), and on a loaded
// machine every CPU-second spent during the upload adds to its wall time.
// Memory stays bounded (prefetchBuffers chunks) whatever the image's size.
//
// Read and close may be called from different goroutines (the transport
// may still read the body after the request returned with an error), but
// Read is never called concurrently with itself.
type prefetch struct {
	cancel context.CancelCauseFunc
	full   chan []byte // chunks read and hashed, in order; closed at the end
	free   chan []byte // chunks the upload has sent
	done   chan struct{}
	err    error // why full was closed early; read once full is closed

	cur []byte // the rest of the chunk Read is sending
	buf []byte // that chunk whole, to give back
}

const (
	prefetchChunk   = 1 << 20
	prefetchBuffers = 24
)

// errPrefetchClosed: the upload went on reading after it was closed.
var errPrefetchClosed = errors.New("upload body read after the upload ended")

// startPrefetch opens the file and reads size bytes of it ahead, writing
// each chunk to every one of hashes (a hash.Hash, the archive's check)
// before it is handed to Read. open gets a context that close cancels, so
// a stalled source (an image URL) cannot keep close waiting.
func startPrefetch(ctx context.Context, open func(context.Context) (io.ReadCloser, error), size int64, hashes ...io.Writer) (*prefetch, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	rc, err := open(ctx)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	p := &prefetch{cancel: cancel, full: make(chan []byte, prefetchBuffers), free: make(chan []byte, prefetchBuffers), done: make(chan struct{})}
	for range prefetchBuffers {
		p.free <- nil // allocated on first use: a small file takes one small chunk
	}
	go func() {
		defer close(p.done)
		defer close(p.full)
		defer rc.Close()
		p.err = p.fill(ctx, rc, size, hashes)
	}()
	return p, nil
}

func (p *prefetch) fill(ctx context.Context, r io.Reader, size int64, hashes []io.Writer) error {
	for left := size; left > 0; {
		var b []byte
		select {
		case b = <-p.free:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if b == nil {
			b = make([]byte, min(left, prefetchChunk))
		}
		b = b[:min(left, int64(cap(b)))]
		n, err := io.ReadFull(r, b)
		left -= int64(n)
		for _, h := range hashes {
			_, _ = h.Write(b[:n]) // hash.Hash and the archive's check never fail
		}
		if n > 0 {
			p.full <- b[:n] // never blocks: there are only prefetchBuffers chunks
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("read %d bytes short: %w", left, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Read sends the chunks in order; after the last one it returns io.EOF, or
// the error that cut the reading short.
func (p *prefetch) Read(b []byte) (int, error) {
	if len(p.cur) == 0 {
		if p.buf != nil {
			p.free <- p.buf[:cap(p.buf)]
			p.buf = nil
		}
		c, ok := <-p.full
		if !ok {
			if p.err != nil {
				return 0, p.err
			}
			return 0, io.EOF
		}
		p.cur, p.buf = c, c
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// close stops the reading and waits for it: once it returns, every chunk
// read has been hashed and the hashes may be summed. Call it on every path.
func (p *prefetch) close() {
	p.cancel(errPrefetchClosed)
	<-p.done
}
