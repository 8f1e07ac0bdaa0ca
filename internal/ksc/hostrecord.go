package ksc

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// Host attributes ("List of host attributes" in the KSC OpenAPI reference;
// the SDK header HST/host_const.h). Host decodes those in HostFields;
// the others are for search filters only.
const (
	AttrID          = "KLHST_WKS_HOSTNAME" // the record's unique id
	AttrDisplayName = "KLHST_WKS_DN"
	AttrDNSName     = "KLHST_WKS_DNSNAME"
	AttrFQDN        = "KLHST_WKS_FQDN"
	AttrIP          = "KLHST_WKS_IP_LONG" // IPv4 as a number, see IPLong
	AttrGroup       = "KLHST_WKS_GROUPID"
	AttrStatus      = "KLHST_WKS_STATUS"
	AttrLastVisible = "KLHST_WKS_LAST_VISIBLE"
	AttrCreated     = "KLHST_WKS_CREATED"
	AttrOSName      = "KLHST_WKS_OS_NAME"
	AttrStatusMask  = "KLHST_WKS_STATUS_MASK"
	AttrBasesTime   = "KLHST_WKS_RTP_AV_BASES_TIME" // anti-virus databases date
	// AttrAppVersion is the "security application version": on an SVM the
	// Protection Server's, on a protected VM the Light Agent's (the
	// version of the product a KLHST_WKS_PRODUCT_NAME filter selected).
	AttrAppVersion = "KLHST_WKS_RTP_AV_VERSION"
	// AttrProduct is search-only: a host matches when any of its
	// products has the key.
	AttrProduct = "KLHST_WKS_PRODUCT_NAME"

	// StatusVisible is bit 0 of KLHST_WKS_STATUS, "visible in the network".
	StatusVisible = 0x01
	// StatusMaskLicence is bit 9 of KLHST_WKS_STATUS_MASK, the status
	// condition "licence expired" (SDK: SMC_OLD_LICENSE, 0x200).
	StatusMaskLicence = 0x200
)

// HostFields are the attributes Host is decoded from, the field list of
// FindHostRecords: one list for every caller, so a record means the same
// everywhere. The version comes with the paged rows, sparing a
// GetHostProducts call per host when the server reports it.
var HostFields = []string{
	AttrID, AttrDisplayName, AttrDNSName, AttrFQDN, AttrIP, AttrGroup, AttrStatus,
	AttrLastVisible, AttrCreated, AttrOSName, AttrStatusMask, AttrBasesTime, AttrAppVersion,
}

// Host is one host record as HostGroup.FindHosts returns it with
// HostFields. Attributes the server has no value for are zero.
type Host struct {
	ID          string
	DisplayName string
	DNSName     string
	FQDN        string
	IP          string // dotted IPv4; "" when none
	GroupID     int
	Visible     bool // visible in the network now
	LastVisible time.Time
	Created     time.Time
	OS          string
	// Activated: see activated.
	Activated bool
	// BasesTime is the anti-virus databases date.
	BasesTime time.Time
	// AppVersion is AttrAppVersion, "" when the row did not carry it.
	AppVersion string
}

// Label names a record for people: its display name, else FQDN, else id.
func (h Host) Label() string {
	switch {
	case h.DisplayName != "":
		return h.DisplayName
	case h.FQDN != "":
		return h.FQDN
	}
	return h.ID
}

// HostOf decodes one row of HostFields.
func HostOf(row Params) Host {
	h := Host{
		ID: row.Str(AttrID), DisplayName: row.Str(AttrDisplayName), DNSName: row.Str(AttrDNSName),
		FQDN: row.Str(AttrFQDN), OS: row.Str(AttrOSName), AppVersion: row.Str(AttrAppVersion),
		Activated: activated(row),
	}
	if ip, ok := row.Int(AttrIP); ok && ip > 0 {
		h.IP = net.IPv4(byte(ip>>24), byte(ip>>16), byte(ip>>8), byte(ip)).String()
	}
	if g, ok := row.Int(AttrGroup); ok {
		h.GroupID = int(g)
	}
	if st, ok := row.Int(AttrStatus); ok {
		h.Visible = st&StatusVisible != 0
	}
	h.LastVisible, _ = row.Time(AttrLastVisible)
	h.Created, _ = row.Time(AttrCreated)
	h.BasesTime, _ = row.Time(AttrBasesTime)
	return h
}

// activated reports whether a host row shows its application activated.
// Assumption (the vendor documents no per-host activation attribute, and
// LicenseKeys.AcquireKeyHosts needs the key's serial): KSC raises the
// status condition "licence expired" for an application without a valid
// key, so a host is activated when its status mask is present and that
// bit is clear. A row without the mask counts as not activated.
func activated(row Params) bool {
	m, ok := row.Int(AttrStatusMask)
	return ok && m&StatusMaskLicence == 0
}

// IPLong is the AttrIP value of a dotted IPv4 address, for filters.
func IPLong(s string) (int64, error) {
	ip := net.ParseIP(strings.TrimSpace(s)).To4()
	if ip == nil {
		return 0, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return int64(ip[0])<<24 | int64(ip[1])<<16 | int64(ip[2])<<8 | int64(ip[3]), nil
}

// FindHostRecords is FindHosts with HostFields, decoded.
func (c *Client) FindHostRecords(ctx context.Context, filter string) ([]Host, error) {
	rows, err := c.FindHosts(ctx, filter, HostFields)
	if err != nil {
		return nil, err
	}
	out := make([]Host, len(rows))
	for i, row := range rows {
		out[i] = HostOf(row)
	}
	return out, nil
}
