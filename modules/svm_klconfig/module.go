// Package svmklconfig is the svm_klconfig module: it brings an SVM's settings to the desired state
// through the klconfig script API over SSH (https://support.kaspersky.com/help/KSVLA/6.2/en-US/254869.htm).
//
// Settings klconfig can read back (DNS servers and search list) are read before they are written.
// The others (network, time zone, connector language, Administration Server, passwords, SSH key)
// are compared with a record kept on the controller under record_path: one JSON file per SVM,
// named after its address, port and host key fingerprint, holding a digest per applied setting.
// Deleting it makes the next run apply those settings again, which is safe: the commands are
// idempotent in effect.
package svmklconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/conn"
)

// module is svm_klconfig's phases for one run. Its sessions hold the run's connections: the SSH
// connection to the SVM and, with option vm, the vCenter login; the runtime closes them however
// the run ends.
type module struct{ conn.Sessions }

var (
	_ ansible.Phases[Options, *observed, *Plan] = (*module)(nil)
	_ ansible.Applies[Options, *Plan]           = (*module)(nil)
	_ ansible.Closer                            = (*module)(nil)
)

// New returns the module, fresh for each run.
func New() ansible.Module { return ansible.Typed[Options, *observed, *Plan](&module{}) }

// Spec implements ansible.Phases.
func (*module) Spec() ansible.Spec { return spec() }

// observed is what Observe read: the wish, what is, and how the SVM is reached.
type observed struct {
	desired desired
	current current
	link    reach
	gather  map[string]any
	reads   []string // read-only raw commands run
	outputs []any    // their output
}

// Observe connects (waiting for a booting SVM), reads what klconfig can tell and loads the record.
// It runs only read commands, in check mode too.
func (m *module) Observe(ctx context.Context, c *ansible.Call[Options]) (*observed, error) {
	o := c.Options
	d, err := buildDesired(o)
	if err != nil {
		return nil, err
	}
	host := o.Host
	var vm *vmLink
	if o.VM != "" {
		if vm, host, err = m.openVM(ctx, o); err != nil {
			return nil, err
		}
	}
	t, err := sshTarget(o, host, c.CheckMode, vm.fingerprint())
	if err != nil {
		return nil, err
	}
	sc, err := m.OpenSSH(t)
	if err != nil {
		return nil, hostKeyError(o, err)
	}
	s := svmConn{SSH: sc, o: o, link: reach{knownHosts: t.Login.KnownHostsFile, vm: vm}}
	obs := &observed{desired: d, current: current{Host: host}}
	if err := s.login(ctx, &obs.current, len(t.Login.PrivateKey) > 0); err != nil {
		return nil, err
	}
	s.link.fingerprint = vm.fingerprint() // the key the login was pinned to, if the VM settled one
	var hostKey ssh.PublicKey
	if s.link.fingerprint == "" {
		if hostKey, err = s.identify(ctx); err != nil {
			return nil, err
		}
		s.link.fingerprint = ssh.FingerprintSHA256(hostKey)
	}
	obs.link = s.link
	if obs.current.ImageLogin {
		if obs.desired, err = replaceImagePassword(obs.desired, o); err != nil {
			return nil, fmt.Errorf("the image's password logged in to svm %s: %w", s.addr(), err)
		}
	}
	if vm != nil {
		v := &vmView{Name: o.VM, Trust: vm.trust, Fingerprint: s.link.fingerprint, KeyLine: vm.keyLine(),
			HasRecord: vm.record != nil, Verified: t.Login.HostKey != klconfig.HostKeyOff}
		if v.KeyLine == "" && hostKey != nil {
			v.KeyLine = keyLine(hostKey)
		}
		obs.current.VM = v
	}
	read := func(cmd klconfig.Command) (klconfig.Result, error) { return s.do(ctx, cmd, c.Warn) }

	if d.DNSServers != nil || d.DNSSearch != nil || o.Gather {
		for _, kind := range []string{klconfig.DNSNameservers, klconfig.DNSSearchList} {
			cmd, _ := klconfig.DNSShow(kind) // constant kinds
			res, err := read(cmd)
			if err != nil {
				return nil, err
			}
			if kind == klconfig.DNSNameservers {
				obs.current.Nameservers = klconfig.ParseDNSShow(res)
			} else {
				obs.current.Search = klconfig.ParseDNSShow(res)
			}
		}
	}
	if o.Gather {
		if obs.gather, err = gather(read, obs.current); err != nil {
			return nil, err
		}
	}
	if d.ReadOnly && len(d.Raw) > 0 {
		for _, cmd := range d.Raw {
			res, err := read(cmd)
			obs.reads = append(obs.reads, display(cmd))
			if err != nil {
				c.Set("commands", obs.reads) // no plan reports them: the run ends here
				return nil, err
			}
			obs.outputs = append(obs.outputs, map[string]any{"command": display(cmd), "stdout_lines": nonNil(res.Lines)})
		}
	}
	rec, err := loadRecord(o.RecordPath, host, o.Port, s.link.fingerprint)
	if err != nil {
		return nil, err
	}
	if vm != nil && vm.record != nil && vm.record.HostKey == s.link.fingerprint {
		// The VM's record is the truth; the controller's file is only a cache of it.
		rec = *vm.record
		rec.Host, rec.Port = host, o.Port
		if rec.Settings == nil {
			rec.Settings = map[string]RecordEntry{}
		}
	}
	obs.current.Record = rec
	return obs, nil
}

// replaceImagePassword makes the plan change the klconfig password from the image's to the
// operator's, when the task does not set passwords.klconfig itself.
func replaceImagePassword(d desired, o Options) (desired, error) {
	for _, pw := range d.Passwords {
		if pw.User == "klconfig" {
			return d, nil
		}
	}
	if o.Password == "" {
		return d, errors.New("set password (or passwords.klconfig) to the operator's configuration password, which replaces the image's")
	}
	cmd, err := klconfig.Passwd("klconfig", o.Password)
	if err != nil {
		return d, fmt.Errorf("password: %w", err)
	}
	d.Passwords = append(d.Passwords, password{User: "klconfig", Cmd: cmd})
	return d, nil
}

// login proves the SVM answers with the expected host key and accepts the credentials. It tries
// the passwords in order: password; passwords.klconfig, which an earlier run may have set, so
// rerunning the same task is idempotent; image_password, which a fresh SVM still has. keyed: a
// private key logs in, so no password is proved.
func (s svmConn) login(ctx context.Context, cur *current, keyed bool) error {
	var first error
	for i, pw := range candidates(s.o) {
		if i > 0 {
			if err := s.setPassword(pw); err != nil {
				return err
			}
		}
		_, err := s.do(ctx, klconfig.APIVersion(), func(string) {})
		if err == nil {
			if !keyed {
				pw := s.Password()
				cur.LoginPassword = pw
				cur.ImageLogin = s.o.ImagePassword != "" && pw == s.o.ImagePassword && pw != operatorPassword(s.o)
			}
			return nil
		}
		if first == nil {
			first = err // the first failure names the option to fix
		}
		if !errors.Is(err, klconfig.ErrAuthFailed) {
			return err
		}
	}
	return first
}

// operatorPassword is the klconfig password the operator wants the SVM to have.
func operatorPassword(o Options) string {
	if o.Passwords != nil && o.Passwords.Klconfig != "" {
		return o.Passwords.Klconfig
	}
	return o.Password
}

// gather reads the facts-like klconfig key.
func gather(read func(klconfig.Command) (klconfig.Result, error), cur current) (map[string]any, error) {
	out := map[string]any{"dns_servers": nonNil(cur.Nameservers), "dns_search": nonNil(cur.Search)}
	for key, cmd := range map[string]klconfig.Command{"apiversion": klconfig.APIVersion(), "version": klconfig.Version()} {
		res, err := read(cmd)
		if err != nil {
			return nil, err
		}
		if len(res.Lines) > 0 {
			out[key] = res.Lines[0]
		} else {
			out[key] = ""
		}
	}
	res, err := read(klconfig.Test())
	if err != nil {
		return nil, err
	}
	info, err := klconfig.ParseTest(res)
	if err != nil {
		return nil, err
	}
	date := ""
	if !info.Date.IsZero() {
		date = info.Date.Format(time.RFC3339)
	}
	out["test"] = map[string]any{"user": info.User, "date": date, "product": info.Product, "version": info.Version, "uptime": info.Uptime}
	return out, nil
}

// Plan implements ansible.Phases: a pure comparison of the wish with what Observe found.
func (*module) Plan(c *ansible.Call[Options], obs *observed) (*Plan, error) {
	p := makePlan(obs.desired, obs.current)
	p.link, p.reads, p.outputs, p.record, p.host = obs.link, obs.reads, obs.outputs, obs.current.Record, obs.current.Host
	p.vm, p.imageLogin = obs.current.VM, obs.current.ImageLogin
	if g := obs.gather; g != nil {
		if !c.CheckMode && !p.Empty() {
			// DNS as it will be after Apply; versions do not change.
			if v, ok := p.After[setDNSServers]; ok {
				g[setDNSServers] = v
			}
			if v, ok := p.After[setDNSSearch]; ok {
				g[setDNSSearch] = v
			} else if _, dns := p.After[setDNSServers]; dns {
				g[setDNSSearch] = nonNil(obs.current.Search)
			}
		}
		p.gather = g
	}
	return p, nil
}

// Apply runs the plan's commands in order. Each recorded setting is written to the record right
// after its command succeeded (the network setting once the SVM answers at its new address), so a
// failure half-way leaves a record of what was done.
func (m *module) Apply(ctx context.Context, c *ansible.Call[Options], p *Plan) error {
	o := c.Options
	s := svmConn{SSH: m.SSH(), o: o, link: p.link}
	p.ran = append([]string{}, p.reads...)
	defer func() { p.host = s.Host() }()
	var vc *vsphere.Session
	if vm := p.link.vm; vm != nil {
		var err error
		if vc, err = m.vcenter(ctx, o); err != nil {
			return err
		}
	}
	rec := p.record // as observed: its salt made the plan's password digests
	keep := func() error {
		if vm := p.link.vm; vm != nil {
			if err := vm.saveRecord(ctx, vc, rec); err != nil {
				return err
			}
		}
		return rec.save(o.RecordPath) // with vm, a cache of the VM's record
	}
	save := func(st step) error {
		if st.Setting == "" {
			return nil
		}
		rec.set(st.Setting, st.Digest, st.Value)
		if st.Kind == stepPasswd && st.User == "klconfig" && p.imageLogin {
			rec.ImagePasswordReplacedAt = time.Now().UTC().Format(time.RFC3339)
		}
		return keep()
	}
	markKey := func(marks map[string]string) error {
		if err := vc.SetContactMarks(ctx, p.link.vm.contact, marks); err != nil {
			return fmt.Errorf("record the host key of svm %s: %w", s.addr(), err)
		}
		return nil
	}
	var netPending *step
	for i := range p.Steps {
		st := p.Steps[i]
		switch st.Kind {
		case stepTrustKey:
			if err := markKey(map[string]string{vsphere.MarkHostKey: p.vm.KeyLine, vsphere.MarkFirstContact: ""}); err != nil {
				return err
			}
			continue
		case stepRecordKey:
			if err := markKey(map[string]string{vsphere.MarkHostKey: p.vm.KeyLine}); err != nil {
				return err
			}
			continue
		case stepRecordSync:
			if err := keep(); err != nil {
				return err
			}
			continue
		}
		p.ran = append(p.ran, display(st.Cmd))
		switch st.Kind {
		case stepNagent:
			_, err := s.do(ctx, st.Cmd, c.Warn)
			var failed *klconfig.CommandFailedError
			if errors.As(err, &failed) && notInstalled(failed) {
				p.ran = append(p.ran, display(klconfig.NagentInstall()))
				if _, err := s.do(ctx, klconfig.NagentInstall(), c.Warn); err != nil {
					return err
				}
				p.ran = append(p.ran, display(st.Cmd))
				_, err = s.do(ctx, st.Cmd, c.Warn)
			}
			if err != nil {
				return err
			}
		case stepNetRestart:
			// Asynchronous on the SVM; a session dropped by the restart itself counts as sent.
			if _, err := s.do(ctx, st.Cmd, c.Warn); err != nil {
				var cmdErr *commandError
				if errors.As(err, &cmdErr) {
					return err
				}
				c.Warn(fmt.Sprintf("%v; looking for the SVM at %s", err, s.Addr(p.FollowTo)))
			}
			if err := sleep(ctx, time.Duration(o.NetworkRestartWait)*time.Second); err != nil {
				return fmt.Errorf("wait for the network restart of svm %s: %w", s.addr(), err)
			}
			oldHost := s.Host()
			if err := s.follow(ctx, p.FollowTo, c.Warn); err != nil {
				return err
			}
			if oldHost != s.Host() {
				// The record follows the SVM: same host key, new address.
				old := recordFile(o.RecordPath, rec.Host, rec.Port, rec.HostKey)
				rec.Host = s.Host()
				if err := keep(); err != nil {
					return err
				}
				_ = os.Remove(old) // a stale record only causes one needless re-apply
			}
			if netPending != nil {
				if err := save(*netPending); err != nil {
					return err
				}
			}
			continue
		default:
			if _, err := s.do(ctx, st.Cmd, c.Warn); err != nil {
				return err
			}
		}
		if st.Setting == setNetwork {
			netPending = &st
			continue
		}
		if err := save(st); err != nil {
			return err
		}
		if st.Kind == stepPasswd && st.User == "klconfig" {
			// Every later session logs in with the new password.
			if err := s.setPassword(string(st.Cmd.Stdin[:len(st.Cmd.Stdin)-1])); err != nil {
				return err
			}
		}
	}
	return nil
}

func notInstalled(e *klconfig.CommandFailedError) bool {
	for _, l := range e.ErrorLines {
		if l == "klnagent not installed." {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
