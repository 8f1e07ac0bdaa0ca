package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
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

// How a Light Agent picks its SVM (Light Agent policy, KESL 12.1 help,
// https://support.kaspersky.com/KESL/12.1/en-US/272009.htm): the standard
// algorithm takes a compatible SVM on the same hypervisor and, when none
// is, the compatible SVM with the fewest agents anywhere; the extended
// algorithm limits the scope (hypervisor, cluster, datacenter) and
// connects to nothing when no SVM is in it.
const (
	SelectStandard   = "standard"
	SelectHypervisor = "hypervisor" // extended algorithm, scope hypervisor
	SelectCluster    = "cluster"    // extended algorithm, scope cluster
)

// compatibleLocked: an agent connects only to a powered-on, KSC-connected,
// activated SVM whose version the table accepts for it (KSVLA 6.2 help,
// topics 254867 and 254888).
func (l *Lab) compatibleLocked(s *svmRec, a *agentRec, version string) bool {
	return s.on && s.registered && s.activated && l.cfg.Accepts(s.version, a.product.Key, version)
}

// inScopeLocked: the selection algorithm lets a's agent use s at all.
// Lab assumption (the help does not say): within the cluster scope, an
// agent also prefers its own host, then the SVM with the fewest agents.
func (l *Lab) inScopeLocked(s *svmRec, a *agentRec) bool {
	switch l.cfg.AgentSelection {
	case SelectHypervisor:
		return s.host == a.host
	case SelectCluster:
		return l.hostCluster[s.host] == l.hostCluster[a.host]
	}
	return true
}

// servesLocked: s can be a's SVM now.
func (l *Lab) servesLocked(s *svmRec, a *agentRec, version string) bool {
	return l.compatibleLocked(s, a, version) && l.inScopeLocked(s, a)
}

// localSVMLocked is a compatible SVM on a's own host, "" when none runs.
func (l *Lab) localSVMLocked(a *agentRec, version string) string {
	var names []string
	for _, s := range l.svms {
		if s.host == a.host && l.compatibleLocked(s, a, version) {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[0]
}

// selectSVMLocked is the SVM a's agent picks: on its own host if one
// serves it, else the one in scope with the fewest agents.
func (l *Lab) selectSVMLocked(a *agentRec, version string) string {
	if local := l.localSVMLocked(a, version); local != "" {
		return local
	}
	load := map[string]int{}
	for _, o := range l.agents {
		if o.svm != "" && o != a {
			load[o.svm]++
		}
	}
	best := ""
	for _, s := range l.svms {
		if !l.servesLocked(s, a, version) {
			continue
		}
		if best == "" || load[s.name] < load[best] || (load[s.name] == load[best] && s.name < best) {
			best = s.name
		}
	}
	return best
}

// evaluateLocked reconnects every powered-on agent to the SVM its
// selection algorithm picks (keeping its current one while it still
// serves, unless an SVM on its own host now does) and records a gap for
// each agent that just lost protection. Before Start finishes, events
// arrive in no useful order, so nothing is evaluated.
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
		if cur, ok := l.svms[a.svm]; ok && l.servesLocked(cur, a, a.version) &&
			(cur.host == a.host || l.localSVMLocked(a, a.version) == "") {
			continue
		}
		was := a.svm
		a.svm = l.selectSVMLocked(a, a.version)
		if a.svm == "" && (was != "" || !a.evaluated || a.woke) {
			l.gaps = append(l.gaps, Gap{Time: now, VM: a.name, Host: a.host, AgentVersion: a.version,
				Reason: fmt.Sprintf("%s: no powered-on, KSC-connected, activated SVM %s serves %s %s",
					reason, l.scopeTextLocked(a), a.product.Key, a.version)})
		}
		a.evaluated, a.woke = true, false
	}
}

// scopeTextLocked says where a's agent looked for an SVM.
func (l *Lab) scopeTextLocked(a *agentRec) string {
	switch l.cfg.AgentSelection {
	case SelectHypervisor:
		return "on " + a.host
	case SelectCluster:
		return "in the cluster of " + a.host
	}
	return "on " + a.host + " or elsewhere"
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

// AgentUpdateTime is how long the Light Agent update takes on host, from
// the moment the update task reaches it to its last agent: the host's
// entry in AgentUpdateHosts, else AgentUpdateDuration times a log-normal
// factor of sigma AgentUpdateSpread drawn from AgentUpdateSeed and the
// host's name (the same host takes the same time in every lab of a seed).
func (c Config) AgentUpdateTime(host string) time.Duration {
	if d, ok := c.AgentUpdateHosts[host]; ok {
		return d
	}
	if c.AgentUpdateSpread <= 0 {
		return c.AgentUpdateDuration
	}
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%d/%s", c.AgentUpdateSeed, host) // hash writes never fail
	r := rand.New(rand.NewPCG(uint64(c.AgentUpdateSeed), h.Sum64()))
	return time.Duration(float64(c.AgentUpdateDuration) * math.Exp(c.AgentUpdateSpread*r.NormFloat64()))
}

// agentOffsetsLocked gives each agent of the hosts its update time after
// the task reaches its host: the host's agents, by name, finish in turn
// over AgentUpdateTime (the last one at the host's whole time).
func (l *Lab) agentOffsetsLocked() map[string]time.Duration {
	byHost := map[string][]string{}
	for _, n := range l.agentNamesLocked() {
		a := l.agents[n]
		byHost[a.host] = append(byHost[a.host], n)
	}
	out := map[string]time.Duration{}
	for host, names := range byHost {
		total := l.cfg.AgentUpdateTime(host)
		for i, n := range names {
			out[n] = total * time.Duration(i+1) / time.Duration(len(names))
		}
	}
	return out
}

// agentUpdateTick is how often the running update task looks for agents
// it can reach and for updates that are due.
const agentUpdateTick = 20 * time.Millisecond

// UpdateAgentsNow does what the Light Agent update task does, in the
// caller's goroutine: from a KSCHook it lands between two KSC calls of a
// module, as a task running in KSC may.
func (l *Lab) UpdateAgentsNow(ctx context.Context) error {
	return l.runAgentUpdate(ctx, unreported{})
}

// taskRun is what a lab task reports to KSC about its targets:
// *kscsim.Run, or unreported when a test runs the work outside KSC.
type taskRun interface {
	Progress(percent int)
	SetTargets(hostIDs ...string)
	Running(hostID string)
	Done(hostID string, err error)
}

type unreported struct{}

func (unreported) Progress(int)         {}
func (unreported) SetTargets(...string) {}
func (unreported) Running(string)       {}
func (unreported) Done(string, error)   {}

// runAgentUpdate is the KSC task UpdateAgentsTask. Its targets are the
// protected VMs KSC knows (the task's scope is their group). It reaches an
// agent once a compatible new SVM serves its host (updating it earlier
// would leave it unprotected) and updates it after its time
// (agentOffsetsLocked); hosts update side by side. While it runs it keeps
// reaching hosts that get such an SVM (lab assumption: KSC retries the
// devices a remote installation could not reach yet, and a second start
// of a running task is a no-op). When nothing is due any more, agents
// still on their old version make the task fail on them, naming them.
func (l *Lab) runAgentUpdate(ctx context.Context, run taskRun) error {
	l.mu.Lock()
	offsets := l.agentOffsetsLocked()
	total := 0
	var targets []string
	for _, name := range l.agentNamesLocked() {
		a := l.agents[name]
		if a.version != a.product.NewVersion {
			total++
		}
		if a.kscID != "" {
			targets = append(targets, a.kscID)
		}
	}
	run.SetTargets(targets...)
	for _, name := range l.agentNamesLocked() {
		if a := l.agents[name]; a.kscID != "" && a.version == a.product.NewVersion {
			run.Done(a.kscID, nil) // nothing to install
		}
	}
	l.mu.Unlock()
	if total == 0 {
		run.Progress(100)
		return nil
	}
	due := map[string]time.Time{}
	done := 0
	var failed []string
	byHost := map[string]string{} // the failed targets' texts, set as the run ends
	t := time.NewTicker(agentUpdateTick)
	defer t.Stop()
	for {
		l.mu.Lock()
		now := time.Now()
		for _, name := range l.agentNamesLocked() {
			a := l.agents[name]
			if _, ok := due[name]; ok || a.version == a.product.NewVersion || !a.on {
				continue
			}
			if l.localSVMLocked(a, a.product.NewVersion) != "" {
				due[name] = now.Add(offsets[name])
				if a.kscID != "" {
					run.Running(a.kscID)
				}
			}
		}
		for name, at := range due {
			if at.After(now) {
				continue
			}
			if hold := l.cfg.AgentUpdateHold; hold != nil && l.agents[name] != nil && hold(l.agents[name].host) {
				continue
			}
			delete(due, name)
			done++
			// Off or without a compatible SVM now: left for a later
			// reach, or for the failure list.
			if a := l.agents[name]; a != nil && a.on && l.localSVMLocked(a, a.product.NewVersion) != "" {
				a.version = a.product.NewVersion
				l.ksc.SetProducts(a.kscID, []kscsim.Product{nagentProduct(), a.product.kscProduct(a.version)})
				l.evaluateLocked("light agent on " + name + " updated to " + a.version)
				if a.kscID != "" {
					run.Done(a.kscID, nil)
				}
			}
		}
		if len(due) == 0 {
			for _, name := range l.agentNamesLocked() {
				a := l.agents[name]
				why := ""
				switch {
				case a.version == a.product.NewVersion:
					continue
				case !a.on:
					why = "not visible"
				default:
					why = "no compatible SVM on " + a.host
				}
				failed = append(failed, name+" ("+why+")")
				if a.kscID != "" {
					byHost[a.kscID] = "Light Agent not updated: " + why
				}
			}
		}
		l.mu.Unlock()
		run.Progress(min(99, done*100/max(total, 1)))
		if len(due) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if len(failed) > 0 {
		return &kscsim.TargetFailures{ByHost: byHost,
			Text: fmt.Sprintf("%d of %d light agents not updated: %s", len(failed), total, strings.Join(failed, ", "))}
	}
	run.Progress(100)
	return nil
}
