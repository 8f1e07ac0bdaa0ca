package svm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const testPassword = "Conf1g-Pass"

var ipSeq atomic.Int32

// testIP returns a loopback address of its own for each SVM of this test binary; the third octet
// comes from the pid so that concurrent test binaries rarely share one (ports are ephemeral anyway).
func testIP() string {
	n := ipSeq.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 100+os.Getpid()%100, os.Getpid()/100%250, n)
}

// startSVM starts an SVM on an ephemeral port with fast delays; mod adjusts the config first.
func startSVM(t *testing.T, mod func(*Config)) *SVM {
	t.Helper()
	cfg := Config{
		Name:                "svm-" + t.Name(),
		Version:             "6.2.0.200",
		IP:                  testIP(),
		Port:                EphemeralPort,
		Password:            testPassword,
		RootPassword:        "Root-Pass1",
		NetworkRestartDelay: 30 * time.Millisecond,
		RebootDelay:         30 * time.Millisecond,
		RebootDowntime:      30 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func clientConfig(s *SVM, auth ...ssh.AuthMethod) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            "klconfig",
		Auth:            auth,
		HostKeyCallback: ssh.FixedHostKey(s.HostKey()),
		Timeout:         5 * time.Second,
	}
}

func dial(t *testing.T, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	t.Helper()
	c, err := ssh.Dial("tcp", addr, cfg)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// sshExec runs one command with a password over x/crypto/ssh and returns stdout and exit status.
func sshExec(t *testing.T, s *SVM, password, cmd, stdin string) (string, int) {
	t.Helper()
	c, err := dial(t, s.Addr(), clientConfig(s, ssh.Password(password)))
	require.NoError(t, err)
	return sessionExec(t, c, cmd, stdin)
}

func sessionExec(t *testing.T, c *ssh.Client, cmd, stdin string) (string, int) {
	t.Helper()
	sess, err := c.NewSession()
	require.NoError(t, err)
	defer sess.Close()
	var out bytes.Buffer
	sess.Stdout = &out
	sess.Stdin = strings.NewReader(stdin)
	err = sess.Run(cmd)
	var exitErr *ssh.ExitError
	if errors.As(err, &exitErr) {
		return out.String(), exitErr.ExitStatus()
	}
	require.NoError(t, err)
	return out.String(), 0
}

// newKey returns a fresh ed25519 key as a signer and as an OpenSSH private key PEM.
func newKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	return signer, pem.EncodeToMemory(block)
}

func authorizedLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// openSSH runs the OpenSSH client against s with key auth and strict host key checking.
type openSSH struct {
	knownHosts, identity string
}

func newOpenSSH(t *testing.T, s *SVM, pemKey []byte) openSSH {
	t.Helper()
	dir := t.TempDir()
	o := openSSH{knownHosts: filepath.Join(dir, "known_hosts"), identity: filepath.Join(dir, "id")}
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey())
	require.NoError(t, os.WriteFile(o.knownHosts, []byte(line+"\n"), 0o600))
	require.NoError(t, os.WriteFile(o.identity, pemKey, 0o600))
	return o
}

func (o openSSH) run(t *testing.T, s *SVM, args ...string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(s.Addr())
	require.NoError(t, err)
	argv := []string{
		"-F", "/dev/null", "-n", "-p", port, "-i", o.identity,
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + o.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "klconfig@" + host,
	}
	cmd := exec.Command("/usr/bin/ssh", append(argv, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return stdout.String(), exitErr.ExitCode()
	}
	require.NoError(t, err, "ssh stderr: %s", stderr.String())
	return stdout.String(), 0
}

// eventually waits for cond, failing after a second.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 2*time.Second, 5*time.Millisecond, msg)
}
