package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/ksvla/lightagent/internal/sim/vcenter"
)

// The lab's vSphere cluster services, which the govmomi simulator accepts
// the settings of but does not run: DRS load balancing, HA restarts, and
// autostart when a host leaves maintenance mode.

// DefaultDRSInterval is how often the lab's DRS balances the cluster:
// vSphere's own DRS invocation interval.
const DefaultDRSInterval = 5 * time.Minute

// Move is a VM the lab's cluster services moved to another host.
type Move struct {
	Time     time.Time
	VM       string
	From, To string
	By       string // "DRS" or "HA"
}

// Moves returns every SVM the lab's DRS or HA moved since Start.
func (l *Lab) Moves() []Move {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Move(nil), l.moves...)
}

// AgentMoves returns every protected VM the lab's DRS or HA moved since
// Start (its agent follows it).
func (l *Lab) AgentMoves() []Move {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Move(nil), l.agentMoves...)
}

func (l *Lab) vmMoved(vm vcenter.VM) {
	if a, ok := l.agents[vm.Name]; ok {
		a.host = vm.Host
		l.evaluateLocked(vm.Name + " moved to " + vm.Host)
		return
	}
	if rec := l.svms[vm.Name]; rec != nil && rec.ref == vm.Ref {
		rec.host = vm.Host
		l.evaluateLocked(vm.Name + " moved to " + vm.Host)
	}
}

// drs is one DRS pass of the lab's schedule (every DRSInterval).
func (l *Lab) drs() {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.DRSInterval+10*time.Second)
	defer cancel()
	if err := l.DRSPass(ctx); err != nil {
		l.cfg.Logf("lab: drs: %v", err)
	}
}

// DRSPass is one fully automated DRS pass: every powered-on VM that no DRS
// VM override holds (protected VMs included, unless ProtectedVMsStay gave
// them overrides) is migrated to the next host of the cluster with the
// memory for it and its datastores, as load balancing would.
func (l *Lab) DRSPass(ctx context.Context) error {
	l.clusterMu.Lock()
	defer l.clusterMu.Unlock()
	hosts, vms, err := l.vc.Cluster(ctx)
	if err != nil {
		return err
	}
	for _, vm := range vms {
		if !vm.On || vm.Host == "" {
			continue
		}
		if drsOff, _ := l.vc.VMOverrides(vm.Ref); drsOff && !l.cfg.DRSIgnoresOverrides {
			continue
		}
		if err := l.moveLocked(ctx, hosts, vm, "DRS"); err != nil {
			return err
		}
	}
	return nil
}

// moveLocked migrates vm to the next usable host after its own, keeping
// hosts' used memory current; no host with room: the VM stays.
func (l *Lab) moveLocked(ctx context.Context, hosts []vcenter.HostState, vm vcenter.ClusterVM, by string) error {
	from := -1
	for i, h := range hosts {
		if h.Name == vm.Host {
			from = i
		}
	}
	for k := 1; k < len(hosts); k++ {
		to := &hosts[(from+k+len(hosts))%len(hosts)]
		// Compute-only vMotion, as DRS does: the target must see the VM's
		// datastores (an SVM on a host's local datastore stays; one on
		// shared storage moves).
		if to.Name == vm.Host || !to.Connected || to.Maintenance || to.MemoryMB-to.UsedMemoryMB < vm.MemoryMB || !to.Sees(vm) {
			continue
		}
		if err := l.vc.Migrate(ctx, vm.Ref, to.Ref); err != nil {
			return err
		}
		if vm.On {
			to.UsedMemoryMB += vm.MemoryMB
			if from >= 0 {
				hosts[from].UsedMemoryMB -= vm.MemoryMB
			}
		}
		l.mu.Lock()
		m := Move{Time: time.Now(), VM: vm.Name, From: vm.Host, To: to.Name, By: by}
		if _, ok := l.svms[vm.Name]; ok || l.seeded[vm.Name] {
			l.moves = append(l.moves, m)
		} else if _, ok := l.agents[vm.Name]; ok {
			l.agentMoves = append(l.agentMoves, m)
		}
		l.mu.Unlock()
		return nil
	}
	return nil
}

// EnterMaintenance plays an operator (or vSphere Lifecycle Manager)
// putting host into maintenance mode: DRS evacuates its other VMs, its
// SVMs are powered off (an SVM serves only its own host), then the host
// enters maintenance mode.
func (l *Lab) EnterMaintenance(ctx context.Context, host string) error {
	l.clusterMu.Lock()
	defer l.clusterMu.Unlock()
	hosts, vms, h, err := l.clusterHost(ctx, host, "enter maintenance mode")
	if err != nil {
		return err
	}
	for _, vm := range vms {
		if vm.Host != host || !vm.On {
			continue
		}
		if l.isSVM(vm.Name) {
			if err := l.vc.Power(ctx, vm.Ref, false); err != nil {
				return err
			}
			continue
		}
		if err := l.moveLocked(ctx, hosts, vm, "DRS"); err != nil {
			return err
		}
	}
	return l.vc.SetMaintenance(ctx, h.Ref, true)
}

// ExitMaintenance takes host out of maintenance mode. Outside an HA
// cluster, the host powers on the VMs its autostart says to (unless
// NoMaintenanceAutostart); in an HA cluster autostart is not supported and
// nothing is powered on.
func (l *Lab) ExitMaintenance(ctx context.Context, host string) error {
	l.clusterMu.Lock()
	defer l.clusterMu.Unlock()
	_, vms, h, err := l.clusterHost(ctx, host, "exit maintenance mode")
	if err != nil {
		return err
	}
	if err := l.vc.SetMaintenance(ctx, h.Ref, false); err != nil {
		return err
	}
	if l.vc.HAEnabled() || l.cfg.NoMaintenanceAutostart {
		return nil
	}
	for _, ref := range l.vc.AutoStartVMs(host) {
		for _, vm := range vms {
			if vm.Ref == ref && vm.Host == host && !vm.On {
				if err := l.vc.Power(ctx, ref, true); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// FailHost plays a host failure: the host stops responding and its VMs
// stop. With HA on, HA restarts each on another host unless an HA VM
// override disables its restart; the others stay off on the failed host.
func (l *Lab) FailHost(ctx context.Context, host string) error {
	l.clusterMu.Lock()
	defer l.clusterMu.Unlock()
	hosts, vms, h, err := l.clusterHost(ctx, host, "fail host")
	if err != nil {
		return err
	}
	if err := l.vc.SetConnected(host, false); err != nil {
		return err
	}
	h.Connected = false
	var down []vcenter.ClusterVM
	for _, vm := range vms {
		if vm.Host == host && vm.On {
			if err := l.vc.Power(ctx, vm.Ref, false); err != nil {
				return err
			}
			h.UsedMemoryMB -= vm.MemoryMB
			vm.On = false
			down = append(down, vm)
		}
	}
	if !l.vc.HAEnabled() {
		return nil
	}
	for _, vm := range down {
		if _, haOff := l.vc.VMOverrides(vm.Ref); haOff {
			continue
		}
		if err := l.moveLocked(ctx, hosts, vm, "HA"); err != nil {
			return err
		}
		if err := l.vc.Power(ctx, vm.Ref, true); err != nil {
			return err
		}
	}
	return nil
}

// RecoverHost brings a failed host back (its VMs stay as they are).
func (l *Lab) RecoverHost(host string) error {
	l.clusterMu.Lock()
	defer l.clusterMu.Unlock()
	return l.vc.SetConnected(host, true)
}

func (l *Lab) isSVM(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.svms[name]
	return ok || l.seeded[name]
}

// clusterHost reads the cluster and finds host in it, for the host
// actions (what names the action in the error).
func (l *Lab) clusterHost(ctx context.Context, host, what string) ([]vcenter.HostState, []vcenter.ClusterVM, *vcenter.HostState, error) {
	hosts, vms, err := l.vc.Cluster(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	h := findHost(hosts, host)
	if h == nil {
		return nil, nil, nil, fmt.Errorf("%s: no host %s", what, host)
	}
	return hosts, vms, h, nil
}

func findHost(hosts []vcenter.HostState, name string) *vcenter.HostState {
	for i := range hosts {
		if hosts[i].Name == name {
			return &hosts[i]
		}
	}
	return nil
}
