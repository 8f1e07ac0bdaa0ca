package svmklconfig

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The plan as a plain function of (wish, what is): order, what is skipped, restarts and follow.
func TestMakePlan(t *testing.T) {
	const salt = "c2FsdA=="
	recordOf := func(entries map[string]string) Record {
		r := Record{Salt: salt, Settings: map[string]RecordEntry{}}
		for k, v := range entries {
			r.Settings[k] = RecordEntry{Digest: digest(v), Value: v}
		}
		return r
	}
	cases := []struct {
		name     string
		opts     Options
		cur      current
		commands []string
		followTo string
	}{
		{
			name: "nothing managed",
			cur:  current{Host: "192.0.2.17", Record: recordOf(nil)},
		},
		{
			name:     "dns change sets the search list the SVM had again",
			opts:     Options{DNSServers: []string{"192.0.2.53"}},
			cur:      current{Host: "h", Nameservers: []string{"192.0.2.1"}, Search: []string{"corp.example"}, Record: recordOf(nil)},
			commands: []string{"dns 192.0.2.53", "dnssearch corp.example"},
		},
		{
			name: "dns and search already right",
			opts: Options{DNSServers: []string{"192.0.2.53"}, DNSSearch: []string{}},
			cur:  current{Host: "h", Nameservers: []string{"192.0.2.53"}, Record: recordOf(nil)},
		},
		{
			name:     "search only",
			opts:     Options{DNSSearch: []string{}},
			cur:      current{Host: "h", Search: []string{"old.example"}, Record: recordOf(nil)},
			commands: []string{"dnssearch"},
		},
		{
			name: "recorded settings match: services are not restarted",
			opts: Options{Timezone: "UTC", ConnectorLanguage: "en", Services: []string{"klnagent", "network"}},
			cur:  current{Host: "h", Record: recordOf(map[string]string{setTimezone: "UTC", setConnLang: "en"})},
		},
		{
			name: "changes in vendor order, restarts in chunks of three, network last",
			opts: Options{
				Timezone: "UTC", ConnectorLanguage: "fr", KSC: &KSCOptions{Address: "ksc.example", SSLPort: 13000, Port: 14000},
				DNSServers: []string{"192.0.2.53"}, DNSSearch: []string{"example.com"},
				Services: []string{"klnagent", "sshd", "network", "scanserver", "klnagent"},
				Network:  &NetworkOptions{Mode: "static", Interface: "eth0", Address: "192.0.2.45", Netmask: "255.255.255.0", Broadcast: "192.0.2.255"},
				Commands: []string{"rollbackpatch"},
			},
			cur: current{Host: "192.0.2.17", Record: recordOf(nil)},
			commands: []string{"timezone UTC", "connectorlang fr", "dns 192.0.2.53", "dnssearch example.com",
				"nagent ksc.example 13000 14000", "rollbackpatch", "manageservices restart klnagent sshd scanserver",
				"network eth0 192.0.2.45 255.255.255.0 192.0.2.255", "manageservices restart network"},
			followTo: "192.0.2.45",
		},
		{
			name:     "network restart asked for by services follows the SVM where it is",
			opts:     Options{Timezone: "UTC", Services: []string{"network_local"}},
			cur:      current{Host: "192.0.2.17", Record: recordOf(nil)},
			commands: []string{"timezone UTC", "manageservices restart network"},
			followTo: "192.0.2.17",
		},
		{
			name:     "a password login proves the klconfig password; root goes by the record",
			opts:     Options{Passwords: &PasswordsOptions{Klconfig: "Same-Pass1", Root: "Root-Pass1"}},
			cur:      current{Host: "h", LoginPassword: "Same-Pass1", Record: recordOf(nil)},
			commands: []string{"passwd root"},
		},
		{
			name: "read-only commands are not steps",
			opts: Options{Commands: []string{"dnslookup ksc.example"}, CommandsChangedWhen: "never"},
			cur:  current{Host: "h", Record: recordOf(nil)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := buildDesired(tc.opts)
			require.NoError(t, err)
			p := makePlan(d, tc.cur)
			assert.Equal(t, tc.commands == nil, p.Empty())
			if tc.commands == nil {
				tc.commands = []string{}
			}
			assert.Equal(t, tc.commands, p.Commands())
			assert.Equal(t, tc.followTo, p.FollowTo)
			again := makePlan(d, tc.cur)
			assert.Equal(t, p.Commands(), again.Commands(), "deterministic")
		})
	}
}

func TestBuildDesiredRefusesBadValues(t *testing.T) {
	cases := []struct {
		opts Options
		want string
	}{
		{Options{DNSSearch: []string{"a.example", "b.example", "c.example", "d.example"}}, "dns_search: klconfig: dnssearch takes at most 3 domains, got 4"},
		{Options{DNSServers: []string{"ns.example"}}, `dns_servers: klconfig: dns server "ns.example" is not an IP address`},
		{Options{Timezone: "Europe/Berlin;reboot"}, `timezone: klconfig: time zone "Europe/Berlin;reboot" is not a tz database name`},
		{Options{Passwords: &PasswordsOptions{Root: "has space"}}, "passwords.root: klconfig: new password breaks the vendor rules"},
		{Options{Commands: []string{"timezone UTC", "dnslookup $(reboot)"}}, "commands[1]: klconfig dnslookup argument 1:"},
		{Options{Network: &NetworkOptions{Mode: "static", Interface: "eth0", Address: "192.0.2.300", Netmask: "255.255.255.0", Broadcast: "192.0.2.255"}},
			`network: klconfig: ip "192.0.2.300" is not an IPv4 address`},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			_, err := buildDesired(tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "has space")
		})
	}
}

// With vm, the VM steps come first and only where they are due: the key is trusted at first
// contact, recorded once known_hosts verified it (never under host_key_checking=off), and a
// controller's record is copied to a VM that holds none; services restart for none of them.
func TestMakePlanVM(t *testing.T) {
	withTZ := Record{Salt: "c2FsdA==", Settings: map[string]RecordEntry{setTimezone: {Digest: digest("UTC"), Value: "UTC"}}}
	empty := Record{Salt: "c2FsdA==", Settings: map[string]RecordEntry{}}
	cases := []struct {
		name     string
		vm       vmView
		rec      Record
		image    bool
		steps    []stepKind
		hostKey  []any // diff before/after of host_key; nil when not in the diff
		passwdTo string
	}{
		// An empty record on a VM that holds none: nothing to copy.
		{name: "first contact with the image's password", vm: vmView{Trust: trustFirstContact, Fingerprint: "SHA256:new"}, rec: empty, image: true,
			steps: []stepKind{stepTrustKey, stepPasswd}, hostKey: []any{"(first contact)", "SHA256:new"}},
		{name: "recorded key, record on the VM", vm: vmView{Trust: trustRecorded, Fingerprint: "SHA256:k", HasRecord: true}, rec: withTZ},
		{name: "verified by known_hosts", vm: vmView{Trust: trustPolicy, Verified: true, Fingerprint: "SHA256:k", HasRecord: true}, rec: withTZ,
			steps: []stepKind{stepRecordKey}, hostKey: []any{"(not recorded)", "SHA256:k"}},
		{name: "host_key_checking=off records nothing", vm: vmView{Trust: trustPolicy, Fingerprint: "SHA256:k", HasRecord: true}, rec: withTZ},
		{name: "the controller's record goes to the VM", vm: vmView{Trust: trustRecorded, Fingerprint: "SHA256:k"}, rec: withTZ,
			steps: []stepKind{stepRecordSync}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Timezone: "UTC", Services: []string{"klnagent"}, Password: "Op3rator-Pass"}
			d, err := buildDesired(o)
			require.NoError(t, err)
			login := "Op3rator-Pass"
			if c.image {
				o.ImagePassword, login = "Im4ge-Pass", "Im4ge-Pass"
				d, err = replaceImagePassword(d, o)
				require.NoError(t, err)
			}
			vm := c.vm
			p := makePlan(d, current{Host: "h", Record: c.rec, LoginPassword: login, ImageLogin: c.image, VM: &vm})
			var kinds []stepKind
			for _, s := range p.Steps {
				kinds = append(kinds, s.Kind)
			}
			if c.image {
				// The timezone is new in an empty record: a real change, then its restart.
				assert.Equal(t, append(c.steps[:1:1], stepCommand, stepPasswd, stepCommand), kinds)
				assert.Equal(t, []string{"timezone UTC", "passwd klconfig", "manageservices restart klnagent"}, p.Commands())
				assert.Equal(t, map[string]any{"klconfig": pwImage}, p.Before["passwords"])
				assert.Equal(t, map[string]any{"klconfig": pwChanged}, p.After["passwords"])
			} else {
				assert.Equal(t, c.steps, kinds, "no klconfig command: the timezone is recorded")
				assert.Empty(t, p.Commands())
			}
			if c.hostKey == nil {
				assert.NotContains(t, p.Before, "host_key")
			} else {
				assert.Equal(t, c.hostKey, []any{p.Before["host_key"], p.After["host_key"]})
			}
		})
	}
}

// The image's password is replaced by the operator's; without one the task cannot go on.
func TestReplaceImagePassword(t *testing.T) {
	d, err := replaceImagePassword(desired{}, Options{ImagePassword: "img"})
	require.EqualError(t, err, "set password (or passwords.klconfig) to the operator's configuration password, which replaces the image's")
	assert.Empty(t, d.Passwords)

	d, err = replaceImagePassword(desired{}, Options{Password: "Op3rator", ImagePassword: "img"})
	require.NoError(t, err)
	require.Len(t, d.Passwords, 1)
	assert.Equal(t, "klconfig", d.Passwords[0].User)
	assert.Equal(t, "Op3rator\n", string(d.Passwords[0].Cmd.Stdin))

	own, err := buildDesired(Options{Passwords: &PasswordsOptions{Klconfig: "Own-Pass1"}})
	require.NoError(t, err)
	d, err = replaceImagePassword(own, Options{Password: "Op3rator", ImagePassword: "img"})
	require.NoError(t, err)
	require.Len(t, d.Passwords, 1, "passwords.klconfig is the one set")
	assert.Equal(t, "Own-Pass1\n", string(d.Passwords[0].Cmd.Stdin))
}
