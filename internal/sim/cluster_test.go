package sim

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/sim/vcenter"
	"github.com/ksvla/lightagent/internal/vsphere"
)

func svmHosts(l *Lab) map[string]string {
	out := map[string]string{}
	for _, h := range l.Status().Hosts {
		for _, s := range h.SVMs {
			out[s.Name] = h.Name
		}
	}
	return out
}

// The seeded SVMs carry the wizard's DRS override: DRS leaves them. With
// the overrides ignored they still stay: they sit on their hosts' local
// datastores, which a compute-only vMotion cannot leave (tests/pin_test.go
// shows SVMs on shared storage moving).
func TestDRSMovesOnlyUnpinnedSVMs(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		ignore    bool
		wantMoves bool
	}{
		"pinned by the wizard":           {false, false},
		"overrides ignored, local disks": {true, false},
	} {
		t.Run(name, func(t *testing.T) {
			l := startLab(t, Config{Hosts: 3, VMsPerHost: 1, DRSInterval: -1, DRSIgnoresOverrides: tc.ignore})
			before := svmHosts(l)
			require.NoError(t, l.DRSPass(ctx))
			require.NoError(t, l.Sync(ctx))
			if !tc.wantMoves {
				assert.Empty(t, l.Moves())
				assert.Equal(t, before, svmHosts(l))
				assert.Empty(t, l.Gaps())
				return
			}
			require.Len(t, l.Moves(), 3)
			m := l.Moves()[0]
			assert.Equal(t, "DRS", m.By)
			assert.NotEqual(t, m.From, m.To)
			eventually(t, func() bool { return len(l.Gaps()) > 0 }) // agents of a host whose SVM left
			assert.NotEqual(t, before, svmHosts(l))
		})
	}
}

func TestMaintenanceAndAutostart(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct{ noHA, noAutostart bool }{
		"HA cluster": {false, false}, "no HA": {true, false}, "no HA, KB 326330": {true, true},
	} {
		t.Run(name, func(t *testing.T) {
			noHA := tc.noHA
			l := startLab(t, Config{Hosts: 2, VMsPerHost: 1, DRSInterval: -1, NoHA: noHA, NoMaintenanceAutostart: tc.noAutostart})
			host := vcenter.HostName(0)
			svmName := l.VCenter().Inventory().Hosts[0].OldSVM
			// Pin with autostart as svm_deploy would (autostart only counts outside HA).
			_, f := labClient(t, l)
			vm, err := f.VirtualMachine(ctx, svmName)
			require.NoError(t, err)
			v := l.Vars(l.Dir())
			sess, err := vsphere.Connect(ctx, vsphere.Conn{Hostname: v.VCenterHostname, Port: v.VCenterPort,
				Username: v.VCenterUsername, Password: v.VCenterPassword, ValidateCerts: true, CAFile: v.VCenterCAFile})
			require.NoError(t, err)
			t.Cleanup(func() { _ = sess.Logout(context.Background()) })
			p, err := sess.Placement(ctx, vm)
			require.NoError(t, err)
			assert.Equal(t, !noHA, p.HA)
			require.NoError(t, sess.Pin(ctx, p))
			p, err = sess.Placement(ctx, vm)
			require.NoError(t, err)
			assert.True(t, p.Pinned(), "%+v", p.Missing())

			require.NoError(t, l.EnterMaintenance(ctx, host))
			eventually(t, func() bool {
				h := l.Status().Hosts[0]
				return h.SVMs[0].Power == "off" && len(h.Agents) == 0 // DRS evacuated the protected VM
			})
			require.NoError(t, l.ExitMaintenance(ctx, host))
			want := "off"
			if noHA && !tc.noAutostart {
				want = "on"
			}
			eventually(t, func() bool { return l.Status().Hosts[0].SVMs[0].Power == want })
			time.Sleep(200 * time.Millisecond) // nothing else happens
			assert.Equal(t, want, l.Status().Hosts[0].SVMs[0].Power)
		})
	}
}

func TestFailHostHARestarts(t *testing.T) {
	ctx := context.Background()
	l := startLab(t, Config{Hosts: 2, VMsPerHost: 1, DRSInterval: -1})
	host := vcenter.HostName(0)
	require.NoError(t, l.FailHost(ctx, host))
	eventually(t, func() bool { return len(l.Status().Hosts[0].Agents) == 0 })
	st := l.Status()
	// The SVM's HA override keeps it off on the failed host; the protected
	// VM restarts on the other host, whose SVM serves it.
	assert.Equal(t, "off", st.Hosts[0].SVMs[0].Power)
	assert.Empty(t, st.Hosts[0].Agents)
	agents := 0
	for _, n := range st.Hosts[1].Agents {
		agents += n
	}
	assert.Equal(t, 2, agents, "both protected VMs run on the surviving host: %v", st.Hosts[1].Agents)
	assert.Empty(t, l.Moves(), "the SVM must not be restarted elsewhere")
}

// eventually waits for the watcher to report what the lab did.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 100*time.Millisecond)
}

// What a real vCenter refuses the lab refuses with a fault, and keeps
// running: the simulator itself would panic migrating a VM to a host that
// does not see its datastore.
func TestLabRefusesImpossibleMigrations(t *testing.T) {
	ctx := context.Background()
	l := startLab(t, Config{Hosts: 3, VMsPerHost: 1, DRSInterval: -1})
	_, f := labClient(t, l)
	inv := l.VCenter().Inventory()
	svmVM, err := f.VirtualMachine(ctx, inv.Hosts[0].OldSVM)
	require.NoError(t, err)
	protected, err := f.VirtualMachine(ctx, inv.Hosts[0].ProtectedVMs[0])
	require.NoError(t, err)
	h2, err := f.HostSystem(ctx, inv.Hosts[1].Name)
	require.NoError(t, err)
	h3, err := f.HostSystem(ctx, inv.Hosts[2].Name)
	require.NoError(t, err)
	migrate := func(vm *object.VirtualMachine, h *object.HostSystem) error {
		ref := h.Reference()
		task, err := vm.Relocate(ctx, types.VirtualMachineRelocateSpec{Host: &ref}, types.VirtualMachineMovePriorityDefaultPriority)
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	}
	assert.ErrorContains(t, migrate(svmVM, h2), "Host esxi-02.lab.local cannot access datastore esxi-01-local of virtual machine svm-esxi-01-6.1")
	require.NoError(t, l.EnterMaintenance(ctx, inv.Hosts[2].Name))
	assert.ErrorContains(t, migrate(protected, h3), "esxi-03.lab.local: it is in maintenance mode")
	require.NoError(t, migrate(protected, h2), "shared storage, a host in service: allowed")

	// Editing an HA override that has no dasSettings.
	c, err := f.ClusterComputeResource(ctx, vcenter.Cluster)
	require.NoError(t, err)
	reconfigure := func(op types.ArrayUpdateOperation, info *types.ClusterDasVmConfigInfo) error {
		task, err := c.Reconfigure(ctx, &types.ClusterConfigSpecEx{DasVmConfigSpec: []types.ClusterDasVmConfigSpec{{
			ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: op}, Info: info}}}, true)
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	}
	require.NoError(t, reconfigure(types.ArrayUpdateOperationAdd,
		&types.ClusterDasVmConfigInfo{Key: protected.Reference(), RestartPriority: types.DasVmPriorityHigh}))
	assert.ErrorContains(t, reconfigure(types.ArrayUpdateOperationEdit, &types.ClusterDasVmConfigInfo{Key: protected.Reference(),
		DasSettings: &types.ClusterDasVmSettings{RestartPriority: "disabled"}}), "has no dasSettings to edit")
	assert.Equal(t, inv.Hosts[0].Name, l.Status().Hosts[0].Name, "the lab still answers")
}

// An SVM on shared storage: without its HA override, HA restarts it on
// another host after a host failure (the lab records the move); pinned,
// it stays off on the failed host.
func TestFailHostRestartsOnlyUnpinnedSVMs(t *testing.T) {
	for name, pin := range map[string]bool{"unpinned": false, "pinned": true} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := startLab(t, Config{Hosts: 2, VMsPerHost: 1, DRSInterval: -1})
			v := l.Vars(l.Dir())
			sess, err := vsphere.Connect(ctx, vsphere.Conn{Hostname: v.VCenterHostname, Port: v.VCenterPort,
				Username: v.VCenterUsername, Password: v.VCenterPassword, ValidateCerts: true, CAFile: v.VCenterCAFile})
			require.NoError(t, err)
			t.Cleanup(func() { _ = sess.Logout(context.Background()) })
			host := vcenter.HostName(0)
			res, err := sess.Import(ctx, vsphere.ImportSpec{Source: v.NewImage.Path, Name: "svm-shared",
				Host: host, Datastore: v.SharedDatastore})
			require.NoError(t, err)
			if pin {
				p, err := sess.Placement(ctx, res.VM)
				require.NoError(t, err)
				require.NoError(t, sess.Pin(ctx, p))
			}
			require.NoError(t, sess.PowerOn(ctx, res.VM))
			eventually(t, func() bool { return l.SVM("svm-shared") != nil })

			require.NoError(t, l.FailHost(ctx, host))
			p, err := sess.Placement(ctx, res.VM)
			require.NoError(t, err)
			if pin {
				assert.Equal(t, host, p.Host)
				assert.Equal(t, "poweredOff", p.PowerState)
				assert.Empty(t, l.Moves())
				return
			}
			assert.Equal(t, vcenter.HostName(1), p.Host)
			assert.Equal(t, "poweredOn", p.PowerState)
			require.Len(t, l.Moves(), 1)
			assert.Equal(t, Move{Time: l.Moves()[0].Time, VM: "svm-shared", From: host, To: vcenter.HostName(1), By: "HA"}, l.Moves()[0])
		})
	}
}
