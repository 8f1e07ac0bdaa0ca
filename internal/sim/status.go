package sim

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Status is the fleet table: per ESXi host, its SVMs and its agents.
type Status struct {
	Hosts []HostStatus `json:"hosts"`
	Gaps  int          `json:"gaps"`
	// Counters: the load counters, when the reader asked for them
	// (StatusWithCounters; ksvla-lab status). Lab.Status leaves them out,
	// so that a status compares equal before and after a run that changed
	// nothing.
	Counters *Counters `json:"counters,omitempty"`
}

// StatusWithCounters is Status with the load counters.
func (l *Lab) StatusWithCounters() Status {
	c := l.Counters()
	st := l.Status()
	st.Counters = &c
	return st
}

// Counters are the load clients put on the lab's servers since it
// started: what the KSC and vCenter budgets count.
type Counters struct {
	// KSCLogins are KSC sessions opened (Session.StartSession and the
	// login call), refused ones included.
	KSCLogins int `json:"ksc_logins"`
	// KSCCalls counts every KSC API call by method, logins included.
	KSCCalls      map[string]int `json:"ksc_calls"`
	KSCCallsTotal int            `json:"ksc_calls_total"`
	// VCenterLogins are vCenter sessions opened (SessionManager.Login),
	// the lab's own included; VCenterCalls every SOAP call.
	VCenterLogins int `json:"vcenter_logins"`
	VCenterCalls  int `json:"vcenter_calls"`
}

// Counters returns the load counters now.
func (l *Lab) Counters() Counters {
	c := Counters{KSCCalls: l.ksc.Calls()}
	for m, n := range c.KSCCalls {
		c.KSCCallsTotal += n
		if m == "Session.StartSession" || m == "login" {
			c.KSCLogins += n
		}
	}
	c.VCenterLogins, c.VCenterCalls = l.vc.Load()
	return c
}

// Sub is the load between an earlier reading and c.
func (c Counters) Sub(before Counters) Counters {
	out := Counters{KSCLogins: c.KSCLogins - before.KSCLogins, KSCCallsTotal: c.KSCCallsTotal - before.KSCCallsTotal,
		VCenterLogins: c.VCenterLogins - before.VCenterLogins, VCenterCalls: c.VCenterCalls - before.VCenterCalls,
		KSCCalls: map[string]int{}}
	for m, n := range c.KSCCalls {
		if d := n - before.KSCCalls[m]; d != 0 {
			out.KSCCalls[m] = d
		}
	}
	return out
}

// HostStatus is one ESXi host's part of the fleet.
type HostStatus struct {
	Name        string         `json:"name"`
	SVMs        []SVMStatus    `json:"svms"`
	Agents      map[string]int `json:"agents"` // Light Agent version -> count (powered-on and off)
	Unprotected int            `json:"unprotected"`
}

// SVMStatus is one SVM as the lab sees it.
type SVMStatus struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Power   string `json:"power"` // "on" or "off"
	IP      string `json:"ip"`
	SSH     string `json:"ssh"` // ip:port served now, "" when not answering
	InKSC   bool   `json:"in_ksc"`
	// Activated and Databases: the activation and database tasks reached it.
	Activated bool `json:"activated"`
	Databases bool `json:"databases"`
	Agents    int  `json:"agents"` // Light Agents connected to it
	// Commands counts the klconfig commands it received, by name.
	Commands map[string]int `json:"commands,omitempty"`
}

// Status returns the fleet table, hosts in inventory order, SVMs by name.
func (l *Lab) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{Gaps: len(l.gaps)}
	index := map[string]int{}
	for _, h := range l.vc.Inventory().Hosts {
		index[h.Name] = len(st.Hosts)
		st.Hosts = append(st.Hosts, HostStatus{Name: h.Name, Agents: map[string]int{}})
	}
	host := func(name string) *HostStatus {
		i, ok := index[name]
		if !ok {
			i = len(st.Hosts)
			index[name] = i
			st.Hosts = append(st.Hosts, HostStatus{Name: name, Agents: map[string]int{}})
		}
		return &st.Hosts[i]
	}
	connected := map[string]int{}
	for _, a := range l.agents {
		h := host(a.host)
		h.Agents[a.version]++
		if a.on && a.svm == "" {
			h.Unprotected++
		}
		if a.svm != "" {
			connected[a.svm]++
		}
	}
	for _, s := range l.svms {
		ss := SVMStatus{Name: s.name, Version: s.version, Power: "off", InKSC: s.registered, Agents: connected[s.name],
			Activated: s.activated, Databases: !s.bases.IsZero(), Commands: l.CommandCounts(s.name)}
		if s.on {
			ss.Power = "on"
		}
		if s.sim != nil {
			ss.IP, ss.SSH = s.sim.IP(), s.sim.Addr()
		}
		h := host(s.host)
		h.SVMs = append(h.SVMs, ss)
	}
	for i := range st.Hosts {
		sort.Slice(st.Hosts[i].SVMs, func(a, b int) bool { return st.Hosts[i].SVMs[a].Name < st.Hosts[i].SVMs[b].Name })
	}
	return st
}

// Render writes the fleet table as text.
func (st Status) Render(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSVM\tVERSION\tPOWER\tSSH\tKSC\tPREPARED\tSERVES\tLIGHT AGENTS\tUNPROTECTED")
	for _, h := range st.Hosts {
		versions := make([]string, 0, len(h.Agents))
		for v := range h.Agents {
			versions = append(versions, v)
		}
		sort.Strings(versions)
		parts := make([]string, len(versions))
		for i, v := range versions {
			parts[i] = fmt.Sprintf("%s x%d", v, h.Agents[v])
		}
		agents := strings.Join(parts, ", ")
		if agents == "" {
			agents = "none"
		}
		// Every row has every cell, so the columns line up across hosts;
		// the host's agents go on its first row only.
		svms := h.SVMs
		if len(svms) == 0 {
			svms = []SVMStatus{{Name: "-"}}
		}
		for i, s := range svms {
			ksc := "no"
			if s.InKSC {
				ksc = "yes"
			}
			ssh := s.SSH
			if ssh == "" {
				ssh = "-"
			}
			prepared := "-"
			switch {
			case s.Activated && s.Databases:
				prepared = "yes"
			case s.Activated:
				prepared = "no databases"
			case s.Name != "-":
				prepared = "not activated"
			}
			host, agentCell, unprotected := h.Name, agents, fmt.Sprint(h.Unprotected)
			if i > 0 {
				host, agentCell, unprotected = "", "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", host, s.Name, s.Version, s.Power, ssh, ksc, prepared, s.Agents, agentCell, unprotected)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "protection gaps recorded: %d\n", st.Gaps); err != nil || st.Counters == nil {
		return err
	}
	c := st.Counters
	_, err := fmt.Fprintf(w, "KSC: %d logins, %d calls (%s); vCenter: %d sessions, %d calls\n",
		c.KSCLogins, c.KSCCallsTotal, topCalls(c.KSCCalls, 5), c.VCenterLogins, c.VCenterCalls)
	return err
}

// topCalls names the n methods called most, "Method xN" by count.
func topCalls(calls map[string]int, n int) string {
	ms := make([]string, 0, len(calls))
	for m := range calls {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool {
		if calls[ms[i]] != calls[ms[j]] {
			return calls[ms[i]] > calls[ms[j]]
		}
		return ms[i] < ms[j]
	})
	parts := make([]string, 0, n)
	for i, m := range ms {
		if i == n {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s x%d", m, calls[m]))
	}
	return strings.Join(parts, ", ")
}
