package svmdeploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/vsphere"
	"github.com/ksvla/lightagent/modules/fleetopts"
)

// errGateNeedsKSC is svm_remove's condition too: without KSC the Light
// Agents are unknown and no removal can be judged safe.
var errGateNeedsKSC = errors.New("the Light Agent gate needs KSC: set ksc_url, ksc_username and ksc_password (or export KSC_URL, KSC_USERNAME, KSC_PASSWORD), or set force=true to remove without checking Light Agents")

// removal is the verdict of the removal gates on the SVM state=absent
// deletes, read from the fleet of its host.
type removal struct {
	SVM   fleet.SVM
	Gates fleet.GateResult
}

// gateOptions are the options of the removal gate (state=absent).
func gateOptions() []ansible.Option {
	products := fleetopts.Spec().Options
	out := []ansible.Option{
		{Name: "force", Type: ansible.TypeBool, Default: false,
			Description: []string{"With O(state=absent): skip the Light Agent and unknown-VM gates (and so the need for KSC options); the last-SVM gate still applies.",
				"Every skipped gate is named in a warning."}},
		fleetopts.NotProtectedOption,
	}
	for _, o := range products {
		if o.Name == "ps_products" || o.Name == "la_products" || o.Name == "compatibility" {
			out = append(out, o)
		}
	}
	return out
}

// checkRemoval runs svm_remove's gates on the SVM with this moid, reading
// the fleet of its host afresh: an SVM is never deleted by this module on
// a verdict older than the call. There is no target version here (a
// rollback removes the new SVM), so the replacement gate passes and the
// Light Agent, last-SVM and unknown-VM gates decide.
func (m *module) checkRemoval(ctx context.Context, s *vsphere.Session, o Options, host, moid string) (removal, error) {
	if !o.KSCOptions.Given() && !o.Force {
		return removal{}, errGateNeedsKSC
	}
	src := fleet.Sources{DRS: s} // the host's VMs and their DRS neighbours in one inventory pass
	if o.KSCOptions.Given() {
		c, err := m.KSC(o.KSCOptions)
		if err != nil {
			return removal{}, err
		}
		src.KSC = c
	}
	raw := o.Compatibility
	if raw == nil {
		raw = fleet.DefaultCompat
	}
	compat, err := fleet.ParseCompat(raw)
	if err != nil {
		return removal{}, err
	}
	r := fleet.Rules{ProtectionServer: o.PSProducts, LightAgent: o.LAProducts, NotProtected: o.NotProtected, Compat: compat,
		MarkRole: vsphere.MarkRole, MarkVersion: vsphere.MarkVersion, RoleSVM: vsphere.RoleSVM, MarkHost: vsphere.MarkHost}
	f, err := fleet.Observe(ctx, src, vsphere.Scope{Datacenter: o.Datacenter, Hosts: []string{host}}, r)
	if err != nil {
		return removal{}, fmt.Errorf("read the fleet of %s for the removal gates: %w", host, err)
	}
	for _, svm := range f.SVMs {
		if svm.Moid == moid {
			if o.Force {
				return removal{SVM: svm, Gates: fleet.GatesForced(f, svm)}, nil
			}
			return removal{SVM: svm, Gates: fleet.Gates(f, svm)}, nil
		}
	}
	return removal{}, fmt.Errorf("SVM %s on %s is not in the fleet of its host: not touched", o.Name, host)
}

// warn warns about skipped gates.
func (r removal) warn(resp *ansible.Response) {
	for _, g := range r.Gates {
		if g.Skipped {
			resp.Warn(fmt.Sprintf("force=true: %s on %s passes although %s", r.SVM.Name, r.SVM.Host, g.Reason))
		}
	}
}

// refusal is svm_remove's refusal for the same verdict.
func (r removal) refusal() error {
	return fleet.RefusedError([]fleet.BlockedSVM{{Name: r.SVM.Name, Host: r.SVM.Host, Version: r.SVM.Version, Gates: r.Gates}})
}
