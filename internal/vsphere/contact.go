package vsphere

import (
	"context"
	"fmt"
	"slices"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
)

// Contact is what vCenter says about a VM that a client needs before it
// talks to the guest: where the guest answers and the records kept on it.
type Contact struct {
	VM         *object.VirtualMachine
	Name       string
	PowerState string
	// IPs are the guest's addresses as VMware Tools reports them
	// (guest.ipAddress first, then those of guest.net), without duplicates.
	IPs   []string
	Marks map[string]string
}

// IP is the guest's primary address, "" when VMware Tools reports none.
func (c Contact) IP() string {
	if len(c.IPs) == 0 {
		return ""
	}
	return c.IPs[0]
}

// VMContact finds the one VM named name in dc (nil: the only datacenter)
// and reads its guest addresses and custom attributes.
func (s *Session) VMContact(ctx context.Context, dc *object.Datacenter, name string) (Contact, error) {
	vms, err := s.VMByName(ctx, dc, name)
	if err != nil {
		return Contact{}, err
	}
	switch len(vms) {
	case 0:
		return Contact{}, &NotFoundError{Kind: "vm", Name: name, In: scopeName(dc)}
	case 1:
	default:
		paths := make([]string, len(vms))
		for i, vm := range vms {
			paths[i] = vm.InventoryPath
		}
		return Contact{}, &AmbiguousError{Kind: "vm", Name: name, Matches: paths}
	}
	vm := vms[0]
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"name", "runtime.powerState", "guest.ipAddress", "guest.net", "customValue"}, &m); err != nil {
		if isGone(err) {
			return Contact{}, &NotFoundError{Kind: "vm", Name: name, In: scopeName(dc)}
		}
		return Contact{}, fmt.Errorf("read vm %s: %w", vmLabel(vm), err)
	}
	keys, err := s.fieldKeys(ctx)
	if err != nil {
		return Contact{}, fmt.Errorf("read marks of vm %s: %w", vmLabel(vm), err)
	}
	c := Contact{VM: vm, Name: m.Name, PowerState: string(m.Runtime.PowerState), Marks: resolveMarks(m.CustomValue, keys)}
	add := func(ip string) {
		if ip != "" && !slices.Contains(c.IPs, ip) {
			c.IPs = append(c.IPs, ip)
		}
	}
	if g := m.Guest; g != nil {
		add(g.IpAddress)
		for _, n := range g.Net {
			for _, ip := range n.IpAddress {
				add(ip)
			}
		}
	}
	return c, nil
}
