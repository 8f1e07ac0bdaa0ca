package kscsim

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

const (
	testUser = "api-user"
	testPass = "s3cret!"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func startTest(t *testing.T, cfg Config) (*Server, *ManualClock) {
	t.Helper()
	clk := NewManualClock(t0)
	if cfg.Clock == nil {
		cfg.Clock = clk
	}
	cfg.Username, cfg.Password = testUser, testPass
	if cfg.CertDir == "" {
		cfg.CertDir = t.TempDir()
	}
	s, err := Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

// wireClient is a raw OpenAPI caller pinned to the simulator's certificate.
type wireClient struct {
	t       *testing.T
	hc      *http.Client
	base    string
	session string
}

func newWireClient(t *testing.T, s *Server) *wireClient {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(s.CertPEM()))
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxConnsPerHost: 1,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &wireClient{t: t, hc: &http.Client{Transport: tr, Timeout: 5 * time.Second}, base: s.URL()}
}

func basicAuth(user, pass string) string {
	b64 := base64.StdEncoding.EncodeToString
	return `KSCBasic user="` + b64([]byte(user)) + `", pass="` + b64([]byte(pass)) + `", internal="1"`
}

// raw posts body to method with extra headers and returns status and body.
func (c *wireClient) raw(method string, body any, hdr map[string]string) (int, []byte) {
	c.t.Helper()
	b, err := json.Marshal(body)
	require.NoError(c.t, err)
	req, err := http.NewRequest(http.MethodPost, c.base+"/api/v1.0/"+method, bytes.NewReader(b))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	if c.session != "" {
		req.Header.Set("X-KSC-Session", c.session)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, out
}

func (c *wireClient) startSession() {
	c.t.Helper()
	st, body := c.raw("Session.StartSession", map[string]any{}, map[string]string{"Authorization": basicAuth(testUser, testPass)})
	require.Equal(c.t, http.StatusOK, st, string(body))
	c.session = gjson.GetBytes(body, "PxgRetVal").String()
	require.Regexp(c.t, `^ns[A-Za-z0-9+/]+==$`, c.session)
}

// call posts and requires HTTP 200; it returns the parsed body.
func (c *wireClient) call(method string, body any) gjson.Result {
	c.t.Helper()
	st, out := c.raw(method, body, nil)
	require.Equal(c.t, http.StatusOK, st, string(out))
	return gjson.ParseBytes(out)
}

// ok calls and requires no PxgError.
func (c *wireClient) ok(method string, body any) gjson.Result {
	c.t.Helper()
	r := c.call(method, body)
	require.False(c.t, r.Get("PxgError").Exists(), r.Raw)
	return r
}

// findAll runs FindHosts and pages through it with the given page size.
func (c *wireClient) findAll(filter string, fields []string, page int) []gjson.Result {
	c.t.Helper()
	r := c.ok("HostGroup.FindHosts", map[string]any{"wstrFilter": filter, "vecFieldsToReturn": fields, "lMaxLifeTime": 100})
	acc := r.Get("strAccessor").String()
	n := int(c.ok("ChunkAccessor.GetItemsCount", map[string]any{"strAccessor": acc}).Get("PxgRetVal").Int())
	require.Equal(c.t, r.Get("PxgRetVal").Int(), int64(n))
	var rows []gjson.Result
	for start := 0; start < n; start += page {
		ch := c.ok("ChunkAccessor.GetItemsChunk", map[string]any{"strAccessor": acc, "nStart": start, "nCount": page})
		for _, it := range ch.Get("pChunk.KLCSP_ITERATOR_ARRAY").Array() {
			require.Equal(c.t, "params", it.Get("type").String(), it.Raw)
			rows = append(rows, it.Get("value"))
		}
	}
	c.ok("ChunkAccessor.Release", map[string]any{"strAccessor": acc})
	return rows
}
