package vsphere

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/vmware/govmomi/nfc"
)

// sideHasher hashes an upload's bytes on a goroutine of its own, so the
// goroutine that sends them never waits for the hash: where a core is free
// (a client beside a remote vCenter), the upload runs at the link's speed,
// not the hash's.
//
// It copies the bytes, because the transport reuses its buffer once Read
// returns, into chunks of sideChunk bytes: the transport reads 32 KiB at a
// time, and handing each read over on its own (a channel send and a wake-up
// of the hashing goroutine per 32 KiB) cost about 0.08 CPU-seconds per
// 256 MiB read from the page cache, on top of the 0.16 of SHA-256 itself,
// where 1 MiB chunks cost about 0.02 (the copy). At most sideBuffers chunks
// are in flight, so memory stays bounded (about sideBuffers MiB) whatever
// the image's size.
//
// Hashing beside the upload helps only where a core is free: on a machine
// whose cores the vCenter and other work already keep busy, the hash's CPU
// time adds to the upload's wall-clock time wherever it runs.
type sideHasher struct {
	h    hash.Hash
	in   chan []byte
	free chan []byte
	done chan struct{}
	// mu orders write and sum: the transport may still read the body
	// after the request returned with an error (http.RoundTripper's
	// contract), so a write may come after sum, and is then dropped.
	mu     sync.Mutex
	cur    []byte // the chunk being filled, nil between chunks
	closed bool
}

const (
	sideBuffers = 4
	sideChunk   = 1 << 20
)

func newSideHasher(h hash.Hash) *sideHasher {
	s := &sideHasher{h: h, in: make(chan []byte, sideBuffers), free: make(chan []byte, sideBuffers), done: make(chan struct{})}
	for range sideBuffers {
		s.free <- nil // allocated on first use
	}
	go func() {
		defer close(s.done)
		for b := range s.in {
			s.h.Write(b)
			s.free <- b[:0]
		}
	}()
	return s
}

// write queues a copy of p; it blocks only while sideBuffers full chunks
// wait for the hash.
func (s *sideHasher) write(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.cur == nil {
		s.cur = <-s.free
		if s.cur == nil {
			s.cur = make([]byte, 0, sideChunk+len(p))
		}
	}
	s.cur = append(s.cur, p...)
	if len(s.cur) >= sideChunk {
		s.in <- s.cur
		s.cur = nil
	}
}

// sum hashes what is still queued and returns the hash. Call it on every
// path, failures included, to end the goroutine; later calls are no-ops.
func (s *sideHasher) sum() hash.Hash {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		if len(s.cur) > 0 {
			s.in <- s.cur
			s.cur = nil
		}
		close(s.in)
	}
	s.mu.Unlock()
	<-s.done
	return s.h
}

// archiveHash checks the expected SHA-256 of a whole .ova in the same pass
// as its upload: the files the lease asks for are hashed as they are sent,
// the bytes between them (tar headers, descriptor, manifest) read from the
// archive when the upload gets there. Reading the image once more before
// the upload would cost a full read and hash of the disks for nothing.
type archiveHash struct {
	b    blob
	h    *sideHasher
	pos  int64 // bytes hashed so far, from the archive's start
	want string
	src  string
	// The descriptor the import spec was made from, at its offset: the
	// archive's bytes there must be the same, or the file changed after it
	// was read and the checksum would vouch for a descriptor not used.
	desc    []byte
	descOff int64
	changed bool
}

// newArchiveHash returns the one-pass check of the archive's checksum, or nil
// when the lease asks for its files out of the archive's order (one pass
// cannot hash them then).
func newArchiveHash(im *image, info *nfc.LeaseInfo, want string) *archiveHash {
	b := im.closers[0]
	last := int64(-1)
	for _, it := range info.Items {
		m, err := im.item(it.Path)
		if err != nil || m.b != b || m.off < last {
			return nil
		}
		last = m.off + m.size
	}
	return &archiveHash{b: b, h: newSideHasher(sha256.New()), want: want, src: im.desc.Source, desc: im.raw, descOff: im.descOff}
}

// write hashes the archive's next bytes.
func (a *archiveHash) write(p []byte) {
	if lo, hi := max(a.pos, a.descOff), min(a.pos+int64(len(p)), a.descOff+int64(len(a.desc))); lo < hi &&
		!bytes.Equal(p[lo-a.pos:hi-a.pos], a.desc[lo-a.descOff:hi-a.descOff]) {
		a.changed = true
	}
	a.h.write(p)
	a.pos += int64(len(p))
}

// catchUp hashes the archive's bytes from where the hash is up to off.
func (a *archiveHash) catchUp(ctx context.Context, off int64) error {
	if off <= a.pos {
		return nil
	}
	rc, err := a.b.ReadRange(ctx, a.pos, off-a.pos)
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	defer rc.Close()
	buf := make([]byte, min(off-a.pos, 64<<10))
	for a.pos < off {
		n, err := rc.Read(buf[:min(int64(len(buf)), off-a.pos)])
		a.write(buf[:n])
		if err == io.EOF && a.pos < off {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("checksum: %w", err)
		}
	}
	return nil
}

// finish hashes the rest of the archive and compares.
func (a *archiveHash) finish(ctx context.Context) error {
	if err := a.catchUp(ctx, a.b.Size()); err != nil {
		return err
	}
	got := hex.EncodeToString(a.h.sum().Sum(nil))
	switch {
	case got != a.want:
		return fmt.Errorf("image %s: SHA-256 %s does not match the expected %s (image corrupt, tampered with, or another release)", a.src, got, a.want)
	case a.changed:
		return fmt.Errorf("image %s: its descriptor changed while it was imported (the file was rewritten during the run)", a.src)
	}
	return nil
}
