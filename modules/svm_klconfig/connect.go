package svmklconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/conn"
)

// reach is how the run reaches the SVM, as Observe settled it: values only.
// The connection itself lives in the session holder (conn.Sessions), which
// closes it however the run ends.
type reach struct {
	knownHosts  string  // the user's known_hosts file ("" when not read), for messages
	vm          *vmLink // option vm; nil without
	fingerprint string  // the SVM's host key, SHA256:...
}

// svmConn is the run's SSH connection to the SVM, with its failures
// explained in terms of the options that fix them.
type svmConn struct {
	*conn.SSH
	o    Options
	link reach
}

// sshTarget checks the credentials and the host key options and says how
// to reach the SVM at host. pin is the host key the VM settled ("" when it
// settled none).
func sshTarget(o Options, host string, check bool, pin string) (conn.SSHTarget, error) {
	t := conn.SSHTarget{Host: host, Port: o.Port, Pin: pin, Wait: time.Duration(o.WaitTimeout) * time.Second,
		Login: klconfig.SSHConfig{User: o.Username, Password: candidates(o)[0], Passphrase: []byte(o.PrivateKeyPassphrase),
			Fingerprint: o.HostKey, Timeout: time.Duration(o.ConnectTimeout) * time.Second}}
	if o.PrivateKey != "" {
		t.Login.PrivateKey = []byte(o.PrivateKey)
	} else if o.PrivateKeyFile != "" {
		b, err := os.ReadFile(o.PrivateKeyFile)
		if err != nil {
			return t, fmt.Errorf("read private_key_file: %w", err)
		}
		t.Login.PrivateKey = b
	}
	if t.Login.Password == "" && len(t.Login.PrivateKey) == 0 {
		return t, fmt.Errorf("a credential is required: set the password option (or export %s), image_password (or export %s), private_key, or private_key_file (or export %s)", EnvPassword, EnvImagePassword, EnvPrivateKeyFile)
	}
	switch o.HostKeyChecking {
	case "accept_new":
		t.Login.HostKey = klconfig.HostKeyAcceptNew
		if o.HostKey != "" {
			return t, errors.New("host_key_checking=accept_new records keys in known_hosts: set known_hosts instead of host_key, or use host_key_checking=strict with host_key")
		}
	case "off":
		t.Login.HostKey = klconfig.HostKeyOff
	default:
		t.Login.HostKey = klconfig.HostKeyStrict
	}
	knownHosts := o.KnownHosts
	if pin != "" {
		// The VM settled the key: known_hosts is neither read nor written.
		t.Login.HostKey, knownHosts = klconfig.HostKeyStrict, ""
	} else if knownHosts == "" && o.HostKey == "" && t.Login.HostKey != klconfig.HostKeyOff {
		home, err := os.UserHomeDir()
		if err != nil {
			return t, fmt.Errorf("known_hosts is not set and the home directory is unknown (%w): set known_hosts or host_key", err)
		}
		knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	t.Login.KnownHostsFile = knownHosts
	// Check mode records nothing, not even a new SVM's key.
	t.ScratchKnownHosts = check && t.Login.HostKey == klconfig.HostKeyAcceptNew
	return t, nil
}

// candidates are the klconfig passwords login tries, in order, without repeats; [""] when only
// a key is given.
func candidates(o Options) []string {
	var out []string
	next := ""
	if o.Passwords != nil {
		next = o.Passwords.Klconfig
	}
	for _, pw := range []string{o.Password, next, o.ImagePassword} {
		if pw != "" && !slices.Contains(out, pw) {
			out = append(out, pw)
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

// hostKeyError names option host_key when its fingerprint is the problem.
func hostKeyError(o Options, err error) error {
	if err != nil && o.HostKey != "" && strings.Contains(err.Error(), "fingerprint") {
		return fmt.Errorf("host_key: %w", err)
	}
	return err
}

// connect points the connection at host; see conn.SSH.Connect.
func (s svmConn) connect(host, pin string) error { return hostKeyError(s.o, s.Connect(host, pin)) }

// setPassword makes later commands log in with password.
func (s svmConn) setPassword(password string) error {
	return hostKeyError(s.o, s.SetPassword(password))
}

// addr is where the SVM answers now, host:port.
func (s svmConn) addr() string { return s.Addr(s.Host()) }

// do runs one command on the SVM where it answers now and explains failures in terms of the
// options that fix them. Warnings (ERROR lines before KLCONFIG OK) go to warn.
func (s svmConn) do(ctx context.Context, cmd klconfig.Command, warn func(string)) (klconfig.Result, error) {
	res, err := s.Do(ctx, cmd)
	if err != nil {
		return res, s.explain(err, cmd)
	}
	if len(res.Errors) > 0 {
		warn(fmt.Sprintf("klconfig %s on %s: %s", display(cmd), s.addr(), strings.Join(res.Errors, "; ")))
	}
	return res, nil
}

func (s svmConn) explain(err error, cmd klconfig.Command) error {
	addr, vm, knownHosts := s.addr(), s.link.vm, s.link.knownHosts
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
			"host_key_checking=accept_new to record each new SVM's key on first contact", knownHosts, knownHosts), err: err}
	case errors.Is(err, klconfig.ErrHostKeyUnknown) && vm != nil:
		return fmt.Errorf("host key of %s is not in known_hosts %s, no host key is recorded on vm %s and the VM does not await first contact (custom attribute %s=%s, which only svm_deploy sets on a VM it has just created): verify the SVM's key, then add it to known_hosts (%w)",
			addr, knownHosts, vm.contact.Name, vsphere.MarkFirstContact, vsphere.FirstContactPending, err)
	case errors.Is(err, klconfig.ErrHostKeyUnknown):
		return fmt.Errorf("host key of %s is not in known_hosts %s: add it or set host_key_checking=accept_new (%w)", addr, knownHosts, err)
	case errors.Is(err, klconfig.ErrHostKeyMismatch) && vm != nil && vm.trust == trustRecorded:
		return fmt.Errorf("host key of %s does not match the key recorded on vm %s (custom attribute %s, %s): another machine answers at this address, or the SVM was reinstalled; verify it before clearing the attribute (%w)",
			addr, vm.contact.Name, vsphere.MarkHostKey, vm.fingerprint(), err)
	case errors.Is(err, klconfig.ErrHostKeyMismatch) && vm != nil && vm.trust == trustFirstContact:
		return fmt.Errorf("host key of %s changed during the first contact with vm %s (first seen %s): another machine answers at this address; nothing was trusted (%w)",
			addr, vm.contact.Name, vm.fingerprint(), err)
	case errors.Is(err, klconfig.ErrHostKeyMismatch):
		where := "known_hosts " + knownHosts
		if s.o.HostKey != "" {
			where = "host_key " + s.o.HostKey
		}
		return fmt.Errorf("host key of %s does not match %s: the SVM was redeployed or another machine answers there; verify it, then fix %s (%w)", addr, where, where, err)
	case errors.Is(err, klconfig.ErrAuthFailed):
		return fmt.Errorf("authentication as %s on %s failed: check the password option (or %s), image_password (or %s), private_key or private_key_file (%w)", s.o.Username, addr, EnvPassword, EnvImagePassword, err)
	case errors.Is(err, klconfig.ErrDropped):
		// Repeatable commands were already sent again (klconfig.Retry); this one could not be, or
		// kept dropping. Nothing is recorded for it, so the rerun reads or compares it again.
		return fmt.Errorf("klconfig command %q on %s: the SSH connection dropped while the command ran, so the SVM may or may not have applied it; rerun the task to check and apply it again: %w",
			display(cmd), addr, err)
	case errors.Is(err, klconfig.ErrUnreachable):
		return fmt.Errorf("svm %s did not answer over SSH within wait_timeout=%ds: %w", addr, s.o.WaitTimeout, err)
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

// identify reads the SVM's host key, after the verified login proved the SVM is up.
func (s svmConn) identify(ctx context.Context) (ssh.PublicKey, error) {
	key, err := klconfig.FetchHostKey(ctx, s.addr(), time.Duration(s.o.ConnectTimeout)*time.Second)
	if err != nil {
		return nil, fmt.Errorf("read the host key of svm %s: %w", s.addr(), err)
	}
	return key, nil
}

// follow finds the SVM at host after a network restart: only its own host key is accepted there.
// It then checks the new address against the user's policy, so accept_new records it and strict
// warns when the next run would refuse it.
func (s svmConn) follow(ctx context.Context, host string, warn func(string)) error {
	old := s.Host()
	if err := s.connect(host, s.link.fingerprint); err != nil {
		return err
	}
	if _, err := s.do(ctx, klconfig.APIVersion(), warn); err != nil {
		return fmt.Errorf("follow svm from %s to %s after the network restart: %w", s.Addr(old), s.Addr(host), err)
	}
	if s.Pinned() {
		return nil // the key recorded on the VM is the check, at any address
	}
	if err := s.connect(host, ""); err != nil {
		return err
	}
	if _, err := s.do(ctx, klconfig.APIVersion(), warn); err != nil {
		if errors.Is(err, klconfig.ErrHostKeyUnknown) || errors.Is(err, klconfig.ErrHostKeyMismatch) {
			warn(fmt.Sprintf("the SVM now answers at %s (host key %s), but the next run will refuse it: %v", s.Addr(host), s.link.fingerprint, err))
			return s.connect(host, s.link.fingerprint)
		}
		return err
	}
	return nil
}
