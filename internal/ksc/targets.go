package ksc

import (
	"context"
	"fmt"
	"sort"
)

// Per-device results of a task run: Tasks.ResetHostIteratorForTaskStatusEx
// (strTask, pFields2Return, pFields2Order, nHostStateMask, nLifetime ->
// strHostIteratorId), Tasks.GetNextHostStatus (strHostIteratorId, nCount
// -> nActual, pHostStatus) and Tasks.ReleaseHostStatusIterator, with the
// "host task state" attributes hostname, hostdn, state_code and
// state_descr (KSC Open API, Tasks class:
// https://support.kaspersky.com/help/KSC/16/KSCAPI/index.html).
//
// The vendor pages do not say under which key pHostStatus holds the rows.
// parseHostStatus therefore takes KLCSP_ITERATOR_ARRAY (the key of every
// other KSC result chunk) when present, else any array it finds inside
// pHostStatus, else pHostStatus itself when it is an array.

// Host task state bits (state_code, nHostStateMask); they are also the
// GetTaskStatistics keys.
const (
	TargetPending   = 0x01
	TargetRunning   = 0x02
	TargetCompleted = 0x04
	TargetWarning   = 0x08
	TargetFailed    = 0x10
	TargetScheduled = 0x20
	TargetPaused    = 0x40
)

// TaskTarget is one device of a task's run.
type TaskTarget struct {
	HostID string // hostname: KLHST_WKS_HOSTNAME
	Name   string // hostdn: the display name
	State  int    // state_code
	Text   string // state_descr: why it failed, when it did
}

// hostStatusPage is how many rows one GetNextHostStatus asks for.
const hostStatusPage = 100

// hostStatusLifetime bounds the iterator (seconds), should Release fail.
const hostStatusLifetime = 600

// TaskTargets returns up to limit targets of the task whose state_code
// has a bit of mask (0: every state), in the server's order. An error
// means the server cannot list them (a KSC without the method, for one).
func (c *Client) TaskTargets(ctx context.Context, taskID string, mask, limit int) ([]TaskTarget, error) {
	r, err := c.Call(ctx, "Tasks.ResetHostIteratorForTaskStatusEx", map[string]any{
		"strTask": taskID, "pFields2Return": []string{"hostname", "hostdn", "state_code", "state_descr"},
		"pFields2Order": []any{}, "nHostStateMask": mask, "nLifetime": hostStatusLifetime,
	}, true)
	if err != nil {
		return nil, fmt.Errorf("list targets of task %s: %w", taskID, err)
	}
	it := r["strHostIteratorId"].Str()
	defer func() {
		// Ignored: the rows are read, and the iterator has a lifetime.
		_, _ = c.Call(context.WithoutCancel(ctx), "Tasks.ReleaseHostStatusIterator", map[string]any{"strHostIteratorId": it}, false)
	}()
	var out []TaskTarget
	for i := 0; i < 100000 && (limit <= 0 || len(out) < limit); i++ { // bound: a misbehaving server must not loop us forever
		// Not a read for retry purposes: GetNextHostStatus advances the iterator.
		r, err := c.Call(ctx, "Tasks.GetNextHostStatus", map[string]any{"strHostIteratorId": it, "nCount": hostStatusPage}, false)
		if err != nil {
			return nil, fmt.Errorf("list targets of task %s: %w", taskID, err)
		}
		rows := parseHostStatus(r["pHostStatus"])
		if len(rows) == 0 {
			break
		}
		for _, row := range rows {
			out = append(out, targetOf(row))
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// parseHostStatus returns the rows of a pHostStatus (see the note above
// on its container key).
func parseHostStatus(v Value) []Params {
	arr := v.Array()
	if p := v.Params(); p != nil {
		arr = p["KLCSP_ITERATOR_ARRAY"].Array()
		if arr == nil {
			keys := make([]string, 0, len(p))
			for k := range p {
				keys = append(keys, k)
			}
			sort.Strings(keys) // deterministic should a server send two arrays
			for _, k := range keys {
				if a := p[k].Array(); a != nil {
					arr = a
					break
				}
			}
		}
	}
	rows := make([]Params, 0, len(arr))
	for _, e := range arr {
		if p := e.Params(); p != nil {
			rows = append(rows, p)
		}
	}
	return rows
}

func targetOf(row Params) TaskTarget {
	st, _ := row.Int("state_code")
	return TaskTarget{HostID: row.Str("hostname"), Name: row.Str("hostdn"), State: int(st), Text: row.Str("state_descr")}
}
