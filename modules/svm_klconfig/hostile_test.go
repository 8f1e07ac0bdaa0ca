package svmklconfig

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
)

// Hostile input is refused before the SVM is contacted: each case is a real
// module call, the message names the option, and the SVM's command log
// stays empty.
func TestHostileInputNeverReachesTheSVM(t *testing.T) {
	f := startSVM(t, nil)
	mb := strings.Repeat("a", 1<<20)
	cases := []struct {
		name  string
		extra map[string]any
		msg   string // prefix
	}{
		{"1 MB timezone", map[string]any{"timezone": "Europe/" + mb}, "timezone: klconfig: time zone \"Europe/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" is not a tz database name"},
		{"1 MB dnslookup", map[string]any{"commands": []any{"dnslookup " + mb}}, "commands[0]: klconfig: dnslookup: command line of 1048586 bytes is longer than the 2048 allowed"},
		{"long host name", map[string]any{"commands": []any{"dnslookup " + strings.Repeat("a.", 130) + "com"}}, "commands[0]: klconfig: dnslookup name "},
		{"1 MB timezone command", map[string]any{"commands": []any{"timezone " + mb[:2000]}}, "commands[0]: klconfig: time zone "},
		{"passwd in commands", map[string]any{"commands": []any{"passwd klconfig"}},
			"commands[0]: passwd is refused: it reads the new password from standard input; set passwords with the passwords option (passwords.klconfig, passwords.root), which sends them on stdin"},
		{"extra argument", map[string]any{"commands": []any{"reboot now"}}, "commands[0]: klconfig: reboot takes 0 arguments, got 1"},
		{"bad nagent port", map[string]any{"commands": []any{"nagent 192.0.2.1 99999"}}, "commands[0]: klconfig: nagent ports 99999/0 out of range"},
		{"bad dhcp flag", map[string]any{"commands": []any{"dhcp eth0 maybe"}}, `commands[0]: klconfig: dhcp MakePrimary "maybe": want yes or no`},
		{"negative port", map[string]any{"port": -22}, "value of port must be between 1 and 65535, got: -22"},
		{"port too large", map[string]any{"port": 70000}, "value of port must be between 1 and 65535, got: 70000"},
		{"negative timeout", map[string]any{"timeout": -1}, "value of timeout must be between 1 and 604800, got: -1"},
		{"negative wait_timeout", map[string]any{"wait_timeout": -5}, "value of wait_timeout must be between 0 and 604800, got: -5"},
		{"zero connect_timeout", map[string]any{"connect_timeout": 0}, "value of connect_timeout must be between 1 and 604800, got: 0"},
		{"huge timeout", map[string]any{"timeout": 1 << 40}, "value of timeout must be between 1 and 604800, got: 1099511627776"},
		{"ksc ssl_port", map[string]any{"ksc": map[string]any{"address": "192.0.2.1", "ssl_port": 0}},
			"value of ssl_port must be between 1 and 65535, got: 0 found in ksc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, check := range []bool{true, false} {
				got := run(t, f.args(t, c.extra), ansibletest.Mode{Check: check})
				require.True(t, got.Failed(), "check=%v", check)
				assert.False(t, got.Changed())
				assert.True(t, strings.HasPrefix(got.Msg(), c.msg), "check=%v: %s", check, got.Msg())
				assert.Less(t, len(got.Msg()), 600, "a refusal never echoes the whole input")
			}
			assert.Empty(t, f.commands(), "nothing may reach the SVM")
			assert.NoDirExists(t, f.records, "nothing recorded")
		})
	}
}

// host_key_checking=off is a warning, once per task, naming the option.
func TestHostKeyCheckingOffWarns(t *testing.T) {
	f := startSVM(t, nil)
	args := f.args(t, map[string]any{"host_key_checking": "off", "gather": true})
	delete(args, "known_hosts")
	got := run(t, args, ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	n := 0
	for _, w := range toStrings(got["warnings"]) {
		if strings.HasPrefix(w, "host_key_checking=off: ") {
			n++
		}
	}
	assert.Equal(t, 1, n, "one warning naming the option: %v", got["warnings"])

	got = run(t, f.args(t, map[string]any{"gather": true}), ansibletest.Mode{})
	require.False(t, got.Failed(), got.Msg())
	for _, w := range toStrings(got["warnings"]) {
		assert.NotContains(t, w, "host_key_checking", "strict checking gives no warning")
	}
}
