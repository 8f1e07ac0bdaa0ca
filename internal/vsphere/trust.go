package vsphere

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// ImageCheck says how an image must be verified before it is imported.
type ImageCheck struct {
	// SHA256 is the expected SHA-256 of the .ova or .ovf file (hex).
	SHA256 string
	// Trusted accepts an image that neither SHA256 nor a manifest
	// verifies; the caller reports it as a warning.
	Trusted bool
}

// ErrUnverified: nothing verifies the image and it was not declared trusted.
var ErrUnverified = errors.New("image not verified")

// NormalizeSHA256 checks a hex SHA-256 (64 digits, any case, an optional
// "sha256:" prefix as checksum files write it) and returns it in lower case.
func NormalizeSHA256(s string) (string, error) {
	h := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if _, err := hex.DecodeString(h); err != nil || len(h) != 64 {
		return "", errors.New("not a SHA-256 checksum (64 hexadecimal digits)")
	}
	return h, nil
}

// Verification tells how the image will be verified, or why it cannot be:
// a manifest pins every file; an expected SHA-256 of an .ova pins the
// archive; of an .ovf only the descriptor, so its disks still need the
// manifest. It returns the warning to give for an image accepted only
// because it is declared trusted.
func (d *Descriptor) Verification(c ImageCheck) (warning string, err error) {
	switch {
	case d.Manifest:
		return "", nil
	case c.SHA256 != "" && !d.OVF:
		return "", nil
	case c.Trusted:
		return fmt.Sprintf("image %s is not verified (no manifest%s): accepted because it is declared trusted", d.Source, shaNote(c, d)), nil
	case c.SHA256 != "":
		return "", fmt.Errorf("%w: %s has no manifest, and a checksum of an .ovf covers only the descriptor, not its disks: use the .ova or an image with its .mf, or declare it trusted", ErrUnverified, d.Source)
	}
	return "", fmt.Errorf("%w: %s has no manifest (.mf) and no expected checksum was given: give its SHA-256, or declare it trusted", ErrUnverified, d.Source)
}

func shaNote(c ImageCheck, d *Descriptor) string {
	if c.SHA256 != "" && d.OVF {
		return "; the checksum covers only the descriptor"
	}
	return ", no checksum"
}

// verifySHA256 reads the whole image file (the .ova, or the .ovf itself)
// and compares its SHA-256, honouring ctx between reads.
func (im *image) verifySHA256(ctx context.Context, want string) error {
	b := im.closers[0]
	rc, err := b.ReadRange(ctx, 0, b.Size())
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, rc})
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	if n != b.Size() {
		return fmt.Errorf("checksum: read %d of %d bytes", n, b.Size())
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("image %s: SHA-256 %s does not match the expected %s (image corrupt, tampered with, or another release)", im.desc.Source, got, want)
	}
	return nil
}

// diskCapacity sums the capacities the descriptor declares for its disks,
// refusing values that do not parse or overflow.
func diskCapacity(env *ovf.Envelope) (int64, error) {
	if env.Disk == nil {
		return 0, nil
	}
	var total int64
	for _, dk := range env.Disk.Disks {
		n, err := strconv.ParseInt(strings.TrimSpace(dk.Capacity), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("disk %s: capacity %q is not a byte count", dk.DiskID, truncate(dk.Capacity, 40))
		}
		unit := int64(1)
		if dk.CapacityAllocationUnits != nil && strings.TrimSpace(*dk.CapacityAllocationUnits) != "" {
			u := *dk.CapacityAllocationUnits
			if unit = ovf.ParseCapacityAllocationUnits(u); unit <= 0 || unit > 1<<40 {
				return 0, fmt.Errorf("disk %s: capacity unit %q is not understood", dk.DiskID, truncate(u, 40))
			}
		}
		if n > 0 && unit > math.MaxInt64/n || n*unit > math.MaxInt64-total {
			return 0, fmt.Errorf("disk %s: capacity %s x %d bytes overflows", dk.DiskID, dk.Capacity, unit)
		}
		total += n * unit
	}
	return total, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// CheckPlacement refuses, before vCenter is asked anything that changes
// state, a datastore the host does not mount (vCenter would refuse it too,
// with a less helpful fault) and an image that cannot fit: the upload must
// fit in the free space, and the disks' declared capacity in the free
// space when thick-provisioned, in the datastore's capacity when thin.
func (s *Session) CheckPlacement(ctx context.Context, host *object.HostSystem, ds *object.Datastore, d *Descriptor, provisioning string) error {
	var h mo.HostSystem
	if err := host.Properties(ctx, host.Reference(), []string{"name", "datastore"}, &h); err != nil {
		return fmt.Errorf("read host %s: %w", host.InventoryPath, err)
	}
	mounted := false
	for _, ref := range h.Datastore {
		mounted = mounted || ref == ds.Reference()
	}
	if !mounted {
		names, err := s.datastoreNames(ctx, h.Datastore)
		if err != nil {
			return err
		}
		return fmt.Errorf("datastore %s is not mounted on host %s (its datastores: %s)", ds.Name(), h.Name, strings.Join(names, ", "))
	}
	var m mo.Datastore
	if err := ds.Properties(ctx, ds.Reference(), []string{"summary"}, &m); err != nil {
		return fmt.Errorf("read datastore %s: %w", ds.Name(), err)
	}
	free, capacity := m.Summary.FreeSpace, m.Summary.Capacity
	if d.DiskBytes > free {
		return fmt.Errorf("image %s needs %s to upload, datastore %s has %s free", d.Source, bytesText(d.DiskBytes), m.Summary.Name, bytesText(free))
	}
	limit, what := free, "free"
	if provisioning == "" || provisioning == "thin" {
		limit, what = capacity, "in all"
	}
	if d.DiskCapacityBytes > limit {
		return fmt.Errorf("image %s declares %s of disks (%s provisioning), datastore %s has %s %s", d.Source, bytesText(d.DiskCapacityBytes), orThin(provisioning), m.Summary.Name, bytesText(limit), what)
	}
	return nil
}

func orThin(p string) string {
	if p == "" {
		return "thin"
	}
	return p
}

func (s *Session) datastoreNames(ctx context.Context, refs []types.ManagedObjectReference) ([]string, error) {
	if len(refs) == 0 {
		return []string{"none"}, nil
	}
	var list []mo.Datastore
	if err := property.DefaultCollector(s.c).Retrieve(ctx, refs, []string{"name"}, &list); err != nil {
		return nil, fmt.Errorf("read datastore names: %w", err)
	}
	names := make([]string, len(list))
	for i, d := range list {
		names[i] = d.Name
	}
	sort.Strings(names)
	return names, nil
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit && exp < 5; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// VerifyImageSHA256 reads the image file at source (an .ova or .ovf path
// or URL) and compares its SHA-256 with want, honouring ctx.
func VerifyImageSHA256(ctx context.Context, source, want string) error {
	sum, err := NormalizeSHA256(want)
	if err != nil {
		return err
	}
	b, err := openBlob(ctx, source, http.DefaultClient)
	if err != nil {
		return fmt.Errorf("read image %s: %w", displaySource(source), err)
	}
	defer b.Close()
	im := &image{desc: Descriptor{Source: displaySource(source)}, closers: []blob{b}}
	return im.verifySHA256(ctx, sum)
}
