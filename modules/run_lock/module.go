// Package runlock is the run_lock module: one upgrade at a time per
// datacenter, whatever the controller, with a lock kept where every
// controller sees it (a custom attribute of the datacenter in vCenter).
package runlock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/modules/conn"
)

// Field is the datacenter custom attribute that holds the lock.
const Field = "ksvla.upgrade-lock"

// Module is run_lock.
type Module struct{ conn.Sessions }

var (
	_ ansible.Module  = (*Module)(nil)
	_ ansible.Applier = (*Module)(nil)
	_ ansible.Closer  = (*Module)(nil)
)

// New returns the module.
func New() ansible.Module { return &Module{} }

// Spec returns the option spec.
func (*Module) Spec() ansible.Spec { return spec() }

// Lock is the attribute's value.
type Lock struct {
	RunID   string    `json:"run_id"`
	Owner   string    `json:"owner"` // user@host
	Host    string    `json:"host"`  // controller host name
	PID     int       `json:"pid,omitempty"`
	Since   time.Time `json:"since"`
	Expires time.Time `json:"expires"`
}

func (l Lock) String() string {
	return fmt.Sprintf("%s (run %s) since %s, expires %s", l.Owner, l.RunID, l.Since.UTC().Format(time.RFC3339), l.Expires.UTC().Format(time.RFC3339))
}

func decode(req *ansible.Request) (Options, error) {
	var o Options
	if err := req.Params.Decode(&o); err != nil {
		return o, err
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"ttl", o.TTL}, {"wait_timeout", o.WaitTimeout}} {
		if c.v <= 0 {
			return o, fmt.Errorf("%s must be positive, got %d", c.name, c.v)
		}
	}
	if o.Settle < 0 {
		return o, fmt.Errorf("settle must not be negative, got %d", o.Settle)
	}
	return o, nil
}

// me is this run's identity.
type me struct {
	runID, owner, host string
	pid                int
}

func whoAmI(o Options) (me, error) {
	host, _ := os.Hostname()
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	m := me{runID: o.RunID, owner: name + "@" + host, host: host}
	if m.runID == "" {
		m.pid = ansibleProcess()
		if m.pid == 0 {
			return m, errors.New("run_id: no ansible-playbook or ansible process found above this module; set run_id to an identifier every task of the run shares")
		}
		m.runID = fmt.Sprintf("%s:%d", host, m.pid)
	}
	return m, nil
}

// ansibleProcess is the pid of the ansible-playbook (or ansible) process
// this module runs under, read from /proc; 0 when not found. The module
// itself and Ansible's workers live one task each; that process lives as
// long as the run.
func ansibleProcess() int {
	for pid := os.Getppid(); pid > 1; {
		raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			return 0
		}
		for _, arg := range strings.Split(string(raw), "\x00") {
			if b := filepath.Base(arg); b == "ansible-playbook" || b == "ansible" {
				return pid
			}
		}
		stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return 0
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ")".
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 {
			return 0
		}
		if pid, err = strconv.Atoi(f[1]); err != nil {
			return 0
		}
	}
	return 0
}

// gone reports whether the lock's run is known to be over: expired, or
// its process no longer exists on this very controller.
func gone(l Lock, m me, now time.Time) (bool, string) {
	if !now.Before(l.Expires) {
		return true, "expired " + l.Expires.UTC().Format(time.RFC3339)
	}
	if l.Host == m.host && l.PID > 0 && syscall.Kill(l.PID, 0) == syscall.ESRCH {
		return true, fmt.Sprintf("its process %d on %s is gone", l.PID, l.Host)
	}
	return false, ""
}

// observed is the lock as read.
type observed struct {
	me      me
	current *Lock  // nil when free
	stale   string // why current no longer counts, "" when it does
}

func (o observed) ours() bool { return o.current != nil && o.current.RunID == o.me.runID }

func (o observed) heldByOther() bool { return o.current != nil && !o.ours() && o.stale == "" }

func (m *Module) read(ctx context.Context, o Options, who me) (observed, error) {
	s, err := m.VCenter(ctx, o.VCenterOptions)
	if err != nil {
		return observed{}, err
	}
	dc, err := s.Datacenter(ctx, o.Datacenter)
	if err != nil {
		return observed{}, err
	}
	raw, err := s.DatacenterField(ctx, dc, Field)
	if err != nil {
		return observed{}, err
	}
	obs := observed{me: who}
	if raw == "" {
		return obs, nil
	}
	var l Lock
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		// Not ours to interpret: someone wrote it by hand. Refuse rather
		// than overwrite what may be another tool's lock.
		return obs, fmt.Errorf("datacenter %s: custom attribute %s holds %q, not a lock of this collection: clear it in vCenter if no run holds it", o.Datacenter, Field, raw)
	}
	obs.current = &l
	_, obs.stale = gone(l, who, time.Now())
	return obs, nil
}

// Observe reads the lock; with wait=true it waits until no other run
// holds it (reading changes nothing, so check mode waits too).
func (m *Module) Observe(ctx context.Context, req *ansible.Request, resp *ansible.Response) (ansible.State, error) {
	o, err := decode(req)
	if err != nil {
		return nil, err
	}
	who, err := whoAmI(o)
	if err != nil {
		return nil, err
	}
	obs, err := m.read(ctx, o, who)
	if err != nil {
		return nil, err
	}
	if o.State == StateAcquired && o.Wait && obs.heldByOther() {
		deadline := time.Now().Add(time.Duration(o.WaitTimeout) * time.Second)
		for obs.heldByOther() {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("the upgrade lock of datacenter %s is still held by %s after waiting %d s", o.Datacenter, obs.current, o.WaitTimeout)
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for the upgrade lock of datacenter %s held by %s: %w", o.Datacenter, obs.current, ctx.Err())
			case <-time.After(2 * time.Second):
			}
			if obs, err = m.read(ctx, o, who); err != nil {
				return nil, err
			}
		}
	}
	resp.Set("run_id", who.runID)
	if obs.current != nil {
		resp.Set("holder", *obs.current)
	}
	return obs, nil
}

// Plan is the write to make, if any.
type Plan struct {
	Write  *Lock // nil: clear
	Before *Lock
	Change bool
}

// Empty reports whether nothing is written.
func (p Plan) Empty() bool { return !p.Change }

// Diff shows the holder before and after as text.
func (p Plan) Diff() (before, after any) {
	show := func(l *Lock) string {
		if l == nil {
			return ""
		}
		return l.String() + "\n"
	}
	return show(p.Before), show(p.Write)
}

// Plan decides: take, refresh, release, or refuse a lock another run holds.
func (*Module) Plan(req *ansible.Request, st ansible.State, resp *ansible.Response) (ansible.Plan, error) {
	o, err := decode(req)
	if err != nil {
		return nil, err
	}
	obs := st.(observed)
	now := time.Now()
	if o.State == StateReleased {
		if !obs.ours() {
			resp.Msg = fmt.Sprintf("this run (%s) does not hold the upgrade lock of datacenter %s: nothing to release", obs.me.runID, o.Datacenter)
			return Plan{}, nil
		}
		resp.Msg = fmt.Sprintf("released the upgrade lock of datacenter %s", o.Datacenter)
		return Plan{Before: obs.current, Change: true}, nil
	}
	if obs.heldByOther() {
		msg := fmt.Sprintf("another upgrade run holds the lock of datacenter %s: %s; wait for it (wait=true), or, if that run is gone, clear the custom attribute %s of the datacenter in vCenter",
			o.Datacenter, obs.current, Field)
		if req.CheckMode {
			// A plan changes nothing: it may be made while a run goes on.
			resp.Warn(msg)
			return Plan{}, nil
		}
		return nil, errors.New(msg)
	}
	l := &Lock{RunID: obs.me.runID, Owner: obs.me.owner, Host: obs.me.host, PID: obs.me.pid, Since: now,
		Expires: now.Add(time.Duration(o.TTL) * time.Second)}
	switch {
	case obs.ours():
		l.Since = obs.current.Since
		resp.Msg = fmt.Sprintf("refreshed the upgrade lock of datacenter %s until %s", o.Datacenter, l.Expires.UTC().Format(time.RFC3339))
	case obs.current != nil:
		resp.Warn(fmt.Sprintf("took over the upgrade lock of datacenter %s from %s: %s", o.Datacenter, obs.current, obs.stale))
		resp.Msg = fmt.Sprintf("took the upgrade lock of datacenter %s", o.Datacenter)
	default:
		resp.Msg = fmt.Sprintf("took the upgrade lock of datacenter %s", o.Datacenter)
	}
	return Plan{Write: l, Before: obs.current, Change: true}, nil
}

// Apply writes the lock, then, after settle, reads it back: of two runs
// that found it free together, both write and the last writer holds it
// (Fischer's mutual exclusion, with settle as its time bound).
func (m *Module) Apply(ctx context.Context, req *ansible.Request, pl ansible.Plan, resp *ansible.Response) error {
	o, err := decode(req)
	if err != nil {
		return err
	}
	p := pl.(Plan)
	s, err := m.VCenter(ctx, o.VCenterOptions)
	if err != nil {
		return err
	}
	dc, err := s.Datacenter(ctx, o.Datacenter)
	if err != nil {
		return err
	}
	value := ""
	if p.Write != nil {
		raw, err := json.Marshal(p.Write)
		if err != nil {
			return err
		}
		value = string(raw)
	}
	if err := s.SetDatacenterField(ctx, dc, Field, value); err != nil {
		return err
	}
	if p.Write == nil || (p.Before != nil && p.Before.RunID == p.Write.RunID) {
		return nil // released, or refreshed: this run held it already
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(o.Settle) * time.Second):
	}
	who, err := whoAmI(o)
	if err != nil {
		return err
	}
	obs, err := m.read(ctx, o, who)
	if err != nil {
		return err
	}
	if !obs.ours() {
		holder := "nobody"
		if obs.current != nil {
			holder = obs.current.String()
		}
		return fmt.Errorf("another upgrade run took the lock of datacenter %s at the same moment: %s", o.Datacenter, holder)
	}
	resp.Set("holder", *obs.current)
	return nil
}
