package kscpurge

import (
	"strings"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/modules/conn"
)

// SVMRef is one entry of the svms option, as svm_remove returns its SVMs;
// other keys are ignored.
type SVMRef struct {
	Name  string `json:"name"`
	IP    string `json:"ip"`
	FQDN  string `json:"fqdn"`
	KSCID string `json:"ksc_id"`
}

// Options are ksc_purge's decoded options.
type Options struct {
	conn.KSCOptions
	conn.VCenterOptions
	ansible.Deadline
	Datacenter        string   `json:"datacenter"`
	ServedDatacenters []string `json:"served_datacenters"`
	Names             []string `json:"names"`
	IPs               []string `json:"ips"`
	SVMs              []SVMRef `json:"svms"`
	ProductVersion    string   `json:"product_version"`
	PSProducts        []string `json:"ps_products"`
	NotVisibleMinutes *int     `json:"not_visible_minutes"`
	BatchSize         int      `json:"batch_size"`
	ReportRetention   bool     `json:"report_retention"`
}

// named reports whether records are selected by identity (names, ips,
// svms) rather than by product only.
func (o Options) named() bool { return len(o.Names)+len(o.IPs)+len(o.SVMs) > 0 }

// defaultPSKeys are the Protection Server product keys of
// fleet.DefaultProtectionServer: display names (with spaces) cannot be
// used in a search filter.
func defaultPSKeys() []any {
	var out []any
	for _, k := range fleet.DefaultProtectionServer {
		if !strings.Contains(k, " ") {
			out = append(out, k)
		}
	}
	return out
}

func spec() ansible.Spec {
	own := ansible.Spec{
		Options: []ansible.Option{
			{Name: "datacenter", Type: ansible.TypeStr,
				Description: []string{"Limit the vCenter check (see O(hostname)) to this datacenter."}},
			{Name: "served_datacenters", Type: ansible.TypeList, Elements: ansible.TypeStr,
				Description: []string{"Every vCenter datacenter whose SVMs this KSC serves (see O(hostname)).",
					"A record selected by O(product_version) or O(not_visible_minutes) alone is removed only when its SVM is proven gone: no VM in any of these datacenters has its display name, FQDN or the FQDN's first label as name or guest host name. Every other such record is left and reported in RV(kept).",
					"Without this option (or without vCenter) no such record is removed: an SVM in a datacenter the run cannot see may still need its record. Records named by O(names), O(ips) or O(svms) do not need it."}},
			{Name: "names", Type: ansible.TypeList, Elements: ansible.TypeStr,
				Description: []string{"Display names (C(KLHST_WKS_DN)) of the records to remove, matched exactly (case-insensitively).",
					"A name selects every record that has it."}},
			{Name: "ips", Type: ansible.TypeList, Elements: ansible.TypeStr,
				Description: []string{"IPv4 addresses (C(KLHST_WKS_IP_LONG)) of the records to remove."}},
			{Name: "svms", Type: ansible.TypeList, Elements: ansible.TypeDict,
				Description: []string{"SVMs as M(ksvla.lightagent.svm_remove) returns them: dicts with C(name), C(ip), C(fqdn), C(ksc_id); other keys are ignored.",
					"An entry with C(ksc_id) selects that record only; otherwise its C(name) selects by display name."}},
			{Name: "product_version", Type: ansible.TypeStr,
				Description: []string{"Select the records whose Protection Server product (O(ps_products)) has this version, e.g. V(6.1.0.100).",
					"With O(names), O(ips) or O(svms) it restricts those instead."}},
			{Name: "ps_products", Type: ansible.TypeList, Elements: ansible.TypeStr, Default: defaultPSKeys(),
				Description: []string{"KSC product keys of the Protection Server, used by O(product_version) and O(not_visible_minutes).",
					"The vendor does not document the key; the default is the lab's assumption. Set the key your KSC shows in an SVM's application list."}},
			{Name: "not_visible_minutes", Type: ansible.TypeInt,
				Description: []string{"Only records not visible in the network now and not seen for at least this many minutes (C(KLHST_WKS_LAST_VISIBLE), by the server's clock).",
					"Alone, it selects the records carrying the Protection Server (O(ps_products)), never other devices; with other selectors it restricts them."}},
			{Name: "batch_size", Type: ansible.TypeInt, Default: 100,
				Description: []string{"Records per removal call."}},
			{Name: "report_retention", Type: ansible.TypeBool, Default: true,
				Description: []string{"Report the administration groups' automatic removal period (C(autoRemovePeriod)) that would have removed the records anyway, and when."}},
			ansible.TimeoutOption(600),
		},
		RequiredOneOf: [][]string{{"names", "ips", "svms", "product_version", "not_visible_minutes"}},
	}
	vc := conn.VCenterSpec()
	for i := range vc.Options {
		if vc.Options[i].Name == "hostname" {
			vc.Options[i].Description = append(vc.Options[i].Description,
				"Optional here: when set (or V(VMWARE_HOST) is), a record whose VM still exists and is powered on in vCenter is refused, and the module fails before removing anything.")
		}
	}
	return conn.KSCSpec().Merge(vc).Merge(own)
}
