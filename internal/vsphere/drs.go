package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// A protected VM in a fully automated DRS cluster moves between the hosts
// of its cluster at any time, and its Light Agent then looks for an SVM
// from the new host: on it first, with the extended algorithm limited to
// it (https://support.kaspersky.com/KESL/12.1/en-US/272009.htm). So which
// VMs DRS may move decides which agents an SVM may have to serve next.

// ClusterDRS is a cluster's DRS settings, as far as they decide whether
// DRS moves a VM on its own.
type ClusterDRS struct {
	Name    string
	Enabled bool
	// DefaultBehavior is the cluster's automation level for VMs without
	// an override.
	DefaultBehavior types.DrsBehavior
	// Overrides are the DRS VM overrides, by VM MoRef value.
	Overrides map[string]DRSOverride
}

// DRSOverride is one DRS VM override.
type DRSOverride struct {
	// Disabled: the override disables DRS for the VM (Enabled false).
	Disabled bool
	// Behavior is the VM's own automation level; "" keeps the cluster's.
	Behavior types.DrsBehavior
}

// Moves reports whether DRS migrates the VM with this MoRef value on its
// own (enabled, fully automated for it), and says why not otherwise.
// Partially automated and manual levels only recommend migrations.
func (c ClusterDRS) Moves(moid string) (bool, string) {
	if !c.Enabled {
		return false, "DRS is off in cluster " + c.Name
	}
	level := c.DefaultBehavior
	if o, ok := c.Overrides[moid]; ok {
		if o.Disabled {
			return false, "a DRS VM override disables DRS for it"
		}
		if o.Behavior != "" {
			level = o.Behavior
		}
	}
	if level != "" && level != types.DrsBehaviorFullyAutomated {
		return false, fmt.Sprintf("DRS automation level %s for it", level)
	}
	return true, ""
}

// ClustersDRS reads the DRS settings of every cluster of the datacenter
// (every datacenter when empty), by cluster name: one container view and
// one property read.
func (s *Session) ClustersDRS(ctx context.Context, datacenter string) (map[string]ClusterDRS, error) {
	root := s.c.ServiceContent.RootFolder
	if datacenter != "" {
		dc, err := s.Datacenter(ctx, datacenter)
		if err != nil {
			return nil, fmt.Errorf("read DRS settings: %w", err)
		}
		root = dc.Reference()
	}
	v, err := view.NewManager(s.c).CreateContainerView(ctx, root, []string{"ClusterComputeResource"}, true)
	if err != nil {
		return nil, fmt.Errorf("read DRS settings: %w", err)
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()
	var clusters []mo.ClusterComputeResource
	if err := v.Retrieve(ctx, []string{"ClusterComputeResource"}, []string{"name", "configurationEx"}, &clusters); err != nil {
		return nil, fmt.Errorf("read DRS settings: %w", err)
	}
	out := make(map[string]ClusterDRS, len(clusters))
	for _, c := range clusters {
		d := ClusterDRS{Name: c.Name, Overrides: map[string]DRSOverride{}}
		if cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx); ok {
			d.Enabled = cfg.DrsConfig.Enabled != nil && *cfg.DrsConfig.Enabled
			d.DefaultBehavior = cfg.DrsConfig.DefaultVmBehavior
			for _, o := range cfg.DrsVmConfig {
				d.Overrides[o.Key.Value] = DRSOverride{Disabled: o.Enabled != nil && !*o.Enabled, Behavior: o.Behavior}
			}
		}
		out[c.Name] = d
	}
	return out, nil
}
