package klconfig

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyPolicy says how the SSH runner checks the SVM's host key.
type HostKeyPolicy int

const (
	// HostKeyStrict accepts only a key found in KnownHostsFile or matching Fingerprint.
	HostKeyStrict HostKeyPolicy = iota
	// HostKeyAcceptNew records an unknown host's key in KnownHostsFile (trust on first use) and
	// still refuses a key that differs from the recorded one.
	HostKeyAcceptNew
	// HostKeyOff accepts any key. For labs only.
	HostKeyOff
)

// SSHConfig configures the SSH transport. Password and PrivateKey may both be set: the key is
// tried first.
type SSHConfig struct {
	Addr       string // "host" or "host:port" (port 22 by default)
	User       string // default "klconfig"
	Password   string
	PrivateKey []byte // PEM (OpenSSH, PKCS#1/8, EC)
	Passphrase []byte // for an encrypted PrivateKey
	HostKey    HostKeyPolicy
	// KnownHostsFile is an OpenSSH known_hosts file; required for AcceptNew, and for Strict unless
	// Fingerprint is set.
	KnownHostsFile string
	// Fingerprint pins the host key ("SHA256:..." as ssh-keygen -lf prints it); Strict only.
	Fingerprint string
	// Timeout bounds dialling plus the SSH handshake; default 15s. The command itself is bounded
	// by ctx only (nagent or a scanserver restart can take a while).
	Timeout time.Duration
}

// SSHRunner is the Runner over SSH: one TCP connection and one session per command, so that every
// command meets the SVM as it is now (after a passwd, an address change or a reboot).
type SSHRunner struct {
	addr     string
	user     string
	auth     []ssh.AuthMethod
	policy   HostKeyPolicy
	khFile   string
	pin      string
	timeout  time.Duration
	recordMu sync.Mutex // serialises appends to the known_hosts file
}

var _ Runner = (*SSHRunner)(nil)

// NewSSHRunner checks cfg and returns the runner. It fails on a missing credential, an unreadable
// private key or a host key policy without its file or fingerprint; errors never hold secrets.
func NewSSHRunner(cfg SSHConfig) (*SSHRunner, error) {
	if cfg.Addr == "" {
		return nil, errors.New("klconfig ssh: address is required")
	}
	addr := cfg.Addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "22")
	}
	r := &SSHRunner{addr: addr, user: cfg.User, policy: cfg.HostKey, khFile: cfg.KnownHostsFile, pin: cfg.Fingerprint, timeout: cfg.Timeout}
	if r.user == "" {
		r.user = "klconfig"
	}
	if r.timeout <= 0 {
		r.timeout = 15 * time.Second
	}
	if len(cfg.PrivateKey) > 0 {
		var signer ssh.Signer
		var err error
		if len(cfg.Passphrase) > 0 {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(cfg.PrivateKey, cfg.Passphrase)
		} else {
			signer, err = ssh.ParsePrivateKey(cfg.PrivateKey)
		}
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, fmt.Errorf("klconfig ssh %s: private key is encrypted: a passphrase is required", addr)
		case err != nil:
			return nil, fmt.Errorf("klconfig ssh %s: parse private key: %w", addr, err)
		}
		r.auth = append(r.auth, ssh.PublicKeys(signer))
	}
	if cfg.Password != "" {
		r.auth = append(r.auth, ssh.Password(cfg.Password))
	}
	if len(r.auth) == 0 {
		return nil, fmt.Errorf("klconfig ssh %s: a password or a private key is required", addr)
	}
	switch cfg.HostKey {
	case HostKeyStrict:
		if cfg.KnownHostsFile == "" && cfg.Fingerprint == "" {
			return nil, fmt.Errorf("klconfig ssh %s: strict host key checking needs a known_hosts file or a fingerprint", addr)
		}
		if cfg.Fingerprint != "" && !strings.HasPrefix(cfg.Fingerprint, "SHA256:") {
			return nil, fmt.Errorf("klconfig ssh %s: fingerprint %q: want SHA256:<base64>", addr, cfg.Fingerprint)
		}
	case HostKeyAcceptNew:
		if cfg.KnownHostsFile == "" {
			return nil, fmt.Errorf("klconfig ssh %s: accept_new host key checking needs a known_hosts file", addr)
		}
	case HostKeyOff:
	default:
		return nil, fmt.Errorf("klconfig ssh %s: unknown host key policy %d", addr, cfg.HostKey)
	}
	return r, nil
}

// Addr returns "host:port" the runner connects to.
func (r *SSHRunner) Addr() string { return r.addr }

// Run sends cmd as one exec request; Command.Stdin goes on stdin, then stdin is closed.
func (r *SSHRunner) Run(ctx context.Context, cmd Command) (Result, error) {
	line, err := cmd.Line()
	if err != nil {
		return Result{}, err
	}
	client, err := r.connect(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("klconfig %s on %s: %w", cmd, r.addr, err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return Result{}, fmt.Errorf("klconfig %s on %s: open session: %w: %w", cmd, r.addr, ErrUnreachable, err)
	}
	defer sess.Close()
	var stdout bytes.Buffer
	sess.Stdout = &stdout
	sess.Stderr = io.Discard // klconfig reports on stdout; stderr has nothing the parser needs
	if len(cmd.Stdin) > 0 {
		sess.Stdin = bytes.NewReader(cmd.Stdin)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Run(line) }()
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		_ = client.Close() // unblocks Run; the command may or may not have run on the SVM
		<-done
		return Result{}, fmt.Errorf("klconfig %s on %s: %w", cmd, r.addr, ctx.Err())
	}
	res, err := Parse(stdout.String())
	if err != nil {
		var exit *ssh.ExitError
		if runErr != nil && !errors.As(runErr, &exit) {
			// No marker and no exit status: the session died under the command, not the command
			// itself. Whether the SVM applied it cannot be known from here.
			return res, fmt.Errorf("klconfig %s on %s: %w (%v)", cmd, r.addr, ErrDropped, runErr)
		}
		if runErr != nil {
			// The marker is authoritative; the exit status is not documented, so it is only context.
			return res, fmt.Errorf("klconfig %s on %s: %w (session: %v)", cmd, r.addr, err, runErr)
		}
		return res, fmt.Errorf("klconfig %s on %s: %w", cmd, r.addr, err)
	}
	return res, nil
}

func (r *SSHRunner) connect(ctx context.Context) (*ssh.Client, error) {
	hostKeyCB, algos, err := r.hostKeyCallback()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", r.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial: %w", ctx.Err())
		}
		return nil, fmt.Errorf("dial: %w: %w", ErrUnreachable, err)
	}
	deadline, _ := dctx.Deadline()
	_ = conn.SetDeadline(deadline) // bounds the handshake; failing to set it only loses the bound
	stop := context.AfterFunc(dctx, func() { _ = conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, r.addr, &ssh.ClientConfig{
		User:              r.user,
		Auth:              r.auth,
		HostKeyCallback:   hostKeyCB,
		HostKeyAlgorithms: algos,
	})
	stop()
	if err != nil {
		_ = conn.Close()
		var netErr net.Error
		switch {
		case errors.Is(err, ErrHostKeyMismatch), errors.Is(err, ErrHostKeyUnknown):
			return nil, fmt.Errorf("handshake: %w", err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			// x/crypto has no typed auth error; its text names the methods, never a credential.
			return nil, fmt.Errorf("%w: %v", ErrAuthFailed, err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("handshake: %w", ctx.Err())
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed),
			errors.As(err, &netErr) && netErr.Timeout():
			// sshd coming up or going down under us: nothing was sent yet.
			return nil, fmt.Errorf("handshake: %w: %w", ErrUnreachable, err)
		default:
			return nil, fmt.Errorf("handshake: %w", err)
		}
	}
	_ = conn.SetDeadline(time.Time{}) // the command is bounded by ctx from here
	return ssh.NewClient(c, chans, reqs), nil
}

// hostKeyCallback builds the check for this connection and, with a known_hosts file, the host key
// algorithms to ask for: the types recorded for the host, so an SVM that has several host keys
// presents the recorded one instead of failing as a mismatch.
func (r *SSHRunner) hostKeyCallback() (ssh.HostKeyCallback, []string, error) {
	switch {
	case r.policy == HostKeyOff:
		return ssh.InsecureIgnoreHostKey(), nil, nil
	case r.policy == HostKeyStrict && r.pin != "":
		return func(host string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != r.pin {
				return fmt.Errorf("%w: %s presented %s %s, pinned %s", ErrHostKeyMismatch, host, key.Type(), got, r.pin)
			}
			return nil
		}, nil, nil
	}
	if r.policy == HostKeyAcceptNew {
		// Create the file on first use; an existing one is left as it is.
		f, err := os.OpenFile(r.khFile, os.O_CREATE|os.O_RDONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open known_hosts: %w", err)
		}
		_ = f.Close()
	}
	check, err := knownhosts.New(r.khFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: %s", ErrKnownHostsMissing, r.khFile)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read known_hosts: %w", err)
	}
	cb := func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		if len(ke.Want) > 0 {
			return fmt.Errorf("%w: %s presented %s %s, known_hosts %s:%d has another key", ErrHostKeyMismatch,
				host, key.Type(), ssh.FingerprintSHA256(key), ke.Want[0].Filename, ke.Want[0].Line)
		}
		if r.policy == HostKeyStrict {
			return fmt.Errorf("%w: %s (%s %s) is not in %s", ErrHostKeyUnknown, host, key.Type(), ssh.FingerprintSHA256(key), r.khFile)
		}
		return r.record(host, key)
	}
	return cb, knownAlgorithms(check, r.addr), nil
}

func (r *SSHRunner) record(host string, key ssh.PublicKey) error {
	r.recordMu.Lock()
	defer r.recordMu.Unlock()
	f, err := os.OpenFile(r.khFile, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record host key of %s: %w", host, err)
	}
	_, werr := fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(host)}, key))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("record host key of %s: %w", host, werr)
	}
	return nil
}

// probeKey never matches a real host key; checking it makes knownhosts list the keys it knows.
var probeKey, _ = ssh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())

func knownAlgorithms(check ssh.HostKeyCallback, addr string) []string {
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	remote := &net.TCPAddr{IP: net.ParseIP(host), Port: port}
	if remote.IP == nil {
		remote.IP = net.IPv4zero // a name: only the name's entries matter
	}
	var ke *knownhosts.KeyError
	if !errors.As(check(addr, remote, probeKey), &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

// Retry wraps a Runner and retries while the SVM is not reachable yet (booting, network restart,
// reboot), with bounded exponential backoff. It retries errors wrapping ErrUnreachable, which a
// Runner reports only before the command was sent, and ErrDropped of a Repeatable command, at most
// MaxDrops times: running it once more leaves the SVM as one run does. A dropped command that is
// not Repeatable, an auth failure, a host key problem or a KLCONFIG FAILED comes back at once.
type Retry struct {
	Runner   Runner
	MaxWait  time.Duration // give up after this much time in total; default 2 minutes (ctx may end sooner)
	MinDelay time.Duration // first backoff; default 250ms
	MaxDelay time.Duration // backoff cap; default 5s
	MaxDrops int           // resends of a dropped Repeatable command; default 2
}

// Run implements Runner.
func (r Retry) Run(ctx context.Context, cmd Command) (Result, error) {
	maxWait, delay, maxDelay, maxDrops := r.MaxWait, r.MinDelay, r.MaxDelay, r.MaxDrops
	if maxWait <= 0 {
		maxWait = 2 * time.Minute
	}
	if delay <= 0 {
		delay = 250 * time.Millisecond
	}
	if maxDelay <= 0 {
		maxDelay = 5 * time.Second
	}
	if maxDrops <= 0 {
		maxDrops = 2
	}
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	drops := 0
	for attempt := 1; ; attempt++ {
		res, err := r.Runner.Run(ctx, cmd)
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, ErrUnreachable):
		case errors.Is(err, ErrDropped) && cmd.Repeatable():
			if drops == maxDrops {
				return res, fmt.Errorf("%w (sent %d times, dropped every time)", err, drops+1)
			}
			drops++
		default:
			return res, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, fmt.Errorf("%w (gave up after %d attempts: %v)", err, attempt, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, maxDelay)
	}
}
