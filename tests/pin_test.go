package tests

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/ksvla/lightagent/internal/vsphere"
)

// An 8-host upgrade while DRS migrates every unpinned VM every 2 s: the new
// SVMs are pinned before they are powered on, so none moves and no agent
// loses its SVM. With the lab's DRS ignoring the overrides (an SVM nobody
// pinned), SVMs move and protection gaps appear: the test can fail.
func TestUpgradeUnderDRSKeepsSVMsPut(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	for name, ignore := range map[string]bool{"pinned": false, "pins ignored by DRS": true} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cfg := sim.Config{Hosts: 8, VMsPerHost: 1, DRSInterval: 2 * time.Second, DRSIgnoresOverrides: ignore}
			if ignore {
				// Agents that look for an SVM on their own host only: with the
				// standard algorithm they would fall back to a moved SVM.
				cfg.AgentSelection = sim.SelectHypervisor
			}
			l := labtest.Start(t, cfg)
			// New SVMs on shared storage, where DRS can move them (on a
			// host's local datastore a compute-only vMotion cannot).
			shared := map[string]string{}
			for _, h := range l.Vars(l.Dir()).ESXiHosts {
				shared[h] = l.Vars(l.Dir()).SharedDatastore
			}
			ds, err := json.Marshal(map[string]any{"local_datastores": shared})
			require.NoError(t, err)
			args := []string{"-e", string(ds), "-e", "upgrade_batch_size=4", "--forks", "4"}
			if ignore {
				// Only the moves matter here; the run cannot converge.
				args = append(args, "-e", "agent_wait_retries=3", "-e", "ksc_wait_retries=5")
			}
			run := upgrade(t, ctx, l, playtest.Options{Args: args})
			if ignore {
				// The run fails (a moved SVM never shows up on its host in
				// KSC's view); update the agents the way it would have, and
				// DRS's next moves leave updated agents without their SVM.
				assert.NotZero(t, run.ExitCode, run.Output)
				assert.NotEmpty(t, l.Moves(), "DRS moved no SVM")
				labtest.UpdateAgents(t, l)
				require.Eventually(t, func() bool { return len(l.Gaps()) > 0 }, 30*time.Second, 100*time.Millisecond,
					"moved SVMs left agents without protection")
				return
			}
			require.Zero(t, run.ExitCode, run.Output)
			time.Sleep(3 * time.Second) // one more DRS pass after the run
			assert.Empty(t, l.Moves(), "DRS moved an SVM")
			assertUpgraded(t, l)
			s := labtest.VSphere(t, l)
			v := l.Vars(l.Dir())
			for _, host := range v.ESXiHosts {
				vm, err := s.VM(ctx, nil, v.SVMs[host])
				require.NoError(t, err)
				pl, err := s.Placement(ctx, vm)
				require.NoError(t, err)
				assert.True(t, pl.Pinned(), "%s: missing %v", v.SVMs[host], pl.Missing())
				assert.Equal(t, host, pl.Host)
			}
			govcShowsOverrides(t, ctx, l)
		})
	}
}

// govcShowsOverrides runs govc v0.46.3 (the benchmarks' pinned version)
// against the lab: every SVM has a DRS override disabling automation and
// an HA override disabling restart.
func govcShowsOverrides(t *testing.T, ctx context.Context, l *sim.Lab) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	install := exec.CommandContext(ctx, "go", "install", "github.com/vmware/govmomi/govc@v0.46.3")
	install.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-mod=mod")
	if out, err := install.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "proxy") || strings.Contains(string(out), "dial tcp") || strings.Contains(string(out), "no such host") {
			t.Skipf("govc v0.46.3 cannot be installed (module proxy unreachable): %s", out)
		}
		require.NoError(t, err, string(out))
	}
	v := l.Vars(l.Dir())
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "govc"), "cluster.override.info", "-json", "-cluster", "Cluster1")
	cmd.Env = append(os.Environ(), "GOVC_URL="+l.VCenter().URL().String(), "GOVC_USERNAME="+v.VCenterUsername,
		"GOVC_PASSWORD="+v.VCenterPassword, "GOVC_TLS_CA_CERTS="+v.VCenterCAFile, "GOVC_DATACENTER="+v.Datacenter)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.False(t, errors.As(err, &ee), string(out))
	require.NoError(t, err, string(out))
	t.Logf("govc cluster.override.info:\n%s", out)
	// JSON: govc 0.46.3's text view prints a disabled DRS override as
	// "Default (FullyAutomated)".
	var res struct {
		Overrides map[string]struct {
			Name string `json:"name"`
			Host string `json:"host"`
			DRS  *struct {
				Enabled *bool `json:"enabled"`
			} `json:"drs"`
			DAS *struct {
				DasSettings *struct {
					RestartPriority string `json:"restartPriority"`
				} `json:"dasSettings"`
			} `json:"das"`
		} `json:"overrides"`
	}
	require.NoError(t, json.Unmarshal(out, &res), string(out))
	for _, host := range v.ESXiHosts {
		found := false
		for _, o := range res.Overrides {
			if o.Name != v.SVMs[host] {
				continue
			}
			found = true
			assert.Equal(t, host, o.Host, o.Name)
			require.NotNil(t, o.DRS, o.Name)
			require.NotNil(t, o.DRS.Enabled, o.Name)
			assert.False(t, *o.DRS.Enabled, "DRS automation of %s", o.Name)
			require.NotNil(t, o.DAS, o.Name)
			require.NotNil(t, o.DAS.DasSettings, o.Name)
			assert.Equal(t, "disabled", o.DAS.DasSettings.RestartPriority, o.Name)
		}
		assert.True(t, found, "no override for %s", v.SVMs[host])
	}
}

// One host too small for a second SVM: pre-flight fails naming it with the
// figures, and no host of the run gets a new VM.
func TestPreflightRefusesHostWithoutRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	small := "esxi-03.lab.local"
	// Held on their hosts: otherwise the left-out host's old agents, which
	// DRS may move anywhere, keep every old SVM of the cluster.
	l := labtest.Start(t, sim.Config{Hosts: 4, VMsPerHost: 1, SmallHost: small, ProtectedVMsStay: true})
	before := l.Status()
	run := upgrade(t, ctx, l, playtest.Options{})
	require.NotZero(t, run.ExitCode, run.Output)
	assert.Contains(t, run.Output, "host "+small+" cannot take SVM")
	assert.Contains(t, run.Output, "memory: needs 4096 MB, 2048 MB free (12288 MB of 14336 MB given to powered-on VMs)")
	assert.Equal(t, before, l.Status(), "pre-flight touched the lab")
	s := labtest.VSphere(t, l)
	vms, err := s.Inventory(ctx, vsphere.Scope{})
	require.NoError(t, err)
	for _, vm := range vms {
		assert.NotContains(t, vm.Name, "6.2", "a new SVM was deployed")
	}

	// With preflight_capacity=skip the small host is left out and reported.
	skip := upgrade(t, ctx, l, playtest.Options{Args: []string{"-e", "preflight_capacity=skip"}})
	require.Zero(t, skip.ExitCode, skip.Output)
	assert.Contains(t, skip.Output, "host "+small+" cannot take SVM")
	for _, h := range l.Status().Hosts {
		want := l.Vars(l.Dir()).NewVersion
		if h.Name == small {
			want = l.Vars(l.Dir()).OldVersion
		}
		require.Len(t, h.SVMs, 1, h.Name)
		assert.Equal(t, want, h.SVMs[0].Version, h.Name)
	}
}

// A host goes into maintenance mode and out again: its SVM stays off (HA
// cluster: no autostart), status.yml shows the problem, rerunning
// upgrade.yml powers it on, and the run after that changes nothing.
func TestMaintenanceModeRepair(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1})
	run := upgrade(t, ctx, l, playtest.Options{})
	require.Zero(t, run.ExitCode, run.Output)
	v := l.Vars(l.Dir())
	host := v.ESXiHosts[0]

	require.NoError(t, l.EnterMaintenance(ctx, host))
	require.NoError(t, l.ExitMaintenance(ctx, host))
	require.Eventually(t, func() bool {
		for _, h := range l.Status().Hosts {
			if h.Name == host {
				return len(h.SVMs) == 1 && h.SVMs[0].Power == "off"
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond)

	status, err := playtest.Playbook(ctx, playtest.Options{Playbook: "playbooks/status.yml",
		Args: []string{"-e", "@" + filepath.Join(l.Dir(), "vars.yml"), "-e", "status_html=" + filepath.Join(t.TempDir(), "s.html")}})
	require.NoError(t, err)
	require.Zero(t, status.ExitCode, status.Output)
	assert.Contains(t, status.Output, "PROBLEM "+host+": SVM "+v.SVMs[host]+" is off")

	repair := upgrade(t, ctx, l, playtest.Options{})
	require.Zero(t, repair.ExitCode, repair.Output)
	assert.Contains(t, changedTasks(repair), "Deploy the new SVM (step 1)")
	for _, h := range l.Status().Hosts {
		require.Len(t, h.SVMs, 1, h.Name)
		assert.Equal(t, "on", h.SVMs[0].Power, h.Name)
	}

	again := upgrade(t, ctx, l, playtest.Options{})
	require.Zero(t, again.ExitCode, again.Output)
	assert.Empty(t, changedTasks(again), "the run after the repair changes nothing")
}

// An SVM that drifted (moved by hand or by a DRS that ignored its
// override) is moved back to the host its mark names and re-pinned by the
// next upgrade.yml run; a VM that is not a recognised SVM is left alone.
func TestDriftedSVMMovedBack(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Agents that look on their own host only: the moved SVM's host is left
	// without protection (with the standard algorithm they would follow it).
	l := labtest.Start(t, sim.Config{Hosts: 2, VMsPerHost: 1, AgentSelection: sim.SelectHypervisor})
	v := l.Vars(l.Dir())
	shared := map[string]string{}
	for _, h := range v.ESXiHosts {
		shared[h] = v.SharedDatastore
	}
	ds, err := json.Marshal(map[string]any{"local_datastores": shared})
	require.NoError(t, err)
	opts := playtest.Options{Args: []string{"-e", string(ds)}}
	run := upgrade(t, ctx, l, opts)
	require.Zero(t, run.ExitCode, run.Output)

	s := labtest.VSphere(t, l)
	home, other := v.ESXiHosts[0], v.ESXiHosts[1]
	vm, err := s.VM(ctx, nil, v.SVMs[home])
	require.NoError(t, err)
	pl, err := s.Placement(ctx, vm)
	require.NoError(t, err)
	require.NoError(t, s.Unpin(ctx, pl))
	target, err := s.Host(ctx, nil, other)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx, vm, target))
	// A protected VM moved the same way is not an SVM: the repair leaves it.
	pvm, err := s.VM(ctx, nil, l.VCenter().Inventory().Hosts[0].ProtectedVMs[0])
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx, pvm, target))
	require.Eventually(t, func() bool { return len(l.Gaps()) > 0 }, 10*time.Second, 50*time.Millisecond,
		"the moved SVM's host is left without protection")

	repair := upgrade(t, ctx, l, opts)
	require.Zero(t, repair.ExitCode, repair.Output)
	pl, err = s.Placement(ctx, vm)
	require.NoError(t, err)
	assert.Equal(t, home, pl.Host)
	assert.True(t, pl.Pinned(), "%v", pl.Missing())
	ppl, err := s.Placement(ctx, pvm)
	require.NoError(t, err)
	assert.Equal(t, other, ppl.Host, "a protected VM is not the collection's to move")

	again := upgrade(t, ctx, l, opts)
	require.Zero(t, again.ExitCode, again.Output)
	assert.Empty(t, changedTasks(again), "the run after the repair changes nothing")
}
