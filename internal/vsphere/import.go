package vsphere

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// ImportMarkerKey is an extraConfig key every import sets to
// ImportMarkerIncomplete in the VM's creation spec and removes once the
// upload is complete. A VM carrying it was left half-done by an
// interrupted run: FindLeftover reports it.
const (
	ImportMarkerKey        = "ksvla.import"
	ImportMarkerIncomplete = "incomplete"
)

// DefaultLeaseUpdate is how often an import reports progress to keep its
// HttpNfcLease alive (vCenter drops an idle lease after about 5 minutes).
const DefaultLeaseUpdate = 5 * time.Second

// cleanupTimeout bounds aborting and deleting after a failed import; it
// runs on a context detached from the (possibly cancelled) caller's.
const cleanupTimeout = 2 * time.Minute

// ImportSpec says what to import and where.
type ImportSpec struct {
	Source       string // local .ova/.ovf path or http(s) URL (needs Range support)
	Name         string // VM name
	Datacenter   string // empty: the only datacenter
	Host         string // ESXi host the VM is pinned to; required
	Datastore    string // required
	Folder       string // empty: the datacenter's vm folder
	ResourcePool string // empty: the host's cluster (or standalone host) pool
	// Networks maps OVF network names (Descriptor.Networks) to vSphere
	// networks; OVF networks left out get vSphere's default.
	Networks         map[string]string
	DiskProvisioning string // thin (default), thick, eagerZeroedThick, ...
	CPUs             int    // 0: as the image says
	MemoryMB         int    // 0: as the image says
	// ExtraConfig is written into the creation spec, so keys such as
	// guestinfo.klfirstboot.cmdN are in place before the first power-on.
	ExtraConfig map[string]string
	// Progress, when set, is called as disk bytes are sent, from the upload
	// goroutine; keep it cheap.
	Progress    func(done, total int64)
	LeaseUpdate time.Duration // 0: DefaultLeaseUpdate
	HTTPClient  *http.Client  // for URL sources; nil: http.DefaultClient
	// Check is how the image is verified; an image it does not verify is
	// refused before vCenter is asked anything (ErrUnverified).
	Check ImageCheck
}

// ImportResult describes a finished import.
type ImportResult struct {
	VM         *object.VirtualMachine
	Descriptor *Descriptor
	Warnings   []string      // CreateImportSpec warnings
	Bytes      int64         // disk bytes uploaded
	Upload     time.Duration // time spent uploading
	Duration   time.Duration // whole import, descriptor to completion
	Throughput float64       // Bytes per second of Upload
}

// ImportError is a failed import after vCenter was asked to create the VM.
// Cleanup tells whether it left anything behind.
type ImportError struct {
	Name    string
	Lease   types.ManagedObjectReference // the HttpNfcLease, aborted
	VM      types.ManagedObjectReference // zero when no VM was created
	Cleanup error                        // nil when lease and VM were removed
	Err     error
}

func (e *ImportError) Error() string {
	msg := fmt.Sprintf("import vm %s: %v", e.Name, e.Err)
	switch {
	case e.Cleanup != nil:
		msg += fmt.Sprintf(" (cleanup failed, a half-imported vm may remain: %v)", e.Cleanup)
	case e.VM.Value != "":
		msg += " (lease aborted, half-imported vm deleted)"
	default:
		msg += " (lease aborted)"
	}
	return msg
}

func (e *ImportError) Unwrap() error { return e.Err }

// Import deploys an OVA/OVF as a VM pinned to spec.Host, streaming the
// disks from the source to vCenter without temporary files, verifying every
// file against the image's manifest while it streams (or, given the SHA-256
// of an .ova, the whole archive, in the same single read, before the lease
// completes). On any failure or ctx cancellation the lease is aborted and a
// VM it created is deleted. The VM is left powered off.
func (s *Session) Import(ctx context.Context, spec ImportSpec) (*ImportResult, error) {
	start := time.Now()
	if spec.Name == "" || spec.Host == "" || spec.Datastore == "" || spec.Source == "" {
		return nil, errors.New("import vm: source, name, host and datastore are required")
	}
	hc := spec.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	im, err := openImage(ctx, spec.Source, hc)
	if err != nil {
		return nil, fmt.Errorf("import vm %s: %w", spec.Name, err)
	}
	defer im.Close()
	if _, err := im.desc.Verification(spec.Check); err != nil {
		return nil, fmt.Errorf("import vm %s: %w", spec.Name, err)
	}
	var wantSHA256 string
	if spec.Check.SHA256 != "" {
		if wantSHA256, err = NormalizeSHA256(spec.Check.SHA256); err != nil {
			return nil, fmt.Errorf("import vm %s: expected checksum: %w", spec.Name, err)
		}
		if im.desc.OVF {
			// The checksum covers only the small descriptor: checked now.
			if err := im.verifySHA256(ctx, wantSHA256); err != nil {
				return nil, fmt.Errorf("import vm %s: %w", spec.Name, err)
			}
			wantSHA256 = ""
		}
	}

	// The first file the lease will ask for (in the descriptor's order) is
	// read and hashed while vCenter prepares the import: that work is off
	// the upload's path, where the hash competes with the transfer for
	// CPU. A lease that asks for another file first costs only the wasted
	// read ahead.
	early, err := im.readEarly(ctx, wantSHA256)
	if err != nil {
		return nil, fmt.Errorf("import vm %s: %w", spec.Name, err)
	}
	defer early.close()

	isp, pool, folder, host, warnings, err := s.importSpec(ctx, spec, im)
	if err != nil {
		return nil, fmt.Errorf("import vm %s: %w", spec.Name, err)
	}
	lease, err := pool.ImportVApp(ctx, isp.ImportSpec, folder, host)
	if err != nil {
		return nil, fmt.Errorf("import vm %s: %w", spec.Name, err)
	}
	// From here on vCenter may hold a lease and a VM: every failure cleans up.
	var vmRef types.ManagedObjectReference
	fail := func(err error) (*ImportResult, error) {
		return nil, s.abortImport(ctx, spec.Name, lease, vmRef, err)
	}
	info, err := lease.Wait(ctx, isp.FileItem)
	if err != nil {
		return fail(fmt.Errorf("wait for import lease: %w", err))
	}
	vmRef = info.Entity

	var ah *archiveHash
	if wantSHA256 != "" {
		if !inArchiveOrder(im, info) {
			// The lease asks for the files out of the archive's order, so
			// one pass cannot hash the archive: read it whole first.
			if err := im.verifySHA256(ctx, wantSHA256); err != nil {
				return fail(err)
			}
		} else {
			ah = newArchiveHash(im, wantSHA256)
		}
	}
	switch {
	case early == nil:
	case !early.fits(info, ah != nil):
		early.close()
		early = nil
	case ah != nil:
		ah = early.ah // it has hashed the archive up to the first file
	}
	upStart := time.Now()
	sent, err := s.upload(ctx, spec, im, ah, early, lease, info)
	if err != nil {
		return fail(err)
	}
	upTime := time.Since(upStart)
	if err := lease.Complete(ctx); err != nil {
		return fail(fmt.Errorf("complete import lease: %w", err))
	}
	vm := object.NewVirtualMachine(s.c, vmRef)
	vm.InventoryPath = strings.TrimSuffix(folder.InventoryPath, "/") + "/" + spec.Name
	unmark := extraConfigSpec(map[string]string{ImportMarkerKey: ""})
	if err := runTask(ctx, "finish import of", spec.Name, func(ctx context.Context) (*object.Task, error) {
		return vm.Reconfigure(ctx, unmark)
	}); err != nil {
		return fail(err)
	}
	d := im.desc
	res := &ImportResult{
		VM: vm, Descriptor: &d, Warnings: warnings, Bytes: sent,
		Upload: upTime, Duration: time.Since(start),
	}
	if secs := upTime.Seconds(); secs > 0 {
		res.Throughput = float64(sent) / secs
	}
	return res, nil
}

// importSpec resolves the placement and asks vCenter for the import spec.
func (s *Session) importSpec(ctx context.Context, spec ImportSpec, im *image) (
	*types.OvfCreateImportSpecResult, *object.ResourcePool, *object.Folder, *object.HostSystem, []string, error) {
	fail := func(err error) (*types.OvfCreateImportSpecResult, *object.ResourcePool, *object.Folder, *object.HostSystem, []string, error) {
		return nil, nil, nil, nil, nil, err
	}
	dc, err := s.Datacenter(ctx, spec.Datacenter)
	if err != nil {
		return fail(err)
	}
	host, err := s.Host(ctx, dc, spec.Host)
	if err != nil {
		return fail(err)
	}
	ds, err := s.Datastore(ctx, dc, spec.Datastore)
	if err != nil {
		return fail(err)
	}
	folder, err := s.Folder(ctx, dc, spec.Folder)
	if err != nil {
		return fail(err)
	}
	pool, err := s.ResourcePool(ctx, dc, host, spec.ResourcePool)
	if err != nil {
		return fail(err)
	}
	nmap, err := s.networkMap(ctx, dc, spec.Networks, im.desc.Networks)
	if err != nil {
		return fail(err)
	}
	prov := spec.DiskProvisioning
	if prov == "" {
		prov = "thin"
	}
	if err := s.CheckPlacement(ctx, host, ds, &im.desc, prov); err != nil {
		return fail(err)
	}
	hostRef := host.Reference()
	params := types.OvfCreateImportSpecParams{
		EntityName:             spec.Name,
		HostSystem:             &hostRef,
		DiskProvisioning:       prov,
		NetworkMapping:         nmap,
		OvfManagerCommonParams: types.OvfManagerCommonParams{Locale: "US"},
	}
	res, err := ovf.NewManager(s.c).CreateImportSpec(ctx, string(im.raw), pool, ds, &params)
	if err != nil {
		return fail(fmt.Errorf("create import spec: %w", err))
	}
	if len(res.Error) > 0 {
		msgs := make([]string, len(res.Error))
		for i, e := range res.Error {
			msgs[i] = faultText(e)
		}
		return fail(fmt.Errorf("create import spec: %s", strings.Join(msgs, "; ")))
	}
	var warnings []string
	for _, w := range res.Warning {
		warnings = append(warnings, faultText(w))
	}
	vmSpec, ok := res.ImportSpec.(*types.VirtualMachineImportSpec)
	if !ok {
		return fail(fmt.Errorf("create import spec: got %T, want a single virtual machine", res.ImportSpec))
	}
	cs := &vmSpec.ConfigSpec
	if spec.CPUs > 0 {
		cs.NumCPUs = int32(spec.CPUs)
	}
	if spec.MemoryMB > 0 {
		cs.MemoryMB = int64(spec.MemoryMB)
	}
	ec := map[string]string{ImportMarkerKey: ImportMarkerIncomplete}
	for k, v := range spec.ExtraConfig {
		if k == ImportMarkerKey {
			return fail(fmt.Errorf("extra config key %s is reserved", k))
		}
		ec[k] = v
	}
	cs.ExtraConfig = append(cs.ExtraConfig, extraConfigSpec(ec).ExtraConfig...)
	return res, pool, folder, host, warnings, nil
}

func faultText(f types.LocalizedMethodFault) string {
	if f.LocalizedMessage != "" {
		return f.LocalizedMessage
	}
	if f.Fault != nil {
		return fmt.Sprintf("%T", f.Fault)
	}
	return "unknown fault"
}

// networkMap resolves OVF network name -> vSphere network, rejecting names
// the image does not have (a typo would otherwise silently land the NIC on
// the default network).
func (s *Session) networkMap(ctx context.Context, dc *object.Datacenter, m map[string]string, ovfNets []string) ([]types.OvfNetworkMapping, error) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []types.OvfNetworkMapping
	for _, n := range names {
		found := false
		for _, o := range ovfNets {
			found = found || o == n
		}
		if !found {
			return nil, fmt.Errorf("network mapping: the image has no network %q (it has: %s)", n, strings.Join(ovfNets, ", "))
		}
		net, err := s.Network(ctx, dc, m[n])
		if err != nil {
			return nil, fmt.Errorf("network mapping %q: %w", n, err)
		}
		out = append(out, types.OvfNetworkMapping{Name: n, Network: net.Reference()})
	}
	return out, nil
}

// upload streams every file the lease asks for, keeping the lease alive.
// With ah, the archive's checksum is verified once every file is sent,
// before the caller completes the lease.
func (s *Session) upload(ctx context.Context, spec ImportSpec, im *image, ah *archiveHash, early *itemRead, lease *nfc.Lease, info *nfc.LeaseInfo) (int64, error) {
	var total int64
	for _, it := range info.Items {
		m, err := im.item(it.Path)
		if err != nil {
			return 0, err
		}
		total += m.size
	}
	var done atomic.Int64
	uctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	interval := spec.LeaseUpdate
	if interval <= 0 {
		interval = DefaultLeaseUpdate
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-uctx.Done():
				return
			case <-t.C:
				pct := int32(100)
				if total > 0 {
					pct = int32(done.Load() * 100 / total)
				}
				if err := lease.Progress(uctx, pct); err != nil && uctx.Err() == nil {
					// The upload must stop now: a lease vCenter no longer keeps
					// (expired, aborted from elsewhere) takes no more data.
					cancel(leaseLost(uctx, lease, err))
					return
				}
			}
		}
	}()
	defer wg.Wait()
	defer cancel(nil) // runs before wg.Wait: stops the keep-alive loop

	for i, it := range info.Items {
		m, _ := im.item(it.Path)
		rd := early
		if i > 0 || rd == nil {
			var err error
			if rd, err = im.startRead(uctx, ah, m); err != nil {
				return 0, err
			}
		}
		err := s.uploadItem(uctx, rd, it, &done, total, spec.Progress)
		rd.close()
		if err != nil {
			if cause := context.Cause(uctx); cause != nil && !errors.Is(cause, context.Canceled) {
				// The transport's error only says the request was cut; the cause says why.
				return 0, fmt.Errorf("upload %s: %w", m.name, cause)
			}
			return 0, err
		}
	}
	if ah != nil {
		if err := ah.finish(uctx); err != nil {
			return 0, err
		}
	}
	return done.Load(), nil
}

// ErrLeaseLost: vCenter no longer keeps the import lease (it expired or
// was aborted from elsewhere), so the upload cannot go on.
var ErrLeaseLost = errors.New("import lease lost")

// leaseLost explains a refused keep-alive, with the lease's own error when
// vCenter recorded one.
func leaseLost(ctx context.Context, lease *nfc.Lease, progressErr error) error {
	if l, err := lease.Properties(ctx, "state", "error"); err == nil &&
		l.State == types.HttpNfcLeaseStateError && l.Error != nil {
		return fmt.Errorf("%w: the lease is in state error: %s (keep-alive: %w)", ErrLeaseLost, faultText(*l.Error), progressErr)
	}
	return fmt.Errorf("%w: vCenter refused the keep-alive: %w", ErrLeaseLost, progressErr)
}

func (im *image) item(p string) (member, error) {
	name, err := cleanMemberName(p)
	if err != nil {
		return member{}, fmt.Errorf("lease file: %w", err)
	}
	m, ok := im.files[name]
	if !ok {
		return member{}, fmt.Errorf("lease asks for %s, which the image does not hold", name)
	}
	return m, nil
}

// itemRead is one file being read for its upload: ahead and hashed, or,
// with nothing to hash (an image declared trusted), straight into the
// transport's buffer, which saves a copy of every byte.
type itemRead struct {
	m  member
	r  io.Reader // what the upload sends
	c  io.Closer // the direct read's file, nil with pf
	pf *prefetch // nil when nothing is hashed
	h  hash.Hash // the manifest's digest of the file, nil with ah
	dg digest
	ah *archiveHash // hashing the archive, nil without image_sha256
}

// startRead starts reading m ahead of its upload, hashing it for the
// manifest, or with ah into the archive's checksum (which pins every file
// the manifest would: one hash of the bytes is enough).
func (im *image) startRead(ctx context.Context, ah *archiveHash, m member) (*itemRead, error) {
	rd := &itemRead{m: m, ah: ah}
	var hashes []io.Writer
	if ah != nil {
		// The bytes before this file (tar headers, descriptor, manifest).
		if err := ah.catchUp(ctx, m.off); err != nil {
			return nil, err
		}
		hashes = append(hashes, ah)
	} else if im.manifest != nil {
		rd.dg = im.manifest[m.name]
		if rd.h, _ = newHash(rd.dg.alg); rd.h != nil {
			hashes = append(hashes, rd.h)
		}
	}
	if len(hashes) == 0 {
		rc, err := m.open(ctx)
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", m.name, err)
		}
		rd.r, rd.c = io.LimitReader(rc, m.size), rc
		return rd, nil
	}
	var err error
	if rd.pf, err = startPrefetch(ctx, m.open, m.size, hashes...); err != nil {
		return nil, fmt.Errorf("upload %s: %w", m.name, err)
	}
	rd.r = rd.pf
	return rd, nil
}

// readEarly starts reading the descriptor's first file before the lease
// exists, hashing it as startRead would for a lease that asks for the
// files in the descriptor's order; nil when there is nothing to upload or
// to hash, or the file is not local. An image URL is read only once the
// lease exists: an import vCenter refuses then costs the image server no
// download.
func (im *image) readEarly(ctx context.Context, wantSHA256 string) (*itemRead, error) {
	if len(im.desc.Files) == 0 || im.manifest == nil && wantSHA256 == "" {
		return nil, nil
	}
	m, ok := im.files[im.desc.Files[0].Href]
	if _, local := m.b.(*readerAtBlob); !ok || !local {
		return nil, nil
	}
	var ah *archiveHash
	if wantSHA256 != "" {
		ah = newArchiveHash(im, wantSHA256)
	}
	return im.startRead(ctx, ah, m)
}

// fits reports whether an early read serves the lease: its first file is
// the one read, and the archive is hashed in one pass exactly when the
// early read hashes it.
func (rd *itemRead) fits(info *nfc.LeaseInfo, archive bool) bool {
	if len(info.Items) == 0 || archive != (rd.ah != nil) {
		return false
	}
	name, err := cleanMemberName(info.Items[0].Path)
	return err == nil && name == rd.m.name
}

// close ends the reading; safe on nil and more than once.
func (rd *itemRead) close() {
	switch {
	case rd == nil:
	case rd.pf != nil:
		rd.pf.close()
	case rd.c != nil:
		_ = rd.c.Close() // a file only read
		rd.c = nil
	}
}

func (s *Session) uploadItem(ctx context.Context, rd *itemRead, it nfc.FileItem, done *atomic.Int64, total int64, progress func(int64, int64)) error {
	m := rd.m
	r := &uploadReader{ctx: ctx, r: rd.r, done: done, total: total, progress: progress}
	// As nfc.Lease.Upload does, minus its progress channel: disks are
	// POSTed as stream-optimized VMDK, other files PUT with Overwrite.
	opts := soap.Upload{ContentLength: m.size, Method: "POST", Type: "application/x-vnd.vmware-streamVmdk"}
	if it.Create {
		opts.Method, opts.Type, opts.Headers = "PUT", "application/octet-stream", map[string]string{"Overwrite": "t"}
	}
	if err := s.c.Client.Upload(ctx, r, it.URL, &opts); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("upload %s: %w", m.name, context.Cause(ctx))
		}
		return fmt.Errorf("upload %s: %w", m.name, err)
	}
	if r.n != m.size {
		return fmt.Errorf("upload %s: sent %d of %d bytes", m.name, r.n, m.size)
	}
	if rd.h != nil {
		rd.pf.close() // every byte sent has been hashed once it returns
		if err := rd.dg.verify(m.name, rd.h); err != nil {
			return fmt.Errorf("upload %s: %w", m.name, err)
		}
	}
	return nil
}

// uploadReader counts what is sent and stops at once when ctx ends (the
// transport may otherwise drain a buffered body).
type uploadReader struct {
	ctx      context.Context
	r        io.Reader
	n        int64
	done     *atomic.Int64
	total    int64
	progress func(int64, int64)
}

func (u *uploadReader) Read(p []byte) (int, error) {
	if err := u.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := u.r.Read(p)
	if n > 0 {
		u.n += int64(n)
		d := u.done.Add(int64(n))
		if u.progress != nil {
			u.progress(d, u.total)
		}
	}
	return n, err
}

// abortImport aborts the lease and deletes the VM it created, on a context
// that survives the caller's cancellation (govmomi#3554: a lease left
// open after a failure).
func (s *Session) abortImport(ctx context.Context, name string, lease *nfc.Lease, vmRef types.ManagedObjectReference, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	ie := &ImportError{Name: name, Lease: lease.Reference(), VM: vmRef, Err: cause}
	if vmRef.Value == "" {
		// The lease may have become ready after we stopped waiting.
		if l, err := lease.Properties(cctx, "info"); err == nil && l.Info != nil {
			ie.VM = l.Info.Entity
		}
	}
	var errs []error
	msg := cause.Error()
	if err := lease.Abort(cctx, &types.LocalizedMethodFault{Fault: &types.SystemError{Reason: msg}, LocalizedMessage: msg}); err != nil && !isGone(err) {
		errs = append(errs, fmt.Errorf("abort lease: %w", err))
	}
	if ie.VM.Value != "" {
		// vCenter deletes the VM of an aborted import itself; the simulator
		// and older hosts do not, so delete it unless it is already gone.
		if err := s.Destroy(cctx, object.NewVirtualMachine(s.c, ie.VM)); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	ie.Cleanup = errors.Join(errs...)
	return ie
}
