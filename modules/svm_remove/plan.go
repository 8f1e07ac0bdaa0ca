package svmremove

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ksvla/lightagent/internal/fleet"
)

// vmRef is one VM in scope, as far as selection by name needs it.
type vmRef struct {
	Moid string
	Host string
}

// observed is what Observe read.
type observed struct {
	Fleet fleet.Fleet
	// InScope holds every VM in scope by name; several VMs may share one.
	InScope map[string][]vmRef
	// Outside holds selected names not in scope but carried by VMs
	// elsewhere in the datacenter, with their hosts.
	Outside map[string][]string
}

// Item is one SVM the module removes (or would remove), with the KSC
// identity ksc_purge needs and the gates that let it go.
type Item struct {
	Name        string           `json:"name"`
	Moid        string           `json:"moid"`
	Host        string           `json:"host"`
	Version     fleet.Version    `json:"version"`
	IP          string           `json:"ip,omitempty"`
	FQDN        string           `json:"fqdn,omitempty"`
	KSCID       string           `json:"ksc_id,omitempty"`
	KSCName     string           `json:"ksc_name,omitempty"`
	Gates       fleet.GateResult `json:"gates"`
	WouldRemove bool             `json:"would_remove,omitempty"`
}

func item(s fleet.SVM, g fleet.GateResult) Item {
	return Item{Name: s.Name, Moid: s.Moid, Host: s.Host, Version: s.Version, IP: s.IP, FQDN: s.FQDN,
		KSCID: s.KSCID, KSCName: s.KSCName, Gates: g}
}

// Blocked is a selected SVM a gate keeps.
type Blocked struct {
	Name    string           `json:"name"`
	Host    string           `json:"host"`
	Version fleet.Version    `json:"version"`
	Reason  string           `json:"reason"`
	Gates   fleet.GateResult `json:"gates"`
}

// SelectedSVM is one selected SVM as the diff shows it.
type SelectedSVM struct {
	Name       string        `json:"name"`
	Host       string        `json:"host"`
	Version    fleet.Version `json:"version"`
	PowerState string        `json:"power_state"`
}

// Plan is the ordered list of SVMs to remove. A plan with blocked SVMs is
// never applied (see plan). Apply records in it what happened: Removed,
// the SVMs found gone meanwhile (Absent) and one blocked at removal time.
type Plan struct {
	Remove []Item
	// Removed are the SVMs removed, or in check mode those that would be.
	Removed []Item
	Absent  []string
	Blocked []Blocked
	// Before are the selected SVMs present, After those that remain.
	Before, After []SelectedSVM
}

// Empty reports whether nothing is to be removed.
func (p *Plan) Empty() bool { return len(p.Remove) == 0 }

// Diff returns the selected SVMs before and after.
func (p *Plan) Diff() (before, after any) {
	return map[string]any{"svms": p.Before}, map[string]any{"svms": p.After}
}

// Report is the module's return values.
func (p *Plan) Report() map[string]any {
	return map[string]any{"removed": nonNil(p.Removed), "absent": nonNil(p.Absent), "blocked": nonNil(p.Blocked)}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// gatesFor runs the gates, without the agent gate when forced.
func gatesFor(f fleet.Fleet, s fleet.SVM, force bool) fleet.GateResult {
	if force {
		return fleet.GatesForced(f, s)
	}
	return fleet.Gates(f, s)
}

// without returns f as it will be once the SVMs with these moids are gone.
// The gates read only SVMs and agents, and agents do not depend on SVMs, so
// dropping the SVMs is enough.
func without(f fleet.Fleet, moids map[string]bool) fleet.Fleet {
	svms := make([]fleet.SVM, 0, len(f.SVMs))
	for _, s := range f.SVMs {
		if !moids[s.Moid] {
			svms = append(svms, s)
		}
	}
	f.SVMs = svms
	return f
}

// plan selects the SVMs and checks their gates as if they were removed one
// after the other in the order they will be (by host, then name): removing
// one SVM never opens a gate for another, so two SVMs of one host of which
// only one may go are caught here, before anything is touched. The plan is
// returned even with an error, so the caller can report what blocked.
//
// Nothing half-done: any selection problem or any blocked SVM is an error
// and the plan must not be applied, even for SVMs whose gates passed.
func plan(o Options, obs observed) (*Plan, error) {
	sel, absent, err := selectSVMs(o, obs)
	p := &Plan{Absent: absent, Remove: []Item{}, Blocked: []Blocked{}, Before: []SelectedSVM{}, After: []SelectedSVM{}}
	if err != nil {
		return p, err
	}
	sort.Slice(sel, func(i, j int) bool {
		if sel[i].Host != sel[j].Host {
			return sel[i].Host < sel[j].Host
		}
		return sel[i].Name < sel[j].Name
	})
	f := obs.Fleet
	gone := map[string]bool{}
	for _, s := range sel {
		st := SelectedSVM{Name: s.Name, Host: s.Host, Version: s.Version, PowerState: s.PowerState}
		p.Before = append(p.Before, st)
		g := gatesFor(f, s, o.Force)
		if !g.Passed() {
			p.Blocked = append(p.Blocked, Blocked{Name: s.Name, Host: s.Host, Version: s.Version, Reason: g.Reason(), Gates: g})
			p.After = append(p.After, st)
			continue
		}
		p.Remove = append(p.Remove, item(s, g))
		gone[s.Moid] = true
		f = without(f, gone)
	}
	if len(p.Blocked) > 0 {
		return p, blockedError(p.Blocked)
	}
	return p, nil
}

func blockedError(bs []Blocked) error {
	out := make([]fleet.BlockedSVM, len(bs))
	for i, b := range bs {
		out[i] = fleet.BlockedSVM{Name: b.Name, Host: b.Host, Version: b.Version, Gates: b.Gates}
	}
	return fleet.RefusedError(out)
}

// selectSVMs resolves the selector into recognised SVMs and absent names.
// A selected VM that is not a recognised SVM, a name several VMs share, or
// a name found only outside the scope is an error naming it.
func selectSVMs(o Options, obs observed) ([]fleet.SVM, []string, error) {
	absent := []string{}
	if o.Version != "" {
		var sel []fleet.SVM
		for _, s := range obs.Fleet.SVMs {
			if s.Version.Compare(fleet.Version(o.Version)) == 0 {
				sel = append(sel, s)
			}
		}
		return sel, absent, nil
	}
	names := o.selected()
	byMoid := map[string]fleet.SVM{}
	for _, s := range obs.Fleet.SVMs {
		byMoid[s.Moid] = s
	}
	var sel []fleet.SVM
	var problems []string
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		vms := obs.InScope[n]
		switch {
		case len(vms) == 0 && len(obs.Outside[n]) > 0:
			problems = append(problems, fmt.Sprintf("%s is outside the scope (on %s)", n, strings.Join(obs.Outside[n], ", ")))
		case len(vms) == 0:
			absent = append(absent, n)
		case len(vms) > 1:
			hosts := make([]string, len(vms))
			for i, v := range vms {
				hosts[i] = v.Moid + " on " + v.Host
			}
			problems = append(problems, fmt.Sprintf("%d VMs are named %s (%s)", len(vms), n, strings.Join(hosts, ", ")))
		default:
			s, ok := byMoid[vms[0].Moid]
			if !ok {
				problems = append(problems, notSVM(obs.Fleet, n, vms[0].Host))
				continue
			}
			sel = append(sel, s)
		}
	}
	sort.Strings(absent)
	if len(problems) > 0 {
		return nil, absent, errors.New("refusing to remove anything: " + strings.Join(problems, "; "))
	}
	return sel, absent, nil
}

// notSVM says why a selected VM is not touched.
func notSVM(f fleet.Fleet, name, host string) string {
	for _, c := range f.Candidates {
		if c == name {
			return fmt.Sprintf("%s on %s is not a recognised SVM: it matches svm_name_pattern, but neither SVM marks nor a Protection Server product in KSC vouch for it", name, host)
		}
	}
	for _, a := range f.Agents {
		if a.Name == name {
			return fmt.Sprintf("%s on %s is not an SVM: it is a protected VM with Light Agent %s", name, host, a.Version)
		}
	}
	return fmt.Sprintf("%s on %s is not a recognised SVM: no SVM marks and no Protection Server product in KSC", name, host)
}
