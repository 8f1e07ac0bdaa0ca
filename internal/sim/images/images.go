// Package images writes SVM images for the lab: OVA archives and unpacked
// OVF directories that vCenter (and the govmomi simulator) accept for import.
//
// What is real: the OVF 1.0 envelope (References, DiskSection,
// NetworkSection, a VirtualSystem with a ProductSection and a
// VirtualHardwareSection), the OVA layout (a ustar archive with the .ovf
// first, then the disk, then the .mf manifest with SHA256 lines), and the
// VMDK sparse extent header with its embedded descriptor. What is
// simplified: after the header and descriptor the disk carries DiskBytes of
// deterministic pseudo-random filler instead of grain tables and compressed
// grains, so no hypervisor could boot it; importers only stream the file
// and never parse it, and the filler gives benchmarks a payload that
// cannot be compressed away.
package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// Documented defaults for a Spec (the real product names of the 6.x
// images are NOT FOUND in the vendor docs; these follow the product name).
const (
	DefaultProduct = "Kaspersky Security for Virtualization Light Agent Protection Server"
	DefaultVendor  = "AO Kaspersky Lab"
	DefaultNetwork = "VM Network"
	DefaultCPUs    = 2
	DefaultMemory  = 4096 // MB
)

// Spec describes one SVM image.
type Spec struct {
	Name      string   // base name of the files; default "ksvla-svm-<Version>"
	Product   string   // ProductSection Product; default DefaultProduct
	Vendor    string   // ProductSection Vendor; default DefaultVendor
	Version   string   // Protection Server version, e.g. "6.2.0.200"; required
	DiskBytes int64    // payload size of the disk file (KiB for tests, GiB for benchmarks)
	Networks  []string // logical networks, one NIC each; default {DefaultNetwork}
	CPUs      int      // default DefaultCPUs
	MemoryMB  int      // default DefaultMemory
}

// Info describes a written image. For an OVA, Path is the archive and
// SHA256/Size cover the whole archive; for an OVF directory, Path is the
// .ovf descriptor and SHA256/Size cover the descriptor (it names every
// other file through the manifest, so it identifies the image).
type Info struct {
	Path    string
	SHA256  string // lowercase hex
	Size    int64
	Version string
	Product string
}

func (s Spec) withDefaults() (Spec, error) {
	if s.Version == "" {
		return s, errors.New("image spec: version is required")
	}
	if s.DiskBytes < 0 {
		return s, fmt.Errorf("image spec %s: negative disk size %d", s.Version, s.DiskBytes)
	}
	if s.Name == "" {
		s.Name = "ksvla-svm-" + s.Version
	}
	if strings.ContainsAny(s.Name, `/\`) {
		return s, fmt.Errorf("image spec: name %q must not contain a path separator", s.Name)
	}
	if s.Product == "" {
		s.Product = DefaultProduct
	}
	if s.Vendor == "" {
		s.Vendor = DefaultVendor
	}
	if len(s.Networks) == 0 {
		s.Networks = []string{DefaultNetwork}
	}
	if s.CPUs <= 0 {
		s.CPUs = DefaultCPUs
	}
	if s.MemoryMB <= 0 {
		s.MemoryMB = DefaultMemory
	}
	return s, nil
}

func (s Spec) ovfName() string  { return s.Name + ".ovf" }
func (s Spec) diskName() string { return s.Name + "-disk1.vmdk" }
func (s Spec) mfName() string   { return s.Name + ".mf" }

// Descriptor renders the OVF descriptor of spec.
func Descriptor(spec Spec) ([]byte, error) {
	s, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	return descriptor(s)
}

func descriptor(s Spec) ([]byte, error) {
	disk := newDisk(s)
	var buf bytes.Buffer
	err := ovfTemplate.Execute(&buf, struct {
		Spec
		DiskFile     string
		DiskFileSize int64
		CapacityMiB  int64
	}{s, s.diskName(), disk.size(), disk.capacityMiB()})
	if err != nil {
		return nil, fmt.Errorf("render ovf descriptor %s: %w", s.Name, err)
	}
	return buf.Bytes(), nil
}

// WriteOVA writes spec as an OVA archive at path, streaming the disk so
// that gigabyte payloads never sit in memory.
func WriteOVA(path string, spec Spec) (Info, error) {
	s, err := spec.withDefaults()
	if err != nil {
		return Info{}, err
	}
	ovf, err := descriptor(s)
	if err != nil {
		return Info{}, err
	}
	f, err := os.Create(path)
	if err != nil {
		return Info{}, fmt.Errorf("write ova %s: %w", path, err)
	}
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, sum)}
	err = writeOVA(cw, s, ovf)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // a half-written archive must not be mistaken for an image
		return Info{}, fmt.Errorf("write ova %s: %w", path, err)
	}
	return Info{Path: path, SHA256: hex.EncodeToString(sum.Sum(nil)), Size: cw.n, Version: s.Version, Product: s.Product}, nil
}

func writeOVA(w io.Writer, s Spec, ovf []byte) error {
	tw := tar.NewWriter(w)
	// The order matters: OVA readers expect the descriptor first and the
	// manifest right after the files it lists.
	ovfSum := sha256.Sum256(ovf)
	if err := tarFile(tw, s.ovfName(), int64(len(ovf)), bytes.NewReader(ovf)); err != nil {
		return err
	}
	disk := newDisk(s)
	diskSum := sha256.New()
	if err := tarFile(tw, s.diskName(), disk.size(), io.TeeReader(disk.reader(), diskSum)); err != nil {
		return err
	}
	mf := manifest(s, ovfSum[:], diskSum)
	if err := tarFile(tw, s.mfName(), int64(len(mf)), bytes.NewReader(mf)); err != nil {
		return err
	}
	return tw.Close()
}

func tarFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
	hdr := &tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg} // USTAR unless > 8 GiB
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	if _, err := io.Copy(tw, r); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}

// WriteOVF writes spec unpacked into dir (created if missing): the .ovf,
// the .vmdk and the .mf manifest.
func WriteOVF(dir string, spec Spec) (Info, error) {
	s, err := spec.withDefaults()
	if err != nil {
		return Info{}, err
	}
	ovf, err := descriptor(s)
	if err != nil {
		return Info{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Info{}, fmt.Errorf("write ovf %s: %w", dir, err)
	}
	ovfPath := filepath.Join(dir, s.ovfName())
	if err := os.WriteFile(ovfPath, ovf, 0o644); err != nil {
		return Info{}, fmt.Errorf("write ovf %s: %w", ovfPath, err)
	}
	diskSum := sha256.New()
	diskPath := filepath.Join(dir, s.diskName())
	if err := writeFile(diskPath, io.TeeReader(newDisk(s).reader(), diskSum)); err != nil {
		return Info{}, fmt.Errorf("write ovf disk %s: %w", diskPath, err)
	}
	ovfSum := sha256.Sum256(ovf)
	mfPath := filepath.Join(dir, s.mfName())
	if err := os.WriteFile(mfPath, manifest(s, ovfSum[:], diskSum), 0o644); err != nil {
		return Info{}, fmt.Errorf("write ovf manifest %s: %w", mfPath, err)
	}
	return Info{Path: ovfPath, SHA256: hex.EncodeToString(ovfSum[:]), Size: int64(len(ovf)), Version: s.Version, Product: s.Product}, nil
}

func writeFile(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func manifest(s Spec, ovfSum []byte, diskSum hash.Hash) []byte {
	return fmt.Appendf(nil, "SHA256(%s)= %x\nSHA256(%s)= %x\n", s.ovfName(), ovfSum, s.diskName(), diskSum.Sum(nil))
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// disk is the VMDK: a sparse extent header (sector 0), the embedded
// descriptor (sectors 1..descSectors) and payload bytes of filler.
type disk struct {
	spec    Spec
	payload int64
}

const (
	sector      = 512
	descSectors = 2
	grainSize   = 128 // sectors (64 KiB), the value VMware writes
)

func newDisk(s Spec) disk { return disk{spec: s, payload: s.DiskBytes} }

func (d disk) size() int64 { return (1+descSectors)*sector + d.payload }

// capacityMiB is the virtual disk size: the payload stands for the used
// part of a streamOptimized disk, so capacity is a bit larger than it.
func (d disk) capacityMiB() int64 { return max(1, 2*d.size()/(1<<20)+1) }

func (d disk) header() []byte {
	h := make([]byte, (1+descSectors)*sector)
	le := binary.LittleEndian
	copy(h[0:4], "KDMV")
	le.PutUint32(h[4:], 3)                                       // version 3: streamOptimized
	le.PutUint32(h[8:], 1|1<<1|1<<16|1<<17)                      // valid newline test, redundant GT, compressed grains, markers
	le.PutUint64(h[12:], uint64(d.capacityMiB()*(1<<20)/sector)) // capacity in sectors
	le.PutUint64(h[20:], grainSize)
	le.PutUint64(h[28:], 1) // descriptor offset (sectors)
	le.PutUint64(h[36:], descSectors)
	le.PutUint32(h[44:], 512)                // grain table entries per GT
	le.PutUint64(h[56:], 0xffffffffffffffff) // GD offset: in the footer (stream-optimized)
	copy(h[73:77], "\n \r\n")                // line-ending check characters after uncleanShutdown=0
	le.PutUint16(h[77:], 1)                  // compressAlgorithm: deflate
	sd := seed(d.spec)
	desc := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n"+
		"# Extent description\nRDONLY %d SPARSE \"%s\"\n\n# The Disk Data Base\nddb.adapterType = \"lsilogic\"\n"+
		"ddb.virtualHWVersion = \"13\"\nddb.comment = \"ksvla lab image %s\"\n",
		binary.BigEndian.Uint32(sd[:4]), d.capacityMiB()*(1<<20)/sector, d.spec.diskName(), d.spec.Version)
	copy(h[sector:], desc)
	return h
}

// reader streams the whole disk file; the filler is ChaCha8 seeded by the
// spec, so the same spec always yields the same bytes and checksum.
func (d disk) reader() io.Reader {
	return io.MultiReader(bytes.NewReader(d.header()), io.LimitReader(rand.NewChaCha8(seed(d.spec)), d.payload))
}

func seed(s Spec) [32]byte {
	return sha256.Sum256([]byte(s.Name + "\x00" + s.Product + "\x00" + s.Version))
}

func xmlEscape(s string) (string, error) {
	var b strings.Builder
	err := xml.EscapeText(&b, []byte(s))
	return b.String(), err
}

var ovfTemplate = template.Must(template.New("ovf").Funcs(template.FuncMap{
	"x":   xmlEscape,
	"add": func(a, b int) int { return a + b },
}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common"
          xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
          xmlns:vmw="http://www.vmware.com/schema/ovf"
          xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{{x .DiskFile}}" ovf:id="file1" ovf:size="{{.DiskFileSize}}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{{.CapacityMiB}}" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
{{- range .Networks}}
    <Network ovf:name="{{x .}}">
      <Description>The {{x .}} network</Description>
    </Network>
{{- end}}
  </NetworkSection>
  <VirtualSystem ovf:id="{{x .Name}}">
    <Info>A virtual machine</Info>
    <Name>{{x .Name}}</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="otherLinux64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <ProductSection>
      <Info>Information about the installed software</Info>
      <Product>{{x .Product}}</Product>
      <Vendor>{{x .Vendor}}</Vendor>
      <Version>{{x .Version}}</Version>
      <FullVersion>{{x .Version}}</FullVersion>
    </ProductSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{{x .Name}}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>{{.CPUs}} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{{.CPUs}}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>{{.MemoryMB}}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{{.MemoryMB}}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
{{- range $i, $n := .Networks}}
      <Item>
        <rasd:AddressOnParent>{{add $i 7}}</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>{{x $n}}</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on &quot;{{x $n}}&quot;</rasd:Description>
        <rasd:ElementName>Network adapter {{add $i 1}}</rasd:ElementName>
        <rasd:InstanceID>{{add $i 5}}</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
{{- end}}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`))
