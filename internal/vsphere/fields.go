package vsphere

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

const vmType = "VirtualMachine"

// fieldKeys reads the custom attribute definitions that apply to VMs once
// and returns name -> key.
func (s *Session) fieldKeys(ctx context.Context) (map[string]int32, error) {
	if s.c.ServiceContent.CustomFieldsManager == nil {
		return nil, errors.New("custom attributes are not supported by this endpoint (an ESXi host, not vCenter?)")
	}
	defs, err := object.NewCustomFieldsManager(s.c).Field(ctx)
	if err != nil {
		return nil, fmt.Errorf("read custom attribute definitions: %w", err)
	}
	return vmFieldKeys(defs), nil
}

func vmFieldKeys(defs []types.CustomFieldDef) map[string]int32 {
	keys := make(map[string]int32, len(defs))
	for _, d := range defs {
		if d.ManagedObjectType == "" || d.ManagedObjectType == vmType {
			keys[d.Name] = d.Key
		}
	}
	return keys
}

// EnsureCustomFields creates the VM custom attribute definitions named in
// Marks that do not exist yet. Running it twice, or from two runs at once,
// is harmless.
func (s *Session) EnsureCustomFields(ctx context.Context) error {
	_, err := s.ensureFields(ctx, Marks)
	return err
}

func (s *Session) ensureFields(ctx context.Context, names []string) (map[string]int32, error) {
	keys, err := s.fieldKeys(ctx)
	if err != nil {
		return nil, err
	}
	m := object.NewCustomFieldsManager(s.c)
	for _, name := range names {
		if _, ok := keys[name]; ok {
			continue
		}
		def, err := m.Add(ctx, name, vmType, nil, nil)
		if fault.Is(err, &types.DuplicateName{}) {
			// Another run created it since we read the list: read it again.
			if keys, err = s.fieldKeys(ctx); err != nil {
				return nil, err
			}
			if _, ok := keys[name]; ok {
				continue
			}
			return nil, fmt.Errorf("create custom attribute %s: a definition with this name exists for another object type", name)
		}
		if err != nil {
			return nil, fmt.Errorf("create custom attribute %s: %w", name, err)
		}
		keys[name] = def.Key
	}
	return keys, nil
}

// SetMarks sets custom attributes on vm, creating missing definitions.
// Attributes are written in sorted name order so a failure part-way is
// reproducible.
func (s *Session) SetMarks(ctx context.Context, vm *object.VirtualMachine, marks map[string]string) error {
	names := make([]string, 0, len(marks))
	for n := range marks {
		names = append(names, n)
	}
	sort.Strings(names)
	keys, err := s.ensureFields(ctx, names)
	if err != nil {
		return fmt.Errorf("mark vm %s: %w", vmLabel(vm), err)
	}
	m := object.NewCustomFieldsManager(s.c)
	for _, n := range names {
		if err := m.Set(ctx, vm.Reference(), keys[n], marks[n]); err != nil {
			if isGone(err) {
				return fmt.Errorf("mark vm %s: %w", vmLabel(vm), &NotFoundError{Kind: "vm", Name: vmLabel(vm)})
			}
			return fmt.Errorf("mark vm %s: set %s: %w", vmLabel(vm), n, err)
		}
	}
	return nil
}

// ReadMarks returns every custom attribute set on vm (not only Marks), by
// attribute name. Values set to "" are left out.
func (s *Session) ReadMarks(ctx context.Context, vm *object.VirtualMachine) (map[string]string, error) {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"customValue"}, &m); err != nil {
		if isGone(err) {
			return nil, &NotFoundError{Kind: "vm", Name: vmLabel(vm)}
		}
		return nil, fmt.Errorf("read marks of vm %s: %w", vmLabel(vm), err)
	}
	keys, err := s.fieldKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read marks of vm %s: %w", vmLabel(vm), err)
	}
	return resolveMarks(m.CustomValue, keys), nil
}

// resolveMarks maps custom values to attribute names using name -> key.
func resolveMarks(values []types.BaseCustomFieldValue, keys map[string]int32) map[string]string {
	names := make(map[int32]string, len(keys))
	for n, k := range keys {
		names[k] = n
	}
	out := make(map[string]string)
	for _, v := range values {
		sv, ok := v.(*types.CustomFieldStringValue)
		if !ok || sv.Value == "" {
			continue
		}
		if n, ok := names[sv.Key]; ok {
			out[n] = sv.Value
		}
	}
	return out
}

// vmLabel names a VM in messages: its inventory path's last element when
// known, else its MoRef.
func vmLabel(vm *object.VirtualMachine) string {
	if n := vm.Name(); n != "" {
		return n
	}
	return vm.Reference().Value
}
