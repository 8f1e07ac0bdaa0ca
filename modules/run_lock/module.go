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

// module is run_lock's phases for one run; its sessions hold the vCenter
// login, which the runtime closes however the run ends.
type module struct{ conn.Sessions }

var (
	_ ansible.Phases[Options, lockView, *Plan] = (*module)(nil)
	_ ansible.Applies[Options, *Plan]          = (*module)(nil)
	_ ansible.Closer                           = (*module)(nil)
)

// New returns the module, fresh for each run.
func New() ansible.Module { return ansible.Typed[Options, lockView, *Plan](&module{}) }

// Spec returns the option spec.
func (*module) Spec() ansible.Spec { return spec() }

// Lock is one run's hold; the attribute's value is the list of them.
type Lock struct {
	RunID   string    `json:"run_id"`
	Owner   string    `json:"owner"` // user@host
	Host    string    `json:"host"`  // controller host name
	PID     int       `json:"pid,omitempty"`
	Hosts   []string  `json:"hosts,omitempty"` // hypervisors held; none: the whole datacenter
	Since   time.Time `json:"since"`
	Expires time.Time `json:"expires"`
}

func (l Lock) String() string {
	what := "the whole datacenter"
	if len(l.Hosts) > 0 {
		what = strings.Join(l.Hosts, ", ")
	}
	return fmt.Sprintf("%s (run %s, holding %s) since %s, expires %s", l.Owner, l.RunID, what,
		l.Since.UTC().Format(time.RFC3339), l.Expires.UTC().Format(time.RFC3339))
}

// overlaps reports whether two holds share a hypervisor; a hold on the
// whole datacenter overlaps every other.
func (l Lock) overlaps(hosts []string) bool {
	if len(l.Hosts) == 0 || len(hosts) == 0 {
		return true
	}
	for _, h := range hosts {
		for _, x := range l.Hosts {
			if strings.EqualFold(h, x) {
				return true
			}
		}
	}
	return false
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
// long as the run. Workers are forks of it with the same command line, so
// the outermost match is the run's: with strategy free, workers of the
// same run hold the lock side by side.
func ansibleProcess() int {
	found := 0
	for pid := os.Getppid(); pid > 1; {
		raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			return found
		}
		for _, arg := range strings.Split(string(raw), "\x00") {
			if b := filepath.Base(arg); b == "ansible-playbook" || b == "ansible" {
				found = pid
				break
			}
		}
		stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return found
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ")".
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 {
			return found
		}
		if pid, err = strconv.Atoi(f[1]); err != nil {
			return found
		}
	}
	return found
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

// lockView is the lock as read: this run's hold and the others'.
type lockView struct {
	me    me
	hosts []string
	mine  *Lock  // this run's hold, nil when none
	live  []Lock // the other runs' holds that still count
	stale []string
}

func (o lockView) ours() bool { return o.mine != nil }

// conflict is the first live hold of another run on one of our hosts.
func (o lockView) conflict() *Lock {
	for i := range o.live {
		if o.live[i].overlaps(o.hosts) {
			return &o.live[i]
		}
	}
	return nil
}

func (o lockView) heldByOther() bool { return o.conflict() != nil }

func (m *module) read(ctx context.Context, o Options, who me) (lockView, error) {
	s, err := m.VCenter(ctx, o.VCenterOptions)
	if err != nil {
		return lockView{}, err
	}
	dc, err := s.Datacenter(ctx, o.Datacenter)
	if err != nil {
		return lockView{}, err
	}
	raw, err := s.DatacenterField(ctx, dc, Field)
	if err != nil {
		return lockView{}, err
	}
	obs := lockView{me: who, hosts: o.Hosts}
	if raw == "" {
		return obs, nil
	}
	var all []Lock
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		// Not ours to interpret: someone wrote it by hand. Refuse rather
		// than overwrite what may be another tool's lock.
		return obs, fmt.Errorf("datacenter %s: custom attribute %s holds %q, not a lock of this collection: clear it in vCenter if no run holds it", o.Datacenter, Field, raw)
	}
	now := time.Now()
	for i := range all {
		l := all[i]
		switch stale, why := gone(l, who, now); {
		case l.RunID == who.runID:
			obs.mine = &l
		case stale:
			obs.stale = append(obs.stale, l.String()+": "+why)
		default:
			obs.live = append(obs.live, l)
		}
	}
	return obs, nil
}

// Report implements ansible.Reporter: this run's id and the hold that
// matters to it, another run's in the way or else its own.
func (o lockView) Report() map[string]any {
	out := map[string]any{"run_id": o.me.runID}
	if c := o.conflict(); c != nil {
		out["holder"] = *c
	} else if o.mine != nil {
		out["holder"] = *o.mine
	}
	return out
}

// Observe reads the lock; with wait=true it waits until no other run
// holds it (reading changes nothing, so check mode waits too).
func (m *module) Observe(ctx context.Context, c *ansible.Call[Options]) (lockView, error) {
	o := c.Options
	who, err := whoAmI(o)
	if err != nil {
		return lockView{}, err
	}
	obs, err := m.read(ctx, o, who)
	if err != nil {
		return lockView{}, err
	}
	if o.State == StateAcquired && o.Wait && obs.heldByOther() {
		deadline := time.Now().Add(time.Duration(o.WaitTimeout) * time.Second)
		for obs.heldByOther() {
			if time.Now().After(deadline) {
				return lockView{}, fmt.Errorf("the upgrade lock of datacenter %s is still held by %s after waiting %d s", o.Datacenter, obs.conflict(), o.WaitTimeout)
			}
			select {
			case <-ctx.Done():
				return lockView{}, fmt.Errorf("wait for the upgrade lock of datacenter %s held by %s: %w", o.Datacenter, obs.conflict(), ctx.Err())
			case <-time.After(2 * time.Second):
			}
			if obs, err = m.read(ctx, o, who); err != nil {
				return lockView{}, err
			}
		}
	}
	return obs, nil
}

// Plan is this run's hold to write (nil: drop it).
type Plan struct {
	Write  *Lock
	Before *Lock
	Change bool

	read lockView // the lock as Observe read it
	// held is this run's hold as read back once written; nil until then.
	held *Lock
}

// Empty reports whether nothing is written.
func (p *Plan) Empty() bool { return !p.Change }

// Report implements ansible.Reporter: the lock as read, with this run's
// hold as read back once Apply wrote it.
func (p *Plan) Report() map[string]any {
	out := p.read.Report()
	if p.held != nil {
		out["holder"] = *p.held
	}
	return out
}

// Diff shows this run's hold before and after as text.
func (p *Plan) Diff() (before, after any) {
	show := func(l *Lock) string {
		if l == nil {
			return ""
		}
		return l.String() + "\n"
	}
	return show(p.Before), show(p.Write)
}

// Plan decides: take, refresh, release, or refuse a lock another run holds
// on one of our hypervisors.
func (*module) Plan(c *ansible.Call[Options], obs lockView) (*Plan, error) {
	o := c.Options
	now := time.Now()
	if o.State == StateReleased {
		if !obs.ours() {
			c.Msg = fmt.Sprintf("this run (%s) does not hold the upgrade lock of datacenter %s: nothing to release", obs.me.runID, o.Datacenter)
			return &Plan{read: obs}, nil
		}
		c.Msg = fmt.Sprintf("released the upgrade lock of datacenter %s", o.Datacenter)
		return &Plan{Before: obs.mine, Change: true, read: obs}, nil
	}
	if other := obs.conflict(); other != nil {
		msg := fmt.Sprintf("another upgrade run holds the lock of datacenter %s: %s; wait for it (wait=true), or, if that run is gone, clear the custom attribute %s of the datacenter in vCenter",
			o.Datacenter, other, Field)
		if c.CheckMode {
			// A plan changes nothing: it may be made while a run goes on.
			c.Warn(msg)
			return &Plan{read: obs}, nil
		}
		return nil, errors.New(msg)
	}
	l := &Lock{RunID: obs.me.runID, Owner: obs.me.owner, Host: obs.me.host, PID: obs.me.pid, Hosts: o.Hosts, Since: now,
		Expires: now.Add(time.Duration(o.TTL) * time.Second)}
	for _, w := range obs.stale {
		c.Warn(fmt.Sprintf("took over the upgrade lock of datacenter %s from %s", o.Datacenter, w))
	}
	if obs.ours() {
		l.Since = obs.mine.Since
		c.Msg = fmt.Sprintf("refreshed the upgrade lock of datacenter %s until %s", o.Datacenter, l.Expires.UTC().Format(time.RFC3339))
	} else {
		c.Msg = fmt.Sprintf("took the upgrade lock of datacenter %s", o.Datacenter)
	}
	return &Plan{Write: l, Before: obs.mine, Change: true, read: obs}, nil
}

// Apply writes the holds (the other live ones and this run's), then,
// after settle, reads them back: of two runs that found no conflict
// together, both write and the last writer's list stands (Fischer's mutual
// exclusion, with settle as its time bound). A run whose hold the other
// wrote over without overlapping it tries again.
func (m *module) Apply(ctx context.Context, c *ansible.Call[Options], p *Plan) error {
	o, who := c.Options, p.read.me
	s, err := m.VCenter(ctx, o.VCenterOptions)
	if err != nil {
		return err
	}
	dc, err := s.Datacenter(ctx, o.Datacenter)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		obs, err := m.read(ctx, o, who)
		if err != nil {
			return err
		}
		if other := obs.conflict(); other != nil && p.Write != nil {
			return fmt.Errorf("another upgrade run took the lock of datacenter %s at the same moment: %s", o.Datacenter, other)
		}
		holds := append([]Lock{}, obs.live...)
		if p.Write != nil {
			holds = append(holds, *p.Write)
		}
		value := ""
		if len(holds) > 0 {
			raw, err := json.Marshal(holds)
			if err != nil {
				return err
			}
			value = string(raw)
		}
		if err := s.SetDatacenterField(ctx, dc, Field, value); err != nil {
			return err
		}
		if p.Write == nil || (p.Before != nil && attempt == 0) {
			return nil // released, or refreshed: this run held it already
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(o.Settle) * time.Second):
		}
		if obs, err = m.read(ctx, o, who); err != nil {
			return err
		}
		if other := obs.conflict(); other != nil {
			return fmt.Errorf("another upgrade run took the lock of datacenter %s at the same moment: %s", o.Datacenter, other)
		}
		if obs.ours() {
			p.held = obs.mine
			return nil
		}
		if attempt >= 4 {
			return fmt.Errorf("could not record the upgrade lock of datacenter %s: other runs kept writing it", o.Datacenter)
		}
		// A run on other hypervisors wrote its list over ours: write again.
	}
}
