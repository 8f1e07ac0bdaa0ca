package vsphere

import (
	"context"
	"errors"
	"time"
)

// What a removal (svm_remove) does to a VM it found in the Inventory, by
// the MoRef value the inventory gave: the module decides from the fleet
// and hands the VM back to this package by id.

// RemoveVM shuts the guest of the VM with this MoRef value ("vm-42")
// down (see Shutdown: hard power-off after shutdownTimeout) and deletes
// it with its files. A VM already gone gives an error matching
// ErrNotFound.
func (s *Session) RemoveVM(ctx context.Context, moid string, shutdownTimeout time.Duration) error {
	vm := s.VMRef(moid)
	if vm == nil {
		return errors.New("remove vm: no MoRef value")
	}
	if err := s.Shutdown(ctx, vm, shutdownTimeout); err != nil {
		return err
	}
	return s.Destroy(ctx, vm)
}
