package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/playtest"
	"github.com/ksvla/lightagent/internal/sim"
	"github.com/ksvla/lightagent/internal/sim/labtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// hypervisorsInventory writes an inventory file for the collection's ksvla.lightagent.hypervisors
// plugin pointing at the lab, and returns its path.
func hypervisorsInventory(t *testing.T, v sim.Vars) string {
	t.Helper()
	cfg := map[string]any{"plugin": "ksvla.lightagent.hypervisors", "target_version": v.NewVersion,
		"hostname": v.VCenterHostname, "port": v.VCenterPort, "username": v.VCenterUsername, "password": v.VCenterPassword,
		"ca_file": v.VCenterCAFile, "ksc_url": v.KSCURL, "ksc_username": v.KSCUsername, "ksc_password": v.KSCPassword,
		"ksc_ca_file": v.KSCCAFile}
	b, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "ksvla_hypervisors.yml")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// The hypervisors come from vCenter and KSC as inventory: the binary as an inventory script
// (--list/--host, options from the modules' environment variables) and the collection's
// inventory plugin give the same groups and host variables.
func TestHypervisorsInventory(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 3, VMsPerHost: 1})
	v := l.Vars(l.Dir())
	lib, err := playtest.Modules()
	require.NoError(t, err)

	script := exec.CommandContext(ctx, filepath.Join(lib, "ksvla"), "--list")
	script.Env = append(os.Environ(), "VMWARE_HOST="+v.VCenterHostname, fmt.Sprintf("VMWARE_PORT=%d", v.VCenterPort),
		"VMWARE_USER="+v.VCenterUsername, "VMWARE_PASSWORD="+v.VCenterPassword, "VMWARE_CA_FILE="+v.VCenterCAFile,
		"KSC_URL="+v.KSCURL, "KSC_USERNAME="+v.KSCUsername, "KSC_PASSWORD="+v.KSCPassword, "KSC_CA_FILE="+v.KSCCAFile,
		"KSVLA_TARGET_VERSION="+v.NewVersion)
	out, err := script.Output()
	require.NoError(t, err)
	var list map[string]any
	require.NoError(t, json.Unmarshal(out, &list))
	hosts := list["ksvla_hypervisors"].(map[string]any)["hosts"].([]any)
	require.Len(t, hosts, 3)
	first := hosts[0].(string)
	hv := list["_meta"].(map[string]any)["hostvars"].(map[string]any)[first].(map[string]any)
	assert.Equal(t, v.Datacenter, hv["ksvla_datacenter"])
	assert.Equal(t, false, hv["ksvla_ready"], "the agents still run the old version")
	assert.Contains(t, hv["ksvla_svms"], v.OldVersion)
	assert.Len(t, list["ksvla_dc_"+v.Datacenter].(map[string]any)["hosts"], 3)
	if v.Cluster != "" {
		assert.Equal(t, v.Cluster, hv["ksvla_cluster"])
		assert.Len(t, list["ksvla_cluster_"+v.Cluster].(map[string]any)["hosts"], 3)
	}
	assert.ElementsMatch(t, []any{"ksvla_cluster_" + v.Cluster, "ksvla_dc_" + v.Datacenter},
		list["ksvla_hypervisors"].(map[string]any)["children"])

	host := exec.CommandContext(ctx, script.Path, "--host", first)
	host.Env = script.Env
	out, err = host.Output()
	require.NoError(t, err)
	var one map[string]any
	require.NoError(t, json.Unmarshal(out, &one))
	assert.Equal(t, hv, one)

	missing := exec.CommandContext(ctx, script.Path, "--list")
	missing.Env = append(os.Environ(), "VMWARE_HOST="+v.VCenterHostname)
	b, err := missing.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(b), "KSVLA_TARGET_VERSION")

	inv := exec.CommandContext(ctx, "ansible-inventory", "-i", hypervisorsInventory(t, v), "--list")
	inv.Env = append(os.Environ(), "ANSIBLE_COLLECTIONS_PATH="+filepath.Join(lib, "collections"))
	out, err = inv.Output()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	assert.ElementsMatch(t, hosts, got["ksvla_hypervisors"].(map[string]any)["hosts"])
	gotVars := got["_meta"].(map[string]any)["hostvars"].(map[string]any)[first].(map[string]any)
	assert.Equal(t, hv["ksvla_svms"], gotVars["ksvla_svms"])
	assert.Equal(t, v.Datacenter, gotVars["ksvla_datacenter"])
}

// AWX job slicing, simulated as the issue describes: the upgrade in 2 slices of the
// inventory's hypervisors, run at the same time with --limit (and localhost, which every AWX
// slice has). Each hypervisor is upgraded exactly once, no protected VM is ever without a
// compatible SVM, and the finishing steps leave the fleet clean.
func TestUpgradeSlicedInventory(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l := labtest.Start(t, sim.Config{Hosts: 8, VMsPerHost: 2})
	v := l.Vars(l.Dir())
	inv := hypervisorsInventory(t, v)
	localhost := filepath.Join(playtest.Root(), "playbooks", "inventory", "localhost.yml")

	var slices [2][]string
	for i, h := range l.Status().Hosts {
		slices[i%2] = append(slices[i%2], h.Name) // AWX slices hosts round-robin
	}
	runs := make([]*playtest.Run, 2)
	var wg sync.WaitGroup
	for i := range slices {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := playtest.Playbook(ctx, playtest.Options{Playbook: "playbooks/upgrade.yml",
				Args: append([]string{"-i", localhost, "-i", inv, "--limit", "localhost:" + strings.Join(slices[i], ":"),
					"-e", "@" + filepath.Join(l.Dir(), "vars.yml"), "-e", "upgrade_batch_size=2"}, upgradeArgs...)})
			assert.NoError(t, err)
			runs[i] = r
		}(i)
	}
	wg.Wait()
	deployed, removed := map[string]int{}, map[string]int{}
	for i, r := range runs {
		require.NotNil(t, r)
		require.Zero(t, r.ExitCode, "slice %d: %s", i, r.Output)
		for _, tr := range r.Task("Deploy the new SVM (step 1)") {
			assert.Contains(t, slices[i], tr.Host, "slice %d ran a hypervisor of the other slice", i)
			if tr.Changed() {
				deployed[tr.Host]++
			}
		}
		for _, tr := range r.Task("Remove the old SVM (step 5; refused while any agent still needs it)") {
			if tr.Changed() {
				removed[tr.Host]++
			}
		}
	}
	for _, h := range l.Status().Hosts {
		assert.Equal(t, 1, deployed[h.Name], "%s deployed once", h.Name)
		assert.Equal(t, 1, removed[h.Name], "%s's old SVM removed once", h.Name)
	}
	assertUpgraded(t, l)
}

// With the hypervisors from the inventory, preflight_capacity=skip still leaves out a host
// without room for the new SVM: it stays in the group but its play ends before any step.
func TestUpgradeInventorySkipsHostWithoutRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	small := "esxi-02.lab.local"
	// Held on their hosts: otherwise the left-out host's old agents, which
	// DRS may move anywhere, keep every old SVM of the cluster.
	l := labtest.Start(t, sim.Config{Hosts: 3, VMsPerHost: 1, SmallHost: small, ProtectedVMsStay: true})
	v := l.Vars(l.Dir())
	run := upgrade(t, ctx, l, playtest.Options{Args: []string{"-i", filepath.Join(playtest.Root(), "playbooks", "inventory", "localhost.yml"),
		"-i", hypervisorsInventory(t, v), "-e", "preflight_capacity=skip"}})
	require.Zero(t, run.ExitCode, run.Output)
	assert.Contains(t, run.Output, "host "+small+" cannot take SVM")
	for _, h := range l.Status().Hosts {
		want := v.NewVersion
		if h.Name == small {
			want = v.OldVersion
		}
		require.Len(t, h.SVMs, 1, h.Name)
		assert.Equal(t, want, h.SVMs[0].Version, h.Name)
	}
	for _, d := range run.Task("Deploy the new SVM (step 1)") {
		assert.NotEqual(t, small, d.Host, "the host without room was deployed to")
	}
}
