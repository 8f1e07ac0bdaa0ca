package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ksvla/lightagent/internal/sim"
)

type scale struct{ hosts, vms int }

func scales(e *Env) []scale {
	spec := envStr("BENCH_SCALES", e.Prof.Scales)
	var out []scale
	for _, s := range strings.Split(spec, ",") {
		h, v, _ := strings.Cut(strings.TrimSpace(s), "x")
		hn, err1 := strconv.Atoi(h)
		vn, err2 := strconv.Atoi(v)
		if err1 == nil && err2 == nil && hn > 0 && vn > 0 {
			out = append(out, scale{hn, vn})
		}
	}
	return out
}

// facts: agent_facts as the fleet grows, against govc object.collect of
// the same VM properties and community.vmware's vmware_vm_info.
func facts(ctx context.Context, e *Env) Section {
	sec := Section{Title: "2. Facts at scale",
		Intro: "Each lab has H hosts x V protected VMs (plus one SVM per host), every VM also a KSC host. " +
			"`agent_facts` (direct process call) reads the VMs, hosts and clusters from vCenter and the SVMs and agents from KSC. " +
			"`govc object.collect -json -type m /DC1` reads the same seven VM properties agent_facts reads " +
			"(name, config.instanceUuid, runtime.host, runtime.powerState, guest.ipAddress, guest.hostName, customValue) and nothing from KSC. " +
			"`vmware_vm_info` and `agent_facts` are also run through `ansible localhost -m`, so the Python peer is compared with the controller's cost on both sides."}
	for _, sc := range scales(e) {
		if ctx.Err() != nil {
			break
		}
		rows, goals, notes, err := factsAt(ctx, e, sc)
		if err != nil {
			sec.Notes = append(sec.Notes, fmt.Sprintf("%d VMs (%dx%d): not measured: %s", sc.hosts*sc.vms, sc.hosts, sc.vms, oneLine(err.Error())))
			logf("  %dx%d: %v", sc.hosts, sc.vms, err)
		}
		sec.Rows = append(sec.Rows, rows...)
		sec.Goals = append(sec.Goals, goals...)
		sec.Notes = append(sec.Notes, notes...)
	}
	// Round trips must grow with pages, not VMs: between the smallest and
	// the largest lab, at most one more round trip per 100 more VMs.
	var first, last *Row
	for i := range sec.Rows {
		if r := &sec.Rows[i]; r.Extra["vcenter_round_trips"].N > 0 {
			if first == nil {
				first = r
			}
			last = r
		}
	}
	if first != nil && last != first {
		dv := last.Extra["vms"].Median - first.Extra["vms"].Median
		for _, k := range []string{"vcenter_round_trips", "ksc_calls"} {
			d := last.Extra[k].Median - first.Extra[k].Median
			sec.Goals = append(sec.Goals, Goal{Figure: fmt.Sprintf("agent_facts %s added per 1000 VMs (%.0f -> %.0f VMs)", strings.ReplaceAll(k, "_", " "),
				first.Extra["vms"].Median, last.Extra["vms"].Median), Value: d / dv * 1000, Unit: "",
				Target: "grows with pages, not VMs (<= 10 per 1000 VMs)", Met: boolp(d/dv*1000 <= 10)})
		}
	}
	return sec
}

func factsAt(ctx context.Context, e *Env, sc scale) (rows []Row, goals []Goal, notes []string, err error) {
	nvm := sc.hosts * sc.vms
	tag := fmt.Sprintf("%d VMs", nvm)
	l, err := startLab(ctx, e, fmt.Sprintf("facts-%dx%d", sc.hosts, sc.vms),
		sim.Config{Hosts: sc.hosts, VMsPerHost: sc.vms, SSHPort: -1})
	if err != nil {
		return nil, nil, nil, err
	}
	defer l.close()
	notes = append(notes, fmt.Sprintf("%s (%dx%d): the lab took %.1f s to build.", tag, sc.hosts, sc.vms, l.Build.Seconds()))

	args := filepath.Join(e.Work, "facts-args.json")
	a := l.connArgs()
	for k, v := range map[string]any{"ksc_url": l.Vars.KSCURL, "ksc_username": l.Vars.KSCUsername, "ksc_password": l.Vars.KSCPassword,
		"ksc_ca_file": l.Vars.KSCCAFile, "datacenter": l.Vars.Datacenter, "target_version": l.Vars.NewVersion} {
		a[k] = v
	}
	if err := writeJSON(args, a); err != nil {
		return nil, nil, nil, err
	}
	var vcRT, kscCalls, agents []float64
	direct, err := measure(ctx, "agent_facts, "+tag,
		Cmd{Argv: []string{filepath.Join(e.Root, "library", "agent_facts"), args}, Env: connEnv},
		e.Runs, 1, 0,
		func() error { l.KSC().ResetCalls(); return nil },
		func(s Sample) error {
			var res struct {
				Failed     bool              `json:"failed"`
				Msg        string            `json:"msg"`
				RoundTrips map[string]int    `json:"round_trips"`
				Agents     []json.RawMessage `json:"agents"`
			}
			if err := json.Unmarshal(s.Stdout, &res); err != nil || res.Failed {
				return fmt.Errorf("agent_facts failed: %s", oneLine(res.Msg))
			}
			calls := 0
			for _, n := range l.KSC().Calls() {
				calls += n
			}
			vcRT = append(vcRT, float64(res.RoundTrips["vcenter"]))
			kscCalls = append(kscCalls, float64(calls))
			agents = append(agents, float64(len(res.Agents)))
			return nil
		})
	if err != nil {
		return nil, nil, notes, err
	}
	rows = append(rows, Row{Series: direct, Extra: map[string]Stat{
		"vcenter_round_trips": stat(vcRT), "ksc_calls": stat(kscCalls), "agents_reported": stat(agents), "vms": stat([]float64{float64(nvm)})}})

	govc, err := measure(ctx, "govc object.collect (same VM properties), "+tag,
		Cmd{Argv: []string{e.Govc, "object.collect", "-json", "-type", "m", "/" + l.Vars.Datacenter,
			"name", "config.instanceUuid", "runtime.host", "runtime.powerState", "guest.ipAddress", "guest.hostName", "customValue"},
			Env: l.govcEnv()},
		e.Runs, 1, 0, nil,
		func(s Sample) error {
			if n := bytes.Count(s.Stdout, []byte(`"kind": "enter"`)); n < nvm {
				return fmt.Errorf("govc object.collect returned %d VMs, want at least %d", n, nvm)
			}
			return nil
		})
	if err != nil {
		notes = append(notes, fmt.Sprintf("%s: govc not measured: %s", tag, oneLine(err.Error())))
	} else {
		rows = append(rows, Row{Series: govc})
		if nvm >= 4000 || nvm == 4096 {
			r := direct.Time.Median / govc.Time.Median
			goals = append(goals, Goal{Figure: "agent_facts / govc object.collect, " + tag, Value: r, Unit: "x", Target: "<= 1.3", Met: boolp(r <= 1.3)})
		} else {
			goals = append(goals, Goal{Figure: "agent_facts / govc object.collect, " + tag, Value: direct.Time.Median / govc.Time.Median, Unit: "x", Target: "<= 1.3 (stated for 4k VMs)"})
		}
	}

	// Through the controller, both sides: the Python peer only runs there.
	ours, err := measure(ctx, "ansible -m ksvla.lightagent.agent_facts, "+tag,
		Cmd{Argv: []string{"ansible", "localhost", "-m", "ksvla.lightagent.agent_facts", "-a",
			fmt.Sprintf("hostname=%s port=%d username=%s ca_file=%s ksc_url=%s ksc_username=%s ksc_ca_file=%s datacenter=%s target_version=%s",
				l.Vars.VCenterHostname, l.Vars.VCenterPort, l.Vars.VCenterUsername, l.Vars.VCenterCAFile,
				l.Vars.KSCURL, l.Vars.KSCUsername, l.Vars.KSCCAFile, l.Vars.Datacenter, l.Vars.NewVersion)},
			Env: []string{"VMWARE_PASSWORD=" + l.Vars.VCenterPassword, "KSC_PASSWORD=" + l.Vars.KSCPassword}, Dir: e.Root},
		e.Runs, 0, 0, nil, nil)
	if err != nil {
		notes = append(notes, fmt.Sprintf("%s: agent_facts through ansible not measured: %s", tag, oneLine(err.Error())))
		return rows, goals, notes, nil
	}
	rows = append(rows, Row{Series: ours})
	if e.PyPath == "" {
		notes = append(notes, tag+": vmware_vm_info not measured: pyVmomi 8 is not installed in bench/.py (bench/deps.sh could not fetch it).")
		return rows, goals, notes, nil
	}
	// vmware_vm_info reads every VM's summary in its own round trip, so
	// its time grows linearly with VMs; a run projected from the previous
	// scale to take longer than the cap is left out (the suite must finish
	// unattended in under 15 minutes) and the projection is reported.
	if e.peerSecPerVM > 0 {
		if proj := e.peerSecPerVM * float64(nvm); proj > peerCap(e) {
			notes = append(notes, fmt.Sprintf("%s: vmware_vm_info not run: projected %.0f s per run from the previous scale (%.1f ms per VM), "+
				"over the %.0f s cap (BENCH_PEER_MAX_SECONDS); projected ratio vs agent_facts via ansible: %.0fx.",
				tag, proj, e.peerSecPerVM*1000, peerCap(e), proj/ours.Time.Median))
			return rows, goals, notes, nil
		}
	}
	py, err := measure(ctx, "ansible -m community.vmware.vmware_vm_info, "+tag,
		Cmd{Argv: []string{"ansible", "localhost", "-m", "community.vmware.vmware_vm_info", "-a", "show_tag=false"},
			Env: l.vmwareEnv(e.PyPath), Dir: e.Root},
		e.Runs, 0, 90*time.Second, nil,
		func(s Sample) error {
			if n := bytes.Count(s.Stdout, []byte(`"guest_name"`)); n < nvm {
				return fmt.Errorf("vmware_vm_info listed %d VMs, want at least %d: %s", n, nvm, tail(string(s.Stdout), 300))
			}
			return nil
		})
	if err != nil {
		notes = append(notes, fmt.Sprintf("%s: vmware_vm_info not measured: %s", tag, oneLine(err.Error())))
		return rows, goals, notes, nil
	}
	rows = append(rows, Row{Series: py})
	e.peerSecPerVM = py.Time.Median / float64(nvm)
	r := py.Time.Median / ours.Time.Median
	target := ">= 50 (stated for 4k VMs)"
	var met *bool
	if nvm >= 4000 {
		target, met = ">= 50", boolp(r >= 50)
	}
	goals = append(goals, Goal{Figure: "vmware_vm_info / agent_facts (both via ansible), " + tag, Value: r, Unit: "x", Target: target, Met: met})
	if rd := py.Time.Median / direct.Time.Median; true {
		goals = append(goals, Goal{Figure: "vmware_vm_info via ansible / agent_facts direct process, " + tag, Value: rd, Unit: "x", Target: "reported (the module's own time)"})
	}
	return rows, goals, notes, nil
}

// peerCap is the longest projected single run of a slow peer the suite
// starts (seconds).
func peerCap(e *Env) float64 {
	return float64(envInt("BENCH_PEER_MAX_SECONDS", e.Prof.PeerMaxSec))
}
