package svm

import (
	"bytes"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// documented holds the vendor's examples (the KSVLA help's klconfig pages), byte for byte.
var documented = []struct {
	name  string
	setup []string // commands run first (through Exec)
	cmd   string
	want  string
	exit  int
}{
	{"connectorlang usage", nil, "connectorlang", "Usage: connectorlang lang\nKLCONFIG FAILED\n", 1},
	{"connectorlang en", nil, "connectorlang en", "KLCONFIG OK\n", 0},
	{"apiversion", nil, "apiversion", "1.0.0\nKLCONFIG OK\n", 0},
	{"version", nil, "version", "5.1.5.57\nKLCONFIG OK\n", 0},
	{"dnsshow nameservers", []string{"dns 192.0.2.45 198.51.100.7"}, "dnsshow nameservers", "192.0.2.45 198.51.100.7\nKLCONFIG OK\n", 0},
	{"dnsshow empty", nil, "dnsshow search", "\nKLCONFIG OK\n", 0},
	{"rollbackpatch", nil, "rollbackpatch", "Current product version: 5.1.5.57\nERROR: rollback: There is no last installed patch.\nKLCONFIG OK\n", 0},
	{"manageservices", nil, "manageservices restart klnagent scanserver", "Restarting la-scanserver (via systemctl):[OK]\nKLCONFIG OK\n", 0},
	{"network", nil, "network eth0 192.0.2.45 255.255.255.0 192.0.2.255 192.0.2.1", "KLCONFIG OK\n", 0},
	{"dhcp", nil, "dhcp eth0 yes", "KLCONFIG OK\n", 0},
	{"dnssearch", nil, "dnssearch mylocaldomain.com kaspersky.com", "KLCONFIG OK\n", 0},
	{"dnslookup", []string{"dns 192.0.2.45"}, "dnslookup www.google.com", "173.194.122.144\nKLCONFIG OK\n", 0},
}

func oldSVM(c *Config) { c.Version = "5.1.5.57" }

func TestDocumentedExamplesOverGoSSH(t *testing.T) {
	for _, tc := range documented {
		t.Run(tc.name, func(t *testing.T) {
			s := startSVM(t, oldSVM)
			for _, c := range tc.setup {
				_, ok := s.Exec(c, nil)
				require.True(t, ok, c)
			}
			got, exit := sshExec(t, s, testPassword, tc.cmd, "")
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.exit, exit)
		})
	}
}

func TestDocumentedExamplesOverOpenSSH(t *testing.T) {
	s := startSVM(t, oldSVM)
	signer, pemKey := newKey(t)
	_, ok := s.Exec("setsshkey "+authorizedLine(signer.PublicKey())+" lab@test", nil)
	require.True(t, ok)
	o := newOpenSSH(t, s, pemKey)
	for _, tc := range documented {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := s.Exec("dns", nil) // each case starts with no DNS
			require.True(t, ok)
			for _, c := range tc.setup {
				_, ok := s.Exec(c, nil)
				require.True(t, ok, c)
			}
			got, exit := o.run(t, s, strings.Fields(tc.cmd)...)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.exit, exit)
		})
	}
}

func TestTestCommand(t *testing.T) {
	s := startSVM(t, nil)
	got, exit := sshExec(t, s, testPassword, "test", "")
	require.Equal(t, 0, exit)
	want := regexp.MustCompile(`^uid=0\(root\) gid=0\(root\) groups=0\(root\)
[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d UTC \d{4}
Kaspersky Security for Virtualization 6\.2 Light Agent 6\.2\.0\.200
\d\d:\d\d:\d\d up 0 min,0 users,load average: 0\.04, 0\.18, 0\.11
DONE –-
KLCONFIG OK
$`)
	assert.Regexp(t, want, got)
}

func TestValidation(t *testing.T) {
	cases := []struct {
		cmd  string
		want string
		ok   bool
	}{
		{"", "Usage: <command> [arguments]\nKLCONFIG FAILED\n", false},
		{"frobnicate", "ERROR: Unknown command frobnicate.\nKLCONFIG FAILED\n", false},
		{"version now", "Usage: version\nKLCONFIG FAILED\n", false},
		{"connectorlang xx", "ERROR: Wrong language format.\nKLCONFIG FAILED\n", false},
		{"connectorlang zh-Hant", "KLCONFIG OK\n", true},
		{"network eth0 192.0.2.45 255.255.255.0", "Usage: network interface ip netmask broadcast [gateway]\nKLCONFIG FAILED\n", false},
		{"network eth9 192.0.2.45 255.255.255.0 192.0.2.255", "ERROR: Wrong interface format eth9\nKLCONFIG FAILED\n", false},
		{"network eth0 192.0.2.450 255.255.255.0 192.0.2.255", "ERROR: Wrong IP address format 192.0.2.450.\nKLCONFIG FAILED\n", false},
		{"network eth0 192.0.2.45 255.0.255.0 192.0.2.255", "ERROR: Wrong netmask format 255.0.255.0.\nKLCONFIG FAILED\n", false},
		{"network eth0 192.0.2.45 255.255.255.0 192.0.2.255 gw", "ERROR: Wrong gateway format gw.\nKLCONFIG FAILED\n", false},
		{"dhcp eth0 maybe", "ERROR: 'yes' or 'no' should be specified\nKLCONFIG FAILED\n", false},
		{"dhcp eth1", "ERROR: Wrong interface format eth1\nKLCONFIG FAILED\n", false},
		{"dns 192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4", "ERROR: Too many DNS servers: at most 3.\nKLCONFIG FAILED\n", false},
		{"dns example.com", "ERROR: Wrong address format example.com.\nKLCONFIG FAILED\n", false},
		{"dnssearch a.com b.com c.com d.com", "Usage: dnssearch [domain1] [domain2] [domain3]\nKLCONFIG FAILED\n", false},
		{"dnssearch a;b", "ERROR: Wrong domain format a;b.\nKLCONFIG FAILED\n", false},
		{"dnsshow all", "Usage: dnsshow nameservers|search\nKLCONFIG FAILED\n", false},
		{"dnslookup www.google.com", "ERROR: ;; connection timed out; no servers could be reached\nKLCONFIG FAILED\n", false},
		{"dnslookup 192.0.2.9", "192.0.2.9\nKLCONFIG OK\n", true},
		{"timezone Mars/Olympus", "ERROR: Wrong time zone format Mars/Olympus.\nKLCONFIG FAILED\n", false},
		{"timezone GMT", "time zone changed to 'GMT' (GMT)\nKLCONFIG OK\n", true},
		{"nagent ksc.lab 13000 14000 15000", "Usage: nagent address sslport [port]\nKLCONFIG FAILED\n", false},
		{"nagent ksc_lab! 13000", "ERROR: Wrong address format ksc_lab!.\nKLCONFIG FAILED\n", false},
		{"nagent 192.0.2.45 70000", "ERROR: Wrong port format 70000.\nKLCONFIG FAILED\n", false},
		{"nagent 192.0.2.45 13000 01", "ERROR: Wrong port format 01.\nKLCONFIG FAILED\n", false},
		{"nagentinstall", "ERROR: Unknown command nagentinstall.\nKLCONFIG FAILED\n", false},
		{"manageservices", "Usage: manageservices start|stop|restart service1 [service2] [service3]\nKLCONFIG FAILED\n", false},
		{"manageservices restart", "ERROR: no services selected\nKLCONFIG FAILED\n", false},
		{"manageservices restart httpd", "ERROR: unknown service httpd\nKLCONFIG FAILED\n", false},
		{"manageservices bounce scanserver", "ERROR: could not bounce klnagent64\nKLCONFIG FAILED\n", false},
		{"manageservices restart klnagent scanserver sshd network", "Usage: manageservices start|stop|restart service1 [service2] [service3]\nKLCONFIG FAILED\n", false},
		{"manageservices stop scanserver", "Stopping la-scanserver (via systemctl):[OK]\nKLCONFIG OK\n", true},
		{"passwd", "Usage: passwd username\nKLCONFIG FAILED\n", false},
		{"passwd admin", "ERROR: passwd: user 'admin' does not exist\nKLCONFIG FAILED\n", false},
		{"passwd root", "ERROR: 0130 Invalid password.\nKLCONFIG FAILED\n", false}, // no stdin
		{"setsshkey", "Usage: setsshkey type key [comment]\nKLCONFIG FAILED\n", false},
		{"setsshkey ssh-ed25519 notbase64", "ERROR: Wrong key format.\nKLCONFIG FAILED\n", false},
		{"rollbackpatch 1 2", "Usage: rollbackpatch [patchid]\nKLCONFIG FAILED\n", false},
		{"getdnshostname", "", false}, // checked below: names the SVM's IP
	}
	s := startSVM(t, nil)
	for _, tc := range cases {
		t.Run(tc.cmd, func(t *testing.T) {
			got, ok := s.Exec(tc.cmd, nil)
			if tc.cmd == "getdnshostname" {
				tc.want = "ERROR: 0100 Could not look up " + s.IP() + " in DNS.\nKLCONFIG FAILED\n"
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.ok, ok)
		})
	}
}

func TestNoShellInterpretation(t *testing.T) {
	s := startSVM(t, nil)
	for _, cmd := range []string{`connectorlang $(id)`, `connectorlang "en"`, `connectorlang en;reboot`, `connectorlang 'en'`} {
		got, exit := sshExec(t, s, testPassword, cmd, "")
		assert.Equal(t, "ERROR: Wrong language format.\nKLCONFIG FAILED\n", got, cmd)
		assert.Equal(t, 1, exit)
	}
	got, exit := sshExec(t, s, testPassword, "connectorlang en ; reboot", "")
	assert.Equal(t, "Usage: connectorlang lang\nKLCONFIG FAILED\n", got)
	assert.Equal(t, 1, exit)
	assert.False(t, s.State().Rebooting)
}

func TestDNSClearsSearchAndLookups(t *testing.T) {
	s := startSVM(t, func(c *Config) { c.Hosts = map[string]string{"KSC.lab.local": "127.0.0.10"} })
	steps := []struct{ cmd, want string }{
		{"dns 192.0.2.45", "KLCONFIG OK\n"},
		{"dnssearch lab.local example.com", "KLCONFIG OK\n"},
		{"dnsshow search", "lab.local example.com\nKLCONFIG OK\n"},
		{"dnslookup ksc.lab.local", "127.0.0.10\nKLCONFIG OK\n"},
		{"dnslookup nohost.lab.local", "ERROR: Host nohost.lab.local not found: 3(NXDOMAIN)\nKLCONFIG FAILED\n"},
		{"dns 192.0.2.46 192.0.2.47", "KLCONFIG OK\n"},
		{"dnsshow search", "\nKLCONFIG OK\n"},
		{"dnsshow nameservers", "192.0.2.46 192.0.2.47\nKLCONFIG OK\n"},
	}
	for _, st := range steps {
		got, _ := sshExec(t, s, testPassword, st.cmd, "")
		assert.Equal(t, st.want, got, st.cmd)
	}
	s.SetReverseName(s.IP(), "svm01.lab.local.")
	got, _ := sshExec(t, s, testPassword, "getdnshostname", "")
	assert.Equal(t, "svm01.lab.local.\nKLCONFIG OK\n", got)
}

func TestAuth(t *testing.T) {
	s := startSVM(t, nil)
	signer, _ := newKey(t)

	_, err := dial(t, s.Addr(), clientConfig(s, ssh.Password("wrong")))
	require.ErrorContains(t, err, "unable to authenticate")

	cfg := clientConfig(s, ssh.Password(testPassword))
	cfg.User = "root"
	_, err = dial(t, s.Addr(), cfg)
	require.ErrorContains(t, err, "unable to authenticate", "only klconfig logs in")

	_, err = dial(t, s.Addr(), clientConfig(s, ssh.PublicKeys(signer)))
	require.ErrorContains(t, err, "unable to authenticate", "key not set yet")

	got, exit := sshExec(t, s, testPassword, "setsshkey "+authorizedLine(signer.PublicKey())+" ops@lab", "")
	require.Equal(t, "KLCONFIG OK\n", got)
	require.Equal(t, 0, exit)
	assert.Equal(t, []string{authorizedLine(signer.PublicKey())}, s.State().AuthorizedKeys)

	c, err := dial(t, s.Addr(), clientConfig(s, ssh.PublicKeys(signer)))
	require.NoError(t, err)
	got, _ = sessionExec(t, c, "apiversion", "")
	assert.Equal(t, "1.0.0\nKLCONFIG OK\n", got)
}

func TestShellAndPtyRefused(t *testing.T) {
	s := startSVM(t, nil)
	c, err := dial(t, s.Addr(), clientConfig(s, ssh.Password(testPassword)))
	require.NoError(t, err)

	sess, err := c.NewSession()
	require.NoError(t, err)
	require.Error(t, sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}))
	var out bytes.Buffer
	sess.Stdout = &out
	require.NoError(t, sess.Shell())
	err = sess.Wait()
	var exitErr *ssh.ExitError
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, 1, exitErr.ExitStatus())
	assert.True(t, strings.HasPrefix(out.String(), "ERROR: interactive login is not allowed"), out.String())
}

func TestPasswd(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := startSVM(t, func(c *Config) {
		c.Hooks.Command = func(_ *SVM, cmdline string, _ bool) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, cmdline)
		}
	})
	const newPass = `N3w!pass"word;$(x)`

	got, exit := sshExec(t, s, testPassword, "passwd klconfig", "has space\n")
	assert.Equal(t, "ERROR: 0130 Invalid password.\nKLCONFIG FAILED\n", got)
	assert.Equal(t, 1, exit)
	got, _ = sshExec(t, s, testPassword, "passwd klconfig", strings.Repeat("a", 61)+"\n")
	assert.Equal(t, "ERROR: 0130 Invalid password.\nKLCONFIG FAILED\n", got)

	got, exit = sshExec(t, s, testPassword, "passwd klconfig", newPass+"\n")
	require.Equal(t, "KLCONFIG OK\n", got)
	require.Equal(t, 0, exit)
	got, _ = sshExec(t, s, newPass, "passwd root", "R00t-Secret") // no newline: EOF ends it
	require.Equal(t, "KLCONFIG OK\n", got)

	_, err := dial(t, s.Addr(), clientConfig(s, ssh.Password(testPassword)))
	require.ErrorContains(t, err, "unable to authenticate", "old password must be refused")
	got, _ = sshExec(t, s, newPass, "version", "")
	assert.Equal(t, "6.2.0.200\nKLCONFIG OK\n", got)

	st := s.State()
	assert.Equal(t, map[string]int{"klconfig": 1, "root": 1}, st.PasswordChanges)
	joined := strings.Join(st.ResultsLog, "\n")
	assert.NotContains(t, joined, newPass)
	assert.NotContains(t, joined, "R00t-Secret")
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, seen, "passwd klconfig")
	assert.NotContains(t, strings.Join(seen, "\n"), newPass)
}

func TestAsyncNetworkRestartMovesListener(t *testing.T) {
	moved := make(chan [2]string, 1)
	s := startSVM(t, func(c *Config) {
		c.Hooks.AddressChanged = func(_ *SVM, oldIP, newIP string) { moved <- [2]string{oldIP, newIP} }
	})
	oldAddr := s.Addr()
	_, port, _ := net.SplitHostPort(oldAddr)
	newIP := testIP()

	c, err := dial(t, oldAddr, clientConfig(s, ssh.Password(testPassword)))
	require.NoError(t, err)
	got, _ := sessionExec(t, c, "network eth0 "+newIP+" 255.0.0.0 127.255.255.255", "")
	require.Equal(t, "KLCONFIG OK\n", got)
	got, _ = sessionExec(t, c, "manageservices restart network", "")
	require.Equal(t, "KLCONFIG OK\n", got, "klconfig answers before the network goes")

	select {
	case m := <-moved:
		assert.Equal(t, [2]string{oldAddr[:len(oldAddr)-len(port)-1], newIP}, m)
	case <-time.After(2 * time.Second):
		t.Fatal("AddressChanged not called")
	}
	assert.Equal(t, net.JoinHostPort(newIP, port), s.Addr(), "same port on the new IP")
	assert.Equal(t, newIP, s.IP())

	_, err = c.NewSession()
	assert.Error(t, err, "the old session is dropped")
	_, err = net.DialTimeout("tcp", oldAddr, time.Second)
	assert.Error(t, err, "nothing listens on the old address")
	got, _ = sshExec(t, s, testPassword, "version", "")
	assert.Equal(t, "6.2.0.200\nKLCONFIG OK\n", got)
	assert.Equal(t, "static", s.State().Interfaces["eth0"].Mode)
}

func TestNetworkLocalIsSynchronous(t *testing.T) {
	s := startSVM(t, nil)
	newIP := testIP()
	_, ok := s.Exec("network eth0 "+newIP+" 255.0.0.0 127.255.255.255", nil)
	require.True(t, ok)
	_, ok = s.Exec("manageservices restart network_local", nil)
	require.True(t, ok)
	assert.Equal(t, newIP, s.IP(), "moved before the command returned")
	got, _ := sshExec(t, s, testPassword, "apiversion", "")
	assert.Equal(t, "1.0.0\nKLCONFIG OK\n", got)

	// Back to DHCP: the lab's DHCP hands out the first lease again.
	_, ok = s.Exec("dhcp eth0 yes", nil)
	require.True(t, ok)
	_, ok = s.Exec("manageservices restart network_local", nil)
	require.True(t, ok)
	assert.NotEqual(t, newIP, s.IP())
}

func TestStopDropsSessions(t *testing.T) {
	s := startSVM(t, nil)
	addr := s.Addr()
	c, err := dial(t, addr, clientConfig(s, ssh.Password(testPassword)))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()

	require.NoError(t, s.Stop())
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("live connection survived Stop")
	}
	assert.Equal(t, "", s.Addr())
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err)

	require.NoError(t, s.Start(), "power on again")
	got, _ := sshExec(t, s, testPassword, "apiversion", "")
	assert.Equal(t, "1.0.0\nKLCONFIG OK\n", got)
}

func TestReboot(t *testing.T) {
	rebooted := make(chan struct{}, 1)
	s := startSVM(t, func(c *Config) { c.Hooks.Rebooted = func(*SVM) { rebooted <- struct{}{} } })
	s.FirstBoot([]string{"ALWAYS", "connectorlang fr"})
	got, _ := sshExec(t, s, testPassword, "connectorlang de", "")
	require.Equal(t, "KLCONFIG OK\n", got)
	got, exit := sshExec(t, s, testPassword, "reboot", "")
	require.Equal(t, "KLCONFIG OK\n", got)
	require.Equal(t, 0, exit)
	eventually(t, func() bool { return s.State().Rebooting }, "goes down after RebootDelay")
	assert.Equal(t, "", s.Addr())
	select {
	case <-rebooted:
	case <-time.After(2 * time.Second):
		t.Fatal("Rebooted not called")
	}
	st := s.State()
	assert.False(t, st.Rebooting)
	assert.Equal(t, "fr", st.ConnectorLang, "ALWAYS first-boot commands ran again")
	got, _ = sshExec(t, s, testPassword, "apiversion", "")
	assert.Equal(t, "1.0.0\nKLCONFIG OK\n", got)
}

func TestNagent(t *testing.T) {
	type call struct {
		addr          string
		sslPort, port int
	}
	calls := make(chan call, 4)
	hook := func(c *Config) {
		c.Hooks.Nagent = func(_ *SVM, a string, sp, p int) { calls <- call{a, sp, p} }
	}

	t.Run("6.2 preinstalled", func(t *testing.T) {
		s := startSVM(t, hook)
		got, _ := sshExec(t, s, testPassword, "nagent 192.0.2.45 13000 14000", "")
		assert.Equal(t, "Execute automatic installation\nKaspersky Network Agent is installed.\n"+
			"Binaries were installed in /opt/kaspersky/klnagent64/bin\n"+
			"klnagent64.service is not a native service, redirecting to /sbin/chkconfig.\n"+
			"Executing /sbin/chkconfig klnagent64 on\nKLCONFIG OK\n", got)
		assert.Equal(t, call{"192.0.2.45", 13000, 14000}, <-calls)
		got, _ = sshExec(t, s, testPassword, "nagent ksc.lab.local 13000", "")
		assert.Equal(t, "Checking command-line arguments...OK\nWriting new settings...OK\n"+
			"Restarting Network Agent...\nOperation completed successfully !\nKLCONFIG OK\n", got)
		assert.Equal(t, call{"ksc.lab.local", 13000, 0}, <-calls)
		assert.Equal(t, Nagent{Installed: true, Configured: true, Address: "ksc.lab.local", SSLPort: 13000}, s.State().Nagent)
	})

	t.Run("6.3 needs nagentinstall", func(t *testing.T) {
		s := startSVM(t, func(c *Config) { hook(c); c.Version = "6.3.0.100"; c.NeedsNagentInstall = true })
		steps := []struct{ cmd, want string }{
			{"nagent 192.0.2.45 13000", "ERROR: klnagent not installed.\nKLCONFIG FAILED\n"},
			{"nagentinstall", "ERROR: Network Agent package not found in /var/opt/kaspersky/klconfig/klnagent_distro/\nKLCONFIG FAILED\n"},
		}
		for _, st := range steps {
			got, _ := sshExec(t, s, testPassword, st.cmd, "")
			assert.Equal(t, st.want, got, st.cmd)
		}
		s.AddNagentPackage("klnagent64_15.1.0-20748_amd64.deb")
		got, _ := sshExec(t, s, testPassword, "nagentinstall", "")
		assert.Equal(t, "Installing /var/opt/kaspersky/klconfig/klnagent_distro/klnagent64_15.1.0-20748_amd64.deb\n"+
			"Kaspersky Network Agent is installed.\nKLCONFIG OK\n", got)
		_, ok := s.Exec("nagent 192.0.2.45 13000", nil)
		assert.True(t, ok)
		assert.Equal(t, call{"192.0.2.45", 13000, 0}, <-calls)
	})
}

func TestFirstBoot(t *testing.T) {
	newIP := testIP()
	cases := []struct {
		name       string
		cmds       []string
		boots      int
		wantDone   bool
		wantRuns   int // how many times connectorlang ran over all boots
		wantFailed bool
	}{
		{"runs once, marker written", []string{"connectorlang ja"}, 2, true, 1, false},
		{"ALWAYS runs every boot", []string{"ALWAYS", "connectorlang ja"}, 3, true, 3, false},
		{"RESET runs again next boot", []string{"connectorlang ja", "RESET"}, 2, false, 2, false},
		{"passwd halts the boot", []string{"connectorlang ja", "passwd klconfig"}, 1, false, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Name: "fb", Version: "6.2.0.200", IP: testIP(), Port: EphemeralPort, Password: testPassword})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Stop() })
			for range tc.boots {
				s.FirstBoot(tc.cmds)
			}
			require.NoError(t, s.Start())
			st := s.State()
			runs := 0
			for _, l := range st.ResultsLog {
				if strings.HasSuffix(l, " connectorlang ja") {
					runs++
				}
			}
			assert.Equal(t, tc.wantRuns, runs)
			assert.Equal(t, tc.wantDone, st.BootConfigDone)
			assert.Equal(t, tc.wantFailed, st.BootFailed)
			assert.Equal(t, tc.wantFailed, s.Addr() == "", "a halted SVM does not answer")
			assert.Equal(t, "ja", st.ConnectorLang)
		})
	}

	t.Run("network at first boot and REPORT", func(t *testing.T) {
		s, err := New(Config{Name: "fb", Version: "6.2.0.200", IP: testIP(), Port: EphemeralPort, Password: testPassword})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Stop() })
		s.FirstBoot([]string{"REPORT", "network eth0 " + newIP + " 255.0.0.0 127.255.255.255", "manageservices restart network", "version"})
		require.NoError(t, s.Start())
		host, _, err := net.SplitHostPort(s.Addr())
		require.NoError(t, err)
		assert.Equal(t, newIP, host)
		log := strings.Join(s.State().BootConfigLog, "\n")
		assert.Contains(t, log, "cmd4: 6.2.0.200")
		assert.Contains(t, log, "cmd3: manageservices restart network: KLCONFIG OK")
	})
}

func TestHostKeyFromSeedIsStable(t *testing.T) {
	a, b, c := HostKeyFromSeed("svm-esx01"), HostKeyFromSeed("svm-esx01"), HostKeyFromSeed("svm-esx02")
	assert.Equal(t, a.PublicKey().Marshal(), b.PublicKey().Marshal())
	assert.NotEqual(t, a.PublicKey().Marshal(), c.PublicKey().Marshal())
	assert.Equal(t, ssh.KeyAlgoED25519, a.PublicKey().Type())
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{IP: "127.0.0.1", Version: "6.2", Password: "x"}, "new svm: name is required"},
		{Config{Name: "a", IP: "::1", Version: "6.2", Password: "x"}, `new svm a: ip "::1" is not an IPv4 address`},
		{Config{Name: "a", IP: "127.0.0.1", Password: "x"}, "new svm a: version is required"},
		{Config{Name: "a", IP: "127.0.0.1", Version: "6.2"}, "new svm a: password is required"},
	}
	for _, tc := range cases {
		_, err := New(tc.cfg)
		assert.EqualError(t, err, tc.want)
	}
}

// A connection dropped mid-command: the client gets no output and no exit status; the command ran
// only when dropped after it; the rule fires once, on the n-th matching command.
func TestDropConnection(t *testing.T) {
	for name, tc := range map[string]struct {
		at      DropPoint
		applied bool
	}{
		"before the command runs": {at: DropBeforeRun, applied: false},
		"after the command ran":   {at: DropAfterRun, applied: true},
	} {
		t.Run(name, func(t *testing.T) {
			s := startSVM(t, nil)
			s.DropConnection("timezone", 2, tc.at)
			out, _ := sshExec(t, s, testPassword, "timezone Europe/Berlin", "")
			assert.Contains(t, out, "KLCONFIG OK", "the first matching command goes through")
			_, _ = sshExec(t, s, testPassword, "apiversion", "") // not matching: not counted

			c, err := dial(t, s.Addr(), clientConfig(s, ssh.Password(testPassword)))
			require.NoError(t, err)
			sess, err := c.NewSession()
			require.NoError(t, err)
			var buf bytes.Buffer
			sess.Stdout = &buf
			err = sess.Run("timezone Europe/Moscow")
			var exitErr *ssh.ExitError
			require.Error(t, err)
			assert.False(t, errors.As(err, &exitErr), "no exit status: %v", err)
			assert.Empty(t, buf.String())
			want := "Europe/Berlin"
			if tc.applied {
				want = "Europe/Moscow"
			}
			assert.Equal(t, want, s.State().Timezone)

			out, _ = sshExec(t, s, testPassword, "timezone Asia/Tokyo", "")
			assert.Contains(t, out, "KLCONFIG OK", "the rule fired once")
		})
	}
}
