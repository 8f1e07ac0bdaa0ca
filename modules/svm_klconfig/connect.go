package svmklconfig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// state is the live connection to one SVM: where it answers, how to log in and how its host key
// is checked. It carries secrets and is never returned.
type state struct {
	opts     Options
	host     string // where the SVM answers now
	password string // klconfig password that logs in now
	key      []byte // private key PEM
	policy   klconfig.HostKeyPolicy
	// knownHosts is the file the runner reads; in check mode with accept_new it is a scratch
	// copy, so that check mode records nothing.
	knownHosts     string
	knownHostsName string // the user's file, for messages
	fingerprint    string // the SVM's host key, SHA256:...
	hostKey        ssh.PublicKey
	// vm is the SVM's VM (option vm); when it settled the host key, pin is that key and every
	// connection accepts only it, whatever the user's policy.
	vm      *vmLink
	pin     string
	client  *klconfig.Client
	cleanup func()
}

func newState(o Options, check bool, vm *vmLink) (*state, error) {
	s := &state{opts: o, host: o.Host, cleanup: func() {}, vm: vm, pin: vm.fingerprint()}
	s.password = s.candidates()[0]
	if o.PrivateKey != "" {
		s.key = []byte(o.PrivateKey)
	} else if o.PrivateKeyFile != "" {
		b, err := os.ReadFile(o.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read private_key_file: %w", err)
		}
		s.key = b
	}
	if s.password == "" && len(s.key) == 0 {
		return nil, fmt.Errorf("a credential is required: set the password option (or export %s), image_password (or export %s), private_key, or private_key_file (or export %s)", EnvPassword, EnvImagePassword, EnvPrivateKeyFile)
	}
	switch o.HostKeyChecking {
	case "accept_new":
		s.policy = klconfig.HostKeyAcceptNew
		if o.HostKey != "" {
			return nil, errors.New("host_key_checking=accept_new records keys in known_hosts: set known_hosts instead of host_key, or use host_key_checking=strict with host_key")
		}
	case "off":
		s.policy = klconfig.HostKeyOff
	default:
		s.policy = klconfig.HostKeyStrict
	}
	s.knownHosts = o.KnownHosts
	if s.pin != "" {
		// The VM settled the key: known_hosts is neither read nor written.
		s.policy, s.knownHosts = klconfig.HostKeyStrict, ""
	} else if s.knownHosts == "" && o.HostKey == "" && s.policy != klconfig.HostKeyOff {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("known_hosts is not set and the home directory is unknown (%w): set known_hosts or host_key", err)
		}
		s.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	s.knownHostsName = s.knownHosts
	if check && s.policy == klconfig.HostKeyAcceptNew {
		scratch, err := scratchCopy(s.knownHosts)
		if err != nil {
			return nil, err
		}
		s.knownHosts = scratch
		s.cleanup = func() { _ = os.Remove(scratch) } // a leftover scratch file holds only public keys
	}
	if err := s.connect(s.host, ""); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// candidates are the klconfig passwords login tries, in order, without repeats; [""] when only
// a key is given.
func (s *state) candidates() []string {
	var out []string
	next := ""
	if s.opts.Passwords != nil {
		next = s.opts.Passwords.Klconfig
	}
	for _, pw := range []string{s.opts.Password, next, s.opts.ImagePassword} {
		if pw != "" && !slices.Contains(out, pw) {
			out = append(out, pw)
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

// scratchCopy copies known_hosts (if any) to a temporary file.
func scratchCopy(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read known_hosts: %w", err)
	}
	f, err := os.CreateTemp("", "ksvla-known_hosts-*")
	if err != nil {
		return "", fmt.Errorf("check mode copy of known_hosts: %w", err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("check mode copy of known_hosts: %w", werr)
	}
	return f.Name(), nil
}

func (s *state) addr(host string) string {
	return net.JoinHostPort(host, strconv.Itoa(s.opts.Port))
}

// connect points the client at host. With pin, only that host key is accepted (following the SVM
// to a new address); otherwise the user's policy applies.
func (s *state) connect(host, pin string) error {
	if pin == "" {
		pin = s.pin
	}
	cfg := klconfig.SSHConfig{
		Addr: s.addr(host), User: s.opts.Username, Password: s.password, PrivateKey: s.key,
		Passphrase: []byte(s.opts.PrivateKeyPassphrase), HostKey: s.policy,
		KnownHostsFile: s.knownHosts, Fingerprint: s.opts.HostKey,
		Timeout: time.Duration(s.opts.ConnectTimeout) * time.Second,
	}
	if s.policy == klconfig.HostKeyOff {
		cfg.KnownHostsFile, cfg.Fingerprint = "", ""
	}
	if pin != "" {
		cfg.HostKey, cfg.KnownHostsFile, cfg.Fingerprint = klconfig.HostKeyStrict, "", pin
	}
	r, err := klconfig.NewSSHRunner(cfg)
	if err != nil {
		if s.opts.HostKey != "" && strings.Contains(err.Error(), "fingerprint") {
			return fmt.Errorf("host_key: %w", err)
		}
		return err
	}
	s.client = klconfig.New(klconfig.Retry{Runner: r, MaxWait: time.Duration(s.opts.WaitTimeout) * time.Second})
	return nil
}

// do runs one command on the SVM where it answers now and explains failures in terms of the
// options that fix them. Warnings (ERROR lines before KLCONFIG OK) go to warn.
func (s *state) do(ctx context.Context, cmd klconfig.Command, warn func(string)) (klconfig.Result, error) {
	res, err := s.client.Do(ctx, cmd)
	if err != nil {
		return res, s.explain(err, cmd)
	}
	if len(res.Errors) > 0 {
		warn(fmt.Sprintf("klconfig %s on %s: %s", display(cmd), s.addr(s.host), strings.Join(res.Errors, "; ")))
	}
	return res, nil
}

func (s *state) explain(err error, cmd klconfig.Command) error {
	addr := s.addr(s.host)
	var failed *klconfig.CommandFailedError
	switch {
	case errors.As(err, &failed):
		var parts []string
		for _, e := range failed.ErrorLines {
			parts = append(parts, "ERROR: "+e)
		}
		if failed.UsageLine != "" {
			parts = append(parts, failed.UsageLine)
		}
		msg := fmt.Sprintf("klconfig command %q on %s failed (KLCONFIG FAILED)", display(cmd), addr)
		if len(parts) > 0 {
			msg += ": " + strings.Join(parts, "; ")
		}
		return &commandError{msg: msg, err: err}
	case errors.Is(err, klconfig.ErrKnownHostsMissing):
		// Said once, without the runner's prefix: the file is the problem, not the command.
		return &commandError{msg: fmt.Sprintf("known_hosts file %s does not exist: create it with the SVMs' host keys "+
			"(ssh-keyscan <svm> >> %s), set option known_hosts to the file that has them, or set "+
			"host_key_checking=accept_new to record each new SVM's key on first contact", s.knownHostsName, s.knownHostsName), err: err}
	case errors.Is(err, klconfig.ErrHostKeyUnknown) && s.vm != nil:
		return fmt.Errorf("host key of %s is not in known_hosts %s, no host key is recorded on vm %s and the VM does not await first contact (custom attribute %s=%s, which only svm_deploy sets on a VM it has just created): verify the SVM's key, then add it to known_hosts (%w)",
			addr, s.knownHostsName, s.vm.contact.Name, vsphere.MarkFirstContact, vsphere.FirstContactPending, err)
	case errors.Is(err, klconfig.ErrHostKeyUnknown):
		return fmt.Errorf("host key of %s is not in known_hosts %s: add it or set host_key_checking=accept_new (%w)", addr, s.knownHostsName, err)
	case errors.Is(err, klconfig.ErrHostKeyMismatch) && s.vm != nil && s.vm.trust == trustRecorded:
		return fmt.Errorf("host key of %s does not match the key recorded on vm %s (custom attribute %s, %s): another machine answers at this address, or the SVM was reinstalled; verify it before clearing the attribute (%w)",
			addr, s.vm.contact.Name, vsphere.MarkHostKey, s.pin, err)
	case errors.Is(err, klconfig.ErrHostKeyMismatch) && s.vm != nil && s.vm.trust == trustFirstContact:
		return fmt.Errorf("host key of %s changed during the first contact with vm %s (first seen %s): another machine answers at this address; nothing was trusted (%w)",
			addr, s.vm.contact.Name, s.pin, err)
	case errors.Is(err, klconfig.ErrHostKeyMismatch):
		where := "known_hosts " + s.knownHostsName
		if s.opts.HostKey != "" {
			where = "host_key " + s.opts.HostKey
		}
		return fmt.Errorf("host key of %s does not match %s: the SVM was redeployed or another machine answers there; verify it, then fix %s (%w)", addr, where, where, err)
	case errors.Is(err, klconfig.ErrAuthFailed):
		return fmt.Errorf("authentication as %s on %s failed: check the password option (or %s), image_password (or %s), private_key or private_key_file (%w)", s.opts.Username, addr, EnvPassword, EnvImagePassword, err)
	case errors.Is(err, klconfig.ErrDropped):
		// Repeatable commands were already sent again (klconfig.Retry); this one could not be, or
		// kept dropping. Nothing is recorded for it, so the rerun reads or compares it again.
		return fmt.Errorf("klconfig command %q on %s: the SSH connection dropped while the command ran, so the SVM may or may not have applied it; rerun the task to check and apply it again: %w",
			display(cmd), addr, err)
	case errors.Is(err, klconfig.ErrUnreachable):
		return fmt.Errorf("svm %s did not answer over SSH within wait_timeout=%ds: %w", addr, s.opts.WaitTimeout, err)
	}
	if strings.HasPrefix(err.Error(), "klconfig "+cmd.Name+" on ") {
		return err // the runner named the command and the SVM already
	}
	return fmt.Errorf("klconfig %s on %s: %w", display(cmd), addr, err)
}

// commandError is a KLCONFIG FAILED result, explained.
type commandError struct {
	msg string
	err error
}

func (e *commandError) Error() string { return e.msg }
func (e *commandError) Unwrap() error { return e.err }

// identify learns the SVM's host key fingerprint, after the verified login proved the SVM is up.
func (s *state) identify(ctx context.Context) error {
	key, err := klconfig.FetchHostKey(ctx, s.addr(s.host), time.Duration(s.opts.ConnectTimeout)*time.Second)
	if err != nil {
		return fmt.Errorf("read the host key of svm %s: %w", s.addr(s.host), err)
	}
	s.fingerprint, s.hostKey = ssh.FingerprintSHA256(key), key
	return nil
}

// follow finds the SVM at host after a network restart: only its own host key is accepted there.
// It then checks the new address against the user's policy, so accept_new records it and strict
// warns when the next run would refuse it.
func (s *state) follow(ctx context.Context, host string, warn func(string)) error {
	old := s.host
	if err := s.connect(host, s.fingerprint); err != nil {
		return err
	}
	s.host = host
	if _, err := s.do(ctx, klconfig.APIVersion(), warn); err != nil {
		return fmt.Errorf("follow svm from %s to %s after the network restart: %w", s.addr(old), s.addr(host), err)
	}
	if s.pin != "" {
		return nil // the key recorded on the VM is the check, at any address
	}
	if err := s.connect(host, ""); err != nil {
		return err
	}
	if _, err := s.do(ctx, klconfig.APIVersion(), warn); err != nil {
		if errors.Is(err, klconfig.ErrHostKeyUnknown) || errors.Is(err, klconfig.ErrHostKeyMismatch) {
			warn(fmt.Sprintf("the SVM now answers at %s (host key %s), but the next run will refuse it: %v", s.addr(host), s.fingerprint, err))
			return s.connect(host, s.fingerprint)
		}
		return err
	}
	return nil
}
