package vsphere

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/vmware/govmomi/nfc"
)

// archiveHash checks the expected SHA-256 of a whole .ova in the same pass
// as its upload: the files the lease asks for are hashed as they are sent,
// the bytes between them (tar headers, descriptor, manifest) read from the
// archive when the upload gets there. Reading the image once more before
// the upload would cost a full read and hash of the disks for nothing.
type archiveHash struct {
	b    blob
	h    hash.Hash
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

// newArchiveHash returns the one-pass check of the archive's checksum.
func newArchiveHash(im *image, want string) *archiveHash {
	return &archiveHash{b: im.closers[0], h: sha256.New(), want: want, src: im.desc.Source, desc: im.raw, descOff: im.descOff}
}

// inArchiveOrder reports whether the lease asks for the files in the
// archive's order, so that one pass can hash the archive.
func inArchiveOrder(im *image, info *nfc.LeaseInfo) bool {
	b := im.closers[0]
	last := int64(-1)
	for _, it := range info.Items {
		m, err := im.item(it.Path)
		if err != nil || m.b != b || m.off < last {
			return false
		}
		last = m.off + m.size
	}
	return true
}

// Write hashes the archive's next bytes; it never fails.
func (a *archiveHash) Write(p []byte) (int, error) {
	if lo, hi := max(a.pos, a.descOff), min(a.pos+int64(len(p)), a.descOff+int64(len(a.desc))); lo < hi &&
		!bytes.Equal(p[lo-a.pos:hi-a.pos], a.desc[lo-a.descOff:hi-a.descOff]) {
		a.changed = true
	}
	a.h.Write(p)
	a.pos += int64(len(p))
	return len(p), nil
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
		_, _ = a.Write(buf[:n])
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
	got := hex.EncodeToString(a.h.Sum(nil))
	switch {
	case got != a.want:
		return fmt.Errorf("image %s: SHA-256 %s does not match the expected %s (image corrupt, tampered with, or another release)", a.src, got, a.want)
	case a.changed:
		return fmt.Errorf("image %s: its descriptor changed while it was imported (the file was rewritten during the run)", a.src)
	}
	return nil
}
