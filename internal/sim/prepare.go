package sim

import (
	"context"
	"fmt"
	"sort"
	"time"
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

func (l *Lab) addPrepareTasks() {
	l.ksc.AddTask(ActivateTask, l.runActivate)
	l.ksc.AddTask(UpdateDatabasesTask, func(ctx context.Context, progress func(int)) error {
		progress(100)
		return nil
	})
}

// runActivate activates every Protection Server connected to KSC. It
// fails when none is connected (nothing to activate), and records a
// licence event when hypervisors carry SVMs of two versions.
func (l *Lab) runActivate(ctx context.Context, progress func(int)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	versions := map[string]map[string]bool{}
	connected := 0
	for _, s := range l.svms {
		if !s.on || !s.registered {
			continue
		}
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
	progress(100)
	return nil
}

// LicenceEvents returns the licence-limit events raised so far.
func (l *Lab) LicenceEvents() []LicenceEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LicenceEvent(nil), l.licence...)
}
