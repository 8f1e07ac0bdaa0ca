package kscpurge

import (
	"fmt"
	"strings"
	"time"
)

// Entry is a record in the result and the diff.
type Entry struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	IP   string `json:"ip"`
	// AutoRemoveAt is when the group's autoRemovePeriod would have removed
	// the record anyway (with report_retention).
	AutoRemoveAt string `json:"auto_remove_at,omitempty"`
	// Proof says why the record's SVM is known to be gone.
	Proof string `json:"proof"`
}

// Kept is a selected record left in KSC because its SVM is not proven
// gone.
type Kept struct {
	Name   string `json:"name"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Refused is a record whose VM still runs in vCenter.
type Refused struct {
	Name   string `json:"name"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Retention is one administration group's automatic removal period.
type Retention struct {
	Group                string `json:"group"`
	GroupID              int    `json:"group_id"`
	AutoRemovePeriodDays int    `json:"auto_remove_period_days"` // 0: never
	Inherited            bool   `json:"inherited"`
	Records              int    `json:"records"` // selected records in the group
	// NextAutoRemoval is the earliest auto_remove_at of those records.
	NextAutoRemoval string `json:"next_auto_removal,omitempty"`
}

// observed is what Observe found.
type observed struct {
	Records      []Record // to remove, sorted
	Absent       []Absent
	Skipped      []Skipped
	Refused      []Refused
	Kept         []Kept
	Retention    []Retention          // nil without report_retention
	AutoRemoveAt map[string]time.Time // by record id, with report_retention
}

// Plan is the removal as a value: batches of records in order, with what
// the selection found around them. Apply records in it what it removed.
type Plan struct {
	Batches [][]Record
	Before  []Entry
	// Removed are the records removed, or in check mode those that would
	// be; never one KSC may still list.
	Removed []Record
	observed
}

// Empty reports whether nothing is to be removed.
func (p *Plan) Empty() bool { return len(p.Batches) == 0 }

// Diff shows the records present before and after the removal as text,
// one line per record: Ansible's callbacks print strings and dicts, and
// a list breaks them ('list' object has no attribute 'splitlines').
func (p *Plan) Diff() (before, after any) {
	var b strings.Builder
	for _, e := range p.Before {
		fmt.Fprintf(&b, "KSC record %s (id %s", e.Name, e.ID)
		if e.IP != "" {
			fmt.Fprintf(&b, ", ip %s", e.IP)
		}
		fmt.Fprintf(&b, "): %s\n", e.Proof)
	}
	return b.String(), ""
}

// Report is the module's return values.
func (p *Plan) Report() map[string]any {
	r := map[string]any{
		"removed": entries(p.Removed, p.AutoRemoveAt),
		"absent":  nonNil(p.Absent),
		"skipped": nonNil(p.Skipped),
		"refused": nonNil(p.Refused),
		"kept":    nonNil(p.Kept),
	}
	if p.Retention != nil {
		r["retention"] = p.Retention
	}
	return r
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ids lists the plan's record ids in order.
func (p *Plan) ids() []string {
	var out []string
	for _, b := range p.Batches {
		for _, r := range b {
			out = append(out, r.ID)
		}
	}
	return out
}

func entries(rs []Record, at map[string]time.Time) []Entry {
	out := make([]Entry, 0, len(rs))
	for _, r := range rs {
		e := Entry{Name: r.Label(), ID: r.ID, IP: r.IP, Proof: r.Proof}
		if t, ok := at[r.ID]; ok {
			e.AutoRemoveAt = t.UTC().Format(time.RFC3339)
		}
		out = append(out, e)
	}
	return out
}

// plan batches the observed records. A refused record fails the whole
// module before anything is removed: half a purge is worse than none. The
// plan is returned even with an error, to report what was selected.
func plan(obs observed, batchSize int) (*Plan, error) {
	p := &Plan{observed: obs}
	if len(obs.Refused) > 0 {
		var parts []string
		for _, r := range obs.Refused {
			parts = append(parts, r.Name+": "+r.Reason)
		}
		return p, fmt.Errorf("refusing to remove the KSC records of VMs that still run in vCenter (%s); nothing was removed",
			strings.Join(parts, "; "))
	}
	if err := checkBatch(batchSize); err != nil {
		return p, err
	}
	p.Before = entries(obs.Records, nil)
	for i := 0; i < len(obs.Records); i += batchSize {
		p.Batches = append(p.Batches, obs.Records[i:min(i+batchSize, len(obs.Records))])
	}
	return p, nil
}

func checkBatch(n int) error {
	if n < 1 {
		return fmt.Errorf("batch_size must be at least 1, got %d", n)
	}
	return nil
}
