package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
)

// FindContact finds the one VM named vm in the datacenter named datacenter
// ("" when vCenter has exactly one) and reads its contact (see VMContact).
// The error starts with what was not found: "datacenter: " or "vm: ".
func (s *Session) FindContact(ctx context.Context, datacenter, vm string) (Contact, error) {
	var dc *object.Datacenter
	if datacenter != "" {
		var err error
		if dc, err = s.Datacenter(ctx, datacenter); err != nil {
			return Contact{}, fmt.Errorf("datacenter: %w", err)
		}
	}
	c, err := s.VMContact(ctx, dc, vm)
	if err != nil {
		return Contact{}, fmt.Errorf("vm: %w", err)
	}
	return c, nil
}

// SetContactMarks sets custom attributes on the contact's VM (see SetMarks).
func (s *Session) SetContactMarks(ctx context.Context, c Contact, marks map[string]string) error {
	return s.SetMarks(ctx, c.VM, marks)
}
