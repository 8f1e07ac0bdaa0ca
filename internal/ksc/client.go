// Package ksc is the Kaspersky Security Center OpenAPI client the modules
// use: session handling over one reusable HTTPS client, typed values,
// paged host searches, host products, removal, groups and tasks.
//
// Wire facts come from the KSC OpenAPI reference
// (https://support.kaspersky.com/help/KSC/16/KSCAPI/index.html).
package ksc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Login modes.
const (
	// LoginSession uses Session.StartSession and sends the session id in
	// X-KSC-Session on every call (the default: survives reconnects).
	LoginSession = "session"
	// LoginBasic uses POST /login, which binds the session to the TCP/TLS
	// connection: one connection, calls serialised.
	LoginBasic = "basic"
)

// Config says how to reach and trust one Administration Server.
type Config struct {
	URL      string // https://ksc.example:13299
	Username string
	Password string
	Internal bool   // a KSC internal user (internal="1") rather than an OS/domain user
	Domain   string // sent as given (KlAkOAPI does not base64 it)
	VServer  string // virtual server name, sent base64 in X-KSC-VServer
	CAFile   string // PEM or DER certificate(s) to trust, e.g. klserver.cer
	// Fingerprint pins the server's leaf certificate by SHA-256, with or
	// without colons, any case. It replaces CA and hostname checks, for
	// self-signed klserver.cer whose names don't match the URL.
	Fingerprint string
	// ValidateCerts must be true unless the caller explicitly asked for an
	// insecure connection; callers default it to true. A pin or CA file is
	// used whenever set.
	ValidateCerts bool
	Timeout       time.Duration // per HTTP request; 0 = 60s
	PageSize      int           // rows per GetItemsChunk; 0 = 500
	LoginMode     string        // LoginSession (default) or LoginBasic
}

const (
	defaultTimeout  = 60 * time.Second
	defaultPageSize = 500
	// busyRetries bounds retries of HTTP 503 (server busy) and of calls
	// cut by a restarting server.
	busyRetries = 4
)

// busyBackoff is the first wait after a 503 or a lost connection; it
// doubles. A variable so tests can shorten it.
var busyBackoff = 200 * time.Millisecond

// Client talks to one Administration Server. It is safe for concurrent
// use; in LoginBasic mode calls are serialised.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
	tr   *http.Transport

	callMu sync.Mutex // LoginBasic: one call at a time on the one connection

	mu       sync.Mutex // guards session and loggedIn
	session  string
	loggedIn bool
}

// New validates cfg and builds the client's one *http.Client. It does not
// connect; the first call (or Login) does.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("ksc: url %q must be https://host[:port]", cfg.URL)
	}
	if cfg.Username == "" {
		return nil, errors.New("ksc: username is required")
	}
	switch cfg.LoginMode {
	case "":
		cfg.LoginMode = LoginSession
	case LoginSession, LoginBasic:
	default:
		return nil, fmt.Errorf("ksc: login mode %q: want %q or %q", cfg.LoginMode, LoginSession, LoginBasic)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = defaultPageSize
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 4,
		// KSC speaks HTTP/1.1; its sessions may be tied to a connection.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if cfg.LoginMode == LoginBasic {
		tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = 1, 1
	}
	return &Client{
		cfg:  cfg,
		base: strings.TrimRight(u.String(), "/") + "/api/v1.0/",
		hc:   &http.Client{Transport: tr, Timeout: cfg.Timeout},
		tr:   tr,
	}, nil
}

// NormalizeFingerprint returns the pin as 64 lower-case hex digits.
func NormalizeFingerprint(fp string) (string, error) {
	s := strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(fp))
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("ksc: fingerprint must be a SHA-256 in hex (64 digits, colons optional)")
	}
	return s, nil
}

var errPinMismatch = errors.New("does not match the pinned one")

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case cfg.Fingerprint != "":
		pin, err := NormalizeFingerprint(cfg.Fingerprint)
		if err != nil {
			return nil, err
		}
		// Pinning replaces chain and name checks: klserver.cer is
		// self-signed and often names a host other than the one in the URL.
		tc.InsecureSkipVerify = true
		tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("ksc: server sent no certificate")
			}
			sum := sha256.Sum256(raw[0])
			if got := hex.EncodeToString(sum[:]); got != pin {
				return fmt.Errorf("ksc: server certificate fingerprint %s %w", got, errPinMismatch)
			}
			return nil
		}
	case cfg.CAFile != "":
		pool, err := loadCerts(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	case !cfg.ValidateCerts:
		tc.InsecureSkipVerify = true // explicitly requested by the caller
	}
	return tc, nil
}

// tlsHint names the options that make KSC's certificate trusted, for a
// connection that failed on it (the modules' option names: the client
// serves them only).
func tlsHint(err error) string {
	var (
		ve *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
	)
	switch {
	case errors.Is(err, errPinMismatch):
		return " (the certificate is not the one option ksc_fingerprint pins: compare it with the Administration Server's klserver.cer, or the server is another one)"
	case errors.As(err, &ve) || errors.As(err, &ua):
		return " (certificate not trusted: set option ksc_ca_file to the Administration Server's certificate, klserver.cer, or ksc_fingerprint to its SHA-256 fingerprint; ksc_validate_certs: false only in a lab)"
	}
	return ""
}

// loginHint says what to check when KSC refused the login.
func (c *Client) loginHint(status int) string {
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return ""
	}
	kind := "a KSC internal user (option ksc_internal_user: true)"
	if !c.cfg.Internal {
		kind = "a domain or OS account (option ksc_internal_user: false)"
	}
	h := fmt.Sprintf(" (KSC refused the credentials: check options ksc_username (%q) and ksc_password, that the account is %s", c.cfg.Username, kind)
	if c.cfg.VServer != "" {
		h += fmt.Sprintf(" of virtual server %q (option ksc_vserver)", c.cfg.VServer)
	}
	return h + ", and that it is not locked out)"
}

// loadCerts reads PEM or DER certificates (klserver.cer may be either).
func loadCerts(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ksc: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("ksc: CA file %s: %w", path, err)
			}
			pool.AddCert(c)
		}
	} else {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("ksc: CA file %s: %w", path, err)
		}
		pool.AddCert(c)
	}
	if pool.Equal(x509.NewCertPool()) {
		return nil, fmt.Errorf("ksc: CA file %s holds no certificate", path)
	}
	return pool, nil
}

// Response is a decoded method result: PxgRetVal and out-parameters by name.
type Response map[string]Value

// RetVal is the method's return value (Null for void methods).
func (r Response) RetVal() Value { return r["PxgRetVal"] }

func (c *Client) authHeader() string {
	b64 := base64.StdEncoding.EncodeToString
	internal := "0"
	if c.cfg.Internal {
		internal = "1"
	}
	h := `KSCBasic user="` + b64([]byte(c.cfg.Username)) + `", pass="` + b64([]byte(c.cfg.Password)) + `"`
	if c.cfg.Domain != "" {
		h += `, domain="` + c.cfg.Domain + `"`
	}
	return h + `, internal="` + internal + `"`
}

// post sends one request and returns status and body; transport errors
// are returned as is (they never carry the password: it is only in a header).
func (c *Client) post(ctx context.Context, method string, body []byte, hdr map[string]string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+method, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("ksc %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.cfg.VServer != "" {
		req.Header.Set("X-KSC-VServer", base64.StdEncoding.EncodeToString([]byte(c.cfg.VServer)))
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("ksc %s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("ksc %s: read response: %w", method, err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// Login opens a session. Calls log in on their own when needed, so an
// explicit Login only surfaces credential problems early.
func (c *Client) Login(ctx context.Context) error {
	c.lockCall()
	defer c.unlockCall()
	return c.login(ctx)
}

func (c *Client) lockCall() {
	if c.cfg.LoginMode == LoginBasic {
		c.callMu.Lock()
	}
}

func (c *Client) unlockCall() {
	if c.cfg.LoginMode == LoginBasic {
		c.callMu.Unlock()
	}
}

func (c *Client) login(ctx context.Context) error {
	method := "Session.StartSession"
	if c.cfg.LoginMode == LoginBasic {
		method = "login"
		// A new /login must not ride on a connection whose session died.
		c.tr.CloseIdleConnections()
	}
	var st int
	var hdr http.Header
	var body []byte
	// Logging in again is always safe (a session left behind expires), so
	// a login cut by a restart is retried like a read.
	err := c.withRetry(ctx, connLost, func() error {
		var err error
		st, hdr, body, err = c.post(ctx, method, []byte("{}"), map[string]string{"Authorization": c.authHeader()})
		if err == nil && st == http.StatusServiceUnavailable {
			return errBusy
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("ksc login as %s: %w%s", c.cfg.Username, err, tlsHint(err))
	}
	if st == http.StatusUnauthorized && strings.HasPrefix(hdr.Get("WWW-Authenticate"), "KSCMFA") {
		return fmt.Errorf("ksc login as %s: %w", c.cfg.Username, ErrMFARequired)
	}
	if st != http.StatusOK {
		msg := hdr.Get("X-KSC-ErrorMsg")
		if msg == "" {
			msg = snippet(body)
		}
		return fmt.Errorf("ksc login as %s: HTTP %d: %s%s", c.cfg.Username, st, msg, c.loginHint(st))
	}
	if p := pxgFromBody(method, body); p != nil {
		return fmt.Errorf("ksc login as %s: %w", c.cfg.Username, p)
	}
	session := ""
	if c.cfg.LoginMode == LoginSession {
		var r Response
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("ksc login as %s: decode session: %w", c.cfg.Username, err)
		}
		if session = r.RetVal().Str(); session == "" {
			return fmt.Errorf("ksc login as %s: server returned no session id", c.cfg.Username)
		}
	}
	c.mu.Lock()
	c.session, c.loggedIn = session, true
	c.mu.Unlock()
	return nil
}

var errBusy = errors.New("server busy (HTTP 503)")

// withRetry runs f again while it reports errBusy (the server did not run
// the method) or an error retryable accepts, busyRetries times with
// doubling waits, never past ctx.
func (c *Client) withRetry(ctx context.Context, retryable func(error) bool, f func() error) error {
	wait := busyBackoff
	for i := 0; ; i++ {
		err := f()
		if err == nil || !(errors.Is(err, errBusy) || ctx.Err() == nil && retryable(err)) {
			return err
		}
		if i == busyRetries {
			if errors.Is(err, errBusy) {
				return err
			}
			return fmt.Errorf("%w (tried %d times)", err, i+1)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

// connLost reports a connection refused, reset or closed before the
// answer came: what a restarting server looks like. Certificate errors and
// timeouts are not: trying again would meet them again.
func connLost(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		// A kept-alive connection the server closed between calls; net/http
		// does not export this error.
		strings.Contains(err.Error(), "http: server closed idle connection")
}

// notSent reports a call that never reached the server: the connection
// for it could not even be opened.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Close ends the session (Session.EndSession) and drops idle connections.
// Ending an already gone session is not an error.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	in := c.loggedIn
	c.mu.Unlock()
	defer c.tr.CloseIdleConnections()
	if !in {
		return nil
	}
	c.lockCall()
	defer c.unlockCall()
	hdr := c.sessionHeader()
	st, _, body, err := c.post(ctx, "Session.EndSession", []byte("{}"), hdr)
	c.mu.Lock()
	c.session, c.loggedIn = "", false
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("ksc end session: %w", err)
	}
	if st != http.StatusOK && st != http.StatusUnauthorized && st != http.StatusForbidden {
		return fmt.Errorf("ksc end session: HTTP %d: %s", st, snippet(body))
	}
	return nil
}

func (c *Client) sessionHeader() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == "" {
		return nil
	}
	return map[string]string{"X-KSC-Session": c.session}
}

// Call invokes an OpenAPI method with top-level arguments (params values
// bare, nested ones through NestedParams). read marks calls that are safe
// to repeat: after the session is lost (401/403) the client logs in again
// once and repeats only reads, and a read whose connection was refused,
// reset or closed mid-call (a restarting server) is repeated with the
// backoff of HTTP 503. A write is repeated only when it never reached the
// server (connection refused); one cut after it was sent fails with
// ErrInterrupted, as the server may or may not have run it. HTTP 503 is
// retried for every call, since the server did not run the method.
func (c *Client) Call(ctx context.Context, method string, args map[string]any, read bool) (Response, error) {
	if args == nil {
		args = map[string]any{}
	}
	body, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("ksc %s: encode arguments: %w", method, err)
	}
	c.lockCall()
	defer c.unlockCall()

	c.mu.Lock()
	in := c.loggedIn
	c.mu.Unlock()
	if !in {
		if err := c.login(ctx); err != nil {
			return nil, err
		}
	}
	retryable := notSent
	if read {
		retryable = connLost
	}
	relogged := false
	for {
		var st int
		var data []byte
		err := c.withRetry(ctx, retryable, func() error {
			var err error
			st, _, data, err = c.post(ctx, method, body, c.sessionHeader())
			if err == nil && st == http.StatusServiceUnavailable {
				return errBusy
			}
			return err
		})
		if err != nil {
			if !read && connLost(err) && !notSent(err) && ctx.Err() == nil {
				return nil, fmt.Errorf("ksc %s: %w: %w", method, ErrInterrupted, errors.Unwrap(err))
			}
			return nil, err
		}
		if p := pxgFromBody(method, data); p != nil {
			return nil, p
		}
		if st == http.StatusUnauthorized || st == http.StatusForbidden {
			if relogged {
				return nil, &HTTPError{Method: method, Status: st, Body: snippet(data)}
			}
			relogged = true
			if err := c.login(ctx); err != nil {
				return nil, fmt.Errorf("ksc %s: session lost, log in again: %w", method, err)
			}
			if !read {
				return nil, fmt.Errorf("ksc %s: %w (logged in again; not repeating a write)", method, ErrSessionGone)
			}
			continue
		}
		if st != http.StatusOK {
			return nil, &HTTPError{Method: method, Status: st, Body: snippet(data)}
		}
		r, err := decodeResponse(data)
		if err != nil {
			return nil, fmt.Errorf("ksc %s: decode response: %w", method, err)
		}
		return r, nil
	}
}
