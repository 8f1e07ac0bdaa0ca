// Package ksctask is the ksc_task module: it starts an existing Kaspersky
// Security Center task by its display name and waits for its result (the
// upgrade's activation, database-update and Light Agent update tasks).
package ksctask

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ksc"
	"github.com/ksvla/lightagent/modules/conn"
)

// Module is ksc_task.
type Module struct{ conn.Sessions }

var (
	_ ansible.Module  = (*Module)(nil)
	_ ansible.Applier = (*Module)(nil)
	_ ansible.Closer  = (*Module)(nil)
)

// New returns the module.
func New() ansible.Module { return &Module{} }

// Spec returns the option spec.
func (*Module) Spec() ansible.Spec { return spec() }

// listNamesUpTo is how many task names a "not found" message lists; past
// that it only gives the count, so the message stays readable.
const listNamesUpTo = 20

// minPoll keeps poll_interval 0 from spinning against the server.
const minPoll = 20 * time.Millisecond

// trustDoneAfter is how many "done" answers right after RunTask are not
// believed unless a not-done answer came first: when the previous run had
// finished, the statistics may still show it for a moment after the start
// (the vendor does not document when RunTask resets them).
const trustDoneAfter = 3

func decode(req *ansible.Request) (Options, error) {
	var o Options
	err := req.Params.Decode(&o)
	return o, err
}

// Observe finds the task and reads its statistics.
func (m *Module) Observe(ctx context.Context, req *ansible.Request, resp *ansible.Response) (ansible.Observed, error) {
	o, err := decode(req)
	if err != nil {
		return nil, err
	}
	c, err := m.KSC(o.KSCOptions)
	if err != nil {
		return nil, err
	}
	id, err := c.FindTask(ctx, o.Name)
	if errors.Is(err, ksc.ErrNotFound) {
		return nil, notFound(ctx, c, o.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("KSC task %s: %w", o.Name, err)
	}
	st, err := c.TaskState(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("KSC task %s: %w", o.Name, err)
	}
	obs := observed{ID: id, Name: o.Name, Stats: st}
	resp.Set("task", taskView(id, o.Name, st))
	return obs, nil
}

// notFound builds the "not found" error, listing the existing names when
// there are few, so a typo is obvious.
func notFound(ctx context.Context, c *ksc.Client, name string) error {
	msg := fmt.Sprintf("KSC task %s not found", name)
	tasks, err := c.ListTasks(ctx)
	switch {
	case err != nil:
		// The lookup failed already; the list is only a hint.
	case len(tasks) == 0:
		msg += "; the server has no tasks"
	case len(tasks) <= listNamesUpTo:
		names := make([]string, len(tasks))
		for i, t := range tasks {
			names[i] = t.Name
		}
		msg += "; existing tasks: " + strings.Join(names, ", ")
	default:
		msg += fmt.Sprintf("; %d tasks exist", len(tasks))
	}
	return errors.New(msg)
}

// Plan decides whether to start and whether to wait.
func (*Module) Plan(req *ansible.Request, st ansible.Observed, resp *ansible.Response) (ansible.Plan, error) {
	o, err := decode(req)
	if err != nil {
		return nil, err
	}
	obs := st.(observed)
	p := plan(o, obs)
	switch {
	case p.Empty():
		resp.Msg = fmt.Sprintf("KSC task %s is %s; not started", o.Name, p.Before)
	case req.CheckMode && p.Start:
		resp.Msg = fmt.Sprintf("KSC task %s would be started (it is %s)", o.Name, p.Before)
	case req.CheckMode:
		resp.Msg = fmt.Sprintf("KSC task %s is %s; would wait for it", o.Name, p.Before)
	}
	return &p, nil
}

// Apply starts the task and, with state=completed, waits for its result.
func (m *Module) Apply(ctx context.Context, req *ansible.Request, pl ansible.Plan, resp *ansible.Response) error {
	o, err := decode(req)
	if err != nil {
		return err
	}
	p := pl.(*Plan)
	c, err := m.KSC(o.KSCOptions)
	if err != nil {
		return err
	}
	// The id is looked up again rather than carried over: the plan is a
	// value, and a task deleted meanwhile must fail here, by name.
	id, err := c.FindTask(ctx, o.Name)
	if err != nil {
		return fmt.Errorf("KSC task %s: %w", o.Name, err)
	}
	if p.Start {
		if err := c.RunTask(ctx, id); err != nil {
			return fmt.Errorf("start KSC task %s: %w", o.Name, err)
		}
	}
	if !p.Wait {
		st, err := c.TaskState(ctx, id)
		if err != nil {
			return fmt.Errorf("KSC task %s: %w", o.Name, err)
		}
		resp.Set("task", taskView(id, o.Name, st))
		resp.Msg = fmt.Sprintf("KSC task %s started", o.Name)
		return nil
	}
	st, err := wait(ctx, c, id, o, p.Start && p.PrevDone)
	t := taskView(id, o.Name, st)
	p.After = t.State // what the run came to: the diff shows it, not the plan's "completed"
	resp.Set("task", t)
	if err != nil {
		return err
	}
	if st.Failed == 0 {
		resp.Msg = fmt.Sprintf("KSC task %s completed on %d targets", o.Name, st.Completed+st.Warning)
		return nil
	}
	text, err := c.TaskErrorText(ctx, id)
	if err == nil && text != "" {
		t.Error = text
		resp.Set("task", t)
	}
	msg := fmt.Sprintf("KSC task %s failed on %d of %d targets", o.Name, st.Failed, st.Failed+st.Completed+st.Warning)
	if t.Error != "" {
		msg += ": " + t.Error
	}
	if o.FailOnTaskFailure {
		return errors.New(msg)
	}
	if o.WarnOnTaskFailure {
		resp.Warn(msg)
	}
	resp.Msg = msg
	return nil
}

// wait polls the statistics until the task is done, wait_timeout passes
// or ctx ends. stale says the statistics may still show the previous run
// right after the start (see trustDoneAfter).
func wait(ctx context.Context, c *ksc.Client, id string, o Options, stale bool) (ksc.TaskState, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(o.WaitTimeout)*time.Second)
	defer cancel()
	interval := max(time.Duration(o.PollInterval)*time.Second, minPoll)
	var last ksc.TaskState
	doneSeen := 0
	for {
		st, err := c.TaskState(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return last, timeout(o, last, ctx.Err())
			}
			return last, fmt.Errorf("wait for KSC task %s: %w", o.Name, err)
		}
		last = st
		if st.Done() {
			doneSeen++
			if !stale || doneSeen >= trustDoneAfter {
				return st, nil
			}
		} else {
			stale = false // the new run shows: its "done" is real
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, timeout(o, last, ctx.Err())
		case <-t.C:
		}
	}
}

func timeout(o Options, last ksc.TaskState, err error) error {
	return fmt.Errorf("KSC task %s did not finish within %d s (it is %s, %d%%): %w",
		o.Name, o.WaitTimeout, summarize(last), last.Percent, err)
}
