package klconfig

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConstructors(t *testing.T) {
	type ctor func() (Command, error)
	ok := func(c Command) ctor { return func() (Command, error) { return c, nil } }
	cases := []struct {
		name string
		make ctor
		line string // "" = must be refused
	}{
		{"apiversion", ok(APIVersion()), "apiversion"},
		{"version", ok(Version()), "version"},
		{"test", ok(Test()), "test"},
		{"network", func() (Command, error) {
			return Network("eth0", "192.0.2.45", "255.255.255.0", "192.0.2.255", "192.0.2.1")
		}, "network eth0 192.0.2.45 255.255.255.0 192.0.2.255 192.0.2.1"},
		{"network no gw", func() (Command, error) { return Network("ens192", "192.0.2.45", "255.255.255.0", "192.0.2.255", "") }, "network ens192 192.0.2.45 255.255.255.0 192.0.2.255"},
		{"network bad ip", func() (Command, error) { return Network("eth0", "192.0.2.450", "255.255.255.0", "192.0.2.255", "") }, ""},
		{"network injected iface", func() (Command, error) {
			return Network("eth0;reboot", "192.0.2.45", "255.255.255.0", "192.0.2.255", "")
		}, ""},
		{"dhcp", func() (Command, error) { return DHCP("eth0", true) }, "dhcp eth0 yes"},
		{"dhcp secondary", func() (Command, error) { return DHCP("eth1", false) }, "dhcp eth1 no"},
		{"dns", func() (Command, error) { return DNS("192.0.2.45", "2001:db8::1") }, "dns 192.0.2.45 2001:db8::1"},
		{"dns clear", func() (Command, error) { return DNS() }, "dns"},
		{"dns injected", func() (Command, error) { return DNS("192.0.2.45 198.51.100.7") }, ""},
		{"dnssearch", func() (Command, error) { return DNSSearch("mylocaldomain.com", "kaspersky.com") }, "dnssearch mylocaldomain.com kaspersky.com"},
		{"dnssearch four", func() (Command, error) { return DNSSearch("a.com", "b.com", "c.com", "d.com") }, ""},
		{"dnssearch quote", func() (Command, error) { return DNSSearch(`a.com"`) }, ""},
		{"dnsshow", func() (Command, error) { return DNSShow(DNSNameservers) }, "dnsshow nameservers"},
		{"dnsshow bad", func() (Command, error) { return DNSShow("all") }, ""},
		{"dnslookup", func() (Command, error) { return DNSLookup("ksc.lab.local") }, "dnslookup ksc.lab.local"},
		{"dnslookup subst", func() (Command, error) { return DNSLookup("$(id)") }, ""},
		{"getdnshostname", ok(GetDNSHostname()), "getdnshostname"},
		{"timezone", func() (Command, error) { return Timezone("America/Argentina/Buenos_Aires") }, "timezone America/Argentina/Buenos_Aires"},
		{"timezone etc", func() (Command, error) { return Timezone("Etc/GMT+3") }, "timezone Etc/GMT+3"},
		{"timezone traversal", func() (Command, error) { return Timezone("../../etc/passwd") }, ""},
		{"connectorlang", func() (Command, error) { return ConnectorLang("zh-Hans") }, "connectorlang zh-Hans"},
		{"connectorlang bad", func() (Command, error) { return ConnectorLang("es") }, ""},
		{"nagent", func() (Command, error) { return Nagent("192.0.2.45", 13000, 14000) }, "nagent 192.0.2.45 13000 14000"},
		{"nagent ssl only", func() (Command, error) { return Nagent("ksc.lab.local", 13000, 0) }, "nagent ksc.lab.local 13000"},
		{"nagent bad port", func() (Command, error) { return Nagent("ksc.lab.local", 70000, 0) }, ""},
		{"nagent newline", func() (Command, error) { return Nagent("ksc\nreboot", 13000, 0) }, ""},
		{"nagentinstall", ok(NagentInstall()), "nagentinstall"},
		{"manageservices", func() (Command, error) { return ManageServices("restart", "klnagent", "scanserver") }, "manageservices restart klnagent scanserver"},
		{"manageservices none", func() (Command, error) { return ManageServices("restart") }, ""},
		{"manageservices four", func() (Command, error) { return ManageServices("stop", "klnagent", "scanserver", "sshd", "network") }, ""},
		{"manageservices action", func() (Command, error) { return ManageServices("bounce", "sshd") }, ""},
		{"passwd", func() (Command, error) { return Passwd("klconfig", `p4ss;"$(x)'`) }, "passwd klconfig"},
		{"passwd user", func() (Command, error) { return Passwd("admin", "Secret-1") }, ""},
		{"passwd space", func() (Command, error) { return Passwd("root", "has space") }, ""},
		{"setsshkey", func() (Command, error) {
			return SetSSHKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDNaHG3Cu+kvn+8fOOe62cYAVjlOQd9GqdYRp8ua4zQf ops@lab; reboot")
		}, "setsshkey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDNaHG3Cu+kvn+8fOOe62cYAVjlOQd9GqdYRp8ua4zQf"},
		{"setsshkey junk", func() (Command, error) { return SetSSHKey("ssh-ed25519 notakey") }, ""},
		{"reboot", ok(Reboot()), "reboot"},
		{"rollbackpatch", func() (Command, error) { return RollbackPatch("") }, "rollbackpatch"},
		{"rollbackpatch id", func() (Command, error) { return RollbackPatch("PF-1234") }, "rollbackpatch PF-1234"},
		{"rollbackpatch injected", func() (Command, error) { return RollbackPatch("1`id`") }, ""},
		{"raw", func() (Command, error) { return Raw("dnsshow", "search") }, "dnsshow search"},
		{"raw semicolon", func() (Command, error) { return Raw("connectorlang", "en;reboot") }, ""},
		{"raw space", func() (Command, error) { return Raw("connectorlang", "en reboot") }, ""},
		{"raw single quote", func() (Command, error) { return Raw("connectorlang", "'en'") }, ""},
		{"raw tab", func() (Command, error) { return Raw("connectorlang\tx") }, ""},
		{"raw empty arg", func() (Command, error) { return Raw("connectorlang", "") }, ""},
		{"raw nothing", func() (Command, error) { return Raw() }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.make()
			if tc.line == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			got, err := c.Line()
			require.NoError(t, err)
			assert.Equal(t, tc.line, got)
		})
	}
}

func TestPasswdStdinIsSecret(t *testing.T) {
	const secret = `p4ss;"$(x)'`
	c, err := Passwd("klconfig", secret)
	require.NoError(t, err)
	assert.Equal(t, []byte(secret+"\n"), c.Stdin)
	assert.Equal(t, "passwd klconfig <stdin redacted>", c.String())
	line, err := c.Line()
	require.NoError(t, err)
	assert.NotContains(t, line, secret)

	_, err = Passwd("klconfig", secret+" x")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret, "a refused password is never echoed")
}

func TestHandBuiltCommandValidatedAtLine(t *testing.T) {
	_, err := Command{Name: "connectorlang", Args: []string{"en\nreboot"}}.Line()
	assert.ErrorContains(t, err, "klconfig connectorlang argument 1:")
}

func TestCommandFailedErrorMessage(t *testing.T) {
	cases := []struct {
		err  CommandFailedError
		want string
	}{
		{CommandFailedError{Command: "connectorlang", UsageLine: "Usage: connectorlang lang"}, "klconfig connectorlang: KLCONFIG FAILED: Usage: connectorlang lang"},
		{CommandFailedError{Command: "passwd root <stdin redacted>", ErrorLines: []string{"0130 Invalid password."}}, "klconfig passwd root <stdin redacted>: KLCONFIG FAILED: 0130 Invalid password."},
		{CommandFailedError{Command: "x"}, "klconfig x: KLCONFIG FAILED"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.err.Error())
	}
}

func TestParseLine(t *testing.T) {
	tests := map[string]struct {
		line    string
		want    string
		wantErr string
	}{
		"spaces and tabs split":   {line: "  dnslookup\tksc.example.com ", want: "dnslookup ksc.example.com"},
		"line break refused":      {line: "version\nreboot", wantErr: "klconfig: command line holds a line break: give one command per line"},
		"carriage return":         {line: "version\r", wantErr: "klconfig: command line holds a line break: give one command per line"},
		"other control refused":   {line: "version\x00", wantErr: `klconfig: command line holds a control character ('\x00') at byte 7`},
		"empty":                   {line: "   ", wantErr: "klconfig: empty command"},
		"separator stays refused": {line: "version;reboot", wantErr: "version;reboot"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cmd, err := ParseLine(tc.line)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			got, err := cmd.Line()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// Repeatable: only commands whose second run does what the first did may
// be sent again after a dropped connection.
func TestRepeatable(t *testing.T) {
	tz, _ := Timezone("UTC")
	dns, _ := DNS("10.0.0.1")
	pw, _ := Passwd("klconfig", "Next-Pass1")
	nagent, _ := Nagent("ksc.lab", 13000, 0)
	restart, _ := ManageServices("restart", "network")
	raw, _ := ParseLine("dnssearch lab.local")
	for _, tc := range []struct {
		cmd  Command
		want bool
	}{
		{APIVersion(), true}, {tz, true}, {dns, true}, {raw, true},
		{pw, false}, {nagent, false}, {NagentInstall(), false}, {restart, false}, {Reboot(), false},
	} {
		assert.Equal(t, tc.want, tc.cmd.Repeatable(), tc.cmd.String())
	}
}
