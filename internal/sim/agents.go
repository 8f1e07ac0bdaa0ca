package sim

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/sim/kscsim"
)

// Accepts reports whether the lab's compatibility table pairs a
// Protection Server version with an agent product's version. A table
// version stands for every version starting with its parts (6.1 covers
// 6.1.0.100).
func (c Config) Accepts(psVersion, product, agentVersion string) bool {
	within := func(t, v string) bool { return t != "" && (v == t || strings.HasPrefix(v, t+".")) }
	for ps, products := range c.Compatibility {
		if !within(ps, psVersion) {
			continue
		}
		for _, t := range products[product] {
			if within(t, agentVersion) {
				return true
			}
		}
	}
	return false
}

// servesLocked: an agent connects only to a powered-on, KSC-connected,
// activated SVM on its own host whose version the table accepts for it
// (KSVLA 6.2 help, topics 254867 and 254888).
func (l *Lab) servesLocked(s *svmRec, a *agentRec, version string) bool {
	return s.on && s.registered && s.activated && s.host == a.host && l.cfg.Accepts(s.version, a.product.Key, version)
}

func (l *Lab) compatibleSVMLocked(a *agentRec, version string) string {
	var names []string
	for _, s := range l.svms {
		if l.servesLocked(s, a, version) {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[0]
}

// evaluateLocked reconnects every powered-on agent to a compatible SVM on
// its host (keeping its current one while it still serves) and records a
// gap for each agent that just lost protection. Before Start finishes,
// events arrive in no useful order, so nothing is evaluated.
func (l *Lab) evaluateLocked(reason string) {
	if !l.ready {
		return
	}
	now := time.Now()
	for _, name := range l.agentNamesLocked() {
		a := l.agents[name]
		if !a.on {
			a.svm = ""
			continue
		}
		if cur, ok := l.svms[a.svm]; ok && l.servesLocked(cur, a, a.version) {
			continue
		}
		was := a.svm
		a.svm = l.compatibleSVMLocked(a, a.version)
		if a.svm == "" && (was != "" || !a.evaluated || a.woke) {
			l.gaps = append(l.gaps, Gap{Time: now, VM: a.name, Host: a.host, AgentVersion: a.version,
				Reason: fmt.Sprintf("%s: no powered-on, KSC-connected, activated SVM on %s serves %s %s",
					reason, a.host, a.product.Key, a.version)})
		}
		a.evaluated, a.woke = true, false
	}
}

func (l *Lab) agentNamesLocked() []string {
	names := make([]string, 0, len(l.agents))
	for n := range l.agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Gaps returns every protection gap recorded since Start.
func (l *Lab) Gaps() []Gap {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Gap(nil), l.gaps...)
}

// UpdateAgentsNow does what the Light Agent update task does, in the
// caller's goroutine: from a KSCHook it lands between two KSC calls of a
// module, as a task running in KSC may.
func (l *Lab) UpdateAgentsNow(ctx context.Context) error {
	return l.runAgentUpdate(ctx, func(int) {})
}

// runAgentUpdate is the KSC task UpdateAgentsTask: it moves agents to the
// new version one by one, spread over AgentUpdateDuration. An agent is
// updated only when a compatible new SVM serves its host (otherwise the
// update would leave it unprotected); the others stay on their version
// and make the task fail, naming them.
func (l *Lab) runAgentUpdate(ctx context.Context, progress func(percent int)) error {
	l.mu.Lock()
	var todo []string
	for _, n := range l.agentNamesLocked() {
		if a := l.agents[n]; a.version != a.product.NewVersion {
			todo = append(todo, n)
		}
	}
	l.mu.Unlock()
	if len(todo) == 0 {
		progress(100)
		return nil
	}
	step := l.cfg.AgentUpdateDuration / time.Duration(len(todo))
	var failed []string
	for i, name := range todo {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
		l.mu.Lock()
		switch a := l.agents[name]; {
		case a == nil: // destroyed meanwhile: nothing to update
		case !a.on:
			failed = append(failed, name+" (not visible)")
		case l.compatibleSVMLocked(a, a.product.NewVersion) == "":
			failed = append(failed, name+" (no compatible SVM on "+a.host+")")
		default:
			a.version = a.product.NewVersion
			l.ksc.SetProducts(a.kscID, []kscsim.Product{nagentProduct(), a.product.kscProduct(a.version)})
			l.evaluateLocked("light agent on " + name + " updated to " + a.version)
		}
		l.mu.Unlock()
		progress((i + 1) * 100 / len(todo))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d light agents not updated: %s", len(failed), len(todo), strings.Join(failed, ", "))
	}
	return nil
}
