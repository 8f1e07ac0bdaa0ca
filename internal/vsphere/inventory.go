package vsphere

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// FirstBootPrefix is the extraConfig key prefix of the SVM first-boot
// commands (guestinfo.klfirstboot.cmdN).
const FirstBootPrefix = "guestinfo.klfirstboot."

// inventoryPage is how many objects one RetrievePropertiesEx page holds.
var inventoryPage int32 = 1000

// Scope limits Inventory. Empty fields mean everything.
type Scope struct {
	Datacenter string
	Cluster    string   // a cluster name or path inside Datacenter
	Hosts      []string // keep only VMs on these ESXi hosts (by name)
	// Details adds config.extraConfig (FirstBoot, import marker) and the
	// vApp product; they make the answer several times larger.
	Details bool
}

// VM is one virtual machine as Inventory sees it.
type VM struct {
	Name         string
	Moid         string
	InstanceUUID string
	Host         string            // ESXi host name
	Cluster      string            // cluster (or standalone compute resource) name
	PowerState   string            // poweredOn, poweredOff, suspended
	IP           string            // guest.ipAddress (needs VMware Tools)
	HostName     string            // guest.hostName
	Marks        map[string]string // every custom attribute set, by name
	// With Scope.Details:
	FirstBoot        map[string]string // extraConfig keys under FirstBootPrefix
	ImportIncomplete bool              // ImportMarkerKey says incomplete
	Product          string            // vApp product name
	ProductVersion   string
}

// Inventory lists the VMs in scope with one property-collector pass over a
// container view (VMs, their hosts and clusters, and the custom attribute
// definitions in the same request), paging with
// ContinueRetrievePropertiesEx. Its SOAP round trips do not grow with the
// number of VMs, only with pages of inventoryPage objects.
func (s *Session) Inventory(ctx context.Context, sc Scope) ([]VM, error) {
	root := s.c.ServiceContent.RootFolder
	known := map[types.ManagedObjectReference]string{}
	if sc.Datacenter != "" || sc.Cluster != "" {
		dc, err := s.Datacenter(ctx, sc.Datacenter)
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		root = dc.Reference()
		if sc.Cluster != "" {
			cl, err := s.Cluster(ctx, dc, sc.Cluster)
			if err != nil {
				return nil, fmt.Errorf("inventory: %w", err)
			}
			root = cl.Reference()
			known[root] = cl.Name() // the view holds what is inside the cluster, not the cluster
		}
	}
	kinds := []string{"VirtualMachine", "HostSystem", "ComputeResource", "ClusterComputeResource"}
	v, err := view.NewManager(s.c).CreateContainerView(ctx, root, kinds, true)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()

	vmProps := []string{"name", "config.instanceUuid", "runtime.host", "runtime.powerState",
		"guest.ipAddress", "guest.hostName", "customValue"}
	if sc.Details {
		vmProps = append(vmProps, "config.extraConfig", "config.vAppConfig")
	}
	objects := []types.ObjectSpec{{
		Obj:  v.Reference(),
		Skip: types.NewBool(true),
		SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{
			Type: "ContainerView", Path: "view",
		}},
	}}
	props := []types.PropertySpec{
		{Type: "VirtualMachine", PathSet: vmProps},
		{Type: "HostSystem", PathSet: []string{"name", "parent"}},
		{Type: "ComputeResource", PathSet: []string{"name"}},
		{Type: "ClusterComputeResource", PathSet: []string{"name"}},
	}
	if cfm := s.c.ServiceContent.CustomFieldsManager; cfm != nil {
		objects = append(objects, types.ObjectSpec{Obj: *cfm})
		props = append(props, types.PropertySpec{Type: "CustomFieldsManager", PathSet: []string{"field"}})
	}
	contents, err := s.retrieveAll(ctx, types.PropertyFilterSpec{ObjectSet: objects, PropSet: props})
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return buildInventory(contents, sc, known), nil
}

// retrieveAll runs RetrievePropertiesEx and follows its paging token. The
// pages are read by scanPage, or by govmomi when it declines.
func (s *Session) retrieveAll(ctx context.Context, spec types.PropertyFilterSpec) ([]types.ObjectContent, error) {
	pc := s.c.ServiceContent.PropertyCollector
	first := &methods.RetrievePropertiesExBody{Req: &types.RetrievePropertiesEx{
		This: pc, SpecSet: []types.PropertyFilterSpec{spec},
		Options: types.RetrieveOptions{MaxObjects: inventoryPage},
	}}
	out, token, err := s.page(ctx, first, func() *types.RetrieveResult {
		if first.Res == nil {
			return nil
		}
		return first.Res.Returnval
	})
	for err == nil && token != "" {
		next := &methods.ContinueRetrievePropertiesExBody{Req: &types.ContinueRetrievePropertiesEx{This: pc, Token: token}}
		var objs []types.ObjectContent
		objs, token, err = s.page(ctx, next, func() *types.RetrieveResult {
			if next.Res == nil {
				return nil
			}
			return &next.Res.Returnval
		})
		out = append(out, objs...)
	}
	return out, err
}

// page sends one paging call and reads its answer.
func (s *Session) page(ctx context.Context, body soap.HasFault, result func() *types.RetrieveResult) ([]types.ObjectContent, string, error) {
	raw, err := s.post(ctx, body)
	if err != nil {
		return nil, "", err
	}
	if objs, token, err := scanPage(raw); err == nil {
		return objs, token, nil
	}
	// A fault, or values scanPage does not read: govmomi's decoder.
	dec := xml.NewDecoder(bytes.NewReader(raw))
	dec.TypeFunc = s.c.Types
	if err := dec.Decode(&soap.Envelope{Body: body}); err != nil {
		return nil, "", err
	}
	if f := body.Fault(); f != nil {
		return nil, "", soap.WrapSoapFault(f)
	}
	if r := result(); r != nil {
		return r.Objects, r.Token, nil
	}
	return nil, "", nil
}

// post sends a SOAP call as govmomi's RoundTrip does (envelope, headers,
// session cookie, retries of temporary network errors, counted in
// RoundTrips) and returns the answer's body undecoded.
func (s *Session) post(ctx context.Context, body soap.HasFault) ([]byte, error) {
	sc := s.c.Client
	env := soap.Envelope{Body: body}
	h := soap.Header{}
	if id, ok := ctx.Value(types.ID{}).(string); ok {
		h.ID = id
	}
	if sc.Cookie != nil {
		h.Cookie = sc.Cookie()
	}
	if h.Cookie != nil || h.ID != "" {
		env.Header = &h
	}
	b, err := xml.Marshal(env)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		var raw []byte
		err := s.send(ctx, sc, b, func(res *http.Response) error {
			switch res.StatusCode {
			case http.StatusOK, http.StatusInternalServerError: // a fault comes with 500
			default:
				return &httpStatusError{res.Status, res.StatusCode}
			}
			var err error
			raw, err = io.ReadAll(res.Body)
			return err
		})
		if err == nil {
			return raw, nil
		}
		if retry, delay := vim25.RetryTemporaryNetworkError(err); !retry || attempt >= retryAttempts {
			return nil, err
		} else if delay > 0 {
			time.Sleep(delay)
		}
	}
}

func (s *Session) send(ctx context.Context, sc *soap.Client, b []byte, f func(*http.Response) error) error {
	s.trips.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sc.URL().String(), io.MultiReader(strings.NewReader(xml.Header), bytes.NewReader(b)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", `text/xml; charset="utf-8"`)
	req.Header.Set("SOAPAction", sc.Namespace+"/"+sc.Version)
	return sc.Do(ctx, req, f)
}

// httpStatusError is an answer with neither a result nor a fault; a bad
// gateway is worth another try, as govmomi's RoundTrip has it.
type httpStatusError struct {
	status string
	code   int
}

func (e *httpStatusError) Error() string   { return e.status }
func (e *httpStatusError) Temporary() bool { return e.code == http.StatusBadGateway }

// buildInventory joins VMs with their hosts, clusters and attribute names.
func buildInventory(contents []types.ObjectContent, sc Scope, names map[types.ManagedObjectReference]string) []VM {
	parents := map[types.ManagedObjectReference]types.ManagedObjectReference{}
	var fieldKeys map[string]int32
	var vms []VM
	vmHost := map[int]types.ManagedObjectReference{}
	vmMarks := map[int][]types.BaseCustomFieldValue{}

	for _, oc := range contents {
		switch oc.Obj.Type {
		case "CustomFieldsManager":
			for _, p := range oc.PropSet {
				if defs, ok := p.Val.(types.ArrayOfCustomFieldDef); ok {
					fieldKeys = vmFieldKeys(defs.CustomFieldDef)
				}
			}
		case "HostSystem":
			for _, p := range oc.PropSet {
				switch p.Name {
				case "name":
					names[oc.Obj], _ = p.Val.(string)
				case "parent":
					parents[oc.Obj], _ = p.Val.(types.ManagedObjectReference)
				}
			}
		case "ComputeResource", "ClusterComputeResource":
			for _, p := range oc.PropSet {
				if p.Name == "name" {
					names[oc.Obj], _ = p.Val.(string)
				}
			}
		case "VirtualMachine":
			vm := VM{Moid: oc.Obj.Value}
			i := len(vms)
			for _, p := range oc.PropSet {
				switch p.Name {
				case "name":
					vm.Name, _ = p.Val.(string)
				case "config.instanceUuid":
					vm.InstanceUUID, _ = p.Val.(string)
				case "runtime.host":
					vmHost[i], _ = p.Val.(types.ManagedObjectReference)
				case "runtime.powerState":
					if ps, ok := p.Val.(types.VirtualMachinePowerState); ok {
						vm.PowerState = string(ps)
					}
				case "guest.ipAddress":
					vm.IP, _ = p.Val.(string)
				case "guest.hostName":
					vm.HostName, _ = p.Val.(string)
				case "customValue":
					if a, ok := p.Val.(types.ArrayOfCustomFieldValue); ok {
						vmMarks[i] = a.CustomFieldValue
					}
				case "config.extraConfig":
					if a, ok := p.Val.(types.ArrayOfOptionValue); ok {
						for _, o := range a.OptionValue {
							ov := o.GetOptionValue()
							val := fmt.Sprint(ov.Value)
							switch {
							case strings.HasPrefix(ov.Key, FirstBootPrefix):
								if vm.FirstBoot == nil {
									vm.FirstBoot = map[string]string{}
								}
								vm.FirstBoot[ov.Key] = val
							case ov.Key == ImportMarkerKey:
								vm.ImportIncomplete = val == ImportMarkerIncomplete
							}
						}
					}
				case "config.vAppConfig":
					if b, ok := p.Val.(types.BaseVmConfigInfo); ok && b != nil {
						if vc := b.GetVmConfigInfo(); vc != nil && len(vc.Product) > 0 {
							vm.Product, vm.ProductVersion = vc.Product[0].Name, vc.Product[0].Version
						}
					}
				}
			}
			vms = append(vms, vm)
		}
	}

	keep := map[string]bool{}
	for _, h := range sc.Hosts {
		keep[h] = true
	}
	out := vms[:0]
	for i, vm := range vms {
		if h, ok := vmHost[i]; ok {
			vm.Host = names[h]
			vm.Cluster = names[parents[h]]
		}
		if len(keep) > 0 && !keep[vm.Host] {
			continue
		}
		vm.Marks = resolveMarks(vmMarks[i], fieldKeys)
		out = append(out, vm)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Name != out[b].Name {
			return out[a].Name < out[b].Name
		}
		return out[a].Moid < out[b].Moid
	})
	return out
}
