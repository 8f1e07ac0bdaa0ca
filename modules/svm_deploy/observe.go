package svmdeploy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/vsphere"
)

func observe(ctx context.Context, s *vsphere.Session, in input, resp *ansible.Response) (observed, error) {
	var obs observed
	t, err := s.FindTarget(ctx, vsphere.TargetSpec{Datacenter: in.Datacenter, Host: in.ESXiHostname,
		Import: in.State == StatePresent, Datastore: in.Datastore, Folder: in.Folder, ResourcePool: in.ResourcePool})
	if err != nil {
		return obs, err
	}
	obs.Host, obs.Datastore = t.Host, t.Datastore
	var image *vsphere.Descriptor
	// The host's room and pin (observeHost) and the VMs of the name are
	// independent reads: side by side they cost the longer of the two
	// chains of round trips, not their sum.
	hostRead := func() error { return nil }
	if in.State == StatePresent {
		desc, err := vsphere.ReadDescriptor(ctx, in.Image)
		if err != nil {
			return obs, err
		}
		// Refused here, in check mode too, before vCenter is asked to
		// create anything; Import checks again.
		warn, err := desc.Verification(in.imageCheck())
		if err != nil {
			return obs, fmt.Errorf("image: %w", err)
		}
		if warn != "" {
			resp.Warn("image_trusted=true: " + warn)
		}
		image = desc
		if obs.Version, err = resolveVersion(in.Version, desc); err != nil {
			return obs, err
		}
		if err := checkNetworks(ctx, t, in.networks, desc.Networks); err != nil {
			return obs, err
		}
		obs.ImageSHA256 = desc.ImageSHA256
		obs.FirstBoot = in.firstBoot
		var room observed
		done := make(chan error, 1)
		go func() { done <- observeHost(ctx, t, in, desc, &room) }()
		hostRead = func() error {
			err := <-done
			obs.HostPin, obs.Capacity, obs.Need = room.HostPin, room.Capacity, room.Need
			return err
		}
	}

	lo, vms, err := namedVMs(ctx, t, in.Name)
	if herr := hostRead(); herr != nil {
		return obs, herr
	}
	if err != nil {
		return obs, err
	}
	if lo != nil {
		obs.LeftoverVMs = lo.VMPaths()
		obs.LeftoverFolders = lo.Folders
	}
	for _, d := range vms {
		obs.Existing = append(obs.Existing, fromDetail(d))
	}
	if in.State == StatePresent && len(obs.Existing) == 0 {
		// An import is due: what vCenter would refuse, or a wrong image, is
		// refused now, in check mode too. Not on a rerun, where the SVM's own
		// disks may have taken the space its upload needed.
		if err := t.CheckImport(ctx, image, in.DiskProvisioning); err != nil {
			return obs, fmt.Errorf("datastore: %w", err)
		}
		// A local image is read once beforehand, so a wrong checksum fails
		// before vCenter is touched; the upload checks the bytes it sends
		// again (the file may change in between). An image URL is not
		// downloaded twice in a real run: the upload's check aborts the
		// lease and deletes the half-imported VM.
		if in.ImageSHA256 != "" && (in.checkMode || !remoteImage(in.Image)) {
			if err := vsphere.VerifyImageSHA256(ctx, in.Image, in.ImageSHA256); err != nil {
				return obs, fmt.Errorf("image_sha256: %w", err)
			}
		}
	}
	if in.State == StatePresent && len(obs.Existing) == 1 {
		warnDrift(in, obs, obs.Existing[0], resp)
	}
	if len(obs.Existing) == 1 {
		if cur := obs.Existing[0]; cur.ours() && (cur.Host == obs.Host || cur.Marks[vsphere.MarkHost] == obs.Host) {
			pl, err := s.Placement(ctx, s.VMRef(cur.Moid))
			if err != nil {
				return obs, err
			}
			obs.Pin = &pl
		}
	}
	return obs, nil
}

// namedVMs finds what an interrupted import of name left, and the VMs of
// that name apart from it.
func namedVMs(ctx context.Context, t vsphere.Target, name string) (*vsphere.Leftover, []vsphere.VMDetail, error) {
	lo, err := t.Leftover(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	vms, err := t.VMsNamed(ctx, name, lo)
	return lo, vms, err
}

// observeHost reads what a new SVM on the target's host needs to be pinned
// and whether the host and datastore have room for it (the image's
// figures, or the cpus and memory_mb options that override them).
func observeHost(ctx context.Context, t vsphere.Target, in input, desc *vsphere.Descriptor, obs *observed) error {
	hp, c, err := t.Room(ctx)
	if err != nil {
		return err
	}
	obs.HostPin, obs.Capacity = &hp, &c
	obs.Need = need{CPUs: desc.CPUs, MemoryMB: desc.MemoryMB, DiskBytes: desc.DiskCapacityBytes}
	if in.CPUs > 0 {
		obs.Need.CPUs = in.CPUs
	}
	if in.MemoryMB > 0 {
		obs.Need.MemoryMB = int64(in.MemoryMB)
	}
	return nil
}

// resolveVersion picks the Protection Server version to deploy: the
// option, checked against the image's ProductSection, or the image's.
func resolveVersion(want string, desc *vsphere.Descriptor) (string, error) {
	have := desc.Version
	if have == "" {
		have = desc.FullVersion
	}
	switch {
	case want == "" && have == "":
		return "", fmt.Errorf("image %s declares no version in its ProductSection: set option version", desc.Source)
	case want == "":
		return have, nil
	case have != "" && have != want:
		return "", fmt.Errorf("image %s carries Protection Server version %s, but option version is %s", desc.Source, have, want)
	}
	return want, nil
}

// checkNetworks fails, in check mode too, on a mapping the import would
// refuse: an OVF network the image does not have or a missing vSphere one.
func checkNetworks(ctx context.Context, t vsphere.Target, m map[string]string, ovfNets []string) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		found := false
		for _, o := range ovfNets {
			found = found || o == n
		}
		if !found {
			return fmt.Errorf("networks: the image has no network %q (it has: %s)", n, strings.Join(ovfNets, ", "))
		}
		if err := t.Network(ctx, m[n]); err != nil {
			return fmt.Errorf("networks %q: %w", n, err)
		}
	}
	return nil
}

// warnDrift tells about settings that only apply at creation and differ
// on the SVM that is left as is.
func warnDrift(in input, obs observed, cur vmInfo, resp *ansible.Response) {
	if !cur.ours() || cur.Host != obs.Host || cur.version() != obs.Version {
		return // Plan refuses it with its own message
	}
	if in.firstBootSet && strings.Join(cur.FirstBoot, "\n") != strings.Join(in.firstBoot, "\n") {
		resp.Warn(fmt.Sprintf("SVM %s exists: first_boot only applies when it is created, and its first-boot commands differ; left as is", in.Name))
	}
	if sum := cur.Marks[vsphere.MarkImageSHA256]; sum != "" && sum != obs.ImageSHA256 {
		resp.Warn(fmt.Sprintf("SVM %s (version %s) was deployed from another image (%s %s, this image %s); left as is",
			in.Name, obs.Version, vsphere.MarkImageSHA256, sum, obs.ImageSHA256))
	}
}

// fromDetail is what the plan needs of a VM vCenter described.
func fromDetail(d vsphere.VMDetail) vmInfo {
	return vmInfo{Name: d.Name, Moid: d.Moid, InstanceUUID: d.InstanceUUID, Path: d.Path, Host: d.Host,
		Datastores: d.Datastores, PowerState: d.PowerState, IP: d.IP, Marks: d.Marks,
		FirstBoot: firstBootList(d.ExtraConfig), DeployVersion: d.ExtraConfig[deployVersionKey]}
}

// SVM is the `svm` return value.
type SVM struct {
	Name         string            `json:"name"`
	Moid         string            `json:"moid"`
	InstanceUUID string            `json:"instance_uuid"`
	Host         string            `json:"host"`
	Datastore    string            `json:"datastore"`
	PowerState   string            `json:"power_state"`
	IP           string            `json:"ip"`
	Version      string            `json:"version"`
	Marks        map[string]string `json:"marks"`
}

func svmView(v vmInfo) *SVM {
	marks := v.Marks
	if marks == nil {
		marks = map[string]string{}
	}
	return &SVM{Name: v.Name, Moid: v.Moid, InstanceUUID: v.InstanceUUID, Host: v.Host, Datastore: v.datastore(),
		PowerState: v.PowerState, IP: v.IP, Version: v.version(), Marks: marks}
}

// remoteImage reports whether image is read over HTTP(S).
func remoteImage(image string) bool {
	lower := strings.ToLower(image)
	return strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://")
}
