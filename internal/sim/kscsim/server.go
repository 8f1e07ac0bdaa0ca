// Package kscsim is the lab's Kaspersky Security Center Administration
// Server: an HTTPS server speaking the KSC OpenAPI wire format
// (POST /api/v1.0/<Class>.<Method>, JSON envelopes with PxgRetVal/PxgError,
// typed values) over a store of hosts, groups and tasks that the lab wires
// to its simulated SVMs and Light Agents.
//
// Facts come from the KSC OpenAPI reference
// (https://support.kaspersky.com/help/KSC/16/KSCAPI/index.html); where it
// says a detail was not found, the choice made here is marked as the lab's
// assumption in the doc comment next to it.
package kscsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Config configures a simulated KSC server.
type Config struct {
	Addr               string // listen address; "127.0.0.1:0" when empty
	Username, Password string
	// VServer is the virtual server name accepted in X-KSC-VServer (base64);
	// an empty header always means the main server.
	VServer string
	// RemoveHostsForceIgnored selects the KSC 15.1+/16 behaviour of
	// HostGroup.RemoveHosts (bForceDestroy ignored: only hosts in Unassigned
	// are deleted, the others are moved there); false is KSC 13.2/15.
	RemoveHostsForceIgnored bool
	// ServerVersion is reported by GetStaticInfo (e.g. "15.1.0.123").
	// Empty: "15.1.0.1000" or "15.0.0.1000" to match RemoveHostsForceIgnored.
	ServerVersion string
	CertDir       string // where klserver.cer (PEM) is written; "" = a temp dir removed on Close
	Clock         Clock  // lab clock; nil = real time
	// NotFoundCode is the PxgError code for "not found" (the real
	// STDE_NOTFOUND number is not published); 0 = DefaultNotFoundCode.
	NotFoundCode int
	// SessionTTL is the idle time (lab clock) after which a session is
	// gone (HTTP 403); 0 = never. Real KSC documents no idle timeout.
	SessionTTL time.Duration
	// Busy, when it returns true, makes the server answer 503 (fault injection).
	Busy func() bool
	// Hook, if set, is called with the method name ("login",
	// "HostGroup.FindHosts", ...) before each request is authenticated and
	// served: tests use it to move the clock or inject faults mid-sequence.
	Hook func(method string)
	// FailTasksOn makes every task run fail on the targets it names (by
	// display name or KLHST_WKS_HOSTNAME), with the text as the target's
	// state_descr, whatever the task's work reported for them.
	FailTasksOn map[string]string
	// MissingMethods are methods this server answers as unknown, as an
	// older KSC without them does (e.g. "Tasks.GetNextHostStatus").
	MissingMethods []string
}

// Server is a running simulated KSC. Its store methods are safe for
// concurrent use.
type Server struct {
	cfg   Config
	clock Clock

	certPEM     []byte
	certFile    string
	tempDir     string
	fingerprint string
	tlsCert     tls.Certificate
	addr        string

	ctx    context.Context // ends on Close; running tasks see it
	cancel context.CancelFunc

	srvMu sync.Mutex
	srv   *http.Server

	mu        sync.Mutex
	hosts     map[string]*Host
	groups    map[int]*group
	nextGroup int
	tasks     map[string]*task
	taskOrder []string
	nextTask  int
	calls     map[string]int
	sessions  map[string]*session
	ended     map[string]bool // ended or expired sessions: 403, not 401
	accessors map[string]*accessor
	taskIters map[string]*taskIter
	hostIters map[string]*accessor // Tasks.ResetHostIteratorForTaskStatusEx
	// failTasksOn is Config.FailTasksOn, replaceable (SetFailTasksOn).
	failTasksOn map[string]string
	crashRule   *crashRule // test-facing fault: see CrashOn
}

type session struct {
	id       string
	lastUsed time.Time
}

type accessor struct {
	session string
	rows    []any
	expires time.Time
}

type taskIter struct {
	session string
	ids     []string
}

// connState is per TCP/TLS connection: /login binds the session to it, and
// its mutex serialises calls, as KSC allows one call at a time per connection.
type connState struct {
	mu      sync.Mutex
	session string
}

type connKey struct{}

// Start generates a self-signed certificate, writes it and starts serving.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.NotFoundCode == 0 {
		cfg.NotFoundCode = DefaultNotFoundCode
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = "15.0.0.1000"
		if cfg.RemoveHostsForceIgnored {
			cfg.ServerVersion = "15.1.0.1000"
		}
	}
	if _, err := versionID(cfg.ServerVersion); err != nil {
		return nil, fmt.Errorf("start kscsim: %w", err)
	}
	s := &Server{cfg: cfg, clock: cfg.Clock, failTasksOn: maps.Clone(cfg.FailTasksOn)}
	if s.clock == nil {
		s.clock = realClock{}
	}
	now := s.clock.Now()
	s.hosts = map[string]*Host{}
	s.groups = map[int]*group{
		groupSuper:      {id: groupSuper, name: "Super", created: now, updated: now},
		groupGroups:     {id: groupGroups, parent: groupSuper, name: "Managed devices", autoRemove: 60, notify: 7, created: now, updated: now},
		groupUnassigned: {id: groupUnassigned, name: "Unassigned devices", autoRemove: 60, notify: 7, created: now, updated: now},
	}
	s.nextGroup, s.nextTask = 10, 101
	s.tasks = map[string]*task{}
	s.calls = map[string]int{}
	s.dropSessions()
	s.ctx, s.cancel = context.WithCancel(context.Background())

	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("start kscsim: address %s: %w", cfg.Addr, err)
	}
	if err := s.makeCert(host); err != nil {
		return nil, fmt.Errorf("start kscsim: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("start kscsim: listen on %s: %w", cfg.Addr, err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

func (s *Server) dropSessions() {
	s.sessions = map[string]*session{}
	s.ended = map[string]bool{}
	s.accessors = map[string]*accessor{}
	s.taskIters = map[string]*taskIter{}
	s.hostIters = map[string]*accessor{}
}

func (s *Server) makeCert(host string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return fmt.Errorf("generate serial: %w", err)
	}
	// Certificate validity uses real time: TLS clients check it against
	// their own clock, not the lab's.
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kscsim Administration Server", Organization: []string{"ksvla lab"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true, // self-signed like klserver.cer, usable as its own trust anchor
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if ip == nil && host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	s.tlsCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	s.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	sum := sha256.Sum256(der)
	hexs := make([]string, len(sum))
	for i, b := range sum {
		hexs[i] = fmt.Sprintf("%02X", b)
	}
	s.fingerprint = strings.Join(hexs, ":")

	dir := s.cfg.CertDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kscsim-"); err != nil {
			return fmt.Errorf("create cert dir: %w", err)
		}
		s.tempDir = dir
	}
	s.certFile = filepath.Join(dir, "klserver.cer")
	if err := os.WriteFile(s.certFile, s.certPEM, 0o644); err != nil {
		s.removeTemp()
		return fmt.Errorf("write certificate %s: %w", s.certFile, err)
	}
	return nil
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir) // best effort: a leftover temp dir harms nothing
	}
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// KSC speaks HTTP/1.1 with per-connection state; no HTTP/2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{s.tlsCert},
			NextProtos:   []string{"http/1.1"},
		},
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &connState{})
		},
		// Handshake failures from clients that refuse the certificate are
		// expected in tests; don't spam stderr with them.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.ctx.Err() != nil {
		// Closed while down after a crash: Close has already run (it
		// cancels before it reads s.srv), so nobody would stop this one.
		_ = ln.Close()
		return
	}
	s.srv = srv
	go func() { _ = srv.ServeTLS(ln, "", "") }() // returns ErrServerClosed on Close/Restart
}

// URL is the server's base URL, e.g. https://127.0.0.1:40123.
func (s *Server) URL() string { return "https://" + s.addr }

// CertFile is the path of the server certificate (PEM), like klserver.cer.
func (s *Server) CertFile() string { return s.certFile }

// CertPEM is the server certificate in PEM form.
func (s *Server) CertPEM() []byte { return append([]byte(nil), s.certPEM...) }

// Fingerprint is the SHA-256 of the certificate (DER), "AA:BB:..." upper-case.
func (s *Server) Fingerprint() string { return s.fingerprint }

// Close stops the server, ends running tasks' contexts and removes a temp cert dir.
func (s *Server) Close() error {
	s.cancel()
	s.srvMu.Lock()
	srv := s.srv
	s.srvMu.Unlock()
	err := srv.Close()
	s.removeTemp()
	if err != nil {
		return fmt.Errorf("close kscsim: %w", err)
	}
	return nil
}

// Restart models an Administration Server restart: same certificate, port
// and data; every connection is cut and every session and accessor dropped.
func (s *Server) Restart() error {
	if err := s.stop(); err != nil {
		return fmt.Errorf("restart kscsim: %w", err)
	}
	if err := s.listen(); err != nil {
		return fmt.Errorf("restart kscsim: %w", err)
	}
	return nil
}

// stop is the first half of a restart: listener and connections closed,
// sessions, accessors and iterators gone.
func (s *Server) stop() error {
	s.srvMu.Lock()
	old := s.srv
	s.srvMu.Unlock()
	if err := old.Close(); err != nil {
		return err
	}
	s.mu.Lock()
	s.dropSessions()
	s.mu.Unlock()
	return nil
}

// listen is the second half: serving again on the same address.
func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	s.serve(ln)
	return nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cs, _ := r.Context().Value(connKey{}).(*connState)
	if cs == nil {
		cs = &connState{}
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()

	name, ok := strings.CutPrefix(r.URL.Path, "/api/v1.0/")
	if !ok || r.Method != http.MethodPost {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	// "<Instance>.<Class>.<Method>" addresses a non-default instance; the
	// simulator has one instance of everything.
	if parts := strings.Split(name, "."); len(parts) > 2 {
		name = strings.Join(parts[len(parts)-2:], ".")
	}
	s.mu.Lock()
	s.calls[name]++
	s.mu.Unlock()
	if s.cfg.Hook != nil {
		s.cfg.Hook(name)
	}
	if s.cfg.Busy != nil && s.cfg.Busy() {
		http.Error(w, "server busy", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if c, ok := s.takeCrash(name); ok {
		if c.at == CrashAfterServe {
			s.serveCall(discardWriter{http.Header{}}, r, cs, name, body)
		}
		s.crash(w, c.down)
		return
	}
	s.serveCall(w, r, cs, name, body)
}

// serveCall serves one authenticated or login call whose body is read.
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, cs *connState, name string, body []byte) {
	switch name {
	case "login":
		if !s.authorized(r) {
			http.Error(w, "authentication failed", http.StatusUnauthorized)
			return
		}
		id := s.newSession()
		cs.session = id
		writeJSON(w, params{})
		return
	case "Session.StartSession":
		if !s.authorized(r) {
			http.Error(w, "authentication failed", http.StatusUnauthorized)
			return
		}
		writeJSON(w, params{"PxgRetVal": s.newSession()})
		return
	}

	id := r.Header.Get("X-KSC-Session")
	if id == "" {
		id = cs.session
	}
	if status := s.checkSession(id); status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	args, err := decodeBody(body)
	if err != nil {
		writeJSON(w, badParam("%v", err).wire())
		return
	}
	res, perr := s.dispatch(id, name, args)
	if perr != nil {
		writeJSON(w, perr.wire())
		return
	}
	out := make(map[string]any, len(res))
	for k, v := range res {
		out[k] = encode(v, true)
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b) // the client went away; nothing to tell it
}

var authParam = regexp.MustCompile(`(\w+)\s*=\s*"([^"]*)"`)

// authorized checks `Authorization: KSCBasic user="b64", pass="b64",
// domain="...", internal="0|1"` and the optional X-KSC-VServer. Token
// schemes (KSCT, KSCWT) and MFA are not simulated: they get 401.
func (s *Server) authorized(r *http.Request) bool {
	scheme, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if scheme != "KSCBasic" {
		return false
	}
	kv := map[string]string{}
	for _, m := range authParam.FindAllStringSubmatch(rest, -1) {
		kv[m[1]] = m[2]
	}
	user, err1 := base64.StdEncoding.DecodeString(kv["user"])
	pass, err2 := base64.StdEncoding.DecodeString(kv["pass"])
	if err1 != nil || err2 != nil {
		return false
	}
	if vs := r.Header.Get("X-KSC-VServer"); vs != "" {
		name, err := base64.StdEncoding.DecodeString(vs)
		if err != nil || (len(name) > 0 && string(name) != s.cfg.VServer) {
			return false
		}
	}
	okUser := subtle.ConstantTimeCompare(user, []byte(s.cfg.Username)) == 1
	okPass := subtle.ConstantTimeCompare(pass, []byte(s.cfg.Password)) == 1
	return okUser && okPass
}

func (s *Server) newSession() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	id := "ns" + base64.StdEncoding.EncodeToString(b[:])
	s.mu.Lock()
	s.sessions[id] = &session{id: id, lastUsed: s.clock.Now()}
	s.mu.Unlock()
	return id
}

// checkSession returns 0 if the session is live, 401 if there is none,
// 403 if it was ended or timed out.
func (s *Server) checkSession(id string) int {
	if id == "" {
		return http.StatusUnauthorized
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		if s.ended[id] {
			return http.StatusForbidden
		}
		return http.StatusUnauthorized
	}
	now := s.clock.Now()
	if s.cfg.SessionTTL > 0 && now.Sub(sess.lastUsed) > s.cfg.SessionTTL {
		s.endSessionLocked(id)
		return http.StatusForbidden
	}
	sess.lastUsed = now
	return 0
}

// endSessionLocked ends a session and everything it holds: accessors and
// iterators die with the session that created them.
func (s *Server) endSessionLocked(id string) {
	delete(s.sessions, id)
	s.ended[id] = true
	for k, a := range s.accessors {
		if a.session == id {
			delete(s.accessors, k)
		}
	}
	for k, it := range s.taskIters {
		if it.session == id {
			delete(s.taskIters, k)
		}
	}
	for k, it := range s.hostIters {
		if it.session == id {
			delete(s.hostIters, k)
		}
	}
}

// errServerVersion is returned for a ServerVersion that is not a.b[.c.d].
var errServerVersion = errors.New("server version must look like 15.1.0.123")

// versionID maps "15.1.0.123" to KLADMSRV_SERVER_VERSION_ID 0x000F0100
// (major<<16 | minor<<8, per the "KSC version constants" page).
func versionID(v string) (int64, error) {
	var major, minor int64
	if n, _ := fmt.Sscanf(v, "%d.%d", &major, &minor); n != 2 || major < 0 || minor < 0 || minor > 255 {
		return 0, fmt.Errorf("%w: got %q", errServerVersion, v)
	}
	return major<<16 | minor<<8, nil
}
