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

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/klconfig"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/conn"
)

// Module is svm_klconfig. Its sessions hold the vCenter login of option vm.
type Module struct{ conn.Sessions }

var (
	_ ansible.Module  = (*Module)(nil)
	_ ansible.Applier = (*Module)(nil)
	_ ansible.Closer  = (*Module)(nil)
	_ ansible.Plan    = (*Plan)(nil)
)

// New returns the module.
func New() ansible.Module { return &Module{} }

// Spec implements ansible.Module.
func (*Module) Spec() ansible.Spec { return spec() }

// observation is what Observe hands to Plan.
type observation struct {
	state   *state
	desired desired
	current current
	gather  map[string]any
	reads   []string // read-only raw commands run
}

// Observe connects (waiting for a booting SVM), reads what klconfig can tell and loads the record.
// It runs only read commands, in check mode too.
func (m *Module) Observe(ctx context.Context, req *ansible.Request, resp *ansible.Response) (ansible.Observed, error) {
	var o Options
	if err := req.Params.Decode(&o); err != nil {
		return nil, err
	}
	d, err := buildDesired(o)
	if err != nil {
		return nil, err
	}
	var vm *vmLink
	if o.VM != "" {
		if vm, err = m.openVM(ctx, &o); err != nil {
			return nil, err
		}
	}
	s, err := newState(o, req.CheckMode, vm)
	if err != nil {
		return nil, err
	}
	if req.CheckMode {
		defer s.cleanup() // Apply does not run: no later connection needs the scratch known_hosts
	}
	obs := &observation{state: s, desired: d, current: current{Host: o.Host}}
	if err := m.login(ctx, s, o, &obs.current); err != nil {
		return nil, err
	}
	if fp := vm.fingerprint(); fp != "" {
		s.fingerprint = fp // the key the login was pinned to
	} else if err := s.identify(ctx); err != nil {
		return nil, err
	}
	if obs.current.ImageLogin {
		if obs.desired, err = replaceImagePassword(obs.desired, o); err != nil {
			return nil, fmt.Errorf("the image's password logged in to svm %s: %w", s.addr(s.host), err)
		}
	}
	if vm != nil {
		v := &vmView{Name: o.VM, Trust: vm.trust, Fingerprint: s.fingerprint, KeyLine: vm.keyLine(), HasRecord: vm.record != nil,
			Verified: s.policy != klconfig.HostKeyOff}
		if v.KeyLine == "" && s.hostKey != nil {
			v.KeyLine = keyLine(s.hostKey)
		}
		obs.current.VM = v
	}
	read := func(cmd klconfig.Command) (klconfig.Result, error) { return s.do(ctx, cmd, resp.Warn) }

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
		var outputs []any
		for _, c := range d.Raw {
			res, err := read(c)
			obs.reads = append(obs.reads, display(c))
			resp.Set("commands", obs.reads)
			if err != nil {
				return nil, err
			}
			outputs = append(outputs, map[string]any{"command": display(c), "stdout_lines": nonNil(res.Lines)})
		}
		resp.Set("outputs", outputs)
	}
	rec, err := loadRecord(o.RecordPath, o.Host, o.Port, s.fingerprint)
	if err != nil {
		return nil, err
	}
	if vm != nil && vm.record != nil && vm.record.HostKey == s.fingerprint {
		// The VM's record is the truth; the controller's file is only a cache of it.
		rec = *vm.record
		rec.Host, rec.Port = o.Host, o.Port
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
// rerunning the same task is idempotent; image_password, which a fresh SVM still has.
func (m *Module) login(ctx context.Context, s *state, o Options, cur *current) error {
	var first error
	for i, pw := range s.candidates() {
		if i > 0 {
			s.password = pw
			if err := s.connect(s.host, ""); err != nil {
				return err
			}
		}
		_, err := s.do(ctx, klconfig.APIVersion(), func(string) {})
		if err == nil {
			if len(s.key) == 0 {
				cur.LoginPassword = s.password
				cur.ImageLogin = o.ImagePassword != "" && s.password == o.ImagePassword && s.password != operatorPassword(o)
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

// Plan implements ansible.Module: a pure comparison of the wish with what Observe found.
func (m *Module) Plan(req *ansible.Request, observed ansible.Observed, resp *ansible.Response) (ansible.Plan, error) {
	obs := observed.(*observation)
	p := makePlan(obs.desired, obs.current)
	p.state, p.reads, p.record = obs.state, obs.reads, obs.current.Record
	if v := obs.current.VM; v != nil {
		p.keyLine = v.KeyLine
	}
	cmds := append(append([]string{}, obs.reads...), p.Commands()...)
	resp.Set("commands", cmds)
	resp.Set("settings", p.Settings)
	resp.Set("host", obs.state.host)
	if v := obs.current.VM; v != nil {
		resp.Set("vm", map[string]any{"name": v.Name, "host_key": v.Fingerprint, "trust": v.Trust, "steps": p.VMSteps()})
	}
	p.imageLogin = obs.current.ImageLogin
	if obs.gather != nil {
		g := obs.gather
		if !req.CheckMode && !p.Empty() {
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
		resp.Set("klconfig", g)
	}
	return p, nil
}

// Apply runs the plan's commands in order. Each recorded setting is written to the record right
// after its command succeeded (the network setting once the SVM answers at its new address), so a
// failure half-way leaves a record of what was done.
func (m *Module) Apply(ctx context.Context, req *ansible.Request, plan ansible.Plan, resp *ansible.Response) error {
	p := plan.(*Plan)
	s := p.state
	defer s.cleanup()
	ran := append([]string{}, p.reads...)
	defer func() {
		resp.Set("commands", ran)
		resp.Set("host", s.host)
	}()
	rec := p.record // as observed: its salt made the plan's password digests
	keep := func() error {
		if s.vm != nil {
			if err := s.vm.saveRecord(ctx, rec); err != nil {
				return err
			}
		}
		return rec.save(s.opts.RecordPath) // with vm, a cache of the VM's record
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
	var netPending *step
	for i := range p.Steps {
		st := p.Steps[i]
		switch st.Kind {
		case stepTrustKey:
			if err := s.vm.setMarks(ctx, map[string]string{vsphere.MarkHostKey: p.keyLine, vsphere.MarkFirstContact: ""}); err != nil {
				return fmt.Errorf("record the host key of svm %s: %w", s.addr(s.host), err)
			}
			continue
		case stepRecordKey:
			if err := s.vm.setMarks(ctx, map[string]string{vsphere.MarkHostKey: p.keyLine}); err != nil {
				return fmt.Errorf("record the host key of svm %s: %w", s.addr(s.host), err)
			}
			continue
		case stepRecordSync:
			if err := keep(); err != nil {
				return err
			}
			continue
		}
		ran = append(ran, display(st.Cmd))
		switch st.Kind {
		case stepNagent:
			_, err := s.do(ctx, st.Cmd, resp.Warn)
			var failed *klconfig.CommandFailedError
			if errors.As(err, &failed) && notInstalled(failed) {
				ran = append(ran, display(klconfig.NagentInstall()))
				if _, err := s.do(ctx, klconfig.NagentInstall(), resp.Warn); err != nil {
					return err
				}
				ran = append(ran, display(st.Cmd))
				_, err = s.do(ctx, st.Cmd, resp.Warn)
			}
			if err != nil {
				return err
			}
		case stepNetRestart:
			// Asynchronous on the SVM; a session dropped by the restart itself counts as sent.
			if _, err := s.do(ctx, st.Cmd, resp.Warn); err != nil {
				var cmdErr *commandError
				if errors.As(err, &cmdErr) {
					return err
				}
				resp.Warn(fmt.Sprintf("%v; looking for the SVM at %s", err, s.addr(p.FollowTo)))
			}
			if err := sleep(ctx, time.Duration(s.opts.NetworkRestartWait)*time.Second); err != nil {
				return fmt.Errorf("wait for the network restart of svm %s: %w", s.addr(s.host), err)
			}
			oldHost := s.host
			if err := s.follow(ctx, p.FollowTo, resp.Warn); err != nil {
				return err
			}
			if oldHost != s.host {
				// The record follows the SVM: same host key, new address.
				old := recordFile(s.opts.RecordPath, rec.Host, rec.Port, rec.HostKey)
				rec.Host = s.host
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
			if _, err := s.do(ctx, st.Cmd, resp.Warn); err != nil {
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
			s.password = string(st.Cmd.Stdin[:len(st.Cmd.Stdin)-1])
			if err := s.connect(s.host, ""); err != nil {
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
