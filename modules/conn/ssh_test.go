package conn

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/klconfig"
)

// Check mode with accept_new reads and writes a scratch copy of
// known_hosts; the session holder removes it however the run ends, and a
// failed open leaves none behind.
func TestSSHScratchKnownHosts(t *testing.T) {
	const line = "192.0.2.7 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKZxb4dnzHtJqvMEXhthJFDGJrNwwN2wqFqAfo0TAGaw\n"
	tests := []struct {
		name      string
		scratch   bool
		password  string
		wantCopy  bool
		wantError string
	}{
		{name: "check mode reads a copy", scratch: true, password: "pw", wantCopy: true},
		{name: "a real run reads the user's file", scratch: false, password: "pw"},
		{name: "a failed open leaves no copy", scratch: true, wantError: "a password or a private key is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			kh := filepath.Join(t.TempDir(), "known_hosts")
			require.NoError(t, os.WriteFile(kh, []byte(line), 0o600))
			var s Sessions
			c, err := s.OpenSSH(SSHTarget{Host: "192.0.2.7", Port: 22, ScratchKnownHosts: tc.scratch,
				Login: klconfig.SSHConfig{User: "klconfig", Password: tc.password, HostKey: klconfig.HostKeyAcceptNew, KnownHostsFile: kh}})
			if tc.wantError != "" {
				require.ErrorContains(t, err, tc.wantError)
				assert.Nil(t, s.SSH())
			} else {
				require.NoError(t, err)
				assert.Same(t, c, s.SSH())
				again, err := s.OpenSSH(SSHTarget{Host: "elsewhere"})
				require.NoError(t, err)
				assert.Same(t, c, again, "one connection per run")
				assert.Equal(t, "192.0.2.7:22", c.Addr(c.Host()))
				if tc.wantCopy {
					assert.NotEqual(t, kh, c.knownHosts)
					data, err := os.ReadFile(c.knownHosts)
					require.NoError(t, err)
					assert.Equal(t, line, string(data), "the copy holds the user's keys")
				} else {
					assert.Equal(t, kh, c.knownHosts)
				}
			}
			s.Close(context.Background())
			left, err := os.ReadDir(tmp)
			require.NoError(t, err)
			assert.Empty(t, left, "scratch files left behind")
			data, err := os.ReadFile(kh)
			require.NoError(t, err)
			assert.Equal(t, line, string(data), "the user's file is untouched")
			assert.Nil(t, s.SSH())
		})
	}
}
