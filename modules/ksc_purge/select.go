package kscpurge

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/fleet"
	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/internal/ksc/filter"
)

// maxTerms bounds the alternatives in one search filter; the server's
// filter length limit is not documented, and 100 mirrors its id-array limit.
const maxTerms = 100

// Record is one KSC host record and why its SVM is known to be gone.
type Record struct {
	ksc.Host
	Proof string
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
	FindHostRecords(ctx context.Context, filter string) ([]ksc.Host, error)
	GetHostProducts(ctx context.Context, hostID string) ([]ksc.Product, error)
}

// find runs one search per maxTerms alternatives, each ANDed with extra.
func find(ctx context.Context, c hostFinder, terms []filter.Expr, extra filter.Expr) ([]Record, error) {
	var out []Record
	for i := 0; i < len(terms); i += maxTerms {
		f := filter.And(filter.Or(terms[i:min(i+maxTerms, len(terms))]...), extra)
		hs, err := c.FindHostRecords(ctx, f.String())
		if err != nil {
			return nil, fmt.Errorf("search KSC records: %w", err)
		}
		for _, h := range hs {
			out = append(out, Record{Host: h})
		}
	}
	return out, nil
}

func idTerms(ids []string) []filter.Expr {
	terms := make([]filter.Expr, len(ids))
	for i, id := range ids {
		terms[i] = filter.Eq(ksc.AttrID, id)
	}
	return terms
}

// existing returns the ids among ids that KSC still lists.
func existing(ctx context.Context, c hostFinder, ids []string) ([]Record, error) {
	return find(ctx, c, idTerms(ids), filter.All)
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
		if _, err := ksc.IPLong(ip); err != nil {
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
			terms[r.kind] = append(terms[r.kind], filter.Eq(ksc.AttrDisplayName, r.absent.Name))
		case "ip":
			n, _ := ksc.IPLong(r.key) // checked in refs
			terms[r.kind] = append(terms[r.kind], filter.EqInt(ksc.AttrIP, n))
		case "id":
			terms[r.kind] = append(terms[r.kind], filter.Eq(ksc.AttrID, r.key))
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
			key := map[string]string{"name": strings.ToLower(r.DisplayName), "ip": r.IP, "id": r.ID}[kind]
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
			terms = append(terms, filter.Eq(ksc.AttrProduct, k))
		}
	}
	if len(terms) == 0 {
		return "", fmt.Errorf("ps_products needs at least one KSC product key (display names with spaces cannot be searched)")
	}
	return filter.Or(terms...), nil
}

// staleFilter matches hosts not visible now and not seen for minutes.
func staleFilter(minutes int) filter.Expr {
	return filter.And(filter.BitClear(ksc.AttrStatus, ksc.StatusVisible),
		filter.OlderThan(ksc.AttrLastVisible, time.Duration(minutes)*time.Minute))
}

// psVersion returns the Protection Server version of a record: the
// version column when the row had it, else from GetHostProducts.
func psVersion(ctx context.Context, c hostFinder, r Record, products []string) (string, error) {
	if r.AppVersion != "" {
		return r.AppVersion, nil
	}
	ps, err := c.GetHostProducts(ctx, r.ID)
	if err != nil {
		return "", fmt.Errorf("read products of KSC record %s: %w", r.Label(), err)
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
					sel.skipped = append(sel.skipped, Skipped{Name: r.Label(), ID: id, Reason: reason(r)})
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
		hs, err := c.FindHostRecords(ctx, filter.And(prod, extra).String())
		if err != nil {
			return sel, fmt.Errorf("search KSC records: %w", err)
		}
		for _, h := range hs {
			candidates[h.ID] = Record{Host: h}
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
				sel.skipped = append(sel.skipped, Skipped{Name: r.Label(), ID: id,
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
	sort.Slice(rs, func(i, j int) bool { return lessLabel(rs[i].Label(), rs[i].ID, rs[j].Label(), rs[j].ID) })
}
