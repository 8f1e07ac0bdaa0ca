package kscpurge

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ksvla/lightagent/internal/ansible"
	"github.com/ksvla/lightagent/internal/ansible/ansibletest"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
)

const (
	kscUser = "automation"
	kscPass = "Ksc-purge-S3cret!"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type lab struct {
	s   *kscsim.Server
	clk *kscsim.ManualClock
	svm int // id of the "SVMs" group
	ids map[string]string
}

// startKSC starts a KSC with the KSC 15 (forceIgnored false) or 15.1+
// behaviour of RemoveHosts and seeds:
//
//	svm-esxi-01-6.1  10.0.0.11  PS 6.1.0.100  off, last seen 2 h ago
//	svm-esxi-02-6.1  10.0.0.12  PS 6.1.0.100  off, last seen 30 min ago
//	svm-orphan       10.0.0.13  PS 6.1.0.100  never seen, in Unassigned
//	svm-esxi-01-6.2  10.0.0.21  PS 6.2.0.200  visible
//	vm-esxi-01-001   10.0.1.1   LA 6.1.0.300  visible
func startKSC(t testing.TB, forceIgnored bool) *lab {
	t.Helper()
	clk := kscsim.NewManualClock(t0)
	s, err := kscsim.Start(kscsim.Config{Username: kscUser, Password: kscPass, CertDir: t.TempDir(),
		RemoveHostsForceIgnored: forceIgnored, Clock: clk})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	l := &lab{s: s, clk: clk, svm: s.AddGroup("SVMs", 0), ids: map[string]string{}}
	vms := s.AddGroup("Virtual machines", 0)
	ps := func(v string) []kscsim.Product {
		return []kscsim.Product{{Key: "KSVLA-PS", Version: v, DisplayName: "Kaspersky Security for Virtualization Light Agent Protection Server", ProdVersion: v}}
	}
	for _, h := range []kscsim.Host{
		{DisplayName: "svm-esxi-01-6.1", IP: "10.0.0.11", GroupID: l.svm, LastVisible: t0.Add(-2 * time.Hour), Products: ps("6.1.0.100")},
		{DisplayName: "svm-esxi-02-6.1", IP: "10.0.0.12", GroupID: l.svm, LastVisible: t0.Add(-30 * time.Minute), Products: ps("6.1.0.100")},
		{DisplayName: "svm-orphan", IP: "10.0.0.13", Products: ps("6.1.0.100")},
		{DisplayName: "svm-esxi-01-6.2", IP: "10.0.0.21", GroupID: l.svm, Status: kscsim.StatusVisible, LastVisible: t0, Products: ps("6.2.0.200")},
		{DisplayName: "vm-esxi-01-001", IP: "10.0.1.1", GroupID: vms, Status: kscsim.StatusVisible, LastVisible: t0,
			Products: []kscsim.Product{{Key: "KSVLA-LA", Version: "6.1.0.300", ProdVersion: "6.1.0.300"}}},
	} {
		h.FQDN = h.DisplayName + ".lab.local"
		l.ids[h.DisplayName] = s.UpsertHost(h)
	}
	return l
}

func (l *lab) args(extra map[string]any) map[string]any {
	a := map[string]any{"ksc_url": l.s.URL(), "ksc_username": kscUser, "ksc_password": kscPass, "ksc_ca_file": l.s.CertFile()}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func (l *lab) run(t testing.TB, extra map[string]any, check bool) ansible.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := ansibletest.Run(t, ctx, "ksc_purge", New(), l.args(extra), ansibletest.Mode{Check: check, Diff: true})
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), kscPass, "the password must never appear in the result")
	return res
}

// present lists the display names KSC holds, sorted.
func (l *lab) present() []string {
	var out []string
	for _, h := range l.s.Hosts() {
		out = append(out, h.DisplayName)
	}
	sort.Strings(out)
	return out
}

func names(v any) []string {
	out := []string{}
	list, _ := v.([]any)
	for _, e := range list {
		out = append(out, fmt.Sprint(ansibletest.Get(e, "name")))
	}
	return out
}

var everyone = []string{"svm-esxi-01-6.1", "svm-esxi-01-6.2", "svm-esxi-02-6.1", "svm-orphan", "vm-esxi-01-001"}

func without(all []string, gone ...string) []string {
	out := []string{}
	for _, n := range all {
		keep := true
		for _, g := range gone {
			keep = keep && n != g
		}
		if keep {
			out = append(out, n)
		}
	}
	return out
}

func TestPurge(t *testing.T) {
	for _, tc := range []struct {
		name        string
		args        func(l *lab) map[string]any
		removed     []string
		absentAfter []any // the second run's absent list
		absentFirst []any
		skipped     []string
	}{
		{
			name: "names",
			args: func(*lab) map[string]any {
				return map[string]any{"names": []any{"svm-esxi-01-6.1", "SVM-ESXI-02-6.1", "svm-gone"}}
			},
			removed:     []string{"svm-esxi-01-6.1", "svm-esxi-02-6.1"},
			absentFirst: []any{map[string]any{"name": "svm-gone"}},
			absentAfter: []any{map[string]any{"name": "svm-esxi-01-6.1"}, map[string]any{"name": "SVM-ESXI-02-6.1"}, map[string]any{"name": "svm-gone"}},
		},
		{
			name:        "ips",
			args:        func(*lab) map[string]any { return map[string]any{"ips": []any{"10.0.0.12", "10.0.0.99"}} },
			removed:     []string{"svm-esxi-02-6.1"},
			absentFirst: []any{map[string]any{"ip": "10.0.0.99"}},
			absentAfter: []any{map[string]any{"ip": "10.0.0.12"}, map[string]any{"ip": "10.0.0.99"}},
		},
		{
			name: "svms as svm_remove returns them",
			args: func(l *lab) map[string]any {
				return map[string]any{"svms": []any{
					map[string]any{"name": "svm-esxi-01-6.1", "ip": "10.0.0.11", "fqdn": "svm-esxi-01-6.1.lab.local", "ksc_id": l.ids["svm-esxi-01-6.1"], "host": "esxi-01", "power_state": "poweredOff"},
					map[string]any{"name": "svm-orphan", "ksc_id": ""},
				}}
			},
			removed:     []string{"svm-esxi-01-6.1", "svm-orphan"},
			absentFirst: []any{},
			absentAfter: nil, // ids differ per lab: checked below by count
		},
		{
			name: "names restricted by not_visible_minutes and product_version",
			args: func(*lab) map[string]any {
				return map[string]any{"names": []any{"svm-esxi-01-6.1", "svm-esxi-02-6.1", "svm-esxi-01-6.2", "vm-esxi-01-001"},
					"not_visible_minutes": 60, "product_version": "6.1.0.100"}
			},
			removed:     []string{"svm-esxi-01-6.1"},
			absentFirst: []any{},
			skipped:     []string{"svm-esxi-01-6.2", "svm-esxi-02-6.1", "vm-esxi-01-001"},
		},
	} {
		for _, forceIgnored := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/forceIgnored=%v", tc.name, forceIgnored), func(t *testing.T) {
				l := startKSC(t, forceIgnored)
				args := tc.args(l)

				check := l.run(t, args, true)
				require.False(t, check.Failed(), check.Msg())
				assert.True(t, check.Changed())
				assert.Equal(t, tc.removed, names(check["removed"]), "check mode lists what would go")
				assert.Equal(t, fmt.Sprintf("would remove %d KSC records (%d already absent)", len(tc.removed), len(tc.absentFirst)), check.Msg())
				assert.Equal(t, everyone, l.present(), "check mode removes nothing")
				assert.Zero(t, l.s.Calls()["HostGroup.RemoveHosts"]+l.s.Calls()["HostGroup.MoveHostsToGroup"])

				first := l.run(t, args, false)
				require.False(t, first.Failed(), first.Msg())
				assert.True(t, first.Changed())
				assert.Equal(t, tc.removed, names(first["removed"]))
				assert.Equal(t, tc.absentFirst, first["absent"])
				assert.Equal(t, fmt.Sprintf("removed %d KSC records", len(tc.removed)), first.Msg())
				before, _ := ansibletest.Get(first, "diff", "before").(string)
				assert.Len(t, strings.Split(strings.TrimSuffix(before, "\n"), "\n"), len(tc.removed), before)
				for _, n := range tc.removed {
					assert.Contains(t, before, "KSC record "+n+" (id "+l.ids[n])
				}
				assert.Equal(t, "", ansibletest.Get(first, "diff", "after"))
				for _, e := range first["removed"].([]any) {
					assert.NotEmpty(t, ansibletest.Get(e, "proof"), "every removal says why its SVM is gone")
				}
				if tc.skipped != nil {
					assert.Equal(t, tc.skipped, names(first["skipped"]))
					reasons := map[string]any{}
					for _, e := range first["skipped"].([]any) {
						reasons[fmt.Sprint(ansibletest.Get(e, "name"))] = ansibletest.Get(e, "reason")
					}
					assert.Equal(t, map[string]any{
						"svm-esxi-01-6.2": "visible in the network, or seen within the last 60 minutes",
						"svm-esxi-02-6.1": "visible in the network, or seen within the last 60 minutes",
						"vm-esxi-01-001":  "carries no Protection Server product (ps_products)",
					}, reasons)
				}
				assert.Equal(t, without(everyone, tc.removed...), l.present())
				if forceIgnored {
					assert.Positive(t, l.s.Calls()["HostGroup.MoveHostsToGroup"], "15.1+: managed hosts are moved to Unassigned first")
				} else {
					assert.Zero(t, l.s.Calls()["HostGroup.MoveHostsToGroup"], "15: bForceDestroy removes them")
				}

				second := l.run(t, args, false)
				require.False(t, second.Failed(), second.Msg())
				assert.False(t, second.Changed())
				assert.Equal(t, []any{}, second["removed"])
				assert.Nil(t, second["diff"])
				switch {
				case tc.absentAfter != nil:
					assert.Equal(t, tc.absentAfter, second["absent"])
				case tc.name == "svms as svm_remove returns them":
					assert.Len(t, second["absent"], 2)
				}
				assert.Equal(t, without(everyone, tc.removed...), l.present())
			})
		}
	}
}

// A selection by version or staleness alone reaches every site the KSC
// serves: without served_datacenters (and vCenter) no record of it is
// proven gone, so each is kept and reported, nothing is removed.
func TestBroadSelectionKeptWithoutProof(t *testing.T) {
	for name, args := range map[string]map[string]any{
		"product_version":                    {"product_version": "6.1.0.100"},
		"not_visible_minutes":                {"not_visible_minutes": 60},
		"served_datacenters without vCenter": {"product_version": "6.1.0.100", "served_datacenters": []any{"DC1"}},
	} {
		t.Run(name, func(t *testing.T) {
			l := startKSC(t, true)
			for _, check := range []bool{true, false} {
				res := l.run(t, args, check)
				require.False(t, res.Failed(), res.Msg())
				assert.False(t, res.Changed())
				assert.Equal(t, []any{}, res["removed"])
				assert.NotEmpty(t, res["kept"])
				assert.Contains(t, res.Msg(), "whose SVM is not proven gone")
				for _, k := range res["kept"].([]any) {
					assert.Contains(t, ansibletest.Get(k, "reason"), "served_datacenters")
				}
				assert.Contains(t, fmt.Sprint(res["warnings"]), "not proven gone")
			}
			assert.Equal(t, everyone, l.present())
			assert.Zero(t, l.s.Calls()["HostGroup.RemoveHosts"]+l.s.Calls()["HostGroup.MoveHostsToGroup"])
		})
	}
}

func TestBatching(t *testing.T) {
	for _, forceIgnored := range []bool{false, true} {
		t.Run(fmt.Sprintf("forceIgnored=%v", forceIgnored), func(t *testing.T) {
			l := startKSC(t, forceIgnored)
			var five []any
			for i := range 5 {
				n := fmt.Sprintf("svm-batch-%d", i)
				l.s.UpsertHost(kscsim.Host{DisplayName: n, GroupID: l.svm, LastVisible: t0.Add(-time.Hour)})
				five = append(five, n)
			}
			l.s.ResetCalls()
			res := l.run(t, map[string]any{"names": five, "batch_size": 2}, false)
			require.False(t, res.Failed(), res.Msg())
			assert.Len(t, res["removed"], 5)
			calls := l.s.Calls()
			assert.Equal(t, 3, calls["HostGroup.RemoveHosts"], "5 records in batches of 2")
			if forceIgnored {
				assert.Equal(t, 3, calls["HostGroup.MoveHostsToGroup"])
			} else {
				assert.Zero(t, calls["HostGroup.MoveHostsToGroup"])
			}
			assert.Equal(t, everyone, l.present())
		})
	}
}

// A run that fails mid-removal reports only the records KSC took, not
// every record it meant to remove: here KSC answers busy from the second
// batch on, so only the first batch's records are listed, and they are the
// ones gone.
func TestFailedRunListsOnlyRemoved(t *testing.T) {
	clk := kscsim.NewManualClock(t0)
	var removeCalls atomic.Int32
	var busy atomic.Bool
	s, err := kscsim.Start(kscsim.Config{Username: kscUser, Password: kscPass, CertDir: t.TempDir(), Clock: clk,
		Busy: busy.Load,
		Hook: func(method string) {
			if method == "HostGroup.RemoveHosts" && removeCalls.Add(1) == 2 {
				busy.Store(true)
			}
		}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	l := &lab{s: s, clk: clk, svm: s.AddGroup("SVMs", 0), ids: map[string]string{}}
	var five []any
	for i := range 5 {
		n := fmt.Sprintf("svm-batch-%d", i)
		l.ids[n] = s.UpsertHost(kscsim.Host{DisplayName: n, GroupID: l.svm, LastVisible: t0.Add(-time.Hour)})
		five = append(five, n)
	}
	res := l.run(t, map[string]any{"names": five, "batch_size": 2}, false)
	require.True(t, res.Failed())
	assert.Contains(t, res.Msg(), "server busy (HTTP 503)")
	assert.Equal(t, []string{"svm-batch-0", "svm-batch-1"}, names(res["removed"]), "only the batch KSC took")
	busy.Store(false)
	assert.Equal(t, []string{"svm-batch-2", "svm-batch-3", "svm-batch-4"}, l.present())
}

// The timeout bounds the whole run, a KSC that stops answering included,
// and the failure says which option ran out.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	s, err := kscsim.Start(kscsim.Config{Username: kscUser, Password: kscPass, CertDir: t.TempDir(), Clock: kscsim.NewManualClock(t0),
		Hook: func(method string) {
			if method == "HostGroup.FindHosts" {
				<-release
			}
		}})
	require.NoError(t, err)
	t.Cleanup(func() { close(release); _ = s.Close() })
	l := &lab{s: s, ids: map[string]string{}}
	start := time.Now()
	res := l.run(t, map[string]any{"names": []any{"svm-x"}, "timeout": 1}, false)
	require.True(t, res.Failed())
	assert.Contains(t, res.Msg(), "the module ran out of time: option timeout is 1 s")
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestRetentionReported(t *testing.T) {
	l := startKSC(t, true)
	l.s.SetAutoRemovePeriod(l.svm, 30)
	res := l.run(t, map[string]any{"names": []any{"svm-esxi-01-6.1", "svm-orphan"}}, true)
	require.False(t, res.Failed(), res.Msg())
	assert.Equal(t, []any{
		map[string]any{"group": "Unassigned devices", "group_id": float64(l.s.GroupIDUnassigned()), "auto_remove_period_days": float64(60), "inherited": false, "records": float64(1),
			"next_auto_removal": "2026-04-30T12:00:00Z"},
		map[string]any{"group": "SVMs", "group_id": float64(l.svm), "auto_remove_period_days": float64(30), "inherited": false, "records": float64(1),
			"next_auto_removal": "2026-03-31T10:00:00Z"},
	}, jsonRoundTrip(t, res["retention"]), "per group, by group id")
	assert.Equal(t, "2026-03-31T10:00:00Z", ansibletest.Get(res, "removed", 0, "auto_remove_at"))

	off := l.run(t, map[string]any{"names": []any{"svm-esxi-01-6.1"}, "report_retention": false}, true)
	assert.Nil(t, off["retention"])
	assert.Nil(t, ansibletest.Get(off, "removed", 0, "auto_remove_at"))
}

func jsonRoundTrip(t *testing.T, v any) any {
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

func TestBadOptions(t *testing.T) {
	l := startKSC(t, true)
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"no selector", map[string]any{}, "one of the following is required: names, ips, svms, product_version, not_visible_minutes"},
		{"svm without name or id", map[string]any{"svms": []any{map[string]any{"ip": "10.0.0.11"}}}, "svms[0] has neither name nor ksc_id"},
		{"bad ip", map[string]any{"ips": []any{"10.0.0"}}, `ips: "10.0.0" is not an IPv4 address`},
		{"batch size", map[string]any{"names": []any{"x"}, "batch_size": 0}, "batch_size must be at least 1, got 0"},
		{"product keys", map[string]any{"product_version": "6.1", "ps_products": []any{"Some Product"}},
			"ps_products needs at least one KSC product key (display names with spaces cannot be searched)"},
		{"version with a v", map[string]any{"product_version": "v6.1.0.100"},
			`product_version must be a version of two to four dotted numbers such as 6.2.0.200, got "v6.1.0.100"`},
		{"version with a space", map[string]any{"names": []any{"x"}, "product_version": "6.1.0.100 "},
			`product_version must be a version of two to four dotted numbers such as 6.2.0.200, got "6.1.0.100 "`},
		{"vcenter half given", map[string]any{"names": []any{"svm-esxi-01-6.1"}, "hostname": "127.0.0.1"},
			"username is required: set the username option or export VMWARE_USER=..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := l.run(t, tc.args, true)
			assert.True(t, res.Failed())
			assert.Equal(t, tc.want, res.Msg())
		})
	}
	assert.Equal(t, everyone, l.present())
}
