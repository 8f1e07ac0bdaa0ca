package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

const datacenterType = "Datacenter"

// datacenterFieldKey returns the key of the datacenter custom attribute
// name, creating the definition when create is set; 0 when it does not
// exist and create is not set.
func (s *Session) datacenterFieldKey(ctx context.Context, name string, create bool) (int32, error) {
	find := func() (int32, error) {
		defs, err := object.NewCustomFieldsManager(s.c).Field(ctx)
		if err != nil {
			return 0, fmt.Errorf("read custom attribute definitions: %w", err)
		}
		for _, d := range defs {
			if d.Name == name && (d.ManagedObjectType == datacenterType || d.ManagedObjectType == "") {
				return d.Key, nil
			}
		}
		return 0, nil
	}
	if s.c.ServiceContent.CustomFieldsManager == nil {
		return 0, fmt.Errorf("custom attributes are not supported by this endpoint (an ESXi host, not vCenter?)")
	}
	key, err := find()
	if err != nil || key != 0 || !create {
		return key, err
	}
	def, err := object.NewCustomFieldsManager(s.c).Add(ctx, name, datacenterType, nil, nil)
	if fault.Is(err, &types.DuplicateName{}) {
		return find() // another run created it meanwhile
	}
	if err != nil {
		return 0, fmt.Errorf("create custom attribute %s: %w", name, err)
	}
	return def.Key, nil
}

// DatacenterField reads the custom attribute name of dc; "" when unset.
func (s *Session) DatacenterField(ctx context.Context, dc *object.Datacenter, name string) (string, error) {
	key, err := s.datacenterFieldKey(ctx, name, false)
	if err != nil || key == 0 {
		return "", err
	}
	var m mo.Datacenter
	if err := dc.Properties(ctx, dc.Reference(), []string{"customValue"}, &m); err != nil {
		return "", fmt.Errorf("read %s of datacenter %s: %w", name, dc.Name(), err)
	}
	for _, v := range m.CustomValue {
		if sv, ok := v.(*types.CustomFieldStringValue); ok && sv.Key == key {
			return sv.Value, nil
		}
	}
	return "", nil
}

// SetDatacenterField sets the custom attribute name of dc to value,
// creating its definition when missing.
func (s *Session) SetDatacenterField(ctx context.Context, dc *object.Datacenter, name, value string) error {
	key, err := s.datacenterFieldKey(ctx, name, true)
	if err != nil {
		return err
	}
	if err := object.NewCustomFieldsManager(s.c).Set(ctx, dc.Reference(), key, value); err != nil {
		return fmt.Errorf("set %s of datacenter %s: %w", name, dc.Name(), err)
	}
	return nil
}
