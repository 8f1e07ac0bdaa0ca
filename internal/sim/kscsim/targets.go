package kscsim

import (
	"context"
	"errors"
	"maps"
	"time"
)

// Per-target results of a task (a group task runs on many devices), as the
// KSC Open API's Tasks class reports them: GetTaskStatistics counts the
// targets per state, and Tasks.ResetHostIteratorForTaskStatusEx (strTask,
// pFields2Return, pFields2Order, nHostStateMask, nLifetime, [out]
// strHostIteratorId) / Tasks.GetNextHostStatus (strHostIteratorId, nCount,
// [out] nActual, [out] pHostStatus) / Tasks.ReleaseHostStatusIterator list
// them with the "host task state" attributes hostname, hostdn, state_code
// (the "bit masks of host task states") and state_descr
// (https://support.kaspersky.com/help/KSC/16/KSCAPI/index.html, Tasks class).
//
// Lab assumptions (not confirmed):
//   - the vendor pages do not name the array inside pHostStatus: the lab
//     puts the rows under KLCSP_ITERATOR_ARRAY, as ChunkAccessor does (a
//     client should take any array it finds there);
//   - nHostStateMask 0 selects every state; pFields2Order is accepted and
//     ignored (rows come in target order); empty pFields2Return returns
//     the four attributes;
//   - GetNextHostStatus returns PxgRetVal true while it returned rows;
//   - a task run reports its targets when it starts; KSC itself takes them
//     from the task's group or device list.

// TargetState is the state of one target of a task run; its values are
// the host task state bits, which are also the GetTaskStatistics keys.
type TargetState int

// Host task states.
const (
	TargetPending   TargetState = 0x01 // not yet distributed to the device
	TargetRunning   TargetState = 0x02
	TargetOK        TargetState = 0x04 // completed
	TargetWarning   TargetState = 0x08 // completed with a warning
	TargetFailed    TargetState = 0x10
	TargetScheduled TargetState = 0x20
	TargetPaused    TargetState = 0x40
)

func (t TargetState) final() bool { return t == TargetOK || t == TargetWarning || t == TargetFailed }

type target struct {
	hostID, name string // KLHST_WKS_HOSTNAME and display name when the run reached it
	state        TargetState
	descr        string
}

// TargetFunc is the work of a task that runs on targets: it names them
// (Run.SetTargets) and reports each one's result. A target it leaves
// unfinished ends completed when it returns nil, else failed with its
// text in a returned *TargetFailures, or with the returned error's text.
type TargetFunc func(ctx context.Context, run *Run) error

// Run is a running task as its work sees it.
type Run struct {
	s *Server
	t *task
}

// Progress sets GNRL_COMPLETED_PERCENT.
func (r *Run) Progress(percent int) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.t.percent = max(0, min(percent, 100))
}

// SetTargets names the run's targets by KLHST_WKS_HOSTNAME, all pending.
// An id with no host record is listed under its id.
func (r *Run) SetTargets(hostIDs ...string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.t.targets = r.t.targets[:0]
	for _, id := range hostIDs {
		name := id
		if h, ok := r.s.hosts[id]; ok && h.DisplayName != "" {
			name = h.DisplayName
		}
		r.t.targets = append(r.t.targets, &target{hostID: id, name: name, state: TargetPending})
	}
}

// Running marks a target as running.
func (r *Run) Running(hostID string) { r.set(hostID, TargetRunning, "") }

// Done records a target's result: completed for nil, failed with err's
// text otherwise (Config.FailTasksOn may still fail it).
func (r *Run) Done(hostID string, err error) {
	if err != nil {
		r.set(hostID, TargetFailed, err.Error())
		return
	}
	r.set(hostID, TargetOK, "")
}

// Warn records that a target completed with a warning.
func (r *Run) Warn(hostID, text string) { r.set(hostID, TargetWarning, text) }

func (r *Run) set(hostID string, st TargetState, descr string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	for _, tg := range r.t.targets {
		if tg.hostID == hostID {
			tg.state, tg.descr = st, descr
			r.s.injectFailureLocked(tg)
		}
	}
}

// injectFailureLocked fails a finished target that Config.FailTasksOn names.
func (s *Server) injectFailureLocked(tg *target) {
	if !tg.state.final() {
		return
	}
	text, ok := s.failTasksOn[tg.name]
	if !ok {
		text, ok = s.failTasksOn[tg.hostID]
	}
	if ok {
		tg.state, tg.descr = TargetFailed, text
	}
}

// TargetFailures is an error a task's work returns to fail targets each
// with its own text as the run ends, in the same step as the task's end:
// a client that sees every target done then sees the task's error too.
type TargetFailures struct {
	ByHost map[string]string // KLHST_WKS_HOSTNAME -> state_descr
	Text   string            // the task's error
}

func (e *TargetFailures) Error() string { return e.Text }

// SetFailTasksOn replaces Config.FailTasksOn for the task runs to come.
func (s *Server) SetFailTasksOn(m map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failTasksOn = maps.Clone(m)
}

// finishTargetsLocked ends the targets the work left unfinished.
func (s *Server) finishTargetsLocked(t *task, err error) {
	var tf *TargetFailures
	errors.As(err, &tf)
	for _, tg := range t.targets {
		if tg.state.final() {
			continue
		}
		tg.state, tg.descr = TargetOK, ""
		if text, ok := tf.text(tg.hostID); ok {
			tg.state, tg.descr = TargetFailed, text
		} else if err != nil {
			tg.state, tg.descr = TargetFailed, err.Error()
		}
		s.injectFailureLocked(tg)
	}
}

func (e *TargetFailures) text(hostID string) (string, bool) {
	if e == nil {
		return "", false
	}
	t, ok := e.ByHost[hostID]
	return t, ok
}

// AddTargetTask registers an existing task whose work runs on targets; it
// returns the task id.
func (s *Server) AddTargetTask(displayName string, run TargetFunc) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addTaskLocked(displayName, run)
}

// TaskTarget is one target of a task's last run, for tests.
type TaskTarget struct {
	HostID, Name string
	State        TargetState
	Descr        string
}

// TaskTargets returns the targets of the task's last run.
func (s *Server) TaskTargets(taskID string) []TaskTarget {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[taskID]
	if !ok {
		return nil
	}
	out := make([]TaskTarget, len(t.targets))
	for i, tg := range t.targets {
		out[i] = TaskTarget{HostID: tg.hostID, Name: tg.name, State: tg.state, Descr: tg.descr}
	}
	return out
}

// hostStatusFields are the host task state attributes the lab knows.
var hostStatusFields = []string{"hostname", "hostdn", "state_code", "state_descr"}

// hostStatusArray is the lab's name of the array in pHostStatus (see the
// assumptions above).
const hostStatusArray = "KLCSP_ITERATOR_ARRAY"

func (s *Server) mResetHostIteratorForTaskStatusEx(sess string, a params) (params, *pxgError) {
	t, perr := s.taskArg(a)
	if perr != nil {
		return nil, perr
	}
	fields, perr := argStrings(a, "pFields2Return", false)
	if perr != nil {
		return nil, perr
	}
	if len(fields) == 0 {
		fields = hostStatusFields
	}
	mask, perr := argInt(a, "nHostStateMask", 0, false)
	if perr != nil {
		return nil, perr
	}
	life, perr := argInt(a, "nLifetime", defaultLifeTime, false)
	if perr != nil {
		return nil, perr
	}
	if life <= 0 || life > maxLifeTime {
		return nil, badParam("nLifetime %d out of range 1..%d", life, maxLifeTime)
	}
	var rows []any
	for _, tg := range t.targets {
		if mask != 0 && int64(tg.state)&mask == 0 {
			continue
		}
		all := params{"hostname": tg.hostID, "hostdn": tg.name, "state_code": int64(tg.state), "state_descr": tg.descr}
		if h, ok := s.hosts[tg.hostID]; ok && h.DisplayName != "" {
			all["hostdn"] = h.DisplayName
		}
		row := params{}
		for _, f := range fields {
			if v, ok := all[f]; ok {
				row[f] = v
			}
		}
		rows = append(rows, row)
	}
	id := newGUID()
	s.hostIters[id] = &accessor{session: sess, rows: rows, expires: s.clock.Now().Add(time.Duration(life) * time.Second)}
	return params{"strHostIteratorId": id}, nil
}

func (s *Server) hostIterArg(sess string, a params) (string, *accessor, *pxgError) {
	return s.liveAccessor(s.hostIters, sess, a, "strHostIteratorId", "host status iterator")
}

func (s *Server) mGetNextHostStatus(sess string, a params) (params, *pxgError) {
	_, it, perr := s.hostIterArg(sess, a)
	if perr != nil {
		return nil, perr
	}
	n, perr := argInt(a, "nCount", 0, true)
	if perr != nil {
		return nil, perr
	}
	if n <= 0 {
		return nil, badParam("nCount %d must be positive", n)
	}
	k := min(int(n), len(it.rows))
	rows := append([]any{}, it.rows[:k]...)
	it.rows = it.rows[k:]
	return params{"PxgRetVal": k > 0, "nActual": int64(k), "pHostStatus": params{hostStatusArray: rows}}, nil
}

func (s *Server) mReleaseHostStatusIterator(sess string, a params) (params, *pxgError) {
	id, _, perr := s.hostIterArg(sess, a)
	if perr != nil {
		return nil, perr
	}
	delete(s.hostIters, id)
	return params{}, nil
}
