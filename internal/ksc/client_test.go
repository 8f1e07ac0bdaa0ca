package ksc

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ksvla/lightagent/internal/ksc/filter"
	"github.com/ksvla/lightagent/internal/sim/kscsim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	user = "svc-ksvla"
	pass = "Pa55-w0rd!"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func init() { busyBackoff = time.Millisecond } // keep 503 tests fast

func lab(t *testing.T, cfg kscsim.Config) (*kscsim.Server, *kscsim.ManualClock) {
	t.Helper()
	clk := kscsim.NewManualClock(t0)
	cfg.Clock, cfg.Username, cfg.Password, cfg.CertDir = clk, user, pass, t.TempDir()
	s, err := kscsim.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

func client(t *testing.T, s *kscsim.Server, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{URL: s.URL(), Username: user, Password: pass, Internal: true, ValidateCerts: true, CAFile: s.CertFile(), Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func seed(s *kscsim.Server, n int) map[string]bool {
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		ids[s.UpsertHost(kscsim.Host{DisplayName: "vm-" + string(rune('a'+i%26)), GroupID: s.GroupIDGroups(),
			Status: kscsim.StatusVisible, LastVisible: t0})] = true
	}
	return ids
}

func idsOf(rows []Params) map[string]bool {
	got := map[string]bool{}
	for _, r := range rows {
		got[r.Str("KLHST_WKS_HOSTNAME")] = true
	}
	return got
}

func TestLoginModes(t *testing.T) {
	for _, mode := range []string{LoginSession, LoginBasic} {
		t.Run(mode, func(t *testing.T) {
			s, _ := lab(t, kscsim.Config{VServer: "tenant"})
			want := seed(s, 3)
			c := client(t, s, func(c *Config) { c.LoginMode = mode; c.VServer = "tenant" })
			ctx := context.Background()
			require.NoError(t, c.Login(ctx))
			rows, err := c.FindHosts(ctx, string(filter.BitSet("KLHST_WKS_STATUS", 1)), []string{"KLHST_WKS_HOSTNAME", "KLHST_WKS_DN"})
			require.NoError(t, err)
			assert.Equal(t, want, idsOf(rows))
			g, err := c.GroupIDGroups(ctx)
			require.NoError(t, err)
			assert.Equal(t, s.GroupIDGroups(), g)
			require.NoError(t, c.Close(ctx))
			calls := s.Calls()
			assert.Equal(t, 1, calls["Session.EndSession"])
			if mode == LoginBasic {
				assert.Equal(t, 1, calls["login"])
				assert.Zero(t, calls["Session.StartSession"])
			} else {
				assert.Equal(t, 1, calls["Session.StartSession"])
				assert.Zero(t, calls["login"])
			}
		})
	}
}

func TestBadCredentialsKeepPasswordSecret(t *testing.T) {
	s, _ := lab(t, kscsim.Config{})
	c := client(t, s, func(c *Config) { c.Password = "not-the-Pa55" })
	err := c.Login(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "401")
	assert.NotContains(t, err.Error(), "not-the-Pa55")
}

// A refused login names the options to check, for the kind of account configured.
func TestLoginRefusedNamesTheOptions(t *testing.T) {
	s, _ := lab(t, kscsim.Config{VServer: "tenant"})
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"wrong password", func(c *Config) { c.Password = "not-the-Pa55" },
			`HTTP 401: .* \(KSC refused the credentials: check options ksc_username \("svc-ksvla"\) and ksc_password, that the account is a KSC internal user \(option ksc_internal_user: true\), and that it is not locked out\)$`},
		{"wrong user, domain account, virtual server", func(c *Config) { c.Username, c.Internal, c.VServer = "nobody", false, "tenant" },
			`HTTP 401: .* \(KSC refused the credentials: check options ksc_username \("nobody"\) and ksc_password, that the account is a domain or OS account \(option ksc_internal_user: false\) of virtual server "tenant" \(option ksc_vserver\), and that it is not locked out\)$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := client(t, s, tc.mod).Login(context.Background())
			require.Error(t, err)
			assert.Regexp(t, tc.want, err.Error())
			assert.NotContains(t, err.Error(), "not-the-Pa55")
		})
	}
}

func TestTLSTrust(t *testing.T) {
	s, _ := lab(t, kscsim.Config{})
	fp := s.Fingerprint()
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"pin with colons", func(c *Config) { c.CAFile, c.Fingerprint = "", fp }, ""},
		{"pin lower case without colons", func(c *Config) {
			c.CAFile, c.Fingerprint = "", strings.ToLower(strings.ReplaceAll(fp, ":", ""))
		}, ""},
		{"wrong pin", func(c *Config) { c.CAFile, c.Fingerprint = "", strings.Repeat("ab", 32) },
			"does not match the pinned one (the certificate is not the one option ksc_fingerprint pins"},
		{"ca file", nil, ""},
		{"unknown cert without CA", func(c *Config) { c.CAFile = "" },
			"(certificate not trusted: set option ksc_ca_file to the Administration Server's certificate, klserver.cer, or ksc_fingerprint to its SHA-256 fingerprint; ksc_validate_certs: false only in a lab)"},
		{"explicitly insecure", func(c *Config) { c.CAFile, c.ValidateCerts = "", false }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client(t, s, tc.mod)
			err := c.Login(context.Background())
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
	_, err := New(Config{URL: s.URL(), Username: user, Fingerprint: "zz"})
	assert.ErrorContains(t, err, "fingerprint")
	_, err = New(Config{URL: "http://" + strings.TrimPrefix(s.URL(), "https://"), Username: user})
	assert.ErrorContains(t, err, "https")
}

func TestPagingCountsRoundTrips(t *testing.T) {
	s, _ := lab(t, kscsim.Config{})
	want := seed(s, 23)
	for _, tc := range []struct{ page, chunks int }{{1, 23}, {5, 5}, {23, 1}, {500, 1}} {
		c := client(t, s, func(c *Config) { c.PageSize = tc.page })
		require.NoError(t, c.Login(context.Background()))
		s.ResetCalls()
		rows, err := c.FindHosts(context.Background(), "", []string{"KLHST_WKS_HOSTNAME"})
		require.NoError(t, err)
		assert.Equal(t, want, idsOf(rows), "page size %d", tc.page)
		calls := s.Calls()
		assert.Equal(t, map[string]int{"HostGroup.FindHosts": 1, "ChunkAccessor.GetItemsCount": 1,
			"ChunkAccessor.GetItemsChunk": tc.chunks, "ChunkAccessor.Release": 1}, calls, "page size %d", tc.page)
	}
}

func TestSessionExpiryMidPagingRecovered(t *testing.T) {
	var chunks atomic.Int32
	var clk *kscsim.ManualClock
	s, clk := lab(t, kscsim.Config{SessionTTL: time.Minute, Hook: func(m string) {
		if m == "ChunkAccessor.GetItemsChunk" && chunks.Add(1) == 2 {
			clk.Advance(2 * time.Minute) // the session idles out between pages
		}
	}})
	want := seed(s, 10)
	c := client(t, s, func(c *Config) { c.PageSize = 3 })
	rows, err := c.FindHosts(context.Background(), "", []string{"KLHST_WKS_HOSTNAME"})
	require.NoError(t, err)
	assert.Equal(t, want, idsOf(rows))
	calls := s.Calls()
	assert.Equal(t, 2, calls["Session.StartSession"], "logged in again")
	assert.Equal(t, 2, calls["HostGroup.FindHosts"], "query re-run on the new session")
}

func TestServerRestartRecovered(t *testing.T) {
	s, _ := lab(t, kscsim.Config{})
	want := seed(s, 4)
	c := client(t, s, nil)
	_, err := c.FindHosts(context.Background(), "", nil)
	require.NoError(t, err)
	require.NoError(t, s.Restart())
	rows, err := c.FindHosts(context.Background(), "", []string{"KLHST_WKS_HOSTNAME"})
	require.NoError(t, err)
	assert.Equal(t, want, idsOf(rows))
}

func TestBusyRetried(t *testing.T) {
	var busy atomic.Int32
	s, _ := lab(t, kscsim.Config{Busy: func() bool { return busy.Add(-1) >= 0 }})
	c := client(t, s, nil)
	busy.Store(2)
	_, err := c.GroupIDUnassigned(context.Background())
	require.NoError(t, err, "two 503s are retried")
	busy.Store(100)
	_, err = c.GroupIDUnassigned(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "503")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	busy.Store(100)
	_, err = c.GroupIDUnassigned(ctx)
	require.Error(t, err, "a cancelled context stops at once")
}

func TestPxgErrorAndRemoval(t *testing.T) {
	s, _ := lab(t, kscsim.Config{NotFoundCode: 777, RemoveHostsForceIgnored: true, ServerVersion: "16.0.0.100"})
	ctx := context.Background()
	c := client(t, s, nil)
	err := c.RemoveHost(ctx, "no-such-host")
	var p *PxgError
	require.ErrorAs(t, err, &p)
	assert.Equal(t, 777, p.Code)
	assert.Equal(t, "KLSTD", p.Module)
	assert.Equal(t, "HostGroup.RemoveHost", p.Method)
	assert.Contains(t, err.Error(), "HostGroup.RemoveHost: KLSTD error 777")

	v, err := c.ServerVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, ServerVersion{ID: VersionKSC16, Full: "16.0.0.100"}, v)
	assert.True(t, v.ForceDestroyIgnored())

	id := s.UpsertHost(kscsim.Host{DisplayName: "svm-old", GroupID: s.GroupIDGroups(), Products: []kscsim.Product{
		{Key: "KSVLA_SVM", Version: "6.2.0.0", DisplayName: "Protection Server", ProdVersion: "6.2.0.200"},
		{Key: "1103", Version: "1.0.0.0"},
	}})
	prods, err := c.GetHostProducts(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, []Product{{Key: "1103", Version: "1.0.0.0"},
		{Key: "KSVLA_SVM", Version: "6.2.0.0", DisplayName: "Protection Server", ProdVersion: "6.2.0.200"}}, prods)
	info, err := c.GetHostInfo(ctx, id, []string{"KLHST_WKS_DN", "KLHST_WKS_CREATED"})
	require.NoError(t, err)
	assert.Equal(t, "svm-old", info.Str("KLHST_WKS_DN"))
	created, ok := info.Time("KLHST_WKS_CREATED")
	assert.True(t, ok)
	assert.Equal(t, t0, created)

	require.NoError(t, c.RemoveHosts(ctx, []string{id}, true))
	h, ok := s.Host(id)
	require.True(t, ok, "KSC 16 ignores bForceDestroy and only moves the host")
	un, err := c.GroupIDUnassigned(ctx)
	require.NoError(t, err)
	assert.Equal(t, un, h.GroupID)
	require.NoError(t, c.RemoveHosts(ctx, []string{id}, false))
	_, ok = s.Host(id)
	assert.False(t, ok)
}

func TestGroups(t *testing.T) {
	s, _ := lab(t, kscsim.Config{})
	ctx := context.Background()
	c := client(t, s, nil)
	root, err := c.GroupIDGroups(ctx)
	require.NoError(t, err)
	sub := s.AddGroup("SVMs", root)
	gi, err := c.GetGroupInfo(ctx, sub)
	require.NoError(t, err)
	assert.Equal(t, GroupInfo{Name: "SVMs", AutoRemovePeriod: 60, NotifyPeriod: 7, Inherited: true}, gi)
	require.NoError(t, c.UpdateGroup(ctx, sub, map[string]any{"autoRemovePeriod": 3}))
	gi, err = c.GetGroupInfo(ctx, sub)
	require.NoError(t, err)
	assert.Equal(t, GroupInfo{Name: "SVMs", AutoRemovePeriod: 3, NotifyPeriod: 7}, gi, "notifyPeriod kept when inheritance breaks")

	id := s.UpsertHost(kscsim.Host{DisplayName: "x"})
	require.NoError(t, c.MoveHostsToGroup(ctx, sub, []string{id}))
	h, _ := s.Host(id)
	assert.Equal(t, sub, h.GroupID)
	groups, err := c.FindGroups(ctx, string(filter.Eq("name", "SVMs")), []string{"id"})
	require.NoError(t, err)
	require.Len(t, groups, 1)
	gid, _ := groups[0].Int("id")
	assert.Equal(t, int64(sub), gid)
}

func TestFilterValuesCannotChangeStructure(t *testing.T) {
	s, _ := lab(t, kscsim.Config{})
	hostile := `x") (|(KLHST_WKS_DN = "*`
	target := s.UpsertHost(kscsim.Host{DisplayName: hostile})
	s.UpsertHost(kscsim.Host{DisplayName: "innocent"})
	star := s.UpsertHost(kscsim.Host{DisplayName: "svm-*"})
	s.UpsertHost(kscsim.Host{DisplayName: "svm-01"})
	c := client(t, s, nil)
	for name, want := range map[string]string{hostile: target, "svm-*": star} {
		rows, err := c.FindHosts(context.Background(), string(filter.And(filter.Eq("KLHST_WKS_DN", name), filter.All)), []string{"KLHST_WKS_HOSTNAME"})
		require.NoError(t, err)
		assert.Equal(t, map[string]bool{want: true}, idsOf(rows), name)
	}
	rows, err := c.FindHosts(context.Background(), string(filter.Like("KLHST_WKS_DN", "svm-*")), []string{"KLHST_WKS_HOSTNAME"})
	require.NoError(t, err)
	assert.Len(t, rows, 2, "Like keeps wildcards")
}

func TestTasks(t *testing.T) {
	s, _ := lab(t, kscsim.Config{})
	ctx := context.Background()
	release := make(chan struct{})
	id := s.AddTask("Update databases of the Protection Server", func(ctx context.Context, progress func(int)) error {
		progress(50)
		<-release
		return nil
	})
	s.AddTask("Dup", nil)
	s.AddTask("Dup", nil)
	c := client(t, s, nil)
	got, err := c.FindTask(ctx, "Update databases of the Protection Server")
	require.NoError(t, err)
	assert.Equal(t, id, got)
	_, err = c.FindTask(ctx, "nope")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = c.FindTask(ctx, "Dup")
	assert.ErrorContains(t, err, "2 tasks")
	assert.Equal(t, s.Calls()["Tasks.ResetTasksIterator"], s.Calls()["Tasks.ReleaseTasksIterator"], "iterators released")

	st, err := c.TaskState(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, TaskState{Scheduled: 1}, st)
	require.NoError(t, c.RunTask(ctx, id))
	require.Eventually(t, func() bool { st, err = c.TaskState(ctx, id); return err == nil && st.Percent == 50 }, 2*time.Second, 5*time.Millisecond)
	assert.False(t, st.Done())
	close(release)
	require.Eventually(t, func() bool { st, err = c.TaskState(ctx, id); return err == nil && st.Done() }, 2*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1, st.Completed)
	err = c.RunTask(ctx, "9999")
	var p *PxgError
	assert.True(t, errors.As(err, &p))
}

// A server that crashes in the middle of a call and is back 150 ms later.
// Reads (here a page of FindHosts) are repeated with the 503 backoff, log
// in again and rerun the query: same rows whether the page was served or
// not. A removal is not repeated: it fails with ErrInterrupted, having run
// or not, and a check afterwards tells which.
func TestServerCrashMidCall(t *testing.T) {
	old := busyBackoff
	busyBackoff = 50 * time.Millisecond // retries at 50, 150, 350 ms: the first meets the server down
	t.Cleanup(func() { busyBackoff = old })
	for name, tc := range map[string]struct {
		method string
		at     kscsim.CrashPoint
	}{
		"page read, before serving":  {"ChunkAccessor.GetItemsChunk", kscsim.CrashBeforeServe},
		"page read, after serving":   {"ChunkAccessor.GetItemsChunk", kscsim.CrashAfterServe},
		"removal, before serving it": {"HostGroup.RemoveHost", kscsim.CrashBeforeServe},
		"removal, after serving it":  {"HostGroup.RemoveHost", kscsim.CrashAfterServe},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := lab(t, kscsim.Config{})
			want := seed(s, 10)
			c := client(t, s, func(c *Config) { c.PageSize = 3 })
			ctx := context.Background()
			s.CrashOn(tc.method, 2, tc.at, 150*time.Millisecond)

			if tc.method == "ChunkAccessor.GetItemsChunk" {
				rows, err := c.FindHosts(ctx, "", []string{"KLHST_WKS_HOSTNAME"})
				require.NoError(t, err)
				assert.Equal(t, want, idsOf(rows))
				calls := s.Calls()
				assert.Equal(t, 2, calls["Session.StartSession"], "logged in again after the restart")
				assert.Equal(t, 2, calls["HostGroup.FindHosts"], "query re-run on the new session")
				return
			}
			var ids []string
			for id := range want {
				ids = append(ids, id)
			}
			require.NoError(t, c.RemoveHost(ctx, ids[0]), "the first removal goes through")
			err := c.RemoveHost(ctx, ids[1])
			require.ErrorIs(t, err, ErrInterrupted)
			assert.Contains(t, err.Error(), "remove host "+ids[1]+": ksc HostGroup.RemoveHost: connection lost after the call was sent")
			assert.Equal(t, 2, s.Calls()["HostGroup.RemoveHost"], "not repeated")
			_, still := s.Host(ids[1])
			assert.Equal(t, tc.at == kscsim.CrashBeforeServe, still)
			rows, err := c.FindHosts(ctx, "", []string{"KLHST_WKS_HOSTNAME"})
			require.NoError(t, err, "reads go on once the server is back")
			left := len(want) - 1
			if !still {
				left--
			}
			assert.Len(t, rows, left)
		})
	}
}

// Which transport errors are retried: a refused connection never reached
// the server (any call may be repeated); a reset or an early EOF may come
// after the server ran the call (only reads are repeated); certificate
// errors and timeouts would only happen again.
func TestConnectionErrorClasses(t *testing.T) {
	dial := &url.Error{Op: "Post", URL: "https://ksc", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	reset := &url.Error{Op: "Post", URL: "https://ksc", Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	eof := &url.Error{Op: "Post", URL: "https://ksc", Err: io.EOF}
	cert := &url.Error{Op: "Post", URL: "https://ksc", Err: x509.UnknownAuthorityError{}}
	timeout := &url.Error{Op: "Post", URL: "https://ksc", Err: context.DeadlineExceeded}
	for name, tc := range map[string]struct {
		err              error
		lost, neverThere bool
	}{
		"refused":      {dial, true, true},
		"reset":        {reset, true, false},
		"EOF":          {eof, true, false},
		"bad cert":     {cert, false, false},
		"timeout":      {timeout, false, false},
		"wrapped EOF":  {fmt.Errorf("ksc X: %w", eof), true, false},
		"wrapped dial": {fmt.Errorf("ksc X: %w", dial), true, true},
		"idle closed":  {&url.Error{Op: "Post", URL: "https://ksc", Err: errors.New("http: server closed idle connection")}, true, false},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.lost, connLost(tc.err), "connLost")
			assert.Equal(t, tc.neverThere, notSent(tc.err), "notSent")
		})
	}
}

func TestActivated(t *testing.T) {
	for name, tc := range map[string]struct {
		row  Params
		want bool
	}{
		"no status condition":            {Params{AttrStatusMask: mustValue(t, `0`)}, true},
		"other conditions only":          {Params{AttrStatusMask: mustValue(t, `128`)}, true},
		"licence expired":                {Params{AttrStatusMask: mustValue(t, `512`)}, false},
		"licence expired and old bases":  {Params{AttrStatusMask: mustValue(t, `640`)}, false},
		"mask missing counts as unknown": {Params{}, false},
	} {
		assert.Equal(t, tc.want, HostOf(tc.row).Activated, name)
	}
}

// FindHostRecords decodes every attribute of HostFields as the server
// sends it (numbers, datetimes, the IP as a long), and leaves absent ones
// zero.
func TestFindHostRecords(t *testing.T) {
	s, _ := lab(t, kscsim.Config{})
	seen, bases := t0.Add(-time.Hour), t0.Add(-48*time.Hour)
	full := s.UpsertHost(kscsim.Host{DisplayName: "svm-a", DNSName: "svm-a", FQDN: "svm-a.lab.local", IP: "10.1.2.3",
		GroupID: s.GroupIDGroups(), Status: kscsim.StatusVisible | kscsim.StatusNagentAlive, LastVisible: seen, Created: t0.Add(-72 * time.Hour),
		OSName: "Linux", BasesTime: bases,
		Products: []kscsim.Product{{Key: "KSVLA_SVM", Version: "6.2.0.0", ProdVersion: "6.2.0.200"}}})
	bare := s.UpsertHost(kscsim.Host{FQDN: "bare.lab.local", StatusMask: StatusMaskLicence})
	c := client(t, s, nil)
	hs, err := c.FindHostRecords(context.Background(), filter.All.String())
	require.NoError(t, err)
	got := map[string]Host{}
	for _, h := range hs {
		got[h.ID] = h
	}
	require.Len(t, got, 2)
	un, err := c.GroupIDUnassigned(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Host{ID: full, DisplayName: "svm-a", DNSName: "svm-a", FQDN: "svm-a.lab.local", IP: "10.1.2.3",
		GroupID: s.GroupIDGroups(), Visible: true, LastVisible: seen, Created: t0.Add(-72 * time.Hour), OS: "Linux",
		Activated: true, BasesTime: bases, AppVersion: "6.2.0.200"}, got[full])
	assert.Equal(t, "svm-a", got[full].Label())
	b := got[bare]
	assert.Equal(t, Host{ID: bare, FQDN: "bare.lab.local", GroupID: un, Created: b.Created}, b, "not visible, not activated, no version")
	assert.Equal(t, "bare.lab.local", b.Label())

	n, err := IPLong(" 10.1.2.3 ")
	require.NoError(t, err)
	assert.Equal(t, int64(10<<24|1<<16|2<<8|3), n)
	_, err = IPLong("10.1.2")
	assert.EqualError(t, err, `"10.1.2" is not an IPv4 address`)
}

func mustValue(t *testing.T, raw string) Value {
	t.Helper()
	var v Value
	require.NoError(t, json.Unmarshal([]byte(raw), &v))
	return v
}
