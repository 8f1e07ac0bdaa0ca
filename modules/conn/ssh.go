package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/ksvla/lightagent/internal/klconfig"
)

// SSHTarget is how a run reaches one SVM's klconfig over SSH.
type SSHTarget struct {
	Host string
	Port int
	// Login is the SSH login and host key check. Its Addr is made of Host
	// and Port; its Password changes with SSH.SetPassword.
	Login klconfig.SSHConfig
	// Pin is the host key fingerprint every connection accepts ("" for
	// Login's policy): the key recorded on the SVM's VM, checked strictly
	// wherever the SVM answers.
	Pin string
	// Wait is how long a command keeps retrying, with backoff, while the
	// SVM does not answer yet (booting, network restarting).
	Wait time.Duration
	// ScratchKnownHosts makes the runner read and write a scratch copy of
	// Login.KnownHostsFile, so that accept_new records nothing (check
	// mode). Close removes the copy.
	ScratchKnownHosts bool
}

// SSH is the run's connection to one SVM. klconfig takes one SSH
// connection per command, so every command meets the SVM as it is now
// (after a passwd or a network change); what lasts the run is where the SVM
// answers, the password that logs in, how its host key is checked, and the
// scratch known_hosts of check mode, which the session holder removes
// however the run ends. It carries secrets and is never returned.
type SSH struct {
	target     SSHTarget
	host       string // where the SVM answers now
	knownHosts string // the file the runner reads: the user's, or a scratch copy
	scratch    string // the scratch copy to remove, "" when none
	client     *klconfig.Client
}

func openSSH(t SSHTarget) (*SSH, error) {
	c := &SSH{target: t, host: t.Host, knownHosts: t.Login.KnownHostsFile}
	if t.ScratchKnownHosts && c.knownHosts != "" {
		scratch, err := scratchCopy(c.knownHosts)
		if err != nil {
			return nil, err
		}
		c.knownHosts, c.scratch = scratch, scratch
	}
	if err := c.Connect(t.Host, ""); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
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

// close removes the scratch known_hosts; a leftover one holds only public
// keys, so a failed removal is not an error.
func (c *SSH) close() {
	if c.scratch != "" {
		_ = os.Remove(c.scratch)
		c.scratch = ""
	}
}

// Host is where the SVM answers now.
func (c *SSH) Host() string { return c.host }

// Addr is host:port of the SVM at host.
func (c *SSH) Addr(host string) string { return net.JoinHostPort(host, strconv.Itoa(c.target.Port)) }

// Pinned reports whether every connection accepts only the target's Pin.
func (c *SSH) Pinned() bool { return c.target.Pin != "" }

// Connect points the connection at host (the SVM moved there). With pin,
// only that host key is accepted; "" keeps the target's Pin or policy. It
// checks the configuration only: the next command dials.
func (c *SSH) Connect(host, pin string) error {
	if pin == "" {
		pin = c.target.Pin
	}
	cfg := c.target.Login
	cfg.Addr, cfg.KnownHostsFile = c.Addr(host), c.knownHosts
	if cfg.HostKey == klconfig.HostKeyOff {
		cfg.KnownHostsFile, cfg.Fingerprint = "", ""
	}
	if pin != "" {
		cfg.HostKey, cfg.KnownHostsFile, cfg.Fingerprint = klconfig.HostKeyStrict, "", pin
	}
	r, err := klconfig.NewSSHRunner(cfg)
	if err != nil {
		return err
	}
	c.client = klconfig.New(klconfig.Retry{Runner: r, MaxWait: c.target.Wait})
	c.host = host
	return nil
}

// SetPassword makes later commands log in with password (after passwd
// changed it, or to try the next candidate).
func (c *SSH) SetPassword(password string) error {
	c.target.Login.Password = password
	return c.Connect(c.host, "")
}

// Password is the password commands log in with now.
func (c *SSH) Password() string { return c.target.Login.Password }

// Do runs one command on the SVM where it answers now.
func (c *SSH) Do(ctx context.Context, cmd klconfig.Command) (klconfig.Result, error) {
	return c.client.Do(ctx, cmd)
}
