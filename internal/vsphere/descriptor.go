package vsphere

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vapi/library"
)

// maxXMLDepth bounds element nesting in a descriptor; real ones nest
// about 6 deep.
const maxXMLDepth = 64

// Descriptor is what an image says about itself, read before anything is
// imported so the caller can compare versions and plan.
type Descriptor struct {
	Source      string // the image path or URL, credentials redacted
	Name        string // VirtualSystem Name (or its id)
	Product     string // ProductSection Product
	Vendor      string
	Version     string
	FullVersion string
	Networks    []string    // OVF network names, for ImportSpec.Networks
	Files       []ImageFile // files the descriptor references, in order
	DiskBytes   int64       // sum of Files sizes: what an import uploads
	// What the SVM asks of its host (VirtualHardwareSection, DiskSection):
	// vCPUs, memory, and the sum of its disks' declared capacities (what
	// they grow to on the datastore, thin or not). Zero: not said.
	CPUs              int
	MemoryMB          int64
	DiskCapacityBytes int64
	// OVF is true for an .ovf descriptor with files beside it (an .ova
	// otherwise).
	OVF bool
	// Manifest is true when the image carries a manifest (.mf); it has then
	// verified the descriptor, and Import verifies every other file.
	Manifest bool
	// ImageSHA256 identifies the image for MarkImageSHA256: the SHA-256 of
	// the manifest when there is one (it pins every file's digest), else of
	// the descriptor. It is not the checksum of the .ova file itself, which
	// would cost a full read of the image.
	ImageSHA256 string
}

// ImageFile is one file referenced by the descriptor.
type ImageFile struct {
	Href string
	Size int64
}

// digest is one manifest line.
type digest struct {
	alg string // upper case: SHA1, SHA256, SHA512
	sum string // lower-case hex
}

// image is an opened OVA or OVF with its descriptor read and verified.
type image struct {
	desc     Descriptor
	raw      []byte
	descOff  int64 // where raw sits in an .ova
	env      *ovf.Envelope
	files    map[string]member // by cleaned href
	manifest map[string]digest // nil without a manifest
	closers  []blob
}

func (im *image) Close() error {
	var errs []error
	for _, b := range im.closers {
		errs = append(errs, b.Close())
	}
	return errors.Join(errs...)
}

// ReadDescriptor reads and checks an image's descriptor without importing
// it. source is a local .ova/.ovf path or an http(s) URL (read with Range
// requests, never downloaded whole). The descriptor is verified against the
// manifest when there is one.
func ReadDescriptor(ctx context.Context, source string) (*Descriptor, error) {
	im, err := openImage(ctx, source, http.DefaultClient)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	d := im.desc
	return &d, nil
}

// displaySource hides credentials in an image URL.
func displaySource(source string) string {
	if isURL(source) {
		if u, err := url.Parse(source); err == nil {
			return u.Redacted()
		}
		return "(unparsable url)"
	}
	return source
}

func openImage(ctx context.Context, source string, hc *http.Client) (*image, error) {
	b, err := openBlob(ctx, source, hc)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", displaySource(source), err)
	}
	lower := strings.ToLower(source)
	if u, err := url.Parse(source); err == nil && isURL(source) {
		lower = strings.ToLower(u.Path)
	}
	var im *image
	if strings.HasSuffix(lower, ".ovf") {
		im, err = openOVF(ctx, source, b, hc)
		if err == nil {
			im.desc.OVF = true
		}
	} else {
		im, err = openOVA(ctx, b)
	}
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("read image %s: %w", displaySource(source), err)
	}
	im.desc.Source = displaySource(source)
	return im, nil
}

// openOVA indexes the archive and reads its descriptor and manifest.
func openOVA(ctx context.Context, b blob) (*image, error) {
	members, order, err := indexTar(ctx, b)
	if err != nil {
		return nil, err
	}
	var ovfName, mfName string
	for _, n := range order {
		switch strings.ToLower(path.Ext(n)) {
		case ".ovf":
			if ovfName != "" {
				return nil, fmt.Errorf("ova holds two descriptors: %s and %s", ovfName, n)
			}
			ovfName = n
		case ".mf":
			if mfName != "" {
				return nil, fmt.Errorf("ova holds two manifests: %s and %s", mfName, n)
			}
			mfName = n
		}
	}
	if ovfName == "" {
		return nil, errors.New("ova holds no .ovf descriptor")
	}
	im := &image{files: members, closers: []blob{b}}
	if err := im.load(ctx, members[ovfName], members, mfName); err != nil {
		return nil, err
	}
	return im, nil
}

// openOVF reads a descriptor whose files sit next to it.
func openOVF(ctx context.Context, source string, b blob, hc *http.Client) (*image, error) {
	im := &image{files: make(map[string]member), closers: []blob{b}}
	desc := member{name: path.Base(source), off: 0, size: b.Size(), b: b}
	var root *os.Root
	if !isURL(source) {
		// Files are opened through the descriptor's directory as a root:
		// a reference, or a link on the way, that leads out of it is
		// refused (a symlinked "disk" once uploaded /etc/hostname).
		var err error
		if root, err = os.OpenRoot(filepath.Dir(source)); err != nil {
			return nil, fmt.Errorf("open the image's directory: %w", err)
		}
		defer root.Close()
	}
	sibling := func(name string) (member, error) {
		var sb blob
		var err error
		if isURL(source) {
			base, _ := url.Parse(source)
			ref, perr := url.Parse(name)
			if perr != nil {
				return member{}, perr
			}
			sb, err = openBlob(ctx, base.ResolveReference(ref).String(), hc)
		} else {
			sb, err = openLocal(root.OpenFile, filepath.FromSlash(name))
		}
		if err != nil {
			return member{}, err
		}
		im.closers = append(im.closers, sb)
		return member{name: name, size: sb.Size(), b: sb}, nil
	}
	if err := im.loadDescriptor(ctx, desc); err != nil {
		return nil, err
	}
	files := make(map[string]member)
	for _, f := range im.desc.Files {
		m, err := sibling(f.Href)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Href, err)
		}
		files[f.Href] = m
	}
	mfName := strings.TrimSuffix(desc.name, path.Ext(desc.name)) + ".mf"
	if mf, err := sibling(mfName); err == nil {
		files[mfName] = mf
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("manifest %s: %w", mfName, err)
	} else {
		mfName = ""
	}
	im.files = files
	if err := im.check(ctx, desc, files, mfName); err != nil {
		return nil, err
	}
	return im, nil
}

// load reads the descriptor and checks it and the files against the
// manifest.
func (im *image) load(ctx context.Context, desc member, files map[string]member, mfName string) error {
	if err := im.loadDescriptor(ctx, desc); err != nil {
		return err
	}
	return im.check(ctx, desc, files, mfName)
}

func (im *image) loadDescriptor(ctx context.Context, desc member) error {
	if desc.size > maxDescriptorBytes {
		return fmt.Errorf("descriptor %s: %d bytes is more than the %d allowed", desc.name, desc.size, maxDescriptorBytes)
	}
	raw, err := readMember(ctx, desc)
	if err != nil {
		return err
	}
	env, err := parseEnvelope(raw)
	if err != nil {
		return fmt.Errorf("descriptor %s: %w", desc.name, err)
	}
	im.raw, im.descOff, im.env = raw, desc.off, env
	d := &im.desc
	vs := env.VirtualSystem
	d.Name = vs.ID
	if vs.Name != nil && *vs.Name != "" {
		d.Name = *vs.Name
	}
	if len(vs.Product) > 0 {
		p := vs.Product[0]
		d.Product, d.Vendor, d.Version, d.FullVersion = p.Product, p.Vendor, p.Version, p.FullVersion
	}
	d.CPUs, d.MemoryMB = ovfResources(env)
	if env.Network != nil {
		for _, n := range env.Network.Networks {
			d.Networks = append(d.Networks, n.Name)
		}
	}
	if d.DiskCapacityBytes, err = diskCapacity(env); err != nil {
		return fmt.Errorf("descriptor %s: %w", desc.name, err)
	}
	seen := make(map[string]bool)
	for _, f := range env.References {
		href, err := cleanMemberName(f.Href)
		if err != nil {
			return fmt.Errorf("descriptor %s: reference %s: %w", desc.name, f.ID, err)
		}
		if seen[href] {
			return fmt.Errorf("descriptor %s: file %s is referenced twice", desc.name, href)
		}
		seen[href] = true
		if f.ChunkSize != nil && *f.ChunkSize > 0 {
			return fmt.Errorf("descriptor %s: file %s is chunked, which is not supported", desc.name, href)
		}
		if f.Compression != nil && *f.Compression != "" && *f.Compression != "identity" {
			return fmt.Errorf("descriptor %s: file %s is %s-compressed, which is not supported", desc.name, href, *f.Compression)
		}
		d.Files = append(d.Files, ImageFile{Href: href, Size: int64(f.Size)})
	}
	return nil
}

// check ties descriptor, files and manifest together: every referenced
// file exists with the declared size, and with a manifest every file has a
// digest and the descriptor matches its digest.
func (im *image) check(ctx context.Context, desc member, files map[string]member, mfName string) error {
	d := &im.desc
	for i, f := range d.Files {
		m, ok := files[f.Href]
		if !ok {
			return fmt.Errorf("file %s referenced by the descriptor is missing", f.Href)
		}
		if f.Size != 0 && f.Size != m.size {
			return fmt.Errorf("file %s: %d bytes, the descriptor says %d", f.Href, m.size, f.Size)
		}
		d.Files[i].Size = m.size
		d.DiskBytes += m.size
	}
	sum := sha256.Sum256(im.raw)
	d.ImageSHA256 = hex.EncodeToString(sum[:])
	if mfName == "" {
		return nil
	}
	mf := files[mfName]
	if mf.size > maxManifestBytes {
		return fmt.Errorf("manifest %s: %d bytes is more than the %d allowed", mfName, mf.size, maxManifestBytes)
	}
	raw, err := readMember(ctx, mf)
	if err != nil {
		return err
	}
	im.manifest, err = parseManifest(raw)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", mfName, err)
	}
	for name := range im.manifest {
		if _, ok := files[name]; !ok && name != desc.name {
			return fmt.Errorf("manifest %s lists %s, which the image does not hold", mfName, name)
		}
	}
	for _, f := range d.Files {
		if _, ok := im.manifest[f.Href]; !ok {
			return fmt.Errorf("manifest %s has no digest for %s", mfName, f.Href)
		}
	}
	dg, ok := im.manifest[desc.name]
	if !ok {
		return fmt.Errorf("manifest %s has no digest for the descriptor %s", mfName, desc.name)
	}
	h, _ := newHash(dg.alg)
	h.Write(im.raw)
	if err := dg.verify(desc.name, h); err != nil {
		return err
	}
	msum := sha256.Sum256(raw)
	d.ImageSHA256 = hex.EncodeToString(msum[:])
	d.Manifest = true
	return nil
}

func readMember(ctx context.Context, m member) ([]byte, error) {
	rc, err := m.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.name, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, m.size))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.name, err)
	}
	if int64(len(raw)) != m.size {
		return nil, fmt.Errorf("read %s: got %d of %d bytes", m.name, len(raw), m.size)
	}
	return raw, nil
}

// parseEnvelope checks the descriptor is well-formed, shallow XML for one
// virtual machine, then decodes it with govmomi's OVF types.
func parseEnvelope(raw []byte) (*ovf.Envelope, error) {
	dec := xml.NewDecoder(bytes.NewReader(raw))
	depth, root := 0, ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("malformed xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				root = t.Name.Local
			}
			if depth++; depth > maxXMLDepth {
				return nil, fmt.Errorf("malformed xml: nested more than %d elements deep", maxXMLDepth)
			}
		case xml.EndElement:
			depth--
		}
	}
	if root != "Envelope" {
		return nil, fmt.Errorf("not an ovf descriptor (root element %q, want Envelope)", root)
	}
	env, err := ovf.Unmarshal(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("malformed ovf: %w", err)
	}
	if env.VirtualSystem == nil {
		return nil, errors.New("descriptor holds no VirtualSystem (a vApp of several VMs is not an SVM image)")
	}
	return env, nil
}

// parseManifest reads "SHA256(name)= hex" lines (govmomi's parser) and
// normalises algorithm, name and digest.
func parseManifest(raw []byte) (map[string]digest, error) {
	sums, err := library.ReadManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	if len(sums) == 0 {
		return nil, errors.New("no digests found")
	}
	out := make(map[string]digest, len(sums))
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := sums[n]
		name, err := cleanMemberName(n)
		if err != nil {
			return nil, err
		}
		alg := strings.ToUpper(strings.ReplaceAll(c.Algorithm, "-", ""))
		if _, err := newHash(alg); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		sum := strings.ToLower(c.Checksum)
		if _, err := hex.DecodeString(sum); err != nil || sum == "" {
			return nil, fmt.Errorf("%s: digest %q is not hexadecimal", name, c.Checksum)
		}
		out[name] = digest{alg: alg, sum: sum}
	}
	return out, nil
}

func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case "SHA1":
		return sha1.New(), nil
	case "SHA256":
		return sha256.New(), nil
	case "SHA512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported digest algorithm %q", alg)
}

// verify compares a finished hash with the manifest's digest.
func (d digest) verify(name string, h hash.Hash) error {
	if got := hex.EncodeToString(h.Sum(nil)); got != d.sum {
		return fmt.Errorf("%s: %s digest %s does not match the manifest's %s (image corrupt or tampered with)", name, d.alg, got, d.sum)
	}
	return nil
}
