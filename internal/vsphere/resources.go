package vsphere

import (
	"strconv"

	"github.com/vmware/govmomi/ovf"
)

// CIM resource types of a VirtualHardwareSection item (DSP0243).
const (
	cimProcessor = 3
	cimMemory    = 4
)

// ovfResources reads what the image asks of a host: vCPUs and memory from
// the first VirtualHardwareSection, and the provisioned size of every disk
// of the DiskSection (what the datastore must hold, thin or not: a thin
// disk grows to it). Zero means the descriptor does not say.
func ovfResources(env *ovf.Envelope) (cpus int, memoryMB, diskBytes int64) {
	if env.VirtualSystem != nil && len(env.VirtualSystem.VirtualHardware) > 0 {
		for _, item := range env.VirtualSystem.VirtualHardware[0].Item {
			if item.ResourceType == nil || item.VirtualQuantity == nil {
				continue
			}
			q := int64(*item.VirtualQuantity)
			switch *item.ResourceType {
			case cimProcessor:
				cpus = int(q)
			case cimMemory:
				unit := int64(1 << 20) // the OVF default for memory is MB
				if item.AllocationUnits != nil && *item.AllocationUnits != "" {
					if u := ovf.ParseCapacityAllocationUnits(*item.AllocationUnits); u > 0 {
						unit = u
					}
				}
				memoryMB = q * unit / (1 << 20)
			}
		}
	}
	if env.Disk != nil {
		for _, d := range env.Disk.Disks {
			n, err := strconv.ParseInt(d.Capacity, 10, 64)
			if err != nil {
				continue // a ${property} capacity: the deployment option decides it
			}
			unit := int64(1)
			if d.CapacityAllocationUnits != nil && *d.CapacityAllocationUnits != "" {
				if u := ovf.ParseCapacityAllocationUnits(*d.CapacityAllocationUnits); u > 0 {
					unit = u
				}
			}
			diskBytes += n * unit
		}
	}
	return cpus, memoryMB, diskBytes
}
