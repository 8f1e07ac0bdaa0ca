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
