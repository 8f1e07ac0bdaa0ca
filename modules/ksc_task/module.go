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

// Module is ksc_task's phases; New gives a fresh one per run.
type Module struct{ conn.Sessions }

// New returns the module.
func New() ansible.Module { return ansible.Typed[Options, observed, *outcome](&Module{}) }

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

// Observe finds the task and reads its statistics.
func (m *Module) Observe(ctx context.Context, c *ansible.Call[Options]) (observed, error) {
	o := c.Options
	k, err := m.KSC(o.KSCOptions)
	if err != nil {
		return observed{}, err
	}
	id, err := k.FindTask(ctx, o.Name)
	if errors.Is(err, ksc.ErrNotFound) {
		return observed{}, notFound(ctx, k, o.Name)
	}
	if err != nil {
		return observed{}, fmt.Errorf("KSC task %s: %w", o.Name, err)
	}
	st, err := k.TaskState(ctx, id)
	if err != nil {
		return observed{}, fmt.Errorf("KSC task %s: %w", o.Name, err)
	}
	return observed{ID: id, Name: o.Name, Stats: st}, nil
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
func (*Module) Plan(c *ansible.Call[Options], obs observed) (*outcome, error) {
	o := c.Options
	p := plan(o, obs)
	switch {
	case p.Empty():
		c.Msg = fmt.Sprintf("KSC task %s is %s; not started", o.Name, p.Before)
	case c.CheckMode && p.Start:
		c.Msg = fmt.Sprintf("KSC task %s would be started (it is %s)", o.Name, p.Before)
	case c.CheckMode:
		c.Msg = fmt.Sprintf("KSC task %s is %s; would wait for it", o.Name, p.Before)
	}
	return &outcome{Plan: p, Task: taskView(obs.ID, o.Name, obs.Stats)}, nil
}

// Apply starts the task and, with state=completed, waits for its result.
func (m *Module) Apply(ctx context.Context, c *ansible.Call[Options], out *outcome) error {
	o := c.Options
	k, err := m.KSC(o.KSCOptions)
	if err != nil {
		return err
	}
	// The id is looked up again rather than carried over: a task deleted
	// since Observe must fail here, by name.
	id, err := k.FindTask(ctx, o.Name)
	if err != nil {
		return fmt.Errorf("KSC task %s: %w", o.Name, err)
	}
	if out.Start {
		if err := k.RunTask(ctx, id); err != nil {
			return fmt.Errorf("start KSC task %s: %w", o.Name, err)
		}
	}
	if !out.Wait {
		st, err := k.TaskState(ctx, id)
		if err != nil {
			return fmt.Errorf("KSC task %s: %w", o.Name, err)
		}
		out.Task = taskView(id, o.Name, st)
		c.Msg = fmt.Sprintf("KSC task %s started", o.Name)
		return nil
	}
	st, err := wait(ctx, k, id, o, out.Start && out.PrevDone)
	out.Task = taskView(id, o.Name, st)
	out.After = out.Task.State // what the run came to: the diff shows it, not the plan's "completed"
	if err != nil {
		return err
	}
	if st.Failed == 0 {
		c.Msg = fmt.Sprintf("KSC task %s completed on %d targets", o.Name, st.Completed+st.Warning)
		return nil
	}
	msg := failure(ctx, k, id, o.Name, st, &out.Task)
	if o.FailOnTaskFailure {
		return errors.New(msg)
	}
	if o.WarnOnTaskFailure {
		c.Warn(msg)
	}
	c.Msg = msg
	return nil
}

// wait polls the statistics until the task is done, wait_timeout passes
// or ctx ends. stale says the statistics may still show the previous run
// right after the start (see trustDoneAfter).
func wait(ctx context.Context, c *ksc.Client, id string, o Options, stale bool) (ksc.TaskState, error) {
	waitCtx, cancel := context.WithTimeout(ctx, time.Duration(o.WaitTimeout)*time.Second)
	defer cancel()
	interval := max(time.Duration(o.PollInterval)*time.Second, minPoll)
	var last ksc.TaskState
	doneSeen := 0
	for {
		st, err := c.TaskState(waitCtx, id)
		if err != nil {
			if waitCtx.Err() != nil {
				return last, timeout(ctx, o, last, waitCtx.Err())
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
		case <-waitCtx.Done():
			t.Stop()
			return last, timeout(ctx, o, last, waitCtx.Err())
		case <-t.C:
		}
	}
}

// timeout says which bound ended the wait: wait_timeout, or the run's own
// end (its timeout option or a signal, which the runtime names).
func timeout(run context.Context, o Options, last ksc.TaskState, err error) error {
	if run.Err() != nil {
		return fmt.Errorf("wait for KSC task %s (it is %s, %d%%): %w", o.Name, summarize(last), last.Percent, run.Err())
	}
	return fmt.Errorf("KSC task %s did not finish within %d s (it is %s, %d%%): %w",
		o.Name, o.WaitTimeout, summarize(last), last.Percent, err)
}
