package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/ksvla/lightagent/internal/sim"
)

// benchLoopbackNet keeps the bench's SVM addresses (127.77.x.y) apart
// from labs other people run on the same machine (the default is 10).
const benchLoopbackNet = 77

// lab is a running in-process lab plus what the sections need from it.
type lab struct {
	*sim.Lab
	Vars  sim.Vars
	Build time.Duration
	c     *govmomi.Client
}

func startLab(ctx context.Context, e *Env, name string, cfg sim.Config) (*lab, error) {
	cfg.Dir = filepath.Join(e.Work, name)
	cfg.LoopbackNet = benchLoopbackNet
	start := time.Now()
	l, err := sim.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start lab %s: %w", name, err)
	}
	b := &lab{Lab: l, Vars: l.Vars(l.Dir()), Build: time.Since(start)}
	if b.c, err = l.VCenter().Client(ctx); err != nil {
		l.Close()
		return nil, fmt.Errorf("lab %s: connect: %w", name, err)
	}
	logf("  lab %s up in %s", name, b.Build.Round(time.Millisecond))
	return b, nil
}

func (l *lab) close() {
	_ = l.c.Logout(context.Background()) // the lab goes next anyway
	l.Close()
}

// vcenterEnv is the environment govc and community.vmware read their
// connection from, so no password is in a process's arguments.
func (l *lab) govcEnv() []string {
	return []string{
		"GOVC_URL=https://" + l.Vars.VCenterHostname + ":" + strconv.Itoa(l.Vars.VCenterPort) + "/sdk",
		"GOVC_USERNAME=" + l.Vars.VCenterUsername, "GOVC_PASSWORD=" + l.Vars.VCenterPassword,
		"GOVC_TLS_CA_CERTS=" + l.Vars.VCenterCAFile,
	}
}

// vmwareEnv is community.vmware's (and our modules') VMWARE_* fallback.
// Certificates are not validated for the Python peers: their
// validate_certs has no CA-file option in 3.7.0.
func (l *lab) vmwareEnv(pyPath string) []string {
	return []string{
		"VMWARE_HOST=" + l.Vars.VCenterHostname, "VMWARE_PORT=" + strconv.Itoa(l.Vars.VCenterPort),
		"VMWARE_USER=" + l.Vars.VCenterUsername, "VMWARE_PASSWORD=" + l.Vars.VCenterPassword,
		"VMWARE_VALIDATE_CERTS=false", "PYTHONPATH=" + pyPath,
	}
}

// connArgs are the connection options of our modules.
func (l *lab) connArgs() map[string]any {
	return map[string]any{
		"hostname": l.Vars.VCenterHostname, "port": l.Vars.VCenterPort, "username": l.Vars.VCenterUsername,
		"password": l.Vars.VCenterPassword, "ca_file": l.Vars.VCenterCAFile,
	}
}

// countVMs counts the VMs called name.
func (l *lab) countVMs(ctx context.Context, name string) (int, error) {
	v, err := view.NewManager(l.c.Client).CreateContainerView(ctx, l.c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return 0, err
	}
	defer v.Destroy(ctx)
	refs, err := v.Find(ctx, []string{"VirtualMachine"}, property.Match{"name": name})
	return len(refs), err
}

// destroyVM powers off (when on) and deletes the VM called name, if any.
func (l *lab) destroyVM(ctx context.Context, name string) error {
	m := view.NewManager(l.c.Client)
	v, err := m.CreateContainerView(ctx, l.c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return err
	}
	defer v.Destroy(ctx)
	refs, err := v.Find(ctx, []string{"VirtualMachine"}, property.Match{"name": name})
	if err != nil {
		return err
	}
	for _, ref := range refs {
		vm := object.NewVirtualMachine(l.c.Client, ref)
		if st, err := vm.PowerState(ctx); err == nil && st == types.VirtualMachinePowerStatePoweredOn {
			if t, err := vm.PowerOff(ctx); err == nil {
				_ = t.Wait(ctx) // Destroy below reports a VM still on
			}
		}
		t, err := vm.Destroy(ctx)
		if err == nil {
			err = t.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("destroy vm %s: %w", name, err)
		}
	}
	return nil
}
