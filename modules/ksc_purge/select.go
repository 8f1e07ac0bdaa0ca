package kscpurge

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/ksc/filter"
)

// Host attributes read per record.
const (
	attrID          = "KLHST_WKS_HOSTNAME"
	attrName        = "KLHST_WKS_DN"
	attrFQDN        = "KLHST_WKS_FQDN"
	attrIP          = "KLHST_WKS_IP_LONG"
	attrGroup       = "KLHST_WKS_GROUPID"
	attrStatus      = "KLHST_WKS_STATUS"
	attrLastVisible = "KLHST_WKS_LAST_VISIBLE"
	attrCreated     = "KLHST_WKS_CREATED"
	// attrVersion is the host's security application version: on an SVM,
	// the Protection Server's (fleet.Observe relies on the same).
	attrVersion = "KLHST_WKS_RTP_AV_VERSION"
	attrProduct = "KLHST_WKS_PRODUCT_NAME"
)

var fields = []string{attrID, attrName, attrFQDN, attrIP, attrGroup, attrStatus, attrLastVisible, attrCreated, attrVersion}

// maxTerms bounds the alternatives in one search filter; the server's
// filter length limit is not documented, and 100 mirrors its id-array limit.
const maxTerms = 100

// statusVisible is KLHST_WKS_STATUS bit 0x01, "visible in the network".
const statusVisible = 1

// Record is one KSC host record as ksc_purge reads it.
type Record struct {
	ID, Name, FQDN, IP   string
	GroupID              int
	Visible              bool
	LastVisible, Created time.Time // zero when the server has no value
	Version              string    // attrVersion, "" when not reported
	Proof                string    // why its SVM is known to be gone
}

func recordOf(p ksc.Params) Record {
	r := Record{ID: p.Str(attrID), Name: p.Str(attrName), FQDN: p.Str(attrFQDN), Version: p.Str(attrVersion)}
	if ip, ok := p.Int(attrIP); ok && ip > 0 {
		r.IP = net.IPv4(byte(ip>>24), byte(ip>>16), byte(ip>>8), byte(ip)).String()
	}
	if g, ok := p.Int(attrGroup); ok {
		r.GroupID = int(g)
	}
	if st, ok := p.Int(attrStatus); ok {
		r.Visible = st&statusVisible != 0
	}
	r.LastVisible, _ = p.Time(attrLastVisible)
	r.Created, _ = p.Time(attrCreated)
	return r
}

// label names a record for people: its display name, else FQDN, else id.
func (r Record) label() string {
	switch {
	case r.Name != "":
		return r.Name
	case r.FQDN != "":
		return r.FQDN
	}
	return r.ID
}

// Absent is a selector that matched no record.
type Absent struct {
	Name  string `json:"name,omitempty"`
	IP    string `json:"ip,omitempty"`
	KSCID string `json:"ksc_id,omitempty"`
}

// Skipped is a selected record that the filters (product_version,
// not_visible_minutes) keep.
type Skipped struct {
	Name   string `json:"name"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// hostFinder is the part of the KSC client selection needs.
type hostFinder interface {
	FindHosts(ctx context.Context, filter string, fields []string) ([]ksc.Params, error)
	GetHostProducts(ctx context.Context, hostID string) ([]ksc.Product, error)
}

// find runs one search per maxTerms alternatives, each ANDed with extra.
func find(ctx context.Context, c hostFinder, terms []filter.Expr, extra filter.Expr) ([]Record, error) {
	var out []Record
	for i := 0; i < len(terms); i += maxTerms {
		f := filter.And(filter.Or(terms[i:min(i+maxTerms, len(terms))]...), extra)
		rows, err := c.FindHosts(ctx, f.String(), fields)
		if err != nil {
			return nil, fmt.Errorf("search KSC records: %w", err)
		}
		for _, row := range rows {
			out = append(out, recordOf(row))
		}
	}
	return out, nil
}

func idTerms(ids []string) []filter.Expr {
	terms := make([]filter.Expr, len(ids))
	for i, id := range ids {
		terms[i] = filter.Eq(attrID, id)
	}
	return terms
}

// existing returns the ids among ids that KSC still lists.
func existing(ctx context.Context, c hostFinder, ids []string) ([]Record, error) {
	return find(ctx, c, idTerms(ids), filter.All)
}

// ipLong is KLHST_WKS_IP_LONG of a dotted IPv4 address.
func ipLong(s string) (int64, error) {
	ip := net.ParseIP(strings.TrimSpace(s)).To4()
	if ip == nil {
		return 0, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return int64(ip[0])<<24 | int64(ip[1])<<16 | int64(ip[2])<<8 | int64(ip[3]), nil
}

// ref is one identity selector: a display name, an IP or a record id.
type ref struct {
	kind, key string // kind: "name", "ip", "id"; key normalised for lookup
	absent    Absent
	proof     string // what naming the record this way proves
}

func refs(o Options) ([]ref, error) {
	var out []ref
	for _, n := range o.Names {
		out = append(out, ref{"name", strings.ToLower(n), Absent{Name: n}, "named in names by the operator"})
	}
	for _, ip := range o.IPs {
		if _, err := ipLong(ip); err != nil {
			return nil, fmt.Errorf("ips: %w", err)
		}
		out = append(out, ref{"ip", strings.TrimSpace(ip), Absent{IP: ip}, "named in ips by the operator"})
	}
	for i, s := range o.SVMs {
		a := Absent{Name: s.Name, IP: s.IP, KSCID: s.KSCID}
		proof := "removed by this run (svms: " + s.Name + ")"
		switch {
		case s.KSCID != "":
			out = append(out, ref{"id", s.KSCID, a, proof})
		case s.Name != "":
			out = append(out, ref{"name", strings.ToLower(s.Name), a, proof})
		default:
			return nil, fmt.Errorf("svms[%d] has neither name nor ksc_id", i)
		}
	}
	return out, nil
}

// selectNamed resolves names, ips and svms to records (by id) and lists
// the selectors nothing matched.
func selectNamed(ctx context.Context, c hostFinder, o Options) (map[string]Record, []Absent, error) {
	rs, err := refs(o)
	if err != nil {
		return nil, nil, err
	}
	terms := map[string][]filter.Expr{}
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[r.kind+"\x00"+r.key] {
			continue
		}
		seen[r.kind+"\x00"+r.key] = true
		switch r.kind {
		case "name":
			terms[r.kind] = append(terms[r.kind], filter.Eq(attrName, r.absent.Name))
		case "ip":
			n, _ := ipLong(r.key) // checked in refs
			terms[r.kind] = append(terms[r.kind], filter.EqInt(attrIP, n))
		case "id":
			terms[r.kind] = append(terms[r.kind], filter.Eq(attrID, r.key))
		}
	}
	index := map[string][]Record{}
	records := map[string]Record{}
	for _, kind := range []string{"name", "ip", "id"} {
		found, err := find(ctx, c, terms[kind], filter.All)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range found {
			key := map[string]string{"name": strings.ToLower(r.Name), "ip": r.IP, "id": r.ID}[kind]
			index[kind+"\x00"+key] = append(index[kind+"\x00"+key], r)
			records[r.ID] = r
		}
	}
	var absent []Absent
	done := map[string]bool{}
	for _, r := range rs {
		k := r.kind + "\x00" + r.key
		for _, found := range index[k] {
			if rec := records[found.ID]; rec.Proof == "" {
				rec.Proof = r.proof
				records[found.ID] = rec
			}
		}
		if len(index[k]) == 0 && !done[k] {
			done[k] = true
			absent = append(absent, r.absent)
		}
	}
	return records, absent, nil
}

// productFilter matches hosts carrying any Protection Server product key.
func productFilter(keys []string) (filter.Expr, error) {
	var terms []filter.Expr
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" && !strings.Contains(k, " ") {
			terms = append(terms, filter.Eq(attrProduct, k))
		}
	}
	if len(terms) == 0 {
		return "", fmt.Errorf("ps_products needs at least one KSC product key (display names with spaces cannot be searched)")
	}
	return filter.Or(terms...), nil
}

// staleFilter matches hosts not visible now and not seen for minutes.
func staleFilter(minutes int) filter.Expr {
	return filter.And(filter.BitClear(attrStatus, statusVisible),
		filter.OlderThan(attrLastVisible, time.Duration(minutes)*time.Minute))
}

// psVersion returns the Protection Server version of a record: the
// version column when the row had it, else from GetHostProducts.
func psVersion(ctx context.Context, c hostFinder, r Record, products []string) (string, error) {
	if r.Version != "" {
		return r.Version, nil
	}
	ps, err := c.GetHostProducts(ctx, r.ID)
	if err != nil {
		return "", fmt.Errorf("read products of KSC record %s: %w", r.label(), err)
	}
	for _, p := range ps {
		for _, want := range products {
			if strings.EqualFold(p.Key, want) || strings.EqualFold(p.DisplayName, want) {
				if p.ProdVersion != "" {
					return p.ProdVersion, nil
				}
				return p.Version, nil
			}
		}
	}
	return "", nil
}

// selection is what selectRecords found.
type selection struct {
	records []Record // to remove, sorted by name then id
	absent  []Absent
	skipped []Skipped
}

// selectRecords applies the selectors and filters of o.
func selectRecords(ctx context.Context, c hostFinder, o Options) (selection, error) {
	var sel selection
	var prod filter.Expr
	if o.ProductVersion != "" || !o.named() {
		var err error
		if prod, err = productFilter(o.PSProducts); err != nil {
			return sel, err
		}
	}
	candidates := map[string]Record{}
	if o.named() {
		var err error
		if candidates, sel.absent, err = selectNamed(ctx, c, o); err != nil {
			return sel, err
		}
		ids := sortedIDs(candidates)
		skip := func(keep map[string]bool, reason func(Record) string) {
			for _, id := range ids {
				if r, ok := candidates[id]; ok && !keep[id] {
					sel.skipped = append(sel.skipped, Skipped{Name: r.label(), ID: id, Reason: reason(r)})
					delete(candidates, id)
				}
			}
		}
		restrict := func(extra filter.Expr, reason func(Record) string) error {
			found, err := find(ctx, c, idTerms(ids), extra)
			if err != nil {
				return err
			}
			keep := map[string]bool{}
			for _, r := range found {
				keep[r.ID] = true
			}
			skip(keep, reason)
			return nil
		}
		if o.ProductVersion != "" {
			if err := restrict(prod, func(Record) string { return "carries no Protection Server product (ps_products)" }); err != nil {
				return sel, err
			}
		}
		if o.NotVisibleMinutes != nil {
			n := *o.NotVisibleMinutes
			if err := restrict(staleFilter(n), func(Record) string {
				return fmt.Sprintf("visible in the network, or seen within the last %d minutes", n)
			}); err != nil {
				return sel, err
			}
		}
	} else {
		extra := filter.All
		if o.NotVisibleMinutes != nil {
			extra = staleFilter(*o.NotVisibleMinutes)
		}
		rows, err := c.FindHosts(ctx, filter.And(prod, extra).String(), fields)
		if err != nil {
			return sel, fmt.Errorf("search KSC records: %w", err)
		}
		for _, row := range rows {
			r := recordOf(row)
			candidates[r.ID] = r
		}
	}
	if o.ProductVersion != "" {
		for _, id := range sortedIDs(candidates) {
			r := candidates[id]
			v, err := psVersion(ctx, c, r, o.PSProducts)
			if err != nil {
				return sel, err
			}
			if fleet.Version(v).Compare(fleet.Version(o.ProductVersion)) == 0 && v != "" {
				continue
			}
			delete(candidates, id)
			if o.named() { // selected by identity: say why it stays
				sel.skipped = append(sel.skipped, Skipped{Name: r.label(), ID: id,
					Reason: fmt.Sprintf("Protection Server version is %s, not %s", orUnknown(v), o.ProductVersion)})
			}
		}
	}
	for _, id := range sortedIDs(candidates) {
		sel.records = append(sel.records, candidates[id])
	}
	sortRecords(sel.records)
	sort.Slice(sel.skipped, func(i, j int) bool {
		return lessLabel(sel.skipped[i].Name, sel.skipped[i].ID, sel.skipped[j].Name, sel.skipped[j].ID)
	})
	return sel, nil
}

func orUnknown(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}

func sortedIDs(m map[string]Record) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func lessLabel(a, aid, b, bid string) bool {
	if a != b {
		return a < b
	}
	return aid < bid
}

func sortRecords(rs []Record) {
	sort.Slice(rs, func(i, j int) bool { return lessLabel(rs[i].label(), rs[i].ID, rs[j].label(), rs[j].ID) })
}
