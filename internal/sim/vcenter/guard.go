package vcenter

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// guard refuses, with a SOAP fault as vCenter would, the calls a real
// vCenter refuses and the simulator cannot take. It panics in a task
// goroutine (and takes the whole lab down) migrating a VM to a host that
// does not see its datastore, or importing or creating a VM on a datastore
// its host does not mount (vCenter answers InvalidDatastore); and it
// happily migrates to a host in maintenance mode or not responding.
func (v *VCenter) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only SOAP calls: disk uploads are POSTs too, and large.
		if r.Method != http.MethodPost || r.URL.Path != v.model.Map().Path {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close() // read in full; the simulator gets a copy
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		v.calls.Add(1)
		if loginCall.Match(body) {
			v.logins.Add(1)
		}
		msg := ""
		switch {
		case bytes.Contains(body, []byte("RelocateVM_Task")):
			msg = v.refuseRelocate(body)
		case bytes.Contains(body, []byte("ReconfigureComputeResource_Task")):
			msg = v.refuseClusterEdit(body)
		}
		if msg != "" {
			writeFault(w, msg)
			return
		}
		if bytes.Contains(body, []byte("ImportVApp")) || bytes.Contains(body, []byte("CreateVM_Task")) {
			if msg, name := unmountedDatastore(v.model.Map(), body); msg != "" {
				writeDatastoreFault(w, msg, name)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// loginCall matches the body of SessionManager.Login (not LoginByToken or
// LoginExtension*: the collection logs in with a user and password).
var loginCall = regexp.MustCompile(`<(\w+:)?Login[\s>]`)

type moRef struct {
	Type  string `xml:"type,attr"`
	Value string `xml:",chardata"`
}

func (m moRef) ref() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: m.Type, Value: m.Value}
}

// refuseRelocate says why vCenter would refuse the RelocateVM_Task in
// body, "" when it would not.
func (v *VCenter) refuseRelocate(body []byte) string {
	var env struct {
		Req *struct {
			This moRef `xml:"_this"`
			Spec struct {
				Host      *moRef `xml:"host"`
				Datastore *moRef `xml:"datastore"`
			} `xml:"spec"`
		} `xml:"Body>RelocateVM_Task"`
	}
	if err := xml.Unmarshal(body, &env); err != nil || env.Req == nil || env.Req.Spec.Host == nil {
		return "" // the simulator answers malformed requests itself
	}
	m := v.model.Map()
	vm, ok := m.Get(env.Req.This.ref()).(*simulator.VirtualMachine)
	if !ok {
		return ""
	}
	host, ok := m.Get(env.Req.Spec.Host.ref()).(*simulator.HostSystem)
	if !ok {
		return fmt.Sprintf("The object 'vim.HostSystem:%s' has already been deleted or has not been completely created", env.Req.Spec.Host.Value)
	}
	ctx := v.simCtx()
	var msg string
	ctx.WithLock(host, func() {
		switch {
		case host.Runtime.InMaintenanceMode:
			msg = fmt.Sprintf("The operation is not allowed in the current state of the host %s: it is in maintenance mode", host.Name)
		case host.Runtime.ConnectionState != types.HostSystemConnectionStateConnected:
			msg = fmt.Sprintf("Host %s is %s", host.Name, host.Runtime.ConnectionState)
		}
	})
	if msg != "" {
		return msg
	}
	want := []types.ManagedObjectReference{}
	if d := env.Req.Spec.Datastore; d != nil {
		want = append(want, d.ref())
	} else {
		ctx.WithLock(vm, func() { want = append(want, vm.Datastore...) })
	}
	for _, d := range want {
		seen := false
		ctx.WithLock(host, func() {
			for _, hd := range host.Datastore {
				seen = seen || hd == d
			}
		})
		if !seen {
			name := d.Value
			if ds, ok := m.Get(d).(*simulator.Datastore); ok {
				name = ds.Name
			}
			return fmt.Sprintf("Host %s cannot access datastore %s of virtual machine %s: migrate its storage too", host.Name, name, vm.Name)
		}
	}
	return ""
}

// refuseClusterEdit refuses an edit of an HA VM override that has no
// dasSettings: vCenter merges into them, the simulator dereferences nil.
func (v *VCenter) refuseClusterEdit(body []byte) string {
	var env struct {
		Req *struct {
			This moRef `xml:"_this"`
			Spec struct {
				Das []struct {
					Operation string `xml:"operation"`
					Info      *struct {
						Key moRef `xml:"key"`
					} `xml:"info"`
				} `xml:"dasVmConfigSpec"`
			} `xml:"spec"`
		} `xml:"Body>ReconfigureComputeResource_Task"`
	}
	if err := xml.Unmarshal(body, &env); err != nil || env.Req == nil {
		return ""
	}
	c, ok := v.model.Map().Get(env.Req.This.ref()).(*simulator.ClusterComputeResource)
	if !ok {
		return ""
	}
	msg := ""
	v.simCtx().WithLock(c, func() {
		cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			return
		}
		for _, d := range env.Req.Spec.Das {
			if d.Operation != string(types.ArrayUpdateOperationEdit) || d.Info == nil {
				continue
			}
			for _, e := range cfg.DasVmConfig {
				if e.Key == d.Info.Key.ref() && e.DasSettings == nil {
					msg = fmt.Sprintf("A specified parameter was not correct: dasVmConfigSpec: the HA override of %s has no dasSettings to edit", e.Key.Value)
				}
			}
		}
	})
	return msg
}

// writeFault answers with a SOAP fault carrying InvalidArgument.
func writeFault(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail><InvalidArgumentFault xmlns="urn:vim25" xsi:type="InvalidArgument"><invalidProperty>spec.host</invalidProperty></InvalidArgumentFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
		html.EscapeString(msg))
}

// unmountedDatastore returns a fault message and the datastore's name when
// the request places a VM on a datastore its host does not mount.
func unmountedDatastore(m *simulator.Registry, body []byte) (string, string) {
	method, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return "", ""
	}
	var host *types.ManagedObjectReference
	var cs *types.VirtualMachineConfigSpec
	switch req := method.Body.(type) {
	case *types.ImportVApp:
		host = req.Host
		if is, ok := req.Spec.(*types.VirtualMachineImportSpec); ok {
			cs = &is.ConfigSpec
		}
	case *types.CreateVM_Task:
		host, cs = req.Host, &req.Config
	}
	if host == nil || cs == nil || cs.Files == nil {
		return "", ""
	}
	var p object.DatastorePath
	if !p.FromString(cs.Files.VmPathName) || p.Datastore == "" {
		return "", ""
	}
	h, ok := m.Get(*host).(*simulator.HostSystem)
	if !ok {
		return "", ""
	}
	var names []string
	for _, ref := range h.Datastore {
		ds, ok := m.Get(ref).(*simulator.Datastore)
		if !ok {
			continue
		}
		if ds.Name == p.Datastore {
			return "", ""
		}
		names = append(names, ds.Name)
	}
	return fmt.Sprintf("The datastore %s is not accessible from host %s (it mounts %s).", p.Datastore, h.Name, strings.Join(names, ", ")), p.Datastore
}

// writeDatastoreFault answers with a SOAP fault carrying InvalidDatastore.
func writeDatastoreFault(w http.ResponseWriter, msg, name string) {
	esc := func(s string) string {
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `%s<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`+
		`<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring>`+
		`<detail><InvalidDatastoreFault xmlns="urn:vim25" xsi:type="InvalidDatastore"><name>%s</name></InvalidDatastoreFault></detail>`+
		`</soapenv:Fault></soapenv:Body></soapenv:Envelope>`, xml.Header, esc(msg), esc(name))
}
