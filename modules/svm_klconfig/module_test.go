package svmklconfig

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/sim/svm"
)

const (
	initialPassword = "Init1al-Pass"
	rootPassword    = "Root-Pass1"
)

var ipSeq atomic.Int32

// testIP returns a loopback address of its own for each SVM of this test binary; the second and
// third octets come from the pid so that concurrent test binaries rarely share one.
func testIP() string {
	n := ipSeq.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 100+os.Getpid()%100, 1+os.Getpid()/100%250, n)
}

// fixture is one SVM with a known_hosts file naming it, a record directory and the command lines
// the SVM received.
type fixture struct {
	svm        *svm.SVM
	knownHosts string
	records    string
	mu         sync.Mutex
	seen       []string
}

func (f *fixture) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.seen...)
}

func startSVM(t *testing.T, mod func(*svm.Config)) *fixture {
	t.Helper()
	f := &fixture{records: filepath.Join(t.TempDir(), "records")}
	ip := testIP()
	cfg := svm.Config{
		Name: "svm-" + ip, Version: "6.2.0.200", IP: ip, Port: svm.EphemeralPort,
		Password: initialPassword, RootPassword: rootPassword,
		NetworkRestartDelay: 50 * time.Millisecond, RebootDelay: time.Hour,
		Hooks: svm.Hooks{Command: func(_ *svm.SVM, line string, _ bool) {
			f.mu.Lock()
			f.seen = append(f.seen, line)
			f.mu.Unlock()
		}},
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := svm.New(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { _ = s.Stop() })
	f.svm = s
	f.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(f.knownHosts, []byte(knownHostsLine(s.Addr(), s.HostKey())), 0o600))
	return f
}

func knownHostsLine(addr string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
}

func (f *fixture) hostPort(t *testing.T) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(f.svm.Addr())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return host, p
}

// args are the connection options for f plus extra.
func (f *fixture) args(t *testing.T, extra map[string]any) map[string]any {
	t.Helper()
	host, port := f.hostPort(t)
	a := map[string]any{
		"host": host, "port": port, "password": initialPassword, "known_hosts": f.knownHosts,
		"record_path": f.records, "wait_timeout": 5, "connect_timeout": 5, "network_restart_wait": 0,
	}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func run(t *testing.T, args map[string]any, mode ansibletest.Mode) ansible.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return ansibletest.Run(t, ctx, "svm_klconfig", New(), args, mode)
}

func encode(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// comparable strips what changes on every command (results.log) from a state snapshot.
func comparable(st svm.State) svm.State {
	st.ResultsLog = nil
	return st
}

func newKeyPair(t *testing.T) (pubLine string, privPEM string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " admin@example", string(pem.EncodeToMemory(block))
}

// Every setting: check mode predicts a change and changes nothing, apply changes it, a second
// apply changes nothing.
func TestSettingsCheckApplyIdempotent(t *testing.T) {
	pub, _ := newKeyPair(t)
	cases := []struct {
		name     string
		mod      func(*svm.Config)
		opts     map[string]any
		commands []string // what the first apply runs
		diffKey  string
		check    func(t *testing.T, st svm.State)
	}{
		{
			name:     "dns servers and search",
			opts:     map[string]any{"dns_servers": []any{"192.0.2.53", "198.51.100.7"}, "dns_search": []any{"example.com", "lab.local"}},
			commands: []string{"dns 192.0.2.53 198.51.100.7", "dnssearch example.com lab.local"},
			diffKey:  "dns_servers",
			check: func(t *testing.T, st svm.State) {
				assert.Equal(t, []string{"192.0.2.53", "198.51.100.7"}, st.Nameservers)
				assert.Equal(t, []string{"example.com", "lab.local"}, st.Search)
			},
		},
		{
			name:     "timezone",
			opts:     map[string]any{"timezone": "Europe/Berlin"},
			commands: []string{"timezone Europe/Berlin"},
			diffKey:  "timezone",
			check:    func(t *testing.T, st svm.State) { assert.Equal(t, "Europe/Berlin", st.Timezone) },
		},
		{
			name:     "connector language restarts scanserver",
			opts:     map[string]any{"connector_language": "de"},
			commands: []string{"connectorlang de", "manageservices restart scanserver"},
			diffKey:  "connector_language",
			check:    func(t *testing.T, st svm.State) { assert.Equal(t, "de", st.ConnectorLang) },
		},
		{
			name:     "ksc with services",
			opts:     map[string]any{"ksc": map[string]any{"address": "192.0.2.10"}, "services": []any{"klnagent"}},
			commands: []string{"nagent 192.0.2.10 13000 14000", "manageservices restart klnagent"},
			diffKey:  "ksc",
			check: func(t *testing.T, st svm.State) {
				assert.Equal(t, svm.Nagent{Installed: true, Configured: true, Address: "192.0.2.10", SSLPort: 13000, Port: 14000}, st.Nagent)
			},
		},
		{
			name: "ksc on a 6.3 image installs Network Agent first",
			mod: func(c *svm.Config) {
				c.Version, c.NeedsNagentInstall = "6.3.0.100", true
			},
			opts:     map[string]any{"ksc": map[string]any{"address": "ksc.lab.local", "port": 0}},
			commands: []string{"nagent ksc.lab.local 13000", "nagentinstall", "nagent ksc.lab.local 13000"},
			diffKey:  "ksc",
			check: func(t *testing.T, st svm.State) {
				assert.Equal(t, svm.Nagent{Installed: true, Configured: true, Address: "ksc.lab.local", SSLPort: 13000}, st.Nagent)
			},
		},
		{
			name:     "ssh public key",
			opts:     map[string]any{"ssh_public_key": pub},
			commands: []string{"setsshkey " + strings.Join(strings.Fields(pub)[:2], " ")},
			diffKey:  "ssh_public_key",
			check: func(t *testing.T, st svm.State) {
				assert.Equal(t, []string{strings.Join(strings.Fields(pub)[:2], " ")}, st.AuthorizedKeys)
			},
		},
		{
			name:     "dhcp",
			opts:     map[string]any{"network": map[string]any{"mode": "dhcp", "primary": false}},
			commands: []string{"dhcp eth0 no", "manageservices restart network"},
			diffKey:  "network",
			check: func(t *testing.T, st svm.State) {
				assert.Equal(t, svm.Interface{Mode: "dhcp"}, st.Interfaces["eth0"])
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startSVM(t, tc.mod)
			if tc.mod != nil {
				f.svm.AddNagentPackage("klnagent64_15.1.0-20748_amd64.deb")
			}
			args := f.args(t, tc.opts)
			before := comparable(f.svm.State())

			got := run(t, args, ansibletest.Mode{Check: true, Diff: true})
			require.False(t, got.Failed(), got.Msg())
			assert.True(t, got.Changed(), "check mode predicts the change")
			assert.Contains(t, ansibletest.Get(got, "diff", "after"), tc.diffKey)
			assert.Equal(t, before, comparable(f.svm.State()), "check mode changed the SVM")
			assert.NoDirExists(t, f.records, "check mode wrote a record")

			got = run(t, args, ansibletest.Mode{Diff: true})
			require.False(t, got.Failed(), got.Msg())
			assert.True(t, got.Changed())
			assert.Equal(t, tc.commands, toStrings(got["commands"]))
			assert.Equal(t, true, ansibletest.Get(got, "settings", tc.diffKey, "changed"))
			tc.check(t, f.svm.State())

			got = run(t, args, ansibletest.Mode{Diff: true})
			require.False(t, got.Failed(), got.Msg())
			assert.False(t, got.Changed(), "second run: %v", got["commands"])
			assert.Empty(t, got["commands"])
			assert.Nil(t, got["diff"])
			assert.Equal(t, false, ansibletest.Get(got, "settings", tc.diffKey, "changed"))
		})
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := []string{}
	for _, e := range l {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// dns clears the search list: a DNS change sets the search list the SVM had again.
func TestDNSChangeKeepsSearchList(t *testing.T) {
	f := startSVM(t, nil)
	got := run(t, f.args(t, map[string]any{"dns_search": []any{"corp.example"}}), ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())

	got = run(t, f.args(t, map[string]any{"dns_servers": []any{"192.0.2.53"}}), ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	assert.Equal(t, []string{"dns 192.0.2.53", "dnssearch corp.example"}, toStrings(got["commands"]))
	assert.Equal(t, []string{"corp.example"}, f.svm.State().Search)
}

func TestPasswordsNeverShownAndIdempotent(t *testing.T) {
	f := startSVM(t, nil)
	const newPass, newRoot = "N3w-Klconfig-Pass", "N3w-Root-Pass"
	args := f.args(t, map[string]any{"passwords": map[string]any{"klconfig": newPass, "root": newRoot}, "timezone": "UTC"})

	check := run(t, args, ansibletest.Mode{Check: true, Diff: true})
	require.False(t, check.Failed(), check.Msg())
	assert.True(t, check.Changed())
	assert.Equal(t, map[string]any{"klconfig": "(set)", "root": "(set)"}, ansibletest.Get(check, "diff", "before", "passwords"))
	assert.Equal(t, map[string]any{"klconfig": "(changed)", "root": "(changed)"}, ansibletest.Get(check, "diff", "after", "passwords"))
	assert.Empty(t, f.svm.State().PasswordChanges)

	first := run(t, args, ansibletest.Mode{Diff: true})
	require.False(t, first.Failed(), first.Msg())
	assert.True(t, first.Changed())
	assert.Equal(t, []string{"timezone UTC", "passwd root", "passwd klconfig"}, toStrings(first["commands"]))
	assert.Equal(t, map[string]int{"klconfig": 1, "root": 1}, f.svm.State().PasswordChanges)

	// The same task again: password no longer logs in, passwords.klconfig does, nothing changes.
	second := run(t, args, ansibletest.Mode{Diff: true})
	require.False(t, second.Failed(), second.Msg())
	assert.False(t, second.Changed(), "second run: %v", second["commands"])

	// The new password as the login password: still nothing to do.
	third := run(t, f.args(t, map[string]any{"password": newPass, "passwords": map[string]any{"klconfig": newPass, "root": newRoot}}), ansibletest.Mode{})
	require.False(t, third.Failed(), third.Msg())
	assert.False(t, third.Changed())
	assert.Equal(t, map[string]int{"klconfig": 1, "root": 1}, f.svm.State().PasswordChanges)

	for _, res := range []ansible.Result{check, first, second, third} {
		out := encode(t, res)
		for _, secret := range []string{newPass, newRoot, initialPassword} {
			assert.NotContains(t, out, secret)
		}
	}
	for _, line := range f.commands() {
		assert.NotContains(t, line, newPass)
		assert.NotContains(t, line, newRoot)
	}
	assert.Contains(t, f.commands(), "passwd klconfig")
	assertRecordsHoldNoSecret(t, f.records, newPass, newRoot, initialPassword)
}

func assertRecordsHoldNoSecret(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		for _, s := range secrets {
			assert.NotContains(t, string(data), s, "record %s", e.Name())
		}
		info, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	}
}

// A changed wish is applied again; a deleted record makes the next run apply again.
func TestRecordDrivesReapply(t *testing.T) {
	f := startSVM(t, nil)
	require.False(t, run(t, f.args(t, map[string]any{"timezone": "UTC"}), ansibletest.Mode{}).Failed())
	got := run(t, f.args(t, map[string]any{"timezone": "Europe/Moscow"}), ansibletest.Mode{Diff: true})
	require.False(t, got.Failed(), got.Msg())
	assert.True(t, got.Changed())
	assert.Equal(t, map[string]any{"timezone": "UTC"}, ansibletest.Get(got, "diff", "before"))
	assert.Equal(t, map[string]any{"timezone": "Europe/Moscow"}, ansibletest.Get(got, "diff", "after"))

	require.NoError(t, os.RemoveAll(f.records))
	got = run(t, f.args(t, map[string]any{"timezone": "Europe/Moscow"}), ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	assert.True(t, got.Changed())
}

func TestStaticAddressChangeIsFollowed(t *testing.T) {
	f := startSVM(t, nil)
	newIP := testIP()
	_, port := f.hostPort(t)
	network := map[string]any{"mode": "static", "address": newIP, "netmask": "255.0.0.0", "broadcast": "127.255.255.255"}
	args := f.args(t, map[string]any{"network": network, "dns_servers": []any{"192.0.2.53"}, "gather": true})

	check := run(t, args, ansibletest.Mode{Check: true, Diff: true})
	require.False(t, check.Failed(), check.Msg())
	assert.True(t, check.Changed())
	assert.Equal(t, newIP, ansibletest.Get(check, "diff", "after", "host"))
	assert.Equal(t, args["host"], check["host"], "check mode: the SVM is still where it was")

	got := run(t, args, ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	assert.True(t, got.Changed())
	assert.Equal(t, newIP, got["host"])
	assert.Equal(t, []string{"dns 192.0.2.53", "network eth0 " + newIP + " 255.0.0.0 127.255.255.255", "manageservices restart network"}, toStrings(got["commands"]))
	assert.Equal(t, net.JoinHostPort(newIP, strconv.Itoa(port)), f.svm.Addr())
	assert.Equal(t, "6.2.0.200", ansibletest.Get(got, "klconfig", "version"))
	assert.Equal(t, []any{"192.0.2.53"}, ansibletest.Get(got, "klconfig", "dns_servers"))
	require.Len(t, got["warnings"], 1, "the new address is not in known_hosts yet")
	assert.Contains(t, ansibletest.Get(got, "warnings", 0), "the SVM now answers at "+f.svm.Addr()+" (host key "+ssh.FingerprintSHA256(f.svm.HostKey())+"), but the next run will refuse it: host key of "+f.svm.Addr()+" is not in known_hosts "+f.knownHosts)

	// The next run targets the new address (its key is now in known_hosts, as the lab does).
	kh, err := os.OpenFile(f.knownHosts, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = kh.WriteString(knownHostsLine(f.svm.Addr(), f.svm.HostKey()))
	require.NoError(t, err)
	require.NoError(t, kh.Close())
	args["host"] = newIP
	again := run(t, args, ansibletest.Mode{})
	require.False(t, again.Failed(), again.Msg())
	assert.False(t, again.Changed(), "second run: %v", again["commands"])
	assert.Equal(t, newIP, again["host"])
}

func TestAuthAndHostKeyFailures(t *testing.T) {
	f := startSVM(t, nil)
	other := startSVM(t, nil)
	addr := f.svm.Addr()
	dir := t.TempDir()
	wrongKH := filepath.Join(dir, "wrong_known_hosts")
	require.NoError(t, os.WriteFile(wrongKH, []byte(knownHostsLine(addr, other.svm.HostKey())), 0o600))
	emptyKH := filepath.Join(dir, "empty_known_hosts")
	require.NoError(t, os.WriteFile(emptyKH, nil, 0o600))
	cases := []struct {
		name string
		opts map[string]any
		msg  string
	}{
		{"wrong password", map[string]any{"password": "Wrong-Pass1"},
			"authentication as klconfig on " + addr + " failed: check the password option (or KSVLA_KLCONFIG_PASSWORD), image_password (or KSVLA_KLCONFIG_IMAGE_PASSWORD), private_key or private_key_file"},
		{"host key mismatch", map[string]any{"known_hosts": wrongKH},
			"host key of " + addr + " does not match known_hosts " + wrongKH + ": the SVM was redeployed or another machine answers there; verify it, then fix known_hosts " + wrongKH},
		{"pinned key mismatch", map[string]any{"known_hosts": nil, "host_key": ssh.FingerprintSHA256(other.svm.HostKey())},
			"host key of " + addr + " does not match host_key " + ssh.FingerprintSHA256(other.svm.HostKey())},
		{"unknown host key", map[string]any{"known_hosts": emptyKH},
			"host key of " + addr + " is not in known_hosts " + emptyKH + ": add it or set host_key_checking=accept_new"},
		{"missing known_hosts", map[string]any{"known_hosts": filepath.Join(dir, "missing_known_hosts")},
			"known_hosts file " + filepath.Join(dir, "missing_known_hosts") + " does not exist: create it with the SVMs' host keys (ssh-keyscan <svm> >> " +
				filepath.Join(dir, "missing_known_hosts") + "), set option known_hosts to the file that has them, or set host_key_checking=accept_new"},
		{"no credential", map[string]any{"password": nil},
			"a credential is required: set the password option (or export KSVLA_KLCONFIG_PASSWORD), image_password (or export KSVLA_KLCONFIG_IMAGE_PASSWORD), private_key, or private_key_file (or export KSVLA_KLCONFIG_PRIVATE_KEY_FILE)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := labtest.Args(f.args(t, map[string]any{"timezone": "UTC"}), tc.opts)
			for _, check := range []bool{true, false} {
				got := run(t, args, ansibletest.Mode{Check: check})
				require.True(t, got.Failed())
				assert.True(t, strings.HasPrefix(got.Msg(), tc.msg), "got %q\nwant prefix %q", got.Msg(), tc.msg)
				assert.LessOrEqual(t, strings.Count(got.Msg(), "klconfig apiversion on"), 1, "prefix repeated: %q", got.Msg())
				assert.NotContains(t, encode(t, got), initialPassword)
			}
		})
	}
	assert.Equal(t, "UTC", f.svm.State().Timezone, "nothing was applied")
	assert.NotContains(t, f.commands(), "timezone UTC")
}

func TestAcceptNewRecordsOutsideCheckMode(t *testing.T) {
	f := startSVM(t, nil)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	args := f.args(t, map[string]any{"known_hosts": kh, "host_key_checking": "accept_new", "dns_servers": []any{"192.0.2.1"}})

	got := run(t, args, ansibletest.Mode{Check: true})
	require.False(t, got.Failed(), got.Msg())
	assert.True(t, got.Changed())
	assert.NoFileExists(t, kh, "check mode recorded a key")

	got = run(t, args, ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	data, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.Equal(t, knownHostsLine(f.svm.Addr(), f.svm.HostKey()), string(data))

	args["host_key_checking"] = "strict"
	got = run(t, args, ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	assert.False(t, got.Changed())
}

// Check mode with accept_new works on a scratch copy of known_hosts; the
// session holder removes it however the run ends, failed or not.
func TestCheckModeLeavesNoScratchKnownHosts(t *testing.T) {
	f := startSVM(t, nil)
	for _, tc := range []struct {
		name   string
		extra  map[string]any
		failed bool
	}{
		{name: "the run succeeds", extra: map[string]any{}},
		{name: "the login fails", extra: map[string]any{"password": "Wrong-Pass1"}, failed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			kh := filepath.Join(t.TempDir(), "known_hosts")
			args := f.args(t, map[string]any{"known_hosts": kh, "host_key_checking": "accept_new", "dns_servers": []any{"192.0.2.1"}})
			for k, v := range tc.extra {
				args[k] = v
			}
			got := run(t, args, ansibletest.Mode{Check: true})
			require.Equal(t, tc.failed, got.Failed(), got.Msg())
			left, err := os.ReadDir(tmp)
			require.NoError(t, err)
			assert.Empty(t, left, "scratch known_hosts left behind")
			assert.NoFileExists(t, kh, "check mode recorded a key")
		})
	}
}

func TestPrivateKeyLogin(t *testing.T) {
	f := startSVM(t, nil)
	pub, priv := newKeyPair(t)
	require.False(t, run(t, f.args(t, map[string]any{"ssh_public_key": pub}), ansibletest.Mode{}).Failed())

	keyFile := filepath.Join(t.TempDir(), "id")
	require.NoError(t, os.WriteFile(keyFile, []byte(priv), 0o600))
	args := f.args(t, map[string]any{"gather": true})
	delete(args, "password")
	got := run(t, args, ansibletest.Mode{Env: map[string]string{EnvPrivateKeyFile: keyFile}})
	require.False(t, got.Failed(), got.Msg())
	assert.Equal(t, "1.0.0", ansibletest.Get(got, "klconfig", "apiversion"))
	assert.Equal(t, "Kaspersky Security for Virtualization 6.2 Light Agent 6.2.0.200", ansibletest.Get(got, "klconfig", "test", "product"))
	assert.Equal(t, "root", ansibletest.Get(got, "klconfig", "test", "user"))

	args["private_key"] = priv
	got = run(t, args, ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	assert.NotContains(t, encode(t, got), "PRIVATE KEY")
}

func TestCommandFailuresAndWarnings(t *testing.T) {
	f := startSVM(t, nil)
	addr := f.svm.Addr()

	got := run(t, f.args(t, map[string]any{"timezone": "Mars/Olympus_Mons"}), ansibletest.Mode{})
	require.True(t, got.Failed())
	assert.Equal(t, `klconfig command "timezone Mars/Olympus_Mons" on `+addr+` failed (KLCONFIG FAILED): ERROR: Wrong time zone format Mars/Olympus_Mons.`, got.Msg())
	assert.Equal(t, []string{"timezone Mars/Olympus_Mons"}, toStrings(got["commands"]))
	assert.NoDirExists(t, f.records, "nothing recorded")

	// A usage error the client knows of is refused before the SVM is asked.
	got = run(t, f.args(t, map[string]any{"commands": []any{"dnsshow"}}), ansibletest.Mode{})
	require.True(t, got.Failed())
	assert.Equal(t, `commands[0]: klconfig: dnsshow takes 1 arguments, got 0`, got.Msg())

	got = run(t, f.args(t, map[string]any{"commands": []any{"rollbackpatch"}}), ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	assert.True(t, got.Changed(), "raw commands report a change")
	assert.Equal(t, []any{"klconfig rollbackpatch on " + addr + ": rollback: There is no last installed patch."}, got["warnings"])

	got = run(t, f.args(t, map[string]any{"commands": []any{"echo; reboot"}}), ansibletest.Mode{})
	require.True(t, got.Failed())
	assert.Contains(t, got.Msg(), "commands[0]: ")
	assert.NotContains(t, f.commands(), "echo; reboot")

	// Read-only commands run in check mode too, report no change and return their output.
	ro := f.args(t, map[string]any{"commands": []any{"dnslookup 127.0.0.1"}, "commands_changed_when": "never"})
	for _, check := range []bool{true, false} {
		got = run(t, ro, ansibletest.Mode{Check: check})
		require.False(t, got.Failed(), got.Msg())
		assert.False(t, got.Changed())
		assert.Equal(t, []any{map[string]any{"command": "dnslookup 127.0.0.1", "stdout_lines": []any{"127.0.0.1"}}}, got["outputs"])
	}
}

// A freshly booted SVM that does not answer yet is waited for.
func TestWaitsForBootingSVM(t *testing.T) {
	f := startSVM(t, nil)
	args := f.args(t, map[string]any{"timezone": "UTC"})
	require.NoError(t, f.svm.Stop())
	time.AfterFunc(300*time.Millisecond, func() { _ = f.svm.Start() })
	got := run(t, args, ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	assert.True(t, got.Changed())
}
