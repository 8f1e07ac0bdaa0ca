package vsphere

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Leftover is what an interrupted Import (killed process, lost network)
// left behind under a VM name.
type Leftover struct {
	Name string
	// VMs still carry ImportMarkerKey=incomplete: their disks were never
	// (fully) uploaded. Only VMs created by Import carry that key, so they
	// are positively ours.
	VMs []*object.VirtualMachine
	// Folders are datastore folders named like the VM ("[ds] name") with
	// no VM of that name registered anywhere: they make a new import fail
	// with FileAlreadyExists. They may hold an unregistered VM of someone
	// else, so the caller decides whether to delete them.
	Folders []string
	dc      *object.Datacenter
}

// Empty reports whether nothing was left behind.
func (l *Leftover) Empty() bool { return l == nil || len(l.VMs) == 0 && len(l.Folders) == 0 }

// FindLeftover looks for remains of an interrupted import of name in dc
// (nil: the only datacenter) and, when datastores are given, for orphan
// datastore folders on them. It returns nil when there are none.
func (s *Session) FindLeftover(ctx context.Context, dc *object.Datacenter, name string, datastores ...*object.Datastore) (*Leftover, error) {
	if dc == nil {
		var err error
		if dc, err = s.Datacenter(ctx, ""); err != nil {
			return nil, fmt.Errorf("find leftovers of %s: %w", name, err)
		}
	}
	vms, err := s.VMByName(ctx, dc, name)
	if err != nil {
		return nil, fmt.Errorf("find leftovers of %s: %w", name, err)
	}
	l := &Leftover{Name: name, dc: dc}
	for _, vm := range vms {
		var m mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), []string{"config.extraConfig"}, &m); err != nil {
			if isGone(err) {
				continue
			}
			return nil, fmt.Errorf("find leftovers of %s: read vm %s: %w", name, vm.InventoryPath, err)
		}
		if m.Config == nil {
			continue
		}
		for _, o := range m.Config.ExtraConfig {
			ov := o.GetOptionValue()
			if ov.Key == ImportMarkerKey && ov.Value == ImportMarkerIncomplete {
				l.VMs = append(l.VMs, vm)
				break
			}
		}
	}
	if len(vms) == 0 {
		for _, ds := range datastores {
			fi, err := ds.Stat(ctx, name)
			var nsf object.DatastoreNoSuchFileError
			var nsd object.DatastoreNoSuchDirectoryError
			switch {
			case err == nil:
				if _, dir := fi.(*types.FolderFileInfo); !dir {
					continue // a file, not an import's folder
				}
				l.Folders = append(l.Folders, ds.Path(name))
			case errors.As(err, &nsf), errors.As(err, &nsd):
			default:
				return nil, fmt.Errorf("find leftovers of %s: look for folder %s: %w", name, ds.Path(name), err)
			}
		}
	}
	if l.Empty() {
		return nil, nil
	}
	return l, nil
}

// CleanupLeftover deletes what FindLeftover found: the half-imported VMs
// (powering them off first) and the orphan datastore folders.
func (s *Session) CleanupLeftover(ctx context.Context, l *Leftover) error {
	if l.Empty() {
		return nil
	}
	for _, vm := range l.VMs {
		dir := s.logDirectory(ctx, vm)
		if err := s.Destroy(ctx, vm); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("clean up leftovers of %s: %w", l.Name, err)
		}
		s.awaitFolderGone(ctx, l.dc, dir)
	}
	fm := object.NewFileManager(s.c)
	for _, f := range l.Folders {
		err := runTask(ctx, "delete datastore folder of", l.Name, func(ctx context.Context) (*object.Task, error) {
			return fm.DeleteDatastoreFile(ctx, f, l.dc)
		})
		if err != nil {
			return fmt.Errorf("clean up leftovers of %s: %s: %w", l.Name, f, err)
		}
	}
	return nil
}

// folderGoneWait bounds the wait for a destroyed VM's folder to go.
const folderGoneWait = 5 * time.Second

// logDirectory is vm's folder ("[ds] name/"), or "" when unknown.
func (s *Session) logDirectory(ctx context.Context, vm *object.VirtualMachine) string {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.files.logDirectory"}, &m); err != nil || m.Config == nil {
		return ""
	}
	return m.Config.Files.LogDirectory
}

// awaitFolderGone waits, up to folderGoneWait, until the folder dir of a
// destroyed VM is gone, so a new import of the same name does not land in
// a folder being deleted (it then fails with FileNotFound). vCenter
// deletes the folder within Destroy_Task, so this is one Stat there; the
// govmomi simulator deletes it in a task of its own, after. A folder that
// stays (it held other files) is left to the import to report.
func (s *Session) awaitFolderGone(ctx context.Context, dc *object.Datacenter, dir string) {
	var p object.DatastorePath
	if dir == "" || !p.FromString(dir) {
		return
	}
	ds, err := s.Datastore(ctx, dc, p.Datastore)
	if err != nil {
		return
	}
	deadline := time.Now().Add(folderGoneWait)
	for {
		// Gone (or unreadable: the import reports what is wrong with it).
		if _, err := ds.Stat(ctx, strings.TrimSuffix(p.Path, "/")); err != nil || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
