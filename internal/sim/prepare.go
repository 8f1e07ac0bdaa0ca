package sim

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/ksvla/lightagent/internal/sim/kscsim"
)

// KSC tasks that prepare a new Protection Server for operation (step 4 of
// the vendor's procedure). Their names are the lab's; on a real KSC they
// are whatever the administrator called them.
const (
	ActivateTask        = "Activate Protection Server"
	UpdateDatabasesTask = "Update Protection Server databases"
)

// LicenceEvent is the "licence restriction exceeded" event KSC may raise
// when, with per-core licensing, old and new SVMs are activated side by
// side. The vendor says to ignore it; the lab records it so playbooks can
// show they report it as expected.
type LicenceEvent struct {
	Time  time.Time `json:"time"`
	Hosts []string  `json:"hosts"` // hypervisors running old and new SVMs together
	Text  string    `json:"text"`
}

// Kinds of Event.
const (
	EventActivated = "activated"
	EventDatabases = "databases"
	EventDestroyed = "destroyed"
)

// Event is a moment in an SVM's life the lab keeps, so tests can show
// order: every new SVM activated before its host's old SVM went.
type Event struct {
	Time time.Time `json:"time"`
	SVM  string    `json:"svm"`
	Host string    `json:"host"`
	Kind string    `json:"kind"`
}

func (l *Lab) historyLocked(rec *svmRec, kind string) {
	l.history = append(l.history, Event{Time: time.Now(), SVM: rec.name, Host: rec.host, Kind: kind})
}

// History returns the SVM events recorded since Start (seeded SVMs were
// activated before it and have none).
func (l *Lab) History() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.history...)
}

// TaskStarts counts how many times each KSC task was started, by name.
func (l *Lab) TaskStarts() map[string]int { return l.ksc.TaskRuns() }

func (l *Lab) addPrepareTasks() {
	l.taskIDs[ActivateTask] = l.ksc.AddTargetTask(ActivateTask, func(ctx context.Context, r *kscsim.Run) error { return l.runActivate(ctx, r) })
	l.taskIDs[UpdateDatabasesTask] = l.ksc.AddTargetTask(UpdateDatabasesTask, func(ctx context.Context, r *kscsim.Run) error { return l.runUpdateDatabases(ctx, r) })
}

// TaskID is the KSC task id of ActivateTask or UpdateDatabasesTask.
func (l *Lab) TaskID(name string) string { return l.taskIDs[name] }

// connectedLocked lists the SVMs the Administration Server reaches now: a
// KSC task for the root group runs on them (its targets).
func (l *Lab) connectedLocked() []*svmRec {
	var out []*svmRec
	for _, n := range slices.Sorted(maps.Keys(l.svms)) {
		if s := l.svms[n]; s.on && s.registered && s.sim != nil {
			out = append(out, s)
		}
	}
	return out
}

// targetSVMsLocked names the connected SVMs as the run's targets.
func (l *Lab) targetSVMsLocked(run taskRun) []*svmRec {
	svms := l.connectedLocked()
	ids := make([]string, len(svms))
	for i, s := range svms {
		ids[i] = s.kscID
	}
	run.SetTargets(ids...)
	return svms
}

// runUpdateDatabases gives every connected SVM fresh databases; it fails
// when none is connected.
func (l *Lab) runUpdateDatabases(ctx context.Context, run taskRun) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	svms := l.targetSVMsLocked(run)
	if len(svms) == 0 {
		return fmt.Errorf("no Protection Server is connected to the Administration Server")
	}
	now := time.Now()
	for _, s := range svms {
		s.bases = now
		l.ksc.UpsertHost(l.svmKSCHost(s))
		l.historyLocked(s, EventDatabases)
		run.Done(s.kscID, nil)
	}
	run.Progress(100)
	return nil
}

// runActivate adds a key to every Protection Server connected to KSC (its
// scope is the root group), and agents may then connect to them. It
// fails when none is connected (nothing to activate), and records a
// licence event when hypervisors carry SVMs of two versions.
func (l *Lab) runActivate(ctx context.Context, run taskRun) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	versions := map[string]map[string]bool{}
	connected := 0
	for _, s := range l.targetSVMsLocked(run) {
		if !s.activated {
			s.activated = true
			l.ksc.UpsertHost(l.svmKSCHost(s))
			l.historyLocked(s, EventActivated)
		}
		run.Done(s.kscID, nil)
		connected++
		if versions[s.host] == nil {
			versions[s.host] = map[string]bool{}
		}
		versions[s.host][s.version] = true
	}
	if connected == 0 {
		return fmt.Errorf("no Protection Server is connected to the Administration Server")
	}
	var mixed []string
	for h, v := range versions {
		if len(v) > 1 {
			mixed = append(mixed, h)
		}
	}
	if len(mixed) > 0 {
		sort.Strings(mixed)
		l.licence = append(l.licence, LicenceEvent{Time: time.Now(), Hosts: mixed,
			Text: "Licence restriction exceeded: the number of processor cores protected exceeds the licence limit"})
	}
	l.evaluateLocked("activation task")
	run.Progress(100)
	return nil
}

// LicenceEvents returns the licence-limit events raised so far.
func (l *Lab) LicenceEvents() []LicenceEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LicenceEvent(nil), l.licence...)
}
