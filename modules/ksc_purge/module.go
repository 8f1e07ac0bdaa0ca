// Package kscpurge is the ksc_purge module: it removes the Kaspersky
// Security Center records of SVMs that no longer exist, right away rather
// than when the group's retention period runs out, on KSC 15 and 15.1+.
package kscpurge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/conn"
)

// module is ksc_purge's phases; one value per run, holding its sessions.
type module struct{ conn.Sessions }

// call is one run of ksc_purge.
type call = ansible.Call[Options]

// Apply must match Applies, or the runtime would refuse every change.
var _ ansible.Applies[Options, *Plan] = (*module)(nil)

// New returns the module.
func New() ansible.Module { return ansible.Typed[Options, observed, *Plan](&module{}) }

// Spec returns the option spec.
func (*module) Spec() ansible.Spec { return spec() }

// check refuses option values the spec cannot express.
func check(o Options) error {
	if err := checkBatch(o.BatchSize); err != nil {
		return err
	}
	if o.ProductVersion != "" {
		if err := fleet.CheckVersion("product_version", o.ProductVersion); err != nil {
			return err
		}
	}
	if o.NotVisibleMinutes != nil && *o.NotVisibleMinutes < 0 {
		return fmt.Errorf("not_visible_minutes must not be negative, got %d", *o.NotVisibleMinutes)
	}
	return nil
}

// Observe selects the records, checks them against vCenter and reads the
// groups' retention. It changes nothing.
func (m *module) Observe(ctx context.Context, c *call) (observed, error) {
	o := c.Options
	if err := check(o); err != nil {
		return observed{}, err
	}
	kc, err := m.KSC(o.KSCOptions)
	if err != nil {
		return observed{}, err
	}
	sel, err := selectRecords(ctx, kc, o)
	if err != nil {
		return observed{}, err
	}
	obs := observed{Records: sel.records, Absent: sel.absent, Skipped: sel.skipped}
	if !o.named() {
		if obs.Records, obs.Kept, err = m.prove(ctx, o, sel.records); err != nil {
			return observed{}, err
		}
	}
	if obs.Refused, err = m.refuse(ctx, o, obs.Records); err != nil {
		return observed{}, err
	}
	if o.ReportRetention {
		obs.Retention = []Retention{}
		if len(obs.Records) > 0 {
			if obs.Retention, obs.AutoRemoveAt, err = retention(ctx, kc, obs.Records); err != nil {
				return observed{}, err
			}
		}
	}
	if len(obs.Kept) > 0 {
		c.Warn(fmt.Sprintf("kept %d KSC records whose SVM is not proven gone (see kept): %s", len(obs.Kept), keptNames(obs.Kept)))
	}
	return obs, nil
}

func keptNote(ks []Kept) string {
	if len(ks) == 0 {
		return ""
	}
	return fmt.Sprintf("; kept %d whose SVM is not proven gone", len(ks))
}

// Plan batches the removal, or fails when a record's VM still runs.
func (*module) Plan(c *call, obs observed) (*Plan, error) {
	p, err := plan(obs, c.Options.BatchSize)
	if err != nil {
		// Returned with the error: the runtime reports it, so a refused
		// run still says what it selected and refused.
		return p, err
	}
	switch {
	case p.Empty():
		c.Msg = fmt.Sprintf("no KSC record to remove (%d already absent)", len(obs.Absent)) + keptNote(obs.Kept)
	case c.CheckMode:
		p.Removed = obs.Records
		c.Msg = fmt.Sprintf("would remove %d KSC records (%d already absent)", len(obs.Records), len(obs.Absent)) + keptNote(obs.Kept)
	}
	return p, nil
}

// Apply removes the records batch by batch and checks they are gone,
// recording in the plan the records it removed.
func (m *module) Apply(ctx context.Context, c *call, p *Plan) error {
	kc, err := m.KSC(c.Options.KSCOptions)
	if err != nil {
		return err
	}
	// The records of the batches KSC took: a batch cut by an error is
	// left out even if KSC removed part of it, and the records KSC still
	// lists afterwards are dropped.
	if p.Removed, err = remove(ctx, kc, p); err != nil {
		return err
	}
	left, err := existing(ctx, kc, p.ids())
	if err != nil {
		return fmt.Errorf("check the removal: %w", err)
	}
	if len(left) > 0 {
		still := map[string]bool{}
		for _, r := range left {
			still[r.ID] = true
		}
		p.Removed = slices.DeleteFunc(p.Removed, func(r Record) bool { return still[r.ID] })
		sortRecords(left)
		names := make([]string, len(left))
		for i, r := range left {
			names[i] = r.Label() + " (" + r.ID + ")"
		}
		return fmt.Errorf("KSC still lists %d of %d records after removing them: %s", len(left), len(p.ids()), strings.Join(names, ", "))
	}
	c.Msg = fmt.Sprintf("removed %d KSC records", len(p.Removed)) + keptNote(p.Kept)
	return nil
}

// remove deletes the plan's records and returns those of the batches KSC
// took. KSC 15.1+ ignores bForceDestroy and only moves managed hosts to
// Unassigned, so there every batch is moved there first and then removed;
// KSC 15 removes with bForceDestroy.
func remove(ctx context.Context, c *ksc.Client, p *Plan) ([]Record, error) {
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return nil, err
	}
	unassigned := 0
	if v.ForceDestroyIgnored() {
		if unassigned, err = c.GroupIDUnassigned(ctx); err != nil {
			return nil, fmt.Errorf("find the Unassigned devices group: %w", err)
		}
	}
	var done []Record
	for _, batch := range p.Batches {
		ids := make([]string, 0, len(batch))
		var move []string
		for _, r := range batch {
			ids = append(ids, r.ID)
			if r.GroupID != unassigned {
				move = append(move, r.ID)
			}
		}
		if !v.ForceDestroyIgnored() {
			if err := whileThere(ctx, c, ids, func(ids []string) error { return c.RemoveHosts(ctx, ids, true) }); err != nil {
				return done, err
			}
			done = append(done, batch...)
			continue
		}
		if len(move) > 0 {
			if err := whileThere(ctx, c, move, func(ids []string) error { return c.MoveHostsToGroup(ctx, unassigned, ids) }); err != nil {
				return done, err
			}
		}
		if err := whileThere(ctx, c, ids, func(ids []string) error { return c.RemoveHosts(ctx, ids, false) }); err != nil {
			return done, err
		}
		done = append(done, batch...)
	}
	return done, nil
}

// whileThere runs op on ids; when the server refuses it (a PxgError) or
// the connection is lost before its answer (ksc.ErrInterrupted: KSC may
// or may not have run it), the ids KSC still lists are tried once more:
// a record that vanished meanwhile (KSC's own clean-up, another admin,
// the interrupted call itself) is what a purge wants anyway, and how KSC
// treats unknown ids in these calls is not documented.
func whileThere(ctx context.Context, c *ksc.Client, ids []string, op func([]string) error) error {
	err := op(ids)
	var pxg *ksc.PxgError
	interrupted := errors.Is(err, ksc.ErrInterrupted)
	if err == nil || !(interrupted || errors.As(err, &pxg)) {
		return err
	}
	left, ferr := existing(ctx, c, ids)
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	if len(left) == 0 {
		return nil
	}
	if len(left) == len(ids) && !interrupted {
		return err // refused as a whole: the same call would be refused again
	}
	still := make([]string, len(left))
	for i, r := range left {
		still[i] = r.ID
	}
	return op(still)
}

func keptNames(ks []Kept) string {
	names := make([]string, 0, min(len(ks), 10))
	for _, k := range ks[:min(len(ks), 10)] {
		names = append(names, k.Name)
	}
	if len(ks) > 10 {
		names = append(names, fmt.Sprintf("and %d more", len(ks)-10))
	}
	return strings.Join(names, ", ")
}

// prove splits records selected by version or staleness alone into those
// whose SVM is proven gone (no VM matching them in any datacenter of
// served_datacenters) and those kept. Such a selection reaches every
// site the KSC serves, and a running SVM in a datacenter this run cannot
// see still needs its record: without served_datacenters and vCenter
// nothing is proven, so everything is kept.
func (m *module) prove(ctx context.Context, o Options, rs []Record) (gone []Record, kept []Kept, err error) {
	if len(rs) == 0 {
		return nil, nil, nil
	}
	if len(o.ServedDatacenters) == 0 || o.Hostname == "" {
		for _, r := range rs {
			kept = append(kept, Kept{Name: r.Label(), ID: r.ID,
				Reason: "not proven gone: name every datacenter this KSC serves in served_datacenters, with vCenter options, to check that no VM matches the record"})
		}
		return nil, kept, nil
	}
	s, err := m.VCenter(ctx, o.VCenterOptions)
	if err != nil {
		return nil, nil, err
	}
	present := map[string]string{}
	for _, dc := range o.ServedDatacenters {
		vms, err := s.Inventory(ctx, vsphere.Scope{Datacenter: dc})
		if err != nil {
			return nil, nil, fmt.Errorf("served_datacenters: read datacenter %s: %w", dc, err)
		}
		for _, vm := range vms {
			where := fmt.Sprintf("VM %s exists in datacenter %s (on %s, %s)", vm.Name, dc, vm.Host, vm.PowerState)
			for _, k := range []string{vm.Name, vm.HostName} {
				if k = norm(k); k != "" {
					present[k] = where
				}
			}
		}
	}
	dcs := strings.Join(o.ServedDatacenters, ", ")
	for _, r := range rs {
		var keys []string
		found := ""
		for _, k := range []string{r.DisplayName, r.FQDN, firstLabel(r.FQDN)} {
			if k = norm(k); k != "" && !slices.Contains(keys, k) {
				keys = append(keys, k)
				if found == "" {
					found = present[k]
				}
			}
		}
		switch {
		case found != "":
			kept = append(kept, Kept{Name: r.Label(), ID: r.ID, Reason: found})
		case len(keys) == 0:
			kept = append(kept, Kept{Name: r.Label(), ID: r.ID, Reason: "not proven gone: the record has no display name or FQDN to look for in vCenter"})
		default:
			r.Proof = fmt.Sprintf("no VM named %s (name or guest host name) in datacenters %s", strings.Join(keys, " or "), dcs)
			gone = append(gone, r)
		}
	}
	return gone, kept, nil
}

// refuse lists the records whose VM still exists and is powered on in
// vCenter, when vCenter is given. A VM matches a record by name: its name
// or guest host name equals the record's display name, FQDN or the FQDN's
// first label. IPs are not compared: a new SVM often reuses an old one's.
func (m *module) refuse(ctx context.Context, o Options, rs []Record) ([]Refused, error) {
	if o.Hostname == "" || len(rs) == 0 {
		return nil, nil
	}
	s, err := m.VCenter(ctx, o.VCenterOptions)
	if err != nil {
		return nil, err
	}
	vms, err := s.Inventory(ctx, vsphere.Scope{Datacenter: o.Datacenter})
	if err != nil {
		return nil, fmt.Errorf("check the records against vCenter: %w", err)
	}
	running := map[string]vsphere.VM{}
	for _, vm := range vms {
		if vm.PowerState != "poweredOn" {
			continue
		}
		for _, k := range []string{vm.Name, vm.HostName} {
			if k = norm(k); k != "" {
				running[k] = vm
			}
		}
	}
	var out []Refused
	for _, r := range rs {
		for _, k := range []string{r.DisplayName, r.FQDN, firstLabel(r.FQDN)} {
			if vm, ok := running[norm(k)]; ok && norm(k) != "" {
				out = append(out, Refused{Name: r.Label(), ID: r.ID,
					Reason: fmt.Sprintf("VM %s is powered on in vCenter (on %s)", vm.Name, vm.Host)})
				break
			}
		}
	}
	return out, nil
}

func norm(s string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".") }

func firstLabel(fqdn string) string {
	if i := strings.IndexByte(fqdn, '.'); i > 0 {
		return fqdn[:i]
	}
	return ""
}

// retention reads the autoRemovePeriod of the records' groups and when it
// would remove each record: last seen (or created, if never seen) plus the
// period.
func retention(ctx context.Context, c *ksc.Client, rs []Record) ([]Retention, map[string]time.Time, error) {
	byGroup := map[int][]Record{}
	for _, r := range rs {
		byGroup[r.GroupID] = append(byGroup[r.GroupID], r)
	}
	groups := make([]int, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Ints(groups)
	var out []Retention
	at := map[string]time.Time{}
	for _, g := range groups {
		info, err := c.GetGroupInfo(ctx, g)
		if err != nil {
			return nil, nil, fmt.Errorf("read the retention of group %d: %w", g, err)
		}
		ret := Retention{Group: info.Name, GroupID: g, AutoRemovePeriodDays: info.AutoRemovePeriod, Inherited: info.Inherited, Records: len(byGroup[g])}
		var next time.Time
		for _, r := range byGroup[g] {
			base := r.LastVisible
			if base.IsZero() {
				base = r.Created
			}
			if info.AutoRemovePeriod <= 0 || base.IsZero() {
				continue
			}
			t := base.Add(time.Duration(info.AutoRemovePeriod) * 24 * time.Hour)
			at[r.ID] = t
			if next.IsZero() || t.Before(next) {
				next = t
			}
		}
		if !next.IsZero() {
			ret.NextAutoRemoval = next.UTC().Format(time.RFC3339)
		}
		out = append(out, ret)
	}
	return out, at, nil
}
