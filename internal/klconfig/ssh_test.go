package klconfig

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ksvla/lightagent/internal/sim/svm"
)

const labPassword = "Lab-Conf1g"

var ipSeq atomic.Int32

// labIP gives each SVM of this test binary its own loopback address (ports are ephemeral anyway).
func labIP() string {
	return fmt.Sprintf("127.%d.%d.%d", 200+os.Getpid()%50, os.Getpid()/50%250, ipSeq.Add(1))
}

// labSVM is an SVM of the lab (internal/sim/svm) that records the command lines it received.
type labSVM struct {
	*svm.SVM
	mu   sync.Mutex
	seen []string
}

func (l *labSVM) commands() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

func newLabSVM(t *testing.T, mod func(*svm.Config)) *labSVM {
	t.Helper()
	l := &labSVM{}
	cfg := svm.Config{
		Name: "svm-" + t.Name(), Version: "6.3.0.100", IP: labIP(), Port: svm.EphemeralPort,
		Password: labPassword, RootPassword: "Root-1", NeedsNagentInstall: true,
		NetworkRestartDelay: 20 * time.Millisecond, RebootDelay: time.Hour,
		Hooks: svm.Hooks{Command: func(_ *svm.SVM, cmdline string, _ bool) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.seen = append(l.seen, cmdline)
		}},
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := svm.New(cfg)
	require.NoError(t, err)
	l.SVM = s
	return l
}

func startLabSVM(t *testing.T, mod func(*svm.Config)) *labSVM {
	t.Helper()
	l := newLabSVM(t, mod)
	require.NoError(t, l.Start())
	t.Cleanup(func() { _ = l.Stop() })
	return l
}

func pinned(l *labSVM) SSHConfig {
	return SSHConfig{Addr: l.Addr(), Password: labPassword, HostKey: HostKeyStrict,
		Fingerprint: ssh.FingerprintSHA256(l.HostKey()), Timeout: 2 * time.Second}
}

func runner(t *testing.T, cfg SSHConfig) *SSHRunner {
	t.Helper()
	r, err := NewSSHRunner(cfg)
	require.NoError(t, err)
	return r
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestEveryCommandAgainstLabSVM(t *testing.T) {
	l := startLabSVM(t, nil)
	l.SetReverseName(l.IP(), "svm01.lab.local.")
	l.AddNagentPackage("klnagent64_15.1.0-20748_amd64.deb")
	c := New(runner(t, pinned(l)))
	_, pub := newKeyPEM(t, nil)

	cases := []struct {
		name string
		cmd  Command
		want Result // Output is not compared
	}{
		{"apiversion", APIVersion(), Result{Lines: []string{"1.0.0"}, OK: true}},
		{"version", Version(), Result{Lines: []string{"6.3.0.100"}, OK: true}},
		{"connectorlang", must(ConnectorLang("ru")), Result{OK: true}},
		{"network", must(Network("eth0", "192.0.2.45", "255.255.255.0", "192.0.2.255", "192.0.2.1")), Result{OK: true}},
		{"dhcp", must(DHCP("eth0", true)), Result{OK: true}},
		{"dns", must(DNS("192.0.2.45", "198.51.100.7")), Result{OK: true}},
		{"dnssearch", must(DNSSearch("lab.local")), Result{OK: true}},
		{"dnsshow nameservers", must(DNSShow(DNSNameservers)), Result{Lines: []string{"192.0.2.45 198.51.100.7"}, OK: true}},
		{"dnsshow search", must(DNSShow(DNSSearchList)), Result{Lines: []string{"lab.local"}, OK: true}},
		{"dnslookup", must(DNSLookup("www.google.com")), Result{Lines: []string{"173.194.122.144"}, OK: true}},
		{"getdnshostname", GetDNSHostname(), Result{Lines: []string{"svm01.lab.local."}, OK: true}},
		{"timezone", must(Timezone("UTC")), Result{Lines: []string{"time zone changed to 'UTC' (UTC)"}, OK: true}},
		{"nagentinstall", NagentInstall(), Result{Lines: []string{"Installing /var/opt/kaspersky/klconfig/klnagent_distro/klnagent64_15.1.0-20748_amd64.deb", "Kaspersky Network Agent is installed."}, OK: true}},
		{"nagent", must(Nagent("192.0.2.45", 13000, 14000)), Result{Lines: []string{"Execute automatic installation", "Kaspersky Network Agent is installed.", "Binaries were installed in /opt/kaspersky/klnagent64/bin", "klnagent64.service is not a native service, redirecting to /sbin/chkconfig.", "Executing /sbin/chkconfig klnagent64 on"}, OK: true}},
		{"manageservices", must(ManageServices("restart", "klnagent", "scanserver")), Result{Lines: []string{"Restarting la-scanserver (via systemctl):[OK]"}, OK: true}},
		{"rollbackpatch", must(RollbackPatch("")), Result{Lines: []string{"Current product version: 6.3.0.100"}, Errors: []string{"rollback: There is no last installed patch."}, OK: true}},
		{"setsshkey", must(SetSSHKey(pub)), Result{OK: true}},
		{"passwd root", must(Passwd("root", "N3w-Root!")), Result{OK: true}},
		{"reboot", Reboot(), Result{OK: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Do(ctx(t), tc.cmd)
			require.NoError(t, err)
			got.Output = ""
			assert.Equal(t, tc.want, got)
		})
	}

	t.Run("test", func(t *testing.T) {
		res, err := c.Do(ctx(t), Test())
		require.NoError(t, err)
		info, err := ParseTest(res)
		require.NoError(t, err)
		assert.Equal(t, "root", info.User)
		assert.Equal(t, "6.3.0.100", info.Version)
		assert.WithinDuration(t, time.Now(), info.Date, 5*time.Second)
	})

	t.Run("failed command is a typed error", func(t *testing.T) {
		// Built directly: Raw refuses the usage error before the SVM sees it.
		cmd := Command{Name: "connectorlang"}
		_, err := c.Do(ctx(t), cmd)
		var failed *CommandFailedError
		require.ErrorAs(t, err, &failed)
		assert.Equal(t, "Usage: connectorlang lang", failed.UsageLine)
		assert.Equal(t, "Usage: connectorlang lang\nKLCONFIG FAILED\n", failed.Output)
		assert.EqualError(t, err, "klconfig connectorlang: KLCONFIG FAILED: Usage: connectorlang lang")
	})

	st := l.State()
	assert.Equal(t, "ru", st.ConnectorLang)
	assert.Equal(t, 1, st.PasswordChanges["root"])
	assert.Equal(t, []string{strings.TrimSpace(pub[:strings.LastIndex(pub, " ")])}, st.AuthorizedKeys, "comment not sent")
	assert.True(t, st.Nagent.Configured)
}

// newKeyPEM returns an OpenSSH PEM private key (encrypted when passphrase is set) and the public key
// as an authorized_keys line with a comment.
func newKeyPEM(t *testing.T, passphrase []byte) ([]byte, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	var block *pem.Block
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "")
	}
	require.NoError(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " ops@lab"
}

func TestKeyAuth(t *testing.T) {
	l := startLabSVM(t, nil)
	passphrase := []byte("key-pass")
	pemKey, pub := newKeyPEM(t, passphrase)

	keyOnly := pinned(l)
	keyOnly.Password = ""
	keyOnly.PrivateKey = pemKey
	_, err := NewSSHRunner(keyOnly)
	require.EqualError(t, err, "klconfig ssh "+l.Addr()+": private key is encrypted: a passphrase is required")
	keyOnly.Passphrase = passphrase

	_, err = runner(t, keyOnly).Run(ctx(t), APIVersion())
	require.ErrorIs(t, err, ErrAuthFailed, "key not authorised yet")

	_, err = New(runner(t, pinned(l))).Do(ctx(t), must(SetSSHKey(pub)))
	require.NoError(t, err)
	res, err := New(runner(t, keyOnly)).Do(ctx(t), Version())
	require.NoError(t, err)
	assert.Equal(t, []string{"6.3.0.100"}, res.Lines)
}

func knownHostsWith(t *testing.T, addr string, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	body := ""
	if key != nil {
		body = knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	}
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func TestHostKeyChecking(t *testing.T) {
	l := startLabSVM(t, nil)
	other := svm.HostKeyFromSeed("someone else").PublicKey()
	base := SSHConfig{Addr: l.Addr(), Password: labPassword, Timeout: 2 * time.Second}

	cases := []struct {
		name  string
		cfg   func(SSHConfig) SSHConfig
		want  error
		wrong string // text the error must hold
	}{
		{"strict known", func(c SSHConfig) SSHConfig { c.KnownHostsFile = knownHostsWith(t, l.Addr(), l.HostKey()); return c }, nil, ""},
		{"strict unknown", func(c SSHConfig) SSHConfig { c.KnownHostsFile = knownHostsWith(t, l.Addr(), nil); return c }, ErrHostKeyUnknown, "is not in"},
		{"strict missing file", func(c SSHConfig) SSHConfig { c.KnownHostsFile = filepath.Join(t.TempDir(), "nope"); return c }, ErrKnownHostsMissing, "known_hosts file does not exist: "},
		{"strict changed", func(c SSHConfig) SSHConfig { c.KnownHostsFile = knownHostsWith(t, l.Addr(), other); return c }, ErrHostKeyMismatch, "has another key"},
		{"fingerprint", func(c SSHConfig) SSHConfig { c.Fingerprint = ssh.FingerprintSHA256(l.HostKey()); return c }, nil, ""},
		{"fingerprint wrong", func(c SSHConfig) SSHConfig { c.Fingerprint = ssh.FingerprintSHA256(other); return c }, ErrHostKeyMismatch, "pinned"},
		{"off", func(c SSHConfig) SSHConfig { c.HostKey = HostKeyOff; return c }, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Retry{Runner: runner(t, tc.cfg(base)), MaxWait: 5 * time.Second}.Run(ctx(t), APIVersion())
			if tc.want == nil {
				require.NoError(t, err)
				assert.True(t, res.OK)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assert.ErrorContains(t, err, tc.wrong)
			assert.NotContains(t, err.Error(), labPassword)
		})
	}
}

// freeAddr reserves nothing: it finds a port free now on a fresh loopback IP for an SVM that
// starts later.
func freeAddr(t *testing.T) (string, int) {
	t.Helper()
	ip := labIP()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return ip, port
}

func TestAcceptNew(t *testing.T) {
	ip, port := freeAddr(t)
	first := newLabSVM(t, func(c *svm.Config) { c.IP, c.Port = ip, port })
	require.NoError(t, first.Start())
	kh := filepath.Join(t.TempDir(), "known_hosts") // does not exist yet
	cfg := SSHConfig{Addr: first.Addr(), Password: labPassword, HostKey: HostKeyAcceptNew, KnownHostsFile: kh, Timeout: 2 * time.Second}

	_, err := New(runner(t, cfg)).Do(ctx(t), APIVersion())
	require.NoError(t, err)
	body, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.Equal(t, knownhosts.Line([]string{knownhosts.Normalize(first.Addr())}, first.HostKey())+"\n", string(body))
	_, err = New(runner(t, cfg)).Do(ctx(t), APIVersion())
	require.NoError(t, err, "recorded key accepted")

	// Another machine takes over the address: its key must be refused.
	require.NoError(t, first.Stop())
	impostor := startLabSVM(t, func(c *svm.Config) { c.IP, c.Port, c.Name = ip, port, "impostor" })
	require.Equal(t, first.Addr(), "")
	_, err = New(runner(t, cfg)).Do(ctx(t), APIVersion())
	require.ErrorIs(t, err, ErrHostKeyMismatch)
	assert.Empty(t, impostor.commands(), "nothing reached the impostor")
	after, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.Equal(t, body, after, "a changed key is not recorded")
}

func TestWrongPasswordFailsFastThroughRetry(t *testing.T) {
	l := startLabSVM(t, nil)
	cfg := pinned(l)
	cfg.Password = "wrong-" + labPassword
	start := time.Now()
	_, err := New(Retry{Runner: runner(t, cfg), MaxWait: 10 * time.Second, MinDelay: time.Second}).Do(ctx(t), APIVersion())
	require.ErrorIs(t, err, ErrAuthFailed)
	assert.Less(t, time.Since(start), time.Second, "no retry on auth failure")
	assert.NotContains(t, err.Error(), cfg.Password)
}

func TestRetryUntilLateSVMAnswers(t *testing.T) {
	ip, port := freeAddr(t)
	l := newLabSVM(t, func(c *svm.Config) { c.IP, c.Port = ip, port })
	t.Cleanup(func() { _ = l.Stop() })
	cfg := SSHConfig{Addr: net.JoinHostPort(ip, fmt.Sprint(port)), Password: labPassword, HostKey: HostKeyStrict,
		Fingerprint: ssh.FingerprintSHA256(l.HostKey()), Timeout: time.Second}
	r := runner(t, cfg)

	_, err := r.Run(ctx(t), APIVersion())
	require.ErrorIs(t, err, ErrUnreachable, "bare runner does not retry")

	_, err = Retry{Runner: r, MaxWait: 150 * time.Millisecond, MinDelay: 20 * time.Millisecond}.Run(ctx(t), APIVersion())
	require.ErrorIs(t, err, ErrUnreachable)
	assert.ErrorContains(t, err, "gave up after")

	time.AfterFunc(200*time.Millisecond, func() { _ = l.Start() })
	res, err := New(Retry{Runner: r, MaxWait: 5 * time.Second, MinDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond}).Do(ctx(t), Version())
	require.NoError(t, err)
	assert.Equal(t, []string{"6.3.0.100"}, res.Lines)
}

// A connection dropped while a command ran: the bare runner reports ErrDropped whether or not the
// SVM applied it; Retry sends a Repeatable command again (bounded by MaxDrops) and never one that
// is not.
func TestDroppedMidCommand(t *testing.T) {
	tz, _ := Timezone("Europe/Berlin")
	pw, _ := Passwd("root", "Root-2")
	for name, tc := range map[string]struct {
		cmd      Command
		at       svm.DropPoint
		drops    int  // how many matching commands drop in a row
		wantOK   bool // through Retry
		wantRuns int  // times the SVM ran the command
	}{
		"repeatable, dropped before it ran":     {cmd: tz, at: svm.DropBeforeRun, drops: 1, wantOK: true, wantRuns: 1},
		"repeatable, dropped after it ran":      {cmd: tz, at: svm.DropAfterRun, drops: 1, wantOK: true, wantRuns: 2},
		"repeatable, dropped every time":        {cmd: tz, at: svm.DropAfterRun, drops: 3, wantOK: false, wantRuns: 3},
		"not repeatable, dropped before it ran": {cmd: pw, at: svm.DropBeforeRun, drops: 1, wantOK: false, wantRuns: 0},
		"not repeatable, dropped after it ran":  {cmd: pw, at: svm.DropAfterRun, drops: 1, wantOK: false, wantRuns: 1},
	} {
		t.Run(name, func(t *testing.T) {
			l := startLabSVM(t, nil)
			r := runner(t, pinned(l))
			l.DropConnection(tc.cmd.Name, 1, tc.at)
			_, err := r.Run(ctx(t), tc.cmd)
			require.ErrorIs(t, err, ErrDropped, "the bare runner never resends")
			assert.NotErrorIs(t, err, ErrUnreachable)

			l.mu.Lock()
			l.seen = nil
			l.mu.Unlock()
			left := tc.drops
			rt := Retry{Runner: rearming{Runner: r, arm: func() {
				if left > 0 {
					left--
					l.DropConnection(tc.cmd.Name, 1, tc.at)
				}
			}}, MaxWait: 5 * time.Second, MinDelay: 10 * time.Millisecond}
			_, err = New(rt).Do(ctx(t), tc.cmd)
			if tc.wantOK {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrDropped)
				assert.NotContains(t, err.Error(), "Root-2")
			}
			runs := 0
			for _, c := range l.commands() {
				if strings.HasPrefix(c, tc.cmd.Name) {
					runs++
				}
			}
			assert.Equal(t, tc.wantRuns, runs)
		})
	}
}

// rearming arms a fault before each command it runs.
type rearming struct {
	Runner
	arm func()
}

func (r rearming) Run(ctx context.Context, cmd Command) (Result, error) {
	r.arm()
	return r.Runner.Run(ctx, cmd)
}

func TestPasswdNeverOnTheCommandLine(t *testing.T) {
	l := startLabSVM(t, nil)
	const newPass = `Fresh;"$(pass)'1`
	cmd := must(Passwd("klconfig", newPass))
	_, err := New(runner(t, pinned(l))).Do(ctx(t), cmd)
	require.NoError(t, err)
	assert.Equal(t, []string{"passwd klconfig"}, l.commands())

	_, err = New(runner(t, pinned(l))).Do(ctx(t), Version())
	require.ErrorIs(t, err, ErrAuthFailed, "old password is gone")
	cfg := pinned(l)
	cfg.Password = newPass
	_, err = New(runner(t, cfg)).Do(ctx(t), Version())
	require.NoError(t, err)
}

func TestInjectionRefusedBeforeSending(t *testing.T) {
	l := startLabSVM(t, nil)
	r := runner(t, pinned(l))
	for _, cmd := range []Command{
		{Name: "connectorlang", Args: []string{"en;reboot"}},
		{Name: "connectorlang", Args: []string{"en reboot"}},
		{Name: "dnslookup", Args: []string{"$(reboot)"}},
		{Name: "reboot\n"},
	} {
		_, err := r.Run(ctx(t), cmd)
		require.Error(t, err, cmd.Name)
		assert.NotErrorIs(t, err, ErrUnreachable)
	}
	assert.Empty(t, l.commands(), "nothing reached the SVM")
}

func TestNewSSHRunnerValidates(t *testing.T) {
	cases := []struct {
		cfg  SSHConfig
		want string
	}{
		{SSHConfig{Password: "x", HostKey: HostKeyOff}, "klconfig ssh: address is required"},
		{SSHConfig{Addr: "svm01", HostKey: HostKeyOff}, "klconfig ssh svm01:22: a password or a private key is required"},
		{SSHConfig{Addr: "svm01", Password: "x"}, "klconfig ssh svm01:22: strict host key checking needs a known_hosts file or a fingerprint"},
		{SSHConfig{Addr: "svm01", Password: "x", Fingerprint: "MD5:aa"}, `klconfig ssh svm01:22: fingerprint "MD5:aa": want SHA256:<base64>`},
		{SSHConfig{Addr: "svm01", Password: "x", HostKey: HostKeyAcceptNew}, "klconfig ssh svm01:22: accept_new host key checking needs a known_hosts file"},
		{SSHConfig{Addr: "svm01", PrivateKey: []byte("secret-not-a-key"), HostKey: HostKeyOff}, "klconfig ssh svm01:22: parse private key: ssh: no key found"},
	}
	for _, tc := range cases {
		_, err := NewSSHRunner(tc.cfg)
		assert.EqualError(t, err, tc.want)
	}
}
