package svmdeploy

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/images"
	"github.com/ksvla/lightagent/internal/sim/labtest"
)

// crafted is an unpacked image the test can tamper with.
type crafted struct{ dir, ovf, disk, mf string }

func craftImage(t *testing.T, version string) crafted {
	t.Helper()
	dir := t.TempDir()
	info, err := images.WriteOVF(dir, images.Spec{Version: version, DiskBytes: 64 << 10})
	require.NoError(t, err)
	base := strings.TrimSuffix(info.Path, ".ovf")
	return crafted{dir: dir, ovf: info.Path, disk: base + "-disk1.vmdk", mf: base + ".mf"}
}

// ova packs the named files of c (in order) into an OVA.
func (c crafted) ova(t *testing.T, files ...string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: filepath.Base(f), Size: int64(len(raw)), Mode: 0o644, Typeflag: tar.TypeReg}))
		_, err = tw.Write(raw)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	p := filepath.Join(t.TempDir(), "crafted.ova")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Every hostile input is refused, in check mode and in a real run, with a
// message naming the option and the problem, and vCenter ends as it was:
// no VM, no leftover.
func TestHostileInputIsRefused(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 2, VMsPerHost: -1})
	ctx := ctxFor(t)
	h0, h1 := e.v.ESXiHosts[0], e.v.ESXiHosts[1]

	// An OVA without manifest whose disk was tampered with (same size).
	noMF := craftImage(t, e.v.NewVersion)
	raw, err := os.ReadFile(noMF.disk)
	require.NoError(t, err)
	raw[len(raw)-1] ^= 0xff
	require.NoError(t, os.WriteFile(noMF.disk, raw, 0o644))
	tampered := noMF.ova(t, noMF.ovf, noMF.disk)

	// An OVF beside a disk that is a link to a file outside its directory.
	linked := craftImage(t, e.v.NewVersion)
	require.NoError(t, os.Remove(linked.mf))
	require.NoError(t, os.Remove(linked.disk))
	require.NoError(t, os.Symlink("/etc/hostname", linked.disk))

	// An OVF declaring a 953 TB disk.
	huge := craftImage(t, e.v.NewVersion)
	require.NoError(t, os.Remove(huge.mf))
	desc, err := os.ReadFile(huge.ovf)
	require.NoError(t, err)
	desc = regexpReplace(t, desc, `ovf:capacity="[0-9]+"`, `ovf:capacity="1000000000"`)
	require.NoError(t, os.WriteFile(huge.ovf, desc, 0o644))

	// An OVF with its manifest, for the checksum-of-a-descriptor case.
	plainOVF := craftImage(t, e.v.NewVersion)
	require.NoError(t, os.Remove(plainOVF.mf))

	mb := strings.Repeat("a", 1<<20)
	lines := make([]any, MaxFirstBoot+1)
	for i := range lines {
		lines[i] = "REPORT"
	}
	wrongSum := strings.Repeat("ab", 32)
	cases := []struct {
		name string
		args map[string]any
		msg  string // exact, or a prefix ending in "…"
	}{
		{"image without manifest or checksum", e.args(h0, "svm-x", map[string]any{"image": tampered}),
			"image: image not verified: " + tampered + " has no manifest (.mf) and no expected checksum was given: give its SHA-256, or declare it trusted"},
		{"wrong image_sha256", e.args(h0, "svm-x", map[string]any{"image_sha256": wrongSum}),
			"image_sha256: image " + e.v.NewImage.Path + ": SHA-256 " + e.v.NewImage.SHA256 + " does not match the expected " + wrongSum + " (image corrupt, tampered with, or another release)"},
		{"image_sha256 not a checksum", e.args(h0, "svm-x", map[string]any{"image_sha256": "md5:abc"}),
			"image_sha256: not a SHA-256 checksum (64 hexadecimal digits)"},
		{"checksum of an ovf without manifest", e.args(h0, "svm-x", map[string]any{"image": plainOVF.ovf, "image_sha256": fileSHA(t, plainOVF.ovf)}),
			"image: image not verified: " + plainOVF.ovf + " has no manifest, and a checksum of an .ovf covers only the descriptor, not its disks: use the .ova or an image with its .mf, or declare it trusted"},
		{"disk linked out of the image's directory", e.args(h0, "svm-x", map[string]any{"image": linked.ovf, "image_trusted": true}),
			"read image " + linked.ovf + ": file " + filepath.Base(linked.disk) + ": open: openat " + filepath.Base(linked.disk) + ": path escapes from parent"},
		{"953 TB disk", e.args(h0, "svm-x", map[string]any{"image": huge.ovf, "image_trusted": true}),
			"datastore: image " + huge.ovf + " declares 953.7 TiB of disks (thin provisioning), datastore " + e.v.LocalDatastores[h0] + " has …"},
		{"datastore of another host", e.args(h0, "svm-x", map[string]any{"datastore": e.v.LocalDatastores[h1]}),
			fmt.Sprintf("datastore: datastore %s is not mounted on host %s (its datastores: %s, shared-ds)", e.v.LocalDatastores[h1], h0, e.v.LocalDatastores[h0])},
		{"name with a line break", e.args(h0, "svm\nx", nil), "value of name is invalid: control character U+000A at byte 3"},
		{"name with a bidi override and NUL", e.args(h0, "svm-\u202e\u0000x", nil), "value of name is invalid: invisible or bidirectional formatting character U+202E at byte 4"},
		{"blank name", e.args(h0, " ", nil), "value of name is invalid: a VM name must not be blank"},
		{"name with markup", e.args(h0, `svm<&>"x`, nil), `value of name is invalid: character '<' at byte 3 is not allowed (no < > & ")`},
		{"name of 81 characters", e.args(h0, strings.Repeat("s", 81), nil), "value of name is invalid: a VM name has at most 80 characters, got 81"},
		{"too many first-boot lines", e.args(h0, "svm-x", map[string]any{"first_boot": lines}),
			fmt.Sprintf("value of first_boot must have at most %d elements, got %d", MaxFirstBoot, MaxFirstBoot+1)},
		{"1 MB first-boot time zone", e.args(h0, "svm-x", map[string]any{"first_boot": []any{"timezone " + mb}}),
			"first_boot command 1: klconfig: timezone: command line of 1048585 bytes is longer than the 2048 allowed"},
		{"negative timeout", e.args(h0, "svm-x", map[string]any{"timeout": -1}), "value of timeout must be between 1 and 604800, got: -1"},
		{"zero wait_timeout", e.args(h0, "svm-x", map[string]any{"wait_timeout": 0}), "value of wait_timeout must be between 1 and 604800, got: 0"},
		{"negative port", e.args(h0, "svm-x", map[string]any{"port": -443}), "value of port must be between 1 and 65535, got: -443"},
		{"negative cpus", e.args(h0, "svm-x", map[string]any{"cpus": -2}), "value of cpus must be between 0 and 768, got: -2"},
	}
	before := e.snapshot(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.refused(t, ctx, c.args, c.msg)
			assert.Equal(t, before, e.snapshot(t), "nothing created or changed")
			e.noLeftover(t, h0, "svm-x")
		})
	}
}

// refused runs args in check mode and for real and asserts both fail,
// unchanged, with msg (exact, or a prefix ending in "…").
func (e env) refused(t *testing.T, ctx context.Context, args map[string]any, msg string) {
	t.Helper()
	for _, check := range []bool{true, false} {
		res := e.run(t, ctx, args, ansibletest.Mode{Check: check})
		require.True(t, res.Failed(), "check=%v: %v", check, res)
		assert.False(t, res.Changed())
		if p, ok := strings.CutSuffix(msg, "…"); ok {
			assert.True(t, strings.HasPrefix(res.Msg(), p), "check=%v: %s", check, res.Msg())
		} else {
			assert.Equal(t, msg, res.Msg(), "check=%v", check)
		}
	}
}

func regexpReplace(t *testing.T, b []byte, expr, with string) []byte {
	t.Helper()
	out := regexpMust(expr).ReplaceAll(b, []byte(with))
	require.NotEqual(t, string(b), string(out), "pattern %s not found", expr)
	return out
}

// The image is verified by default; image_sha256 or image_trusted let an
// image without manifest through, the latter with a warning.
func TestImageVerificationOptions(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	ctx := ctxFor(t)
	h0 := e.v.ESXiHosts[0]
	c := craftImage(t, e.v.NewVersion)
	bare := c.ova(t, c.ovf, c.disk)

	res := e.run(t, ctx, e.args(h0, "svm-x", map[string]any{"image": bare, "image_trusted": true}), ansibletest.Mode{Check: true})
	require.False(t, res.Failed(), res.Msg())
	assert.Equal(t, []any{"image_trusted=true: image " + bare + " is not verified (no manifest, no checksum): accepted because it is declared trusted"}, res["warnings"])

	res = e.run(t, ctx, e.args(h0, "svm-x", map[string]any{"image": bare, "image_sha256": "SHA256:" + strings.ToUpper(fileSHA(t, bare))}), ansibletest.Mode{})
	require.False(t, res.Failed(), res.Msg())
	assert.Nil(t, res["warnings"])
	assert.Len(t, e.vms(t, "svm-x"), 1, "deployed once verified")

	// The lab's own image carries a manifest and vars.yml its checksum.
	res = e.run(t, ctx, e.args(h0, "svm-y", map[string]any{"image_sha256": e.v.NewImage.SHA256}), ansibletest.Mode{Check: true})
	require.False(t, res.Failed(), res.Msg())
}

// A FIFO as the image is refused at once: opening it never waits for a
// writer, and the run ends well within its deadline.
func TestFIFOImageEndsWithinDeadline(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	h0 := e.v.ESXiHosts[0]
	fifo := filepath.Join(t.TempDir(), "svm.ova")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	before := e.snapshot(t)
	for _, check := range []bool{true, false} {
		start := time.Now()
		res := e.run(t, context.Background(), e.args(h0, "svm-x", map[string]any{"image": fifo, "timeout": 5}), ansibletest.Mode{Check: check})
		assert.Less(t, time.Since(start), 7*time.Second, "deadline (5 s) plus 2 s")
		require.True(t, res.Failed())
		assert.Equal(t, "read image "+fifo+": open "+fifo+": not a regular file (a named pipe)", res.Msg())
	}
	assert.Equal(t, before, e.snapshot(t))
}

// Credentials in an image URL never show: not in the message (also when
// the URL does not parse), not in the invocation, not anywhere in the result.
func TestImageURLCredentialsMasked(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	ctx := ctxFor(t)
	h0 := e.v.ESXiHosts[0]
	url := labtest.ServeImage(t, e.v.NewImage.Path, nil)
	withCreds := strings.Replace(url, "http://", "http://deployer:Url-Pw-9x7@", 1)
	cases := []struct{ name, image, secret string }{
		{"valid url", withCreds, "Url-Pw-9x7"},
		{"invalid escape", "https://user:Pct%zzPw-Kx8@127.0.0.1:9/svm.ova", "Pct%zzPw-Kx8"},
		{"quote", `https://user:Qu"ote-Pw1@127.0.0.1:9/svm.ova`, `Qu"ote-Pw1`},
		{"backslash", `https://user:Back\slash-Pw2@127.0.0.1:9/svm.ova`, `Back\slash-Pw2`},
		{"encoded", "https://user:Enc%40ded-Pw3@127.0.0.1:9/svm.ova", "Enc@ded-Pw3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := e.run(t, ctx, e.args(h0, "svm-x", map[string]any{"image": c.image}), ansibletest.Mode{Check: true})
			raw, err := json.Marshal(res)
			require.NoError(t, err)
			assert.NotContains(t, string(raw), c.secret)
			assert.NotContains(t, string(raw), strings.ReplaceAll(c.secret, `"`, `\"`))
			assert.NotContains(t, string(raw), strings.ReplaceAll(c.secret, `\`, `\\`))
			if c.name == "valid url" {
				require.False(t, res.Failed(), res.Msg())
			} else {
				require.True(t, res.Failed())
			}
			img, _ := ansibletest.Get(res, "invocation", "module_args", "image").(string)
			assert.Contains(t, img, "********", "masked in the invocation")
		})
	}
}

// validate_certs=false warns once, naming the option; a pinned thumbprint
// (SHA-1 or SHA-256) verifies the connection without a CA file and
// without a warning.
func TestCertificateVerificationWarningsAndThumbprints(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1})
	ctx := ctxFor(t)
	h0 := e.v.ESXiHosts[0]
	pemRaw, err := os.ReadFile(e.v.VCenterCAFile)
	require.NoError(t, err)
	blk, _ := pem.Decode(pemRaw)
	require.NotNil(t, blk)
	cert, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	sum := sha256.Sum256(cert.Raw)
	sha256TP := strings.ToUpper(hex.EncodeToString(sum[:]))

	insecure := e.args(h0, "svm-x", map[string]any{"validate_certs": false, "ca_file": nil})
	res := e.run(t, ctx, insecure, ansibletest.Mode{Check: true})
	require.False(t, res.Failed(), res.Msg())
	assert.Equal(t, []any{"validate_certs=false: vCenter's TLS certificate is not verified, so the vCenter password goes to whoever answers; set ca_file, or thumbprint to pin the certificate"}, res["warnings"])

	for _, tp := range []string{e.v.VCenterThumbprint, sha256TP, strings.ToLower(sha256TP)} {
		res = e.run(t, ctx, e.args(h0, "svm-x", map[string]any{"thumbprint": tp, "ca_file": nil}), ansibletest.Mode{Check: true})
		require.False(t, res.Failed(), "%s: %s", tp, res.Msg())
		assert.Nil(t, res["warnings"])
		res = e.run(t, ctx, e.args(h0, "svm-x", map[string]any{"thumbprint": tp, "ca_file": nil, "validate_certs": false}), ansibletest.Mode{Check: true})
		require.False(t, res.Failed(), "%s: %s", tp, res.Msg())
		assert.Nil(t, res["warnings"], "a pin verifies the connection")
	}
}

// SIGTERM during the upload (Ansible's async timeout, AWX's cancel) ends
// the run through the real entry point: the lease is aborted, the
// half-imported VM deleted, and the failure says why.
func TestSIGTERMDuringUpload(t *testing.T) {
	e := newEnv(t, sim.Config{Hosts: 1, VMsPerHost: -1, ImageBytes: 8 << 20})
	host := e.v.ESXiHosts[0]
	name := e.v.SVMs[host]
	var served atomic.Int64
	var sent atomic.Bool
	url := labtest.ServeImage(t, e.v.NewImage.Path, func(_ *http.Request, n int) {
		if served.Add(int64(n)) > 1<<20 && sent.CompareAndSwap(false, true) {
			require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
		}
		if sent.Load() {
			// Slow the rest down, so that a loaded machine's late signal
			// delivery cannot let the whole image through before the cancel.
			time.Sleep(5 * time.Millisecond)
		}
	})
	args := e.args(host, name, map[string]any{"image": url, "wait_for_ip": false})
	args["_ansible_module_name"] = "ksvla.lightagent.svm_deploy"
	raw, err := json.Marshal(args)
	require.NoError(t, err)
	argsFile := filepath.Join(t.TempDir(), "args")
	require.NoError(t, os.WriteFile(argsFile, raw, 0o600))

	var out bytes.Buffer
	rc := ansible.Main(ansible.Registry{{Name: "svm_deploy", New: New}}, []string{"svm_deploy", argsFile}, &out)
	assert.Equal(t, 1, rc)
	var res ansible.Result
	require.NoError(t, json.NewDecoder(io.LimitReader(&out, 1<<20)).Decode(&res))
	require.True(t, sent.Load(), "SIGTERM was sent during the upload")
	assert.True(t, strings.HasPrefix(res.Msg(), "import vm "+name+": upload "), res.Msg())
	assert.Contains(t, res.Msg(), "interrupted by SIGTERM: the run was cancelled")
	assert.True(t, strings.HasSuffix(res.Msg(), "(lease aborted, half-imported vm deleted)"), res.Msg())
	st, err := os.Stat(e.v.NewImage.Path)
	require.NoError(t, err)
	assert.Less(t, served.Load(), st.Size(), "the upload stopped before the image was read")
	assert.Empty(t, e.vms(t, name), "no half-imported VM")
	e.noLeftover(t, host, name)
}

func regexpMust(expr string) *regexp.Regexp { return regexp.MustCompile(expr) }
