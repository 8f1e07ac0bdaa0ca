package vsphere

import (
	"bytes"
	"context"
	"testing"
)

// FuzzReadDescriptor feeds arbitrary bytes as an OVA: reading the
// descriptor must fail cleanly or succeed, never panic, hang or allocate
// without bound. Seeds live in testdata/fuzz/FuzzReadDescriptor.
func FuzzReadDescriptor(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &readerAtBlob{r: bytes.NewReader(data), size: int64(len(data))}
		im, err := openOVA(context.Background(), b)
		if err != nil {
			return
		}
		if im.desc.DiskBytes < 0 || im.desc.DiskBytes > int64(len(data)) {
			t.Fatalf("disk bytes %d outside a %d-byte archive", im.desc.DiskBytes, len(data))
		}
		for _, f := range im.desc.Files {
			if _, err := cleanMemberName(f.Href); err != nil {
				t.Fatalf("accepted unsafe href %q", f.Href)
			}
		}
	})
}
