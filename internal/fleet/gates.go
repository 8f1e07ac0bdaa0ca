package fleet

import (
	"fmt"
	"sort"
	"strings"
)

// Gate names, as svm_remove reports them.
const (
	GateAgents      = "no_agent_needs_it"
	GateReplacement = "replacement_running"
	GatePrepared    = "replacement_prepared"
	GateNotLast     = "not_last_svm"
	GateUnknownVMs  = "no_unknown_vm"
)

// Gate is one safety check before an SVM is removed.
type Gate struct {
	Name    string `json:"name"`
	Passed  bool   `json:"passed"`
	Skipped bool   `json:"skipped,omitempty"` // by force
	Reason  string `json:"reason"`
}

// GateResult is every gate for one SVM.
type GateResult []Gate

// Passed reports whether every gate passed or was skipped.
func (g GateResult) Passed() bool {
	for _, x := range g {
		if !x.Passed && !x.Skipped {
			return false
		}
	}
	return true
}

// Reason joins the reasons of the gates that block.
func (g GateResult) Reason() string {
	var out []string
	for _, x := range g {
		if !x.Passed && !x.Skipped {
			out = append(out, x.Name+": "+x.Reason)
		}
	}
	return strings.Join(out, "; ")
}

// Gates checks whether svm may be removed now. The agent gate looks for
// Light Agents on the same hypervisor, or that DRS may move there from
// another host of its cluster (drs.go; under the standard or cluster
// selection not those another SVM of the cluster, the anchor, is kept
// for), that svm serves (by the compatibility table, or that the table
// pairs with no version at all) and that no other running, activated SVM
// there could serve; the replacement gate
// wants a powered-on SVM of the target line on the same hypervisor; the
// preparation gate wants that SVM activated and with databases in KSC;
// the last-SVM gate refuses to leave a hypervisor without any SVM.
func Gates(f Fleet, svm SVM) GateResult {
	return gates(f, svm, false)
}

// GatesForced is Gates with the gates that need KSC (agents, preparation,
// unknown VMs) skipped (force: true).
func GatesForced(f Fleet, svm SVM) GateResult {
	return gates(f, svm, true)
}

// reasonNames is how many agents a gate's reason names: on a host with
// hundreds of VMs the whole list drowns the message (the hypervisor's
// agents_pending has every name).
const reasonNames = 10

// listFirst joins the names shown of total items and counts the rest.
func listFirst(shown []string, total int) string {
	if total <= len(shown) {
		return strings.Join(shown, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(shown, ", "), total-len(shown))
}

// listSome joins the first max items and counts the rest.
func listSome(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:max], ", "), len(items)-max)
}

func gates(f Fleet, svm SVM, force bool) GateResult {
	var others []SVM
	for _, s := range f.SVMs {
		if s.Host == svm.Host && s.Name != svm.Name {
			others = append(others, s)
		}
	}
	agents := agentGate(f, svm, others)
	agents.Skipped = !agents.Passed && force

	var unknownVMs []string
	for _, u := range f.Unknown {
		if u.Host == svm.Host {
			unknownVMs = append(unknownVMs, fmt.Sprintf("%s (%s)", u.Name, u.Reason))
		}
	}
	unknown := Gate{Name: GateUnknownVMs, Passed: len(unknownVMs) == 0,
		Reason: fmt.Sprintf("every other VM on %s is an SVM, a Light Agent KSC lists with its version, or listed in not_protected_vms", svm.Host)}
	if len(unknownVMs) > 0 {
		unknown.Reason = fmt.Sprintf("%d VM(s) on %s may need it, their Light Agent unknown to KSC: %s; list a VM that carries no Light Agent in not_protected_vms",
			len(unknownVMs), svm.Host, listSome(unknownVMs, reasonNames))
		unknown.Skipped = force
	}

	replacement := Gate{Name: GateReplacement, Reason: fmt.Sprintf("no powered-on SVM of version %s on %s", f.TargetVersion, svm.Host)}
	var running []SVM
	for _, s := range others {
		if s.Target && s.PowerState == "poweredOn" {
			running = append(running, s)
		}
	}
	if len(running) > 0 {
		replacement.Passed = true
		replacement.Reason = fmt.Sprintf("%s (%s) runs on %s", running[0].Name, running[0].Version, svm.Host)
	}
	if svm.Target {
		replacement.Reason = fmt.Sprintf("%s is itself of the target version %s", svm.Name, f.TargetVersion)
		replacement.Passed = false
	}
	prepared := preparedGate(svm, running)
	prepared.Skipped = !prepared.Passed && force
	if f.TargetVersion == "" {
		// A removal outside an upgrade (a rollback): nothing replaces the
		// SVM, the agent and last-SVM gates keep the host protected.
		replacement = Gate{Name: GateReplacement, Passed: true, Reason: "no target version: not an upgrade step, no replacement needed"}
		prepared = Gate{Name: GatePrepared, Passed: true, Reason: "no target version: not an upgrade step, nothing to prepare"}
	}

	last := Gate{Name: GateNotLast, Passed: len(others) > 0,
		Reason: fmt.Sprintf("%s is the last SVM on %s", svm.Name, svm.Host)}
	if last.Passed {
		last.Reason = fmt.Sprintf("%d other SVM(s) on %s", len(others), svm.Host)
	}
	return GateResult{agents, replacement, prepared, last, unknown}
}

// RefusedError is how every module that deletes SVMs refuses the ones the
// gates block, before anything is touched: one message whatever the path.
func RefusedError(blocked []BlockedSVM) error {
	parts := make([]string, len(blocked))
	for i, b := range blocked {
		parts[i] = fmt.Sprintf("%s on %s (%s): %s", b.Name, b.Host, b.Version, b.Gates.Reason())
	}
	return fmt.Errorf("refusing to remove any SVM: %d selected SVM(s) blocked by safety gates: %s", len(blocked), strings.Join(parts, "; "))
}

// BlockedSVM is an SVM the gates keep.
type BlockedSVM struct {
	Name, Host string
	Version    Version
	Gates      GateResult
}

// BlockedAtRemovalError is the refusal when the gates, read again right
// before the deletion, no longer pass; notTouched names what is left.
func BlockedAtRemovalError(s SVM, g GateResult, notTouched string) error {
	return fmt.Errorf("%s on %s blocked by safety gates at removal time: %s; not touched, nor: %s", s.Name, s.Host, g.Reason(), notTouched)
}

// agentGate: an agent on svm's host needs svm when svm serves it, or when
// the compatibility table pairs it with no version (so nothing proves
// another SVM can take it), and no other SVM there serves it now.
func agentGate(f Fleet, svm SVM, others []SVM) Gate {
	var needing []string
	onHost := 0
	for _, a := range f.Agents {
		if a.Host != svm.Host {
			continue
		}
		onHost++
		if f.needs(svm, a, others) {
			note := ""
			if len(a.SVMVersions) == 0 {
				note = ", in no row of compatibility"
			}
			needing = append(needing, fmt.Sprintf("%s (%s %s%s)", a.Name, a.Product, a.Version, note))
		}
	}
	sort.Strings(needing)
	// Agents DRS may move here need it as much (drs.go).
	arr := f.arrivalsNeeding(svm, others)
	g := Gate{Name: GateAgents, Passed: len(needing) == 0 && arr.needing == 0,
		Reason: fmt.Sprintf("no Light Agent on %s needs Protection Server %s", svm.Host, svm.Version)}
	var why []string
	switch {
	case onHost+arr.seen > 0 && !f.Compat.Knows(svm.Version):
		g.Passed = false
		why = append(why, fmt.Sprintf("compatibility has no row for Protection Server %s, so which of the %d Light Agent(s) on or movable onto %s it serves is unknown: add it to the compatibility option", svm.Version, onHost+arr.seen, svm.Host))
	case len(needing) > 0:
		why = append(why, fmt.Sprintf("%d Light Agent(s) on %s still need it: %s", len(needing), svm.Host, listSome(needing, reasonNames)))
	}
	if arr.needing > 0 && f.Compat.Knows(svm.Version) {
		how := "on its new host an agent looks for an SVM there first, and with the extended algorithm only there"
		if arr.anchorOfNeeding {
			how = fmt.Sprintf("agent_selection %s: an agent moved here looks for an SVM elsewhere in the cluster, and %s is the anchor, the old SVM of cluster %s kept for them", f.selection, svm.Name, svm.Cluster)
		}
		why = append(why, fmt.Sprintf("%d Light Agent(s) of cluster %s that DRS can move here would need it (%s): %s can be moved here by DRS",
			arr.needing, svm.Cluster, how, listFirst(arr.named, arr.needing)))
	}
	if g.Passed && arr.released > 0 {
		g.Reason += fmt.Sprintf("; %d Light Agent(s) not updated of cluster %s that DRS can move here can use %s, the anchor kept for them (agent_selection %s)",
			arr.released, svm.Cluster, strings.Join(arr.anchors, ", "), f.selection)
	}
	if len(why) > 0 {
		g.Reason = strings.Join(why, "; ")
	}
	return g
}

// preparedGate wants one of the running target SVMs activated and with
// databases in KSC (the vendor's step 4): an agent connects to an activated
// SVM, and an SVM without databases does not scan.
func preparedGate(svm SVM, running []SVM) Gate {
	g := Gate{Name: GatePrepared, Reason: fmt.Sprintf("no powered-on SVM of the target version on %s to prepare", svm.Host)}
	var missing []string
	for _, s := range running {
		if s.Prepared {
			g.Passed = true
			g.Reason = fmt.Sprintf("%s is activated and has databases of %s", s.Name, s.DatabasesDate)
			return g
		}
		var what []string
		if !s.Activated {
			what = append(what, "is not activated")
		}
		if s.DatabasesDate == "" {
			what = append(what, "has no databases")
		}
		missing = append(missing, fmt.Sprintf("%s (%s) %s in KSC", s.Name, s.Version, strings.Join(what, " and ")))
	}
	if len(missing) > 0 {
		g.Reason = strings.Join(missing, "; ") + ": run the activation and database update tasks first"
	}
	return g
}
