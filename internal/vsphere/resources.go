package vsphere

import "github.com/vmware/govmomi/ovf"

// CIM resource types of a VirtualHardwareSection item (DSP0243).
const (
	cimProcessor = 3
	cimMemory    = 4
)

// ovfResources reads what the image asks of a host: vCPUs and memory from
// the first VirtualHardwareSection. Zero means the descriptor does not say.
// The disks' provisioned size is diskCapacity's, which refuses what it
// cannot read instead of guessing.
func ovfResources(env *ovf.Envelope) (cpus int, memoryMB int64) {
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
	return cpus, memoryMB
}
