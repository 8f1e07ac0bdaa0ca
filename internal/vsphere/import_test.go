package vsphere

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/sim/images"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const testVersion = "6.2.0.200"

func writeTestOVA(t testing.TB, diskBytes int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "svm.ova")
	_, err := images.WriteOVA(p, images.Spec{Version: testVersion, DiskBytes: diskBytes})
	require.NoError(t, err)
	return p
}

type tarEntry struct {
	name string
	data []byte
}

// buildOVA writes a hand-made OVA so tests can break it in ways the lab's
// image writer never would.
func buildOVA(t testing.TB, entries []tarEntry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hand.ova")
	f, err := os.Create(p)
	require.NoError(t, err)
	tw := tar.NewWriter(f)
	for _, e := range entries {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: e.name, Size: int64(len(e.data)), Mode: 0o644, Typeflag: tar.TypeReg}))
		_, err := tw.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, f.Close())
	return p
}

// handEntries returns a valid OVA's entries (descriptor, disk, manifest)
// whose disk is named disk; mfDisk is the manifest's digest for the disk
// ("" means the right one).
func handEntries(t testing.TB, disk string, mfDisk string) []tarEntry {
	t.Helper()
	spec := images.Spec{Version: testVersion, Name: "hand"}
	desc, err := images.Descriptor(spec)
	require.NoError(t, err)
	// Size-free reference so the disk bytes below can be anything.
	desc = []byte(strings.Replace(string(desc), `ovf:href="hand-disk1.vmdk"`, fmt.Sprintf("ovf:href=%q", disk), 1))
	desc = []byte(strings.Replace(string(desc), `ovf:size="`, `ovf:x-size="`, 1))
	payload := []byte(strings.Repeat("disk-bytes ", 1000))
	if mfDisk == "" {
		mfDisk = fmt.Sprintf("%x", sha256.Sum256(payload))
	}
	mf := fmt.Sprintf("SHA256(hand.ovf)= %x\nSHA256(%s)= %s\n", sha256.Sum256(desc), disk, mfDisk)
	return []tarEntry{{"hand.ovf", desc}, {disk, payload}, {"hand.mf", []byte(mf)}}
}

func TestReadDescriptor(t *testing.T) {
	ctx := context.Background()
	ova := writeTestOVA(t, 64<<10)
	ovfDir := t.TempDir()
	info, err := images.WriteOVF(ovfDir, images.Spec{Version: "6.1.0.50"})
	require.NoError(t, err)

	d, err := ReadDescriptor(ctx, ova)
	require.NoError(t, err)
	assert.Equal(t, testVersion, d.Version)
	assert.Equal(t, images.DefaultProduct, d.Product)
	assert.Equal(t, images.DefaultVendor, d.Vendor)
	assert.Equal(t, []string{images.DefaultNetwork}, d.Networks)
	assert.True(t, d.Manifest)
	require.Len(t, d.Files, 1)
	assert.Greater(t, d.DiskBytes, int64(64<<10))
	assert.Len(t, d.ImageSHA256, 64)

	d2, err := ReadDescriptor(ctx, info.Path)
	require.NoError(t, err)
	assert.Equal(t, "6.1.0.50", d2.Version)
	assert.True(t, d2.Manifest)
	assert.NotEqual(t, d.ImageSHA256, d2.ImageSHA256)
}

func TestReadDescriptorRejects(t *testing.T) {
	ctx := context.Background()
	good := handEntries(t, "hand-disk1.vmdk", "")
	badDescDigest := handEntries(t, "hand-disk1.vmdk", "")
	badDescDigest[0].data = append([]byte(nil), badDescDigest[0].data...)
	badDescDigest[0].data = []byte(strings.Replace(string(badDescDigest[0].data), "Kaspersky", "Kasperskx", 1))
	tests := []struct {
		name    string
		entries []tarEntry
		err     string
	}{
		{name: "tar entry traversal", entries: append([]tarEntry{{"../../etc/evil", []byte("x")}}, good...), err: `file name "../../etc/evil" rejected: path traversal`},
		{name: "absolute tar entry", entries: append([]tarEntry{{"/etc/passwd", []byte("x")}}, good...), err: "absolute path"},
		{name: "href traversal", entries: handEntries(t, "../hand-disk1.vmdk", ""), err: "path traversal"},
		{name: "no descriptor", entries: good[1:], err: "no .ovf descriptor"},
		{name: "malformed xml", entries: []tarEntry{{"x.ovf", []byte("<Envelope><VirtualSystem>")}}, err: "malformed xml"},
		{name: "not ovf", entries: []tarEntry{{"x.ovf", []byte("<html/>")}}, err: "not an ovf descriptor"},
		{name: "too deep", entries: []tarEntry{{"x.ovf", []byte("<Envelope>" + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + "</Envelope>")}}, err: "nested more than"},
		{name: "descriptor tampered", entries: badDescDigest, err: "does not match the manifest"},
		{name: "missing disk", entries: []tarEntry{good[0], good[2]}, err: "hand-disk1.vmdk referenced by the descriptor is missing"},
		{name: "duplicate entry", entries: append(good, good[1]), err: "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadDescriptor(ctx, buildOVA(t, tt.entries))
			require.ErrorContains(t, err, tt.err)
		})
	}
	_, err := ReadDescriptor(ctx, buildOVA(t, good))
	require.NoError(t, err, "the untouched hand-made image is valid")
}

// rangeServer serves files with http.ServeContent (Range support) and
// counts requests and body bytes.
type rangeServer struct {
	*httptest.Server
	requests, bytes atomic.Int64
}

func newRangeServer(t testing.TB, dir string, ranges bool) *rangeServer {
	rs := &rangeServer{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.requests.Add(1)
		if !ranges {
			r.Header.Del("Range")
		}
		f, err := os.Open(filepath.Join(dir, filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		http.ServeContent(countingWriter{w, &rs.bytes}, r, st.Name(), st.ModTime(), f)
	}))
	t.Cleanup(rs.Close)
	return rs
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.ResponseWriter.Write(p)
}

func TestReadDescriptorURLUsesRanges(t *testing.T) {
	ctx := context.Background()
	ova := writeTestOVA(t, 8<<20)
	rs := newRangeServer(t, filepath.Dir(ova), true)

	d, err := ReadDescriptor(ctx, rs.URL+"/svm.ova")
	require.NoError(t, err)
	assert.Equal(t, testVersion, d.Version)
	assert.Less(t, rs.bytes.Load(), int64(512<<10), "only headers, descriptor and manifest are fetched, not the 8 MiB disk")

	plain := newRangeServer(t, filepath.Dir(ova), false)
	_, err = ReadDescriptor(ctx, plain.URL+"/svm.ova")
	assert.ErrorContains(t, err, "ignores HTTP Range requests")
	_, err = ReadDescriptor(ctx, "http://user:pw@"+strings.TrimPrefix(rs.URL, "http://")+"/missing.ova")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "pw@")
}

func importSpec(src string) ImportSpec {
	return ImportSpec{
		Source: src, Name: "svm-esx01", Host: "DC0_C0_H1", Datastore: "LocalDS_0",
		Networks:    map[string]string{"VM Network": "DC0_DVPG0"},
		CPUs:        1,
		MemoryMB:    2048,
		ExtraConfig: map[string]string{"guestinfo.klfirstboot.cmd0": "klconfig apiversion"},
		LeaseUpdate: 20 * time.Millisecond,
	}
}

func TestImportDeployLifecycle(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	ova := writeTestOVA(t, 256<<10)
	rs := newRangeServer(t, filepath.Dir(ova), true)

	var calls, last atomic.Int64
	spec := importSpec(rs.URL + "/svm.ova")
	spec.Progress = func(done, total int64) { calls.Add(1); last.Store(done) }
	res, err := s.Import(ctx, spec)
	require.NoError(t, err)

	assert.Equal(t, testVersion, res.Descriptor.Version)
	assert.Equal(t, res.Descriptor.DiskBytes, res.Bytes)
	assert.Equal(t, res.Bytes, last.Load())
	assert.Positive(t, calls.Load())
	assert.Positive(t, res.Throughput)
	assert.Equal(t, "/DC0/vm/svm-esx01", res.VM.InventoryPath)

	var m mo.VirtualMachine
	require.NoError(t, res.VM.Properties(ctx, res.VM.Reference(), []string{"runtime.host", "config.extraConfig", "config.hardware", "runtime.powerState"}, &m))
	host, err := s.name(ctx, *m.Runtime.Host)
	require.NoError(t, err)
	assert.Equal(t, "DC0_C0_H1", host)
	assert.Equal(t, int32(1), m.Config.Hardware.NumCPU)
	assert.Equal(t, int32(2048), m.Config.Hardware.MemoryMB)
	ec := map[string]string{}
	for _, o := range m.Config.ExtraConfig {
		ec[o.GetOptionValue().Key] = fmt.Sprint(o.GetOptionValue().Value)
	}
	assert.Equal(t, "klconfig apiversion", ec["guestinfo.klfirstboot.cmd0"])
	assert.NotContains(t, ec, ImportMarkerKey)
	assert.EqualValues(t, "poweredOff", m.Runtime.PowerState)

	// Marks round-trip.
	require.NoError(t, s.EnsureCustomFields(ctx))
	require.NoError(t, s.EnsureCustomFields(ctx), "idempotent")
	marks := map[string]string{MarkRole: RoleSVM, MarkVersion: res.Descriptor.Version, MarkImageSHA256: res.Descriptor.ImageSHA256, MarkDeployedBy: DeployedBy}
	require.NoError(t, s.SetMarks(ctx, res.VM, marks))
	got, err := s.ReadMarks(ctx, res.VM)
	require.NoError(t, err)
	assert.Equal(t, marks, got)

	// Power on, IP (the simulator publishes a SET.guest.ipAddress), destroy.
	leftover, err := s.FindLeftover(ctx, nil, "svm-esx01")
	require.NoError(t, err)
	assert.Nil(t, leftover, "a finished import is not a leftover")
	require.NoError(t, s.PowerOn(ctx, res.VM))
	require.NoError(t, s.PowerOn(ctx, res.VM), "already on is fine")
	setIP(t, res.VM, "10.0.0.42")
	ip, err := s.WaitForIP(ctx, res.VM, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.42", ip)
	require.NoError(t, s.Destroy(ctx, res.VM), "destroy powers off first")
	err = s.Destroy(ctx, res.VM)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorContains(t, err, `vm "svm-esx01" not found`)
}

func setIP(t testing.TB, vm *object.VirtualMachine, ip string) {
	t.Helper()
	ctx := context.Background()
	task, err := vm.Reconfigure(ctx, extraConfigSpec(map[string]string{"SET.guest.ipAddress": ip}))
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))
}

func TestImportCancelledMidUpload(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := importSpec(writeTestOVA(t, 1<<20))
	spec.Progress = func(done, total int64) {
		if done > 0 && done < total {
			cancel()
		}
	}
	_, err := s.Import(ctx, spec)
	require.ErrorIs(t, err, context.Canceled)
	var ie *ImportError
	require.ErrorAs(t, err, &ie)
	assert.NotEmpty(t, ie.VM.Value, "the VM had been created")
	assert.NoError(t, ie.Cleanup)
	assert.ErrorContains(t, err, "lease aborted, half-imported vm deleted")
	assertNoVM(t, s, "svm-esx01")
	assertLeaseGone(t, s, ie)
}

func TestImportTamperedDisk(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	src := buildOVA(t, handEntries(t, "hand-disk1.vmdk", strings.Repeat("ab", 32)))
	_, err := ReadDescriptor(ctx, src)
	require.NoError(t, err, "the descriptor itself is intact")

	spec := importSpec(src)
	_, err = s.Import(ctx, spec)
	require.ErrorContains(t, err, "hand-disk1.vmdk: SHA256 digest")
	require.ErrorContains(t, err, "does not match the manifest")
	var ie *ImportError
	require.ErrorAs(t, err, &ie)
	assert.NoError(t, ie.Cleanup)
	assertNoVM(t, s, "svm-esx01")
	assertLeaseGone(t, s, ie)
}

// With the expected SHA-256 of an .ova, the image is read once: the
// checksum is computed from the upload's own bytes (and the few between
// the files), not by a read of the whole file before it.
func TestImportImageSHA256OnePass(t *testing.T) {
	const disk = 4 << 20
	ova, size, sum := ovaWithSum(t, disk)
	s := newLab(t, nil).session(t)
	ctx := context.Background()
	rs := newRangeServer(t, filepath.Dir(ova), true)

	spec := importSpec(rs.URL + "/svm.ova")
	spec.Check.SHA256 = "SHA256:" + strings.ToUpper(sum)
	res, err := s.Import(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, res.Descriptor.DiskBytes, res.Bytes)
	assert.Less(t, rs.bytes.Load(), size+disk/4, "one read of the archive, not one before the upload and one for it")
	require.NoError(t, s.Destroy(ctx, res.VM))
}

// A checksum that does not match stops the import before the lease
// completes: the lease is aborted and the half-imported VM deleted.
func TestImportImageSHA256Mismatch(t *testing.T) {
	ova, _, sum := ovaWithSum(t, 1<<20)
	s := newLab(t, nil).session(t)
	wrong := strings.Repeat("0", 64)
	spec := importSpec(ova)
	spec.Check.SHA256 = wrong
	_, err := s.Import(context.Background(), spec)
	require.ErrorContains(t, err, "SHA-256 "+sum+" does not match the expected "+wrong)
	var ie *ImportError
	require.ErrorAs(t, err, &ie)
	assert.NoError(t, ie.Cleanup)
	assert.ErrorContains(t, err, "lease aborted, half-imported vm deleted")
	assertNoVM(t, s, "svm-esx01")
	assertLeaseGone(t, s, ie)
}

// ovaWithSum writes the lab's image with a disk of diskBytes and returns
// its path, size and SHA-256.
func ovaWithSum(t testing.TB, diskBytes int64) (string, int64, string) {
	t.Helper()
	ova := writeTestOVA(t, diskBytes)
	raw, err := os.ReadFile(ova)
	require.NoError(t, err)
	return ova, int64(len(raw)), fmt.Sprintf("%x", sha256.Sum256(raw))
}

func TestImportSpecErrors(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	ctx := context.Background()
	ova := writeTestOVA(t, 1<<10)
	tests := []struct {
		name   string
		change func(*ImportSpec)
		err    string
	}{
		{name: "unknown ovf network", change: func(s *ImportSpec) { s.Networks = map[string]string{"Mgmt": "VM Network"} }, err: `the image has no network "Mgmt" (it has: VM Network)`},
		{name: "unknown vsphere network", change: func(s *ImportSpec) { s.Networks = map[string]string{"VM Network": "nope"} }, err: `network "nope" not found`},
		{name: "unknown host", change: func(s *ImportSpec) { s.Host = "esx-9" }, err: `host "esx-9" not found`},
		{name: "unsupported provisioning", change: func(s *ImportSpec) { s.DiskProvisioning = "monolithicSparse" }, err: "wait for import lease: *types.DeviceUnsupportedForVmPlatform (lease aborted)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := importSpec(ova)
			tt.change(&spec)
			_, err := s.Import(ctx, spec)
			require.ErrorContains(t, err, tt.err)
			assertNoVM(t, s, spec.Name)
		})
	}
}

func assertNoVM(t testing.TB, s *Session, name string) {
	t.Helper()
	vms, err := s.VMByName(context.Background(), nil, name)
	require.NoError(t, err)
	assert.Empty(t, vms, "no vm %s may be left behind", name)
}

func assertLeaseGone(t testing.TB, s *Session, ie *ImportError) {
	t.Helper()
	_, err := nfc.NewLease(s.c, ie.Lease).Properties(context.Background(), "state")
	assert.True(t, isGone(err), "lease %s must be aborted, got %v", ie.Lease, err)
}

func TestImportErrorsAreBranchable(t *testing.T) {
	err := fmt.Errorf("deploy: %w", &ImportError{Name: "x", Err: context.DeadlineExceeded})
	assert.True(t, errors.Is(err, context.DeadlineExceeded))
}

// methodCounter counts SOAP calls by request type; it wraps the real
// client so the test can see the lease keep-alive calls the simulator
// does not record.
type methodCounter struct {
	rt    soap.RoundTripper
	mu    sync.Mutex
	calls map[string]int
}

func (m *methodCounter) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	m.mu.Lock()
	m.calls[fmt.Sprintf("%T", req)]++
	m.mu.Unlock()
	return m.rt.RoundTrip(ctx, req, res)
}

func TestImportKeepsLeaseAlive(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	mc := &methodCounter{rt: s.c.RoundTripper, calls: map[string]int{}}
	s.c.RoundTripper = mc
	spec := importSpec(writeTestOVA(t, 512<<10))
	spec.LeaseUpdate = 5 * time.Millisecond
	// A slow reader: the upload lasts many lease update periods.
	spec.Progress = func(done, total int64) { time.Sleep(3 * time.Millisecond) }
	_, err := s.Import(context.Background(), spec)
	require.NoError(t, err)
	mc.mu.Lock()
	defer mc.mu.Unlock()
	assert.GreaterOrEqual(t, mc.calls["*methods.HttpNfcLeaseProgressBody"], 3)
	assert.Equal(t, 1, mc.calls["*methods.HttpNfcLeaseCompleteBody"])
	assert.Zero(t, mc.calls["*methods.HttpNfcLeaseAbortBody"])
}

// A lease vCenter stops keeping during the upload (expired, or aborted
// from elsewhere) answers the keep-alive with a fault: the upload stops at
// once, the error names the file and wraps ErrLeaseLost, and the lease and
// the half-imported VM are removed.
func TestImportLeaseLostMidUpload(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	l.m.Service.FaultInjector().AddRule(&simulator.FaultInjectionRule{MethodName: "HttpNfcLeaseProgress", ObjectType: "HttpNfcLease",
		ObjectName: "*", Probability: 1, FaultType: simulator.FaultTypeGeneric, Message: "injected: lease timed out", Enabled: true})
	spec := importSpec(writeTestOVA(t, 512<<10))
	spec.LeaseUpdate = 5 * time.Millisecond
	var sent atomic.Int64
	spec.Progress = func(done, total int64) {
		sent.Store(done)
		time.Sleep(3 * time.Millisecond) // the upload outlasts several keep-alive periods
	}
	_, err := s.Import(context.Background(), spec)
	require.ErrorIs(t, err, ErrLeaseLost)
	assert.Less(t, sent.Load(), int64(512<<10), "the upload stopped when the lease was lost")
	var ie *ImportError
	require.ErrorAs(t, err, &ie)
	assert.NoError(t, ie.Cleanup)
	assert.Regexp(t, `^import vm svm-esx01: upload \S+\.vmdk: import lease lost: vCenter refused the keep-alive: .*injected: lease timed out.* \(lease aborted, half-imported vm deleted\)$`, err.Error())
	assertNoVM(t, s, "svm-esx01")
	assertLeaseGone(t, s, ie)
}

func BenchmarkImport(b *testing.B) {
	l := newLab(b, nil)
	s := l.session(b)
	ctx := context.Background()
	const disk = 32 << 20
	src := writeTestOVA(b, disk)
	b.ReportAllocs()
	b.SetBytes(disk)
	var bytes int64
	var secs float64
	i := 0
	for b.Loop() {
		spec := importSpec(src)
		spec.Name = fmt.Sprintf("svm-bench-%d", i)
		i++
		res, err := s.Import(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		bytes += res.Bytes
		secs += res.Upload.Seconds()
	}
	b.ReportMetric(float64(bytes)/secs/(1<<20), "upload-MiB/s")
}

func TestImportOVFDirectory(t *testing.T) {
	l := newLab(t, nil)
	s := l.session(t)
	info, err := images.WriteOVF(t.TempDir(), images.Spec{Version: testVersion, DiskBytes: 4 << 10})
	require.NoError(t, err)
	spec := importSpec(info.Path)
	spec.Host = "DC0_H0"
	res, err := s.Import(context.Background(), spec)
	require.NoError(t, err)
	assert.True(t, res.Descriptor.Manifest)
	assert.Equal(t, res.Descriptor.DiskBytes, res.Bytes)
	require.NoError(t, s.Destroy(context.Background(), res.VM))
}

// notesFirstOVA is the hand-made image with a file the VM does not use
// (notes.txt) referenced before its disk: the read started before the
// lease (the descriptor's first file) is not what the lease asks for.
// diskDigest is the manifest's digest for the disk ("" means the right one).
func notesFirstOVA(t testing.TB, diskDigest string) (string, string) {
	t.Helper()
	entries := handEntries(t, "hand-disk1.vmdk", diskDigest)
	desc, disk := entries[0].data, entries[1].data
	desc = []byte(strings.Replace(string(desc), "<References>", `<References><File ovf:href="notes.txt" ovf:id="file0"/>`, 1))
	notes := []byte("release notes, not uploaded\n")
	if diskDigest == "" {
		diskDigest = fmt.Sprintf("%x", sha256.Sum256(disk))
	}
	mf := fmt.Sprintf("SHA256(hand.ovf)= %x\nSHA256(notes.txt)= %x\nSHA256(hand-disk1.vmdk)= %s\n", sha256.Sum256(desc), sha256.Sum256(notes), diskDigest)
	p := buildOVA(t, []tarEntry{{"hand.ovf", desc}, {"notes.txt", notes}, {"hand-disk1.vmdk", disk}, {"hand.mf", []byte(mf)}})
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	return p, fmt.Sprintf("%x", sha256.Sum256(raw))
}

// When the lease asks for another file than the one read early, the early
// read is dropped and the disk read and verified as it is sent: by the
// manifest, or by the archive's checksum (hashed afresh from its start).
func TestImportEarlyReadNotAsked(t *testing.T) {
	s := newLab(t, nil).session(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		diskDigest string
		sha256     func(sum string) string // the expected checksum, from the right one
		err        string
	}{
		{"manifest", "", nil, ""},
		{"manifest, tampered disk", strings.Repeat("ab", 32), nil, "hand-disk1.vmdk: SHA256 digest"},
		{"image checksum", "", func(sum string) string { return sum }, ""},
		{"image checksum, another image", "", func(string) string { return strings.Repeat("0", 64) }, "does not match the expected 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, sum := notesFirstOVA(t, tt.diskDigest)
			spec := importSpec(src)
			if tt.sha256 != nil {
				spec.Check.SHA256 = tt.sha256(sum)
			}
			im, err := openImage(ctx, src, http.DefaultClient)
			require.NoError(t, err)
			early, err := im.readEarly(ctx, spec.Check.SHA256)
			require.NoError(t, err)
			assert.Equal(t, "notes.txt", early.m.name, "the descriptor's first file is read early")
			early.close()
			require.NoError(t, im.Close())

			res, err := s.Import(ctx, spec)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				assertNoVM(t, s, spec.Name)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, int64(len(strings.Repeat("disk-bytes ", 1000))), res.Bytes, "only the disk is uploaded")
			require.NoError(t, s.Destroy(ctx, res.VM))
		})
	}
}

func TestItemReadFits(t *testing.T) {
	rd := &itemRead{m: member{name: "disk1.vmdk"}}
	withArchive := &itemRead{m: member{name: "disk1.vmdk"}, ah: &archiveHash{}}
	items := func(paths ...string) *nfc.LeaseInfo {
		info := &nfc.LeaseInfo{}
		for _, p := range paths {
			info.Items = append(info.Items, nfc.FileItem{OvfFileItem: types.OvfFileItem{Path: p}})
		}
		return info
	}
	tests := []struct {
		name    string
		rd      *itemRead
		info    *nfc.LeaseInfo
		archive bool
		want    bool
	}{
		{"first file", rd, items("disk1.vmdk", "disk2.vmdk"), false, true},
		{"first file, written with ./", rd, items("./disk1.vmdk"), false, true},
		{"another file first", rd, items("disk2.vmdk", "disk1.vmdk"), false, false},
		{"nothing to upload", rd, items(), false, false},
		{"archive hashed early and now", withArchive, items("disk1.vmdk"), true, true},
		{"archive hashed early, not now (out of order)", withArchive, items("disk1.vmdk"), false, false},
		{"archive to hash, not hashed early", rd, items("disk1.vmdk"), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.rd.fits(tt.info, tt.archive))
		})
	}
}

// The first file is read before the lease only from a local image: an
// image URL is not downloaded for an import vCenter may still refuse.
func TestReadEarly(t *testing.T) {
	ctx := context.Background()
	ova := writeTestOVA(t, 64<<10)
	rs := newRangeServer(t, filepath.Dir(ova), true)
	bare := buildOVA(t, handEntries(t, "hand-disk1.vmdk", "")[:2]) // no manifest
	tests := []struct {
		name   string
		source string
		sha256 string
		early  bool
	}{
		{"local file", ova, "", true},
		{"URL", rs.URL + "/svm.ova", "", false},
		{"local file, nothing to hash", bare, "", false},
		{"local file without manifest, its checksum given", bare, strings.Repeat("0", 64), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, err := openImage(ctx, tt.source, http.DefaultClient)
			require.NoError(t, err)
			defer im.Close()
			before := rs.bytes.Load()
			rd, err := im.readEarly(ctx, tt.sha256)
			require.NoError(t, err)
			if !tt.early {
				assert.Nil(t, rd)
				assert.Equal(t, before, rs.bytes.Load(), "nothing downloaded")
				return
			}
			require.NotNil(t, rd)
			defer rd.close()
			assert.Equal(t, im.desc.Files[0].Href, rd.m.name)
			got, err := io.ReadAll(rd.pf)
			require.NoError(t, err)
			assert.Len(t, got, int(rd.m.size))
		})
	}
}

// An image declared trusted (no manifest, no checksum) is sent straight
// from the file, nothing hashed.
func TestImportTrustedImage(t *testing.T) {
	s := newLab(t, nil).session(t)
	ctx := context.Background()
	entries := handEntries(t, "hand-disk1.vmdk", "")
	spec := importSpec(buildOVA(t, entries[:2])) // no manifest
	_, err := s.Import(ctx, spec)
	require.ErrorIs(t, err, ErrUnverified, "not without being declared trusted")
	spec.Check.Trusted = true
	res, err := s.Import(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, int64(len(entries[1].data)), res.Bytes)
	require.NoError(t, s.Destroy(ctx, res.VM))
}
