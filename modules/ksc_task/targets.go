package ksctask

import (
	"context"
	"fmt"
	"strings"

	"github.com/ksvla/lightagent/internal/ksc"
)

// maxFailedTargets bounds task.failed_targets; namedInMsg bounds the
// targets the message names (the rest are counted), so a task failing
// on a whole fleet still gives a readable line.
const (
	maxFailedTargets = 100
	namedInMsg       = 10
)

// failure reads why the task failed and returns the message: the failed
// targets by name when the server lists them (Tasks host status
// iterator), else the server's failure text, if any. It records both in t.
func failure(ctx context.Context, c *ksc.Client, id, name string, st ksc.TaskState, t *Task) string {
	if text, err := c.TaskErrorText(ctx, id); err == nil {
		t.Error = text
	}
	msg := fmt.Sprintf("KSC task %s failed on %d of %d targets", name, st.Failed, st.Failed+st.Completed+st.Warning)
	targets, err := c.TaskTargets(ctx, id, ksc.TargetFailed, maxFailedTargets)
	if err != nil || len(targets) == 0 {
		// A server without the iterator (or a task without per-device
		// results): the statistics and the text are all there is.
		if t.Error != "" {
			msg += ": " + t.Error
		}
		return msg
	}
	t.FailedTargets = make([]FailedTarget, len(targets))
	for i, tg := range targets {
		t.FailedTargets[i] = FailedTarget{Name: tg.Name, Hostname: tg.HostID, Error: tg.Text}
	}
	return msg + ": " + nameTargets(t.FailedTargets, max(st.Failed, len(targets)))
}

// nameTargets lists up to namedInMsg targets, then how many more of total.
func nameTargets(ts []FailedTarget, total int) string {
	parts := make([]string, 0, namedInMsg+1)
	for _, t := range ts[:min(len(ts), namedInMsg)] {
		s := t.Name
		switch {
		case s == "":
			s = t.Hostname
		case t.Hostname != "" && t.Hostname != t.Name:
			s += " [" + t.Hostname + "]"
		}
		if t.Error != "" {
			s += ": " + t.Error
		}
		parts = append(parts, s)
	}
	if more := total - len(parts); more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(parts, "; ")
}
