package vcenter

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// guard answers with the fault a real vCenter gives the requests the
// simulator cannot take: an import or a new VM placed on a datastore its
// host does not mount. The simulator looks for the datastore among the
// host's, finds none and panics in a task goroutine, which ends the whole
// lab process (vCenter answers InvalidDatastore).
func guard(m *simulator.Registry, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/sdk" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte("ImportVApp")) || bytes.Contains(body, []byte("CreateVM_Task")) {
			if msg, name := unmountedDatastore(m, body); msg != "" {
				writeFault(w, msg, name)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
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

func writeFault(w http.ResponseWriter, msg, name string) {
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
