package kscsim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

func seed(s *Server, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = s.UpsertHost(Host{
			DisplayName: "vm-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26),
			GroupID:     s.GroupIDGroups(),
			Status:      StatusVisible | StatusNagentInst,
			LastVisible: t0,
			Products:    []Product{{Key: "1103", Version: "1.0.0.0", DisplayName: "Network Agent", ProdVersion: "15.1.0.20748"}},
		})
	}
	return ids
}

func TestSessionLifecycle(t *testing.T) {
	s, _ := startTest(t, Config{})
	c := newWireClient(t, s)

	st, _ := c.raw("Session.StartSession", map[string]any{}, map[string]string{"Authorization": basicAuth(testUser, "wrong")})
	assert.Equal(t, http.StatusUnauthorized, st, "bad password")
	st, _ = c.raw("Session.Ping", map[string]any{}, nil)
	assert.Equal(t, http.StatusUnauthorized, st, "no session")

	c.startSession()
	c.ok("Session.Ping", map[string]any{})
	r := c.call("Nope.Method", map[string]any{})
	assert.Equal(t, int64(CodeNotImplemented), r.Get("PxgError.code").Int())
	assert.Equal(t, "KLSTD", r.Get("PxgError.module").String())

	c.ok("Session.EndSession", map[string]any{})
	st, _ = c.raw("Session.Ping", map[string]any{}, nil)
	assert.Equal(t, http.StatusForbidden, st, "after EndSession")
	assert.Equal(t, 2, s.Calls()["Session.StartSession"], "failed logins count too")
}

func TestLoginIsBoundToConnection(t *testing.T) {
	s, _ := startTest(t, Config{VServer: "tenant1"})
	c := newWireClient(t, s)
	vs := map[string]string{"Authorization": basicAuth(testUser, testPass), "X-KSC-VServer": "dGVuYW50Mg=="} // "tenant2"
	st, _ := c.raw("login", map[string]any{}, vs)
	assert.Equal(t, http.StatusUnauthorized, st, "unknown virtual server")
	vs["X-KSC-VServer"] = "dGVuYW50MQ==" // "tenant1"
	st, body := c.raw("login", map[string]any{}, vs)
	require.Equal(t, http.StatusOK, st)
	assert.JSONEq(t, `{}`, string(body))
	c.ok("HostGroup.GroupIdGroups", map[string]any{})

	other := newWireClient(t, s) // a second connection has no session
	st, _ = other.raw("HostGroup.GroupIdGroups", map[string]any{}, nil)
	assert.Equal(t, http.StatusUnauthorized, st)

	c.ok("Session.EndSession", map[string]any{})
	st, _ = c.raw("HostGroup.GroupIdGroups", map[string]any{}, nil)
	assert.Equal(t, http.StatusForbidden, st)
}

func TestFindHostsPagingAndTypes(t *testing.T) {
	s, _ := startTest(t, Config{})
	ids := seed(s, 7)
	s.UpsertHost(Host{DisplayName: "svm-01", IP: "10.10.1.5", GroupID: 0})
	c := newWireClient(t, s)
	c.startSession()

	for _, page := range []int{1, 3, 7, 100} {
		rows := c.findAll(`(&(KLHST_WKS_DN = "vm-*")(KLHST_WKS_STATUS & 1 <> 0))`,
			[]string{"KLHST_WKS_HOSTNAME", "KLHST_WKS_DN", "KLHST_WKS_LAST_VISIBLE", "KLHST_WKS_FQDN", "KLHST_WKS_PRODUCT_NAME"}, page)
		require.Len(t, rows, len(ids), "page size %d", page)
		got := map[string]bool{}
		for _, r := range rows {
			got[r.Get("KLHST_WKS_HOSTNAME").String()] = true
			assert.Equal(t, "datetime", r.Get("KLHST_WKS_LAST_VISIBLE.type").String())
			assert.Equal(t, "2026-03-01T12:00:00Z", r.Get("KLHST_WKS_LAST_VISIBLE.value").String())
			assert.False(t, r.Get("KLHST_WKS_FQDN").Exists(), "missing attribute omitted")
			assert.False(t, r.Get("KLHST_WKS_PRODUCT_NAME").Exists(), "search-only attribute not returned")
		}
		for _, id := range ids {
			assert.True(t, got[id], "host %s returned", id)
		}
	}
	rows := c.findAll(`(KLHST_WKS_FROM_UNASSIGNED = 1)`, []string{"KLHST_WKS_DN", "KLHST_WKS_IP_LONG"}, 10)
	require.Len(t, rows, 1)
	assert.Equal(t, "long", rows[0].Get("KLHST_WKS_IP_LONG.type").String())
	assert.Equal(t, int64(0x0A0A0105), rows[0].Get("KLHST_WKS_IP_LONG.value").Int())

	// ordering by display name, descending
	r := c.ok("HostGroup.FindHosts", map[string]any{"wstrFilter": "", "vecFieldsToReturn": []string{"KLHST_WKS_DN"},
		"vecFieldsToOrder": []any{map[string]any{"type": "params", "value": map[string]any{"Name": "KLHST_WKS_DN", "Asc": false}}},
		"lMaxLifeTime":     10})
	ch := c.ok("ChunkAccessor.GetItemsChunk", map[string]any{"strAccessor": r.Get("strAccessor").String(), "nStart": 0, "nCount": 2})
	assert.Equal(t, int64(2), ch.Get("PxgRetVal").Int())
	assert.Equal(t, []string{"vm-g", "vm-f"}, []string{
		ch.Get("pChunk.KLCSP_ITERATOR_ARRAY.0.value.KLHST_WKS_DN").String(),
		ch.Get("pChunk.KLCSP_ITERATOR_ARRAY.1.value.KLHST_WKS_DN").String()})

	for _, bad := range []map[string]any{
		{"wstrFilter": "(KLHST_WKS_DN = ", "lMaxLifeTime": 10},
		{"wstrFilter": "", "lMaxLifeTime": 7201},
		{"wstrFilter": `(NO_SUCH_ATTR = 1)`, "lMaxLifeTime": 10},
	} {
		r := c.call("HostGroup.FindHosts", bad)
		assert.Equal(t, int64(CodeBadParam), r.Get("PxgError.code").Int(), "%v", bad)
	}
}

func TestAccessorExpiryAndRelease(t *testing.T) {
	s, clk := startTest(t, Config{NotFoundCode: 4242})
	seed(s, 3)
	c := newWireClient(t, s)
	c.startSession()
	find := func() string {
		return c.ok("HostGroup.FindHosts", map[string]any{"wstrFilter": "", "vecFieldsToReturn": []string{"KLHST_WKS_DN"}, "lMaxLifeTime": 60}).Get("strAccessor").String()
	}
	acc := find()
	clk.Advance(59 * time.Second)
	c.ok("ChunkAccessor.GetItemsCount", map[string]any{"strAccessor": acc})
	clk.Advance(2 * time.Second)
	r := c.call("ChunkAccessor.GetItemsCount", map[string]any{"strAccessor": acc})
	assert.Equal(t, int64(4242), r.Get("PxgError.code").Int(), "expired by lifetime")

	acc = find()
	c.ok("ChunkAccessor.Release", map[string]any{"strAccessor": acc})
	r = c.call("ChunkAccessor.GetItemsChunk", map[string]any{"strAccessor": acc, "nStart": 0, "nCount": 1})
	assert.Equal(t, int64(4242), r.Get("PxgError.code").Int(), "released")

	acc = find()
	other := newWireClient(t, s)
	other.startSession()
	r = other.call("ChunkAccessor.GetItemsCount", map[string]any{"strAccessor": acc})
	assert.Equal(t, int64(4242), r.Get("PxgError.code").Int(), "accessor of another session")
}

func TestSessionTTL(t *testing.T) {
	s, clk := startTest(t, Config{SessionTTL: time.Minute})
	c := newWireClient(t, s)
	c.startSession()
	clk.Advance(50 * time.Second)
	c.ok("Session.Ping", map[string]any{}) // idle timer restarts
	clk.Advance(50 * time.Second)
	c.ok("Session.Ping", map[string]any{})
	clk.Advance(61 * time.Second)
	st, _ := c.raw("Session.Ping", map[string]any{}, nil)
	assert.Equal(t, http.StatusForbidden, st)
}

func TestHostProductsInfoAndRemove(t *testing.T) {
	s, _ := startTest(t, Config{})
	id := s.UpsertHost(Host{DisplayName: "svm-01", FQDN: "svm-01.lab", Products: []Product{
		{Key: "1103", Version: "1.0.0.0", ProdVersion: "15.1.0.20748"},
		{Key: "KSVLA_SVM", Version: "6.2.0.0", DisplayName: "Kaspersky Security for Virtualization Light Agent Protection Server", ProdVersion: "6.2.0.200"},
	}})
	c := newWireClient(t, s)
	c.startSession()

	r := c.ok("HostGroup.GetHostProducts", map[string]any{"strHostName": id})
	assert.Equal(t, "params", r.Get("PxgRetVal.KSVLA_SVM.type").String())
	assert.Equal(t, "6.2.0.200", r.Get("PxgRetVal.KSVLA_SVM.value.6\\.2\\.0\\.0.value.ProdVersion").String())
	assert.False(t, r.Get("PxgRetVal.1103.value.1\\.0\\.0\\.0.value.DisplayName").Exists())

	r = c.ok("HostGroup.GetHostInfo", map[string]any{"strHostName": id, "pFields2Return": []string{"KLHST_WKS_FQDN", "KLHST_WKS_GROUPID", "KLHST_WKS_DNSNAME"}})
	assert.Equal(t, "svm-01.lab", r.Get("PxgRetVal.KLHST_WKS_FQDN").String())
	assert.Equal(t, int64(s.GroupIDUnassigned()), r.Get("PxgRetVal.KLHST_WKS_GROUPID").Int())
	assert.False(t, r.Get("PxgRetVal.KLHST_WKS_DNSNAME").Exists())

	c.ok("HostGroup.RemoveHost", map[string]any{"strHostName": id})
	_, ok := s.Host(id)
	assert.False(t, ok)
	for _, m := range []string{"HostGroup.RemoveHost", "HostGroup.GetHostProducts", "HostGroup.GetHostInfo"} {
		r = c.call(m, map[string]any{"strHostName": id})
		assert.Equal(t, int64(DefaultNotFoundCode), r.Get("PxgError.code").Int(), m)
		assert.Contains(t, r.Get("PxgError.message").String(), id)
	}
}

func TestRemoveHostsVersions(t *testing.T) {
	for _, tc := range []struct {
		name          string
		ignored       bool
		force         bool
		wantManaged   bool // managed host still exists
		wantVersionID int64
	}{
		{"ksc15 force", false, true, false, 0x000F0000},
		{"ksc15 no force", false, false, true, 0x000F0000},
		{"ksc15.1 force ignored", true, true, true, 0x000F0100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := startTest(t, Config{RemoveHostsForceIgnored: tc.ignored})
			managed := s.UpsertHost(Host{DisplayName: "m", GroupID: s.GroupIDGroups()})
			unassigned := s.UpsertHost(Host{DisplayName: "u"})
			c := newWireClient(t, s)
			c.startSession()
			r := c.ok("HostGroup.GetStaticInfo", map[string]any{"pValues": []string{"KLADMSRV_SERVER_VERSION_ID", "KLADMSRV_PRODUCT_FULL_VERSION"}})
			assert.Equal(t, tc.wantVersionID, r.Get("PxgRetVal.KLADMSRV_SERVER_VERSION_ID").Int())

			c.ok("HostGroup.RemoveHosts", map[string]any{"pHostNames": []string{managed, unassigned, "no-such-host"}, "bForceDestroy": tc.force})
			_, ok := s.Host(unassigned)
			assert.False(t, ok, "hosts in Unassigned are always deleted")
			h, ok := s.Host(managed)
			require.Equal(t, tc.wantManaged, ok)
			if ok {
				assert.Equal(t, s.GroupIDUnassigned(), h.GroupID, "moved to Unassigned")
				c.ok("HostGroup.RemoveHosts", map[string]any{"pHostNames": []string{managed}, "bForceDestroy": false})
				_, ok = s.Host(managed)
				assert.False(t, ok, "second call deletes it")
			}
		})
	}
}

func TestGroupsAndAutoRemove(t *testing.T) {
	s, clk := startTest(t, Config{})
	c := newWireClient(t, s)
	c.startSession()
	root := c.ok("HostGroup.GroupIdGroups", map[string]any{}).Get("PxgRetVal").Int()
	unassigned := c.ok("HostGroup.GroupIdUnassigned", map[string]any{}).Get("PxgRetVal").Int()
	super := c.ok("HostGroup.GroupIdSuper", map[string]any{}).Get("PxgRetVal").Int()
	assert.Equal(t, []int64{int64(s.GroupIDGroups()), int64(s.GroupIDUnassigned()), int64(s.GroupIDSuper())}, []int64{root, unassigned, super})

	sub := c.ok("HostGroup.AddGroup", map[string]any{"pInfo": map[string]any{"name": "SVMs", "parentId": root}}).Get("PxgRetVal").Int()
	attrs := []string{"autoRemovePeriod", "notifyPeriod", "KLGRP_HlfInherited ", "name"}
	r := c.ok("HostGroup.GetGroupInfoEx", map[string]any{"nGroupId": sub, "pArrAttributes": attrs})
	assert.Equal(t, int64(60), r.Get("PxgRetVal.autoRemovePeriod").Int(), "inherited from the root")
	assert.True(t, r.Get(`PxgRetVal.KLGRP_HlfInherited `).Bool())

	c.ok("HostGroup.UpdateGroup", map[string]any{"nGroup": sub, "pInfo": map[string]any{"autoRemovePeriod": 2}})
	r = c.ok("HostGroup.GetGroupInfoEx", map[string]any{"nGroupId": sub, "pArrAttributes": attrs})
	assert.Equal(t, int64(2), r.Get("PxgRetVal.autoRemovePeriod").Int())
	assert.False(t, r.Get(`PxgRetVal.KLGRP_HlfInherited `).Bool())
	r = c.call("HostGroup.UpdateGroup", map[string]any{"nGroup": sub, "pInfo": map[string]any{"id": 5}})
	assert.Equal(t, int64(CodeBadParam), r.Get("PxgError.code").Int())

	stale := s.UpsertHost(Host{DisplayName: "old-svm", GroupID: int(sub), LastVisible: t0})
	fresh := s.UpsertHost(Host{DisplayName: "new-svm", GroupID: int(sub), LastVisible: t0})
	moved := s.UpsertHost(Host{DisplayName: "elsewhere", LastVisible: t0})
	c.ok("HostGroup.MoveHostsToGroup", map[string]any{"nGroup": root, "pHostNames": []string{moved}})
	r = c.call("HostGroup.MoveHostsToGroup", map[string]any{"nGroup": root, "pHostNames": []string{"ghost"}})
	assert.True(t, r.Get("PxgError").Exists())

	clk.Advance(47 * time.Hour)
	s.SetVisible(fresh, true)
	clk.Advance(2 * time.Hour) // stale: 49 h > 2 days
	rows := c.findAll(`(KLHST_WKS_GROUPID_GP = `+strconv.Itoa(s.GroupIDSuper())+`)`, []string{"KLHST_WKS_HOSTNAME"}, 10)
	var got []string
	for _, r := range rows {
		got = append(got, r.Get("KLHST_WKS_HOSTNAME").String())
	}
	assert.ElementsMatch(t, []string{fresh, moved}, got, "stale host deleted by autoRemovePeriod; root's 60 days keep the moved one")
	_, ok := s.Host(stale)
	assert.False(t, ok)

	r = c.ok("HostGroup.FindGroups", map[string]any{"wstrFilter": `(name = "SVMs")`, "vecFieldsToReturn": []string{"id", "grp_full_name"}, "lMaxLifeTime": 10})
	assert.Equal(t, int64(1), r.Get("PxgRetVal").Int())
}

func TestTasks(t *testing.T) {
	s, _ := startTest(t, Config{})
	release := make(chan struct{})
	okID := s.AddTask("Update databases", func(ctx context.Context, progress func(int)) error {
		progress(40)
		<-release
		return nil
	})
	failID := s.AddTask("Activate application", func(context.Context, func(int)) error { return errors.New("licence key rejected") })
	c := newWireClient(t, s)
	c.startSession()
	root := c.ok("HostGroup.GroupIdGroups", map[string]any{}).Get("PxgRetVal").Int()

	it := c.ok("Tasks.ResetTasksIterator", map[string]any{"nGroupId": root, "bGroupIdSignificant": true, "bIncludeSupergroups": true}).Get("strTaskIteratorId").String()
	found := map[string]string{}
	for {
		d := c.ok("Tasks.GetNextTask", map[string]any{"strTaskIteratorId": it}).Get("pTaskData")
		if len(d.Map()) == 0 {
			break
		}
		assert.Equal(t, "params", d.Get("TASK_INFO_PARAMS.type").String())
		found[d.Get("TASK_INFO_PARAMS.value.DisplayName").String()] = d.Get("TASK_UNIQUE_ID").String()
	}
	c.ok("Tasks.ReleaseTasksIterator", map[string]any{"strTaskIteratorId": it})
	assert.Equal(t, map[string]string{"Update databases": okID, "Activate application": failID}, found)

	stat := func(id string) gjson.Result {
		return c.ok("Tasks.GetTaskStatistics", map[string]any{"strTask": id}).Get("PxgRetVal")
	}
	assert.Equal(t, int64(1), stat(okID).Get("32").Int(), "scheduled before the first run")
	c.ok("Tasks.RunTask", map[string]any{"strTask": okID})
	c.ok("Tasks.RunTask", map[string]any{"strTask": failID})
	require.Eventually(t, func() bool { return stat(okID).Get("GNRL_COMPLETED_PERCENT").Int() == 40 }, 2*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(1), stat(okID).Get("2").Int(), "running")
	close(release)
	require.Eventually(t, func() bool { return stat(okID).Get("4").Int() == 1 }, 2*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return stat(failID).Get("16").Int() == 1 }, 2*time.Second, 5*time.Millisecond)
	assert.Equal(t, "licence key rejected", stat(failID).Get("KLLAB_TASK_ERROR").String())

	r := c.ok("Tasks.GetTask", map[string]any{"strTask": okID})
	assert.Equal(t, "Update databases", r.Get("PxgRetVal.DisplayName").String())
	assert.Equal(t, "datetime", r.Get("PxgRetVal.PRTS_TASK_CREATION_DATE.type").String())
	assert.True(t, c.call("Tasks.RunTask", map[string]any{"strTask": "999"}).Get("PxgError").Exists())
}

func TestBusyRestartAndCert(t *testing.T) {
	var busy atomic.Bool
	s, _ := startTest(t, Config{Busy: busy.Load})
	id := s.UpsertHost(Host{DisplayName: "keep-me"})
	c := newWireClient(t, s)
	c.startSession()
	busy.Store(true)
	st, _ := c.raw("Session.Ping", map[string]any{}, nil)
	assert.Equal(t, http.StatusServiceUnavailable, st)
	busy.Store(false)

	url, fp := s.URL(), s.Fingerprint()
	require.NoError(t, s.Restart())
	// A restart cuts connections; a POST on the dead keep-alive connection
	// would fail with EOF (net/http does not replay POSTs), so start afresh.
	c.hc.CloseIdleConnections()
	assert.Equal(t, url, s.URL())
	assert.Equal(t, fp, s.Fingerprint())
	assert.Regexp(t, `^([0-9A-F]{2}:){31}[0-9A-F]{2}$`, fp)
	st, _ = c.raw("Session.Ping", map[string]any{}, nil)
	assert.Equal(t, http.StatusUnauthorized, st, "sessions dropped by restart")
	c.startSession()
	c.ok("HostGroup.GetHostInfo", map[string]any{"strHostName": id, "pFields2Return": []string{"KLHST_WKS_DN"}})
	pem, err := os.ReadFile(s.CertFile())
	require.NoError(t, err)
	assert.Equal(t, s.CertPEM(), pem)
}

// TestCurl drives the server with curl --cacert, as an operator would,
// proving the wire format is plain HTTPS+JSON and the written cert verifies.
func TestCurl(t *testing.T) {
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		t.Skip("curl not installed")
	}
	s, _ := startTest(t, Config{})
	ids := seed(s, 5)
	dir := t.TempDir()
	// The Authorization header goes through a file so the password never
	// shows in curl's argument list.
	authFile := filepath.Join(dir, "auth")
	require.NoError(t, os.WriteFile(authFile, []byte("Authorization: "+basicAuth(testUser, testPass)+"\n"), 0o600))

	curl := func(method, body string, hdr ...string) (int, gjson.Result) {
		t.Helper()
		args := []string{"-sS", "--cacert", s.CertFile(), "-X", "POST", "-H", "Content-Type: application/json",
			"-d", body, "-w", "\n%{http_code}"}
		for _, h := range hdr {
			args = append(args, "-H", h)
		}
		args = append(args, s.URL()+"/api/v1.0/"+method)
		out, err := exec.Command("/usr/bin/curl", args...).CombinedOutput()
		require.NoError(t, err, string(out))
		text := strings.TrimSpace(string(out))
		i := strings.LastIndex(text, "\n") // -w puts the status on the last line
		st, err := strconv.Atoi(text[i+1:])
		require.NoError(t, err, text)
		return st, gjson.Parse(text[:max(i, 0)])
	}

	st, r := curl("Session.StartSession", "{}", "@"+authFile)
	require.Equal(t, http.StatusOK, st)
	sess := "X-KSC-Session: " + r.Get("PxgRetVal").String()

	st, r = curl("HostGroup.FindHosts", `{"wstrFilter":"(&(KLHST_WKS_DN=\"vm-?\")(!(KLHST_WKS_DN=\"vm-[d-z]\")))","vecFieldsToReturn":["KLHST_WKS_HOSTNAME"],"lMaxLifeTime":100}`, sess)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, int64(3), r.Get("PxgRetVal").Int())
	acc := r.Get("strAccessor").String()
	var got []string
	for start := 0; start < 3; start += 2 {
		_, ch := curl("ChunkAccessor.GetItemsChunk", `{"strAccessor":"`+acc+`","nStart":`+string(rune('0'+start))+`,"nCount":2}`, sess)
		for _, row := range ch.Get("pChunk.KLCSP_ITERATOR_ARRAY.#.value.KLHST_WKS_HOSTNAME").Array() {
			got = append(got, row.String())
		}
	}
	assert.ElementsMatch(t, ids[:3], got)
	_, _ = curl("ChunkAccessor.Release", `{"strAccessor":"`+acc+`"}`, sess)

	_, r = curl("HostGroup.GetHostProducts", `{"strHostName":"`+ids[0]+`"}`, sess)
	assert.Equal(t, "15.1.0.20748", r.Get(`PxgRetVal.1103.value.1\.0\.0\.0.value.ProdVersion`).String())
	_, r = curl("HostGroup.RemoveHost", `{"strHostName":"`+ids[0]+`"}`, sess)
	assert.False(t, r.Get("PxgError").Exists(), r.Raw)
	st, r = curl("HostGroup.RemoveHost", `{"strHostName":"`+ids[0]+`"}`, sess)
	assert.Equal(t, http.StatusOK, st)
	assert.Equal(t, int64(DefaultNotFoundCode), r.Get("PxgError.code").Int())

	_, _ = curl("Session.EndSession", "{}", sess)
	st, _ = curl("Session.Ping", "{}", sess)
	assert.Equal(t, http.StatusForbidden, st)
}

// A crash in the middle of a call: no answer, the server down for a
// while, then back with every session gone; the call's change is kept
// only when it crashed after serving it.
func TestCrashOn(t *testing.T) {
	for name, tc := range map[string]struct {
		at      CrashPoint
		removed bool
	}{
		"before serving": {at: CrashBeforeServe, removed: false},
		"after serving":  {at: CrashAfterServe, removed: true},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := startTest(t, Config{})
			id := s.UpsertHost(Host{DisplayName: "crash-me"})
			c := newWireClient(t, s)
			c.startSession()
			s.CrashOn("HostGroup.RemoveHost", 1, tc.at, 300*time.Millisecond)

			req, err := http.NewRequest(http.MethodPost, c.base+"/api/v1.0/HostGroup.RemoveHost",
				strings.NewReader(`{"strHostName":"`+id+`"}`))
			require.NoError(t, err)
			req.Header.Set("X-KSC-Session", c.session)
			_, err = c.hc.Do(req)
			require.Error(t, err, "no answer")
			_, err = net.DialTimeout("tcp", strings.TrimPrefix(s.URL(), "https://"), time.Second)
			require.Error(t, err, "down right after the crash")

			require.Eventually(t, func() bool {
				conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL(), "https://"), time.Second)
				if err == nil {
					_ = conn.Close()
				}
				return err == nil
			}, 5*time.Second, 50*time.Millisecond, "back after the down time")
			c.hc.CloseIdleConnections()
			st, _ := c.raw("Session.Ping", map[string]any{}, nil)
			assert.Equal(t, http.StatusUnauthorized, st, "sessions dropped by the crash")
			_, still := s.Host(id)
			assert.Equal(t, !tc.removed, still)
		})
	}
}
