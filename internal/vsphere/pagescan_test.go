package vsphere

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// govmomiPage decodes a page as govmomi's RoundTrip does.
func govmomiPage(t *testing.T, s *Session, raw []byte) []types.ObjectContent {
	t.Helper()
	body := &methods.RetrievePropertiesExBody{}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	dec.TypeFunc = s.c.Types
	require.NoError(t, dec.Decode(&soap.Envelope{Body: body}))
	require.Nil(t, body.Fault())
	if body.Res == nil || body.Res.Returnval == nil {
		return nil
	}
	return body.Res.Returnval.Objects
}

// The inventory's page as the simulator writes it (marks set, an IP, a
// host name with characters XML escapes) reads the same through scanPage
// as through govmomi's decoder.
func TestScanPageAsGovmomi(t *testing.T) {
	_, s := inventoryLab(t, 2)
	ctx := context.Background()
	vm := markedVM(t, s, "6.1.0.50 <&> \"é\"")
	task, err := vm.Reconfigure(ctx, extraConfigSpec(map[string]string{"SET.guest.hostName": "svm-'old'&<new>"}))
	require.NoError(t, err)
	require.NoError(t, task.Wait(ctx))

	c := s.Client()
	v, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine", "HostSystem", "ComputeResource", "ClusterComputeResource"}, true)
	require.NoError(t, err)
	spec := types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: v.Reference(), Skip: types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}}}, {Obj: *c.ServiceContent.CustomFieldsManager}},
		PropSet: []types.PropertySpec{
			{Type: "VirtualMachine", PathSet: []string{"name", "config.instanceUuid", "runtime.host", "runtime.powerState", "guest.ipAddress", "guest.hostName", "customValue"}},
			{Type: "HostSystem", PathSet: []string{"name", "parent"}},
			{Type: "ComputeResource", PathSet: []string{"name"}},
			{Type: "ClusterComputeResource", PathSet: []string{"name"}},
			{Type: "CustomFieldsManager", PathSet: []string{"field"}},
		},
	}
	raw, err := s.post(ctx, &methods.RetrievePropertiesExBody{Req: &types.RetrievePropertiesEx{This: c.ServiceContent.PropertyCollector, SpecSet: []types.PropertyFilterSpec{spec}}})
	require.NoError(t, err)

	got, token, err := scanPage(raw)
	require.NoError(t, err)
	assert.Empty(t, token)
	want := govmomiPage(t, s, raw)
	require.NotEmpty(t, want)
	assert.Equal(t, want, got)
	assert.Contains(t, string(raw), "&lt;&amp;&gt;", "the marks' escaped characters are in the page")
	assert.Contains(t, string(raw), "svm-&#39;old&#39;&amp;&lt;new&gt;", "the host name's too")
}

// A page written as vCenter writes it: xsi and xsd prefixes, field
// definitions with privileges, a property vCenter could not read, an empty
// string value, character references.
const vcenterPage = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>
<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>tok-1</token>
<objects><obj type="CustomFieldsManager">CustomFieldsManager</obj><propSet><name>field</name><val xsi:type="ArrayOfCustomFieldDef">
 <CustomFieldDef><key>101</key><name>ksvla.role</name><type>string</type><managedObjectType>VirtualMachine</managedObjectType>
  <fieldDefPrivileges><createPrivilege>Global.ManageCustomFields</createPrivilege><readPrivilege>System.View</readPrivilege><updatePrivilege>Global.ManageCustomFields</updatePrivilege><deletePrivilege>Global.ManageCustomFields</deletePrivilege></fieldDefPrivileges>
  <fieldInstancePrivileges><createPrivilege>Global.SetCustomField</createPrivilege><readPrivilege>System.View</readPrivilege><updatePrivilege>Global.SetCustomField</updatePrivilege><deletePrivilege>Global.SetCustomField</deletePrivilege></fieldInstancePrivileges></CustomFieldDef>
 <CustomFieldDef><key>102</key><name>ksvla.version</name><type>string</type><managedObjectType>VirtualMachine</managedObjectType></CustomFieldDef>
 <CustomFieldDef><key>103</key><name>owner</name><type>string</type><managedObjectType>HostSystem</managedObjectType></CustomFieldDef>
</val></propSet></objects>
<objects><obj type="HostSystem">host-21</obj><propSet><name>name</name><val xsi:type="xsd:string">esx1.example.com</val></propSet><propSet><name>parent</name><val type="ClusterComputeResource" xsi:type="ManagedObjectReference">domain-c7</val></propSet></objects>
<objects><obj type="ClusterComputeResource">domain-c7</obj><propSet><name>name</name><val xsi:type="xsd:string">Prod &amp; Test</val></propSet></objects>
<objects><obj type="VirtualMachine">vm-42</obj>
 <propSet><name>config.instanceUuid</name><val xsi:type="xsd:string">5012-ab</val></propSet>
 <propSet><name>customValue</name><val xsi:type="ArrayOfCustomFieldValue"><CustomFieldValue xsi:type="CustomFieldStringValue"><key>101</key><value>svm</value></CustomFieldValue><CustomFieldValue xsi:type="CustomFieldStringValue"><key>102</key><value>6.1.0.100</value></CustomFieldValue></val></propSet>
 <propSet><name>guest.hostName</name><val xsi:type="xsd:string"/></propSet>
 <propSet><name>name</name><val xsi:type="xsd:string">svm-&#233;&#x41;'1'</val></propSet>
 <propSet><name>runtime.host</name><val type="HostSystem" xsi:type="ManagedObjectReference">host-21</val></propSet>
 <propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet>
 <missingSet><path>guest.ipAddress</path><fault><fault xsi:type="NoPermission"><object type="VirtualMachine">vm-42</object><privilegeId>System.Read</privilegeId></fault><localizedMessage></localizedMessage></fault></missingSet>
</objects>
<objects><obj type="VirtualMachine">vm-43</obj><propSet><name>customValue</name><val xsi:type="ArrayOfCustomFieldValue"/></propSet><propSet><name>name</name><val xsi:type="xsd:string">plain</val></propSet><propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOff</val></propSet></objects>
<!-- a comment -->
</returnval></RetrievePropertiesExResponse>
</soapenv:Body>
</soapenv:Envelope>`

func TestScanPageVCenterStyle(t *testing.T) {
	_, s := inventoryLab(t, 1)
	got, token, err := scanPage([]byte(vcenterPage))
	require.NoError(t, err)
	assert.Equal(t, "tok-1", token)
	want := govmomiPage(t, s, []byte(vcenterPage))
	assert.Equal(t, buildInventory(want, Scope{}, map[types.ManagedObjectReference]string{}),
		buildInventory(got, Scope{}, map[types.ManagedObjectReference]string{}))
	vms := buildInventory(got, Scope{}, map[types.ManagedObjectReference]string{})
	assert.Equal(t, []VM{
		{Name: "plain", Moid: "vm-43", PowerState: "poweredOff", Marks: map[string]string{}},
		{Name: "svm-éA'1'", Moid: "vm-42", InstanceUUID: "5012-ab", Host: "esx1.example.com", Cluster: "Prod & Test",
			PowerState: "poweredOn", Marks: map[string]string{MarkRole: RoleSVM, MarkVersion: "6.1.0.100"}},
	}, vms)
}

// What scanPage does not read it declines, for govmomi to decode: a
// fault, values of other types, a cut page.
func TestScanPageDeclines(t *testing.T) {
	extra := strings.Replace(vcenterPage, `<propSet><name>guest.hostName</name><val xsi:type="xsd:string"/></propSet>`,
		`<propSet><name>config.extraConfig</name><val xsi:type="ArrayOfOptionValue"><OptionValue><key>a</key><value xsi:type="xsd:string">b</value></OptionValue></val></propSet>`, 1)
	require.NotEqual(t, vcenterPage, extra)
	for name, page := range map[string]string{
		"fault":             `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>The session is not authenticated.</faultstring><detail><NotAuthenticatedFault xmlns="urn:vim25"/></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
		"extraConfig":       extra,
		"cut":               vcenterPage[:len(vcenterPage)/2],
		"cut in a tag":      vcenterPage[:strings.Index(vcenterPage, `type="HostSystem">host-21`)+5],
		"CDATA":             strings.Replace(vcenterPage, "5012-ab", "<![CDATA[5012-ab]]>", 1),
		"child in a string": strings.Replace(vcenterPage, "5012-ab", "<b>5012-ab</b>", 1),
		"bad entity":        strings.Replace(vcenterPage, "5012-ab", "5012&nbsp;ab", 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := scanPage([]byte(page))
			assert.ErrorIs(t, err, errDecline)
		})
	}
}

// FuzzScanPage: any answer is read or declined, never a panic or a hang;
// what is read has the inventory's value types only.
func FuzzScanPage(f *testing.F) {
	f.Add([]byte(vcenterPage))
	f.Add([]byte(`<a><b></a>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _, err := scanPage(data)
		if err != nil {
			return
		}
		for _, o := range objs {
			for _, p := range o.PropSet {
				switch p.Val.(type) {
				case nil, string, types.ManagedObjectReference, types.VirtualMachinePowerState,
					types.ArrayOfCustomFieldValue, types.ArrayOfCustomFieldDef:
				default:
					t.Fatalf("read a %T", p.Val)
				}
			}
		}
	})
}
