package vcenter

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vim25/types"
)

// The lab answers a VM placed on a datastore its host does not mount with
// InvalidDatastore, as vCenter does; the simulator alone panics in a task
// goroutine and takes the whole lab down.
func TestImportOnAnotherHostsDatastoreIsAFault(t *testing.T) {
	v, c, _ := start(t, Config{Hosts: 2, VMsPerHost: -1})
	ctx := context.Background()
	inv := v.Inventory()
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(ctx, inv.Datacenter)
	require.NoError(t, err)
	f.SetDatacenter(dc)
	host, err := f.HostSystem(ctx, inv.Hosts[0].Name)
	require.NoError(t, err)
	other, err := f.Datastore(ctx, inv.Hosts[1].LocalDatastore)
	require.NoError(t, err)
	pool, err := host.ResourcePool(ctx)
	require.NoError(t, err)
	folders, err := dc.Folders(ctx)
	require.NoError(t, err)

	const desc = `<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"` +
		` xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">` +
		`<References/><VirtualSystem ovf:id="x"><Name>x</Name><VirtualHardwareSection><System><vssd:ElementName>hw</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>` +
		`<vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType></System><Item><rasd:ElementName>1 CPU</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>` +
		`<rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item></VirtualHardwareSection></VirtualSystem></Envelope>`
	hr := host.Reference()
	spec, err := ovf.NewManager(c.Client).CreateImportSpec(ctx, desc, pool, other, &types.OvfCreateImportSpecParams{EntityName: "x", HostSystem: &hr})
	require.NoError(t, err)

	_, err = pool.ImportVApp(ctx, spec.ImportSpec, folders.VmFolder, host)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "The datastore "+inv.Hosts[1].LocalDatastore+" is not accessible from host "+inv.Hosts[0].Name)

	_, err = folders.VmFolder.CreateVM(ctx, spec.ImportSpec.(*types.VirtualMachineImportSpec).ConfigSpec, pool, host)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not accessible from host")

	// The lab is still there, and nothing was created.
	vms, err := f.VirtualMachineList(ctx, "x")
	assert.Error(t, err, "no VM x: %v", vms)
	_, err = f.HostSystem(ctx, inv.Hosts[1].Name)
	require.NoError(t, err)
}
