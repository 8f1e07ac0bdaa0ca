package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gopkg.in/yaml.v3"

	"github.com/ksvla/lightagent/internal/sim"
)

// syncBuffer is an io.Writer safe to read while up writes to it.
type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

func TestUpStatusAndShutdown(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"up", "-dir", dir, "-hosts", "2", "-vms", "2", "-ssh-port", "-1", "-image-size", "4KiB",
			"-old-agent", "12.5.0.100", "-new-agent", "12.6.0.200"}, &out)
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "lab.addr"))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)

	pid, err := readPID(dir)
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), pid)
	for _, f := range []string{"vars.yml", "known_hosts", "vcenter.pem", "ksc.pem", "ksvla-svm-6.2.0.200.ova"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}

	var table strings.Builder
	require.NoError(t, run(context.Background(), []string{"status", "-dir", dir}, &table))
	assert.Contains(t, table.String(), "svm-esxi-02-6.1")
	assert.Contains(t, table.String(), "protection gaps recorded: 0")
	assert.Regexp(t, `KSC: \d+ logins, \d+ calls .*; vCenter: [1-9]\d* sessions`, table.String(), "the load counters")

	var js strings.Builder
	require.NoError(t, run(context.Background(), []string{"status", "-dir", dir, "-json"}, &js))
	var st sim.Status
	require.NoError(t, json.Unmarshal([]byte(js.String()), &st))
	require.Len(t, st.Hosts, 2)
	assert.Equal(t, "on", st.Hosts[1].SVMs[0].Power)
	require.NotNil(t, st.Counters)
	assert.Positive(t, st.Counters.VCenterLogins, "the lab's own session at least")
	// -old-agent/-new-agent: every agent product on V1, which the table
	// pairs with -old, so the old SVMs serve them all.
	assert.Equal(t, map[string]int{"12.5.0.100": 2}, st.Hosts[0].Agents)
	assert.Zero(t, st.Hosts[0].Unprotected)
	assert.Equal(t, 2, st.Hosts[0].SVMs[0].Agents, "the old SVM serves both")
	raw, err := os.ReadFile(filepath.Join(dir, "vars.yml"))
	require.NoError(t, err)
	var v sim.Vars
	require.NoError(t, yaml.Unmarshal(raw, &v))
	assert.Equal(t, map[string]map[string][]string{
		"6.1.0.100": {"KES": {"12.5.0.100"}, "kesl": {"12.5.0.100"}},
		"6.2.0.200": {"KES": {"12.6.0.200"}, "kesl": {"12.6.0.200"}},
	}, v.Compatibility)

	// Host events: maintenance mode powers the host's SVM off, and in the
	// lab's HA cluster nothing powers it on when the host leaves it.
	for _, action := range []string{"maintenance", "exit-maintenance"} {
		var o strings.Builder
		require.NoError(t, run(context.Background(), []string{"host", "-dir", dir, action, "esxi-01.lab.local"}, &o))
		assert.Equal(t, "esxi-01.lab.local: "+action+" done\n", o.String())
	}
	require.Eventually(t, func() bool {
		var js strings.Builder
		require.NoError(t, run(context.Background(), []string{"status", "-dir", dir, "-json"}, &js))
		var st sim.Status
		require.NoError(t, json.Unmarshal([]byte(js.String()), &st))
		return st.Hosts[0].SVMs[0].Power == "off"
	}, 10*time.Second, 50*time.Millisecond)
	assert.ErrorContains(t, run(context.Background(), []string{"host", "-dir", dir, "explode", "esxi-01.lab.local"}, &strings.Builder{}),
		"unknown action explode; want fail, recover, maintenance or exit-maintenance")
	assert.ErrorContains(t, run(context.Background(), []string{"host", "-dir", dir, "fail", "esxi-09.lab.local"}, &strings.Builder{}),
		"fail host: no host esxi-09.lab.local")

	err = run(context.Background(), []string{"up", "-dir", dir}, &strings.Builder{})
	assert.ErrorContains(t, err, "a lab is already running in "+dir)

	cancel() // what SIGINT/SIGTERM do
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("up did not stop")
	}
	assert.Contains(t, out.String(), "vCenter   https://127.0.0.1:")
	assert.NoFileExists(t, filepath.Join(dir, "lab.pid"))
	assert.NoFileExists(t, filepath.Join(dir, "lab.addr"))
	assert.ErrorContains(t, run(context.Background(), []string{"status", "-dir", dir}, &strings.Builder{}), "no running lab in "+dir)
}

func TestDownSignalsThePIDFile(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // the exit status is SIGTERM's, checked below
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lab.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out strings.Builder
	require.NoError(t, run(ctx, []string{"down", "-dir", dir}, &out))
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("process still running after down")
	}
	assert.Equal(t, "signal: terminated", cmd.ProcessState.String())
	assert.Contains(t, out.String(), "stopped")
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"4096", 4096, false}, {"64KiB", 64 << 10, false}, {"1MiB", 1 << 20, false},
		{"2GiB", 2 << 30, false}, {"10B", 10, false}, {"1MB", 0, true}, {"-1", 0, true},
	} {
		got, err := parseSize(tc.in)
		if tc.err {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func TestAgentSettings(t *testing.T) {
	table := filepath.Join(t.TempDir(), "compat.yml")
	require.NoError(t, os.WriteFile(table, []byte(`"6.2.0.200": {WIN: ["12.6"], LNX: ["12.2"]}`+"\n"), 0o600))
	var cfg sim.Config
	require.NoError(t, agentSettings(&cfg, table, "WIN, LNX"))
	assert.Equal(t, map[string]map[string][]string{"6.2.0.200": {"WIN": {"12.6"}, "LNX": {"12.2"}}}, cfg.Compatibility)
	assert.Equal(t, []string{"WIN", "LNX"}, []string{cfg.AgentProducts[0].Key, cfg.AgentProducts[1].Key})
	assert.Equal(t, "KES", sim.DefaultAgentProducts[0].Key, "the defaults stay")

	assert.ErrorContains(t, agentSettings(&sim.Config{}, "", "ONE"), `-agent-keys "ONE": want 2 keys`)
	require.NoError(t, os.WriteFile(table, []byte("- not a table\n"), 0o600))
	assert.ErrorContains(t, agentSettings(&sim.Config{}, table, ""), "-compat "+table+": want Protection Server version")
}

func TestUnknownCommand(t *testing.T) {
	assert.ErrorContains(t, run(context.Background(), []string{"sideways"}, &strings.Builder{}), `unknown command "sideways"`)
	assert.ErrorContains(t, run(context.Background(), nil, &strings.Builder{}), "usage: ksvla-lab")
}

func TestAgentUpdateHostFlag(t *testing.T) {
	for _, bad := range []string{"esxi-01.lab.local", "=5m", "esxi-01.lab.local=soon"} {
		err := run(context.Background(), []string{"up", "-dir", t.TempDir(), "-agent-update-host", bad}, &strings.Builder{})
		assert.ErrorContains(t, err, `want HOST=DURATION, e.g. esxi-01.lab.local=10m, got "`+bad+`"`)
	}
}
