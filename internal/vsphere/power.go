package vsphere

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Polling intervals for WaitForIP and Shutdown. Variables so tests can
// make them short.
var (
	pollFirst = 250 * time.Millisecond
	pollMax   = 5 * time.Second
)

// vmState is what the power calls need to know about a VM.
type vmState struct {
	name  string
	power types.VirtualMachinePowerState
	tools types.VirtualMachineToolsRunningStatus
	ip    string
}

func (s *Session) vmState(ctx context.Context, vm *object.VirtualMachine) (vmState, error) {
	var m mo.VirtualMachine
	err := vm.Properties(ctx, vm.Reference(), []string{"name", "runtime.powerState", "guest.toolsRunningStatus", "guest.ipAddress"}, &m)
	if err != nil {
		if isGone(err) {
			return vmState{}, &NotFoundError{Kind: "vm", Name: vmLabel(vm)}
		}
		return vmState{}, fmt.Errorf("read state of vm %s: %w", vmLabel(vm), err)
	}
	st := vmState{name: m.Name, power: m.Runtime.PowerState}
	if m.Guest != nil {
		st.tools = types.VirtualMachineToolsRunningStatus(m.Guest.ToolsRunningStatus)
		st.ip = m.Guest.IpAddress
	}
	return st, nil
}

// runTask starts a task and waits for it; the error names the operation
// and the VM and carries the vSphere fault text.
func runTask(ctx context.Context, op, name string, start func(context.Context) (*object.Task, error)) error {
	t, err := start(ctx)
	if err == nil {
		err = t.Wait(ctx)
	}
	if err != nil {
		if isGone(err) {
			return fmt.Errorf("%s vm %s: %w", op, name, &NotFoundError{Kind: "vm", Name: name})
		}
		return fmt.Errorf("%s vm %s: %w", op, name, err)
	}
	return nil
}

// PowerOn powers vm on; a VM that is already on is left alone.
func (s *Session) PowerOn(ctx context.Context, vm *object.VirtualMachine) error {
	st, err := s.vmState(ctx, vm)
	if err != nil {
		return fmt.Errorf("power on vm %s: %w", vmLabel(vm), err)
	}
	if st.power == types.VirtualMachinePowerStatePoweredOn {
		return nil
	}
	return runTask(ctx, "power on", st.name, vm.PowerOn)
}

// PowerOff powers vm off hard; a VM that is already off is left alone.
func (s *Session) PowerOff(ctx context.Context, vm *object.VirtualMachine) error {
	st, err := s.vmState(ctx, vm)
	if err != nil {
		return fmt.Errorf("power off vm %s: %w", vmLabel(vm), err)
	}
	return s.powerOff(ctx, vm, st)
}

func (s *Session) powerOff(ctx context.Context, vm *object.VirtualMachine, st vmState) error {
	if st.power == types.VirtualMachinePowerStatePoweredOff {
		return nil
	}
	err := runTask(ctx, "power off", st.name, vm.PowerOff)
	if fault.Is(err, &types.InvalidPowerState{}) {
		// It went off between our read and the call (a guest shutdown).
		return nil
	}
	return err
}

// Shutdown asks the guest OS to shut down when VMware Tools run, waits up
// to timeout for the VM to be off, then powers it off hard. Without tools
// it powers off hard at once.
func (s *Session) Shutdown(ctx context.Context, vm *object.VirtualMachine, timeout time.Duration) error {
	st, err := s.vmState(ctx, vm)
	if err != nil {
		return fmt.Errorf("shut down vm %s: %w", vmLabel(vm), err)
	}
	if st.power == types.VirtualMachinePowerStatePoweredOff {
		return nil
	}
	if st.tools == types.VirtualMachineToolsRunningStatusGuestToolsRunning {
		if err := vm.ShutdownGuest(ctx); err != nil && !fault.Is(err, &types.InvalidPowerState{}) {
			if isGone(err) {
				return fmt.Errorf("shut down vm %s: %w", st.name, &NotFoundError{Kind: "vm", Name: st.name})
			}
			// Tools may refuse (not ready): fall through to the hard power off.
		} else {
			off, err := s.waitPower(ctx, vm, types.VirtualMachinePowerStatePoweredOff, timeout)
			if err != nil {
				return fmt.Errorf("shut down vm %s: %w", st.name, err)
			}
			if off {
				return nil
			}
		}
		if st, err = s.vmState(ctx, vm); err != nil {
			return fmt.Errorf("shut down vm %s: %w", vmLabel(vm), err)
		}
	}
	return s.powerOff(ctx, vm, st)
}

// waitPower polls until vm reaches state, timeout passes (false, nil) or
// ctx ends (its error).
func (s *Session) waitPower(ctx context.Context, vm *object.VirtualMachine, want types.VirtualMachinePowerState, timeout time.Duration) (bool, error) {
	reached := false
	err := poll(ctx, timeout, func() (bool, error) {
		st, err := s.vmState(ctx, vm)
		if err != nil {
			return false, err
		}
		reached = st.power == want
		return reached, nil
	})
	if errors.Is(err, errPollTimeout) {
		return false, nil
	}
	return reached, err
}

var errPollTimeout = errors.New("timed out")

// poll calls done with exponential backoff (pollFirst doubling up to
// pollMax) until it reports true, fails, timeout passes (errPollTimeout)
// or ctx ends.
func poll(ctx context.Context, timeout time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	wait := pollFirst
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errPollTimeout
		}
		t := time.NewTimer(min(wait, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, pollMax)
	}
}

// WaitForIP waits until the guest reports an IP address (guest.ipAddress,
// published by VMware Tools) and returns it. It gives up after timeout or
// when ctx ends.
func (s *Session) WaitForIP(ctx context.Context, vm *object.VirtualMachine, timeout time.Duration) (string, error) {
	var st vmState
	err := poll(ctx, timeout, func() (bool, error) {
		var err error
		st, err = s.vmState(ctx, vm)
		return err == nil && st.ip != "", err
	})
	switch {
	case errors.Is(err, errPollTimeout):
		return "", fmt.Errorf("wait for ip of vm %s: no address after %s (VMware Tools must run in the guest; power state %s, tools %s)",
			vmLabel(vm), timeout, st.power, st.tools)
	case err != nil:
		return "", fmt.Errorf("wait for ip of vm %s: %w", vmLabel(vm), err)
	}
	return st.ip, nil
}

// Destroy deletes vm and its files, powering it off first. A VM that is
// already gone gives an error matching ErrNotFound, so callers can treat
// it as done.
func (s *Session) Destroy(ctx context.Context, vm *object.VirtualMachine) error {
	st, err := s.vmState(ctx, vm)
	if err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmLabel(vm), err)
	}
	if err := s.powerOff(ctx, vm, st); err != nil {
		return fmt.Errorf("destroy vm %s: %w", st.name, err)
	}
	return runTask(ctx, "destroy", st.name, vm.Destroy)
}

// extraConfigSpec builds a reconfigure spec setting extraConfig keys; a
// value of "" removes the key.
func extraConfigSpec(kv map[string]string) types.VirtualMachineConfigSpec {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var spec types.VirtualMachineConfigSpec
	for _, k := range keys {
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: kv[k]})
	}
	return spec
}
