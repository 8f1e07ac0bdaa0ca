// Package vsphere is the vCenter client the modules share: session, finders
// that ask for exactly one object, SVM marks, streaming OVA/OVF import,
// power and delete, and a one-pass inventory. It knows nothing about Ansible.
package vsphere

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
)

// DefaultPort is the vCenter HTTPS port used when Conn.Port is zero.
const DefaultPort = 443

// DefaultTimeout bounds connecting and logging in when Conn.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// retryAttempts is how often one SOAP call is tried when the network fails
// in a way that is worth retrying (vim25.RetryTemporaryNetworkError).
const retryAttempts = 3

// Conn says how to reach and log in to vCenter. It is built by the modules
// from their connection options (hostname, port, username, password,
// validate_certs, ca_file, thumbprint, timeout).
type Conn struct {
	Hostname string
	Port     int // 0 means DefaultPort
	Username string
	Password string // never appears in errors
	// ValidateCerts verifies the server certificate against the system roots
	// plus CAFile. Set it false only for labs: without a Thumbprint the
	// connection is then not verified at all.
	ValidateCerts bool
	CAFile        string // PEM bundle added to the trusted roots
	// Thumbprint pins the server certificate: SHA-1 as govc prints it
	// (colon-separated hex, any case) or SHA-256. When set, the certificate
	// must match it whatever ValidateCerts says.
	Thumbprint string
	// Timeout bounds dialing, the TLS handshake and the login. Long
	// operations (uploads, task waits) are bounded by the caller's ctx only,
	// so a 10 GB upload is not cut off by a connect timeout.
	Timeout time.Duration
}

// Session is a logged-in vCenter connection. It is safe for concurrent use.
type Session struct {
	c     *vim25.Client
	sm    *session.Manager
	trips *atomic.Int64
	host  string
	found lookups
}

// Client returns the underlying govmomi client for calls this package does
// not wrap.
func (s *Session) Client() *vim25.Client { return s.c }

// RoundTrips returns the number of SOAP calls sent so far (retries count
// separately). Benchmarks report it; it does not include NFC uploads.
func (s *Session) RoundTrips() int64 { return s.trips.Load() }

// Logout ends the vCenter session. It is safe to call on a nil Session.
func (s *Session) Logout(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if err := s.sm.Logout(ctx); err != nil {
		return fmt.Errorf("log out of %s: %w", s.host, err)
	}
	return nil
}

// counter counts SOAP round trips for Session.RoundTrips.
type counter struct {
	rt soap.RoundTripper
	n  *atomic.Int64
}

func (c counter) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	c.n.Add(1)
	return c.rt.RoundTrip(ctx, req, res)
}

// NormalizeThumbprint returns a certificate thumbprint in the form govmomi
// compares (upper-case hex pairs joined by colons), accepting colons,
// spaces or nothing between pairs. It accepts SHA-1 (20 bytes) and SHA-256
// (32 bytes) thumbprints.
func NormalizeThumbprint(tp string) (string, error) {
	hex := strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(tp))
	if len(hex) != 40 && len(hex) != 64 {
		return "", fmt.Errorf("thumbprint %q is neither SHA-1 (20 bytes) nor SHA-256 (32 bytes)", tp)
	}
	pairs := make([]string, 0, len(hex)/2)
	for i := 0; i < len(hex); i += 2 {
		p := strings.ToUpper(hex[i : i+2])
		if _, err := strconv.ParseUint(p, 16, 8); err != nil {
			return "", fmt.Errorf("thumbprint %q is not hexadecimal", tp)
		}
		pairs = append(pairs, p)
	}
	return strings.Join(pairs, ":"), nil
}

// Connect logs in to vCenter. Certificates are verified by default; errors
// name the option that fixes them and never carry the password.
func Connect(ctx context.Context, conn Conn) (*Session, error) {
	if conn.Hostname == "" {
		return nil, errors.New("connect to vcenter: hostname is required (option hostname or VMWARE_HOST)")
	}
	if conn.Username == "" {
		return nil, errors.New("connect to vcenter: username is required (option username or VMWARE_USER)")
	}
	port := conn.Port
	if port == 0 {
		port = DefaultPort
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("connect to vcenter: port %d is out of range (option port or VMWARE_PORT)", port)
	}
	timeout := conn.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	hostport := net.JoinHostPort(strings.Trim(conn.Hostname, "[]"), strconv.Itoa(port))
	// No userinfo in this URL: soap and url errors print it.
	u := &url.URL{Scheme: "https", Host: hostport, Path: vim25.Path}

	pin := ""
	if conn.Thumbprint != "" {
		var err error
		if pin, err = NormalizeThumbprint(conn.Thumbprint); err != nil {
			return nil, fmt.Errorf("connect to %s: %w (option thumbprint)", hostport, err)
		}
	}
	insecure := !conn.ValidateCerts && pin == ""
	sc := soap.NewClient(u, insecure)
	if conn.CAFile != "" {
		if err := sc.SetRootCAs(conn.CAFile); err != nil {
			return nil, fmt.Errorf("connect to %s: read ca_file %s: %w", hostport, conn.CAFile, err)
		}
	}
	t := sc.DefaultTransport()
	t.TLSHandshakeTimeout = timeout
	t.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	// Disk uploads stream through this transport: net/http's default 4 KiB
	// write buffer cuts them into 4 KiB TLS records and syscalls.
	t.WriteBufferSize = 256 << 10
	if pin != "" {
		sc.SetThumbprint(hostport, pin)
	}
	// govmomi checks a known thumbprint only when the chain does not verify.
	// A pin must hold even for a CA-signed certificate, and it must apply to
	// every host with a known thumbprint (ESXi hosts serving NFC uploads).
	dialTLS := t.DialTLSContext
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialTLS(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		want := sc.Thumbprint(addr)
		if want == "" {
			return c, nil
		}
		if tc, ok := c.(*tls.Conn); ok {
			if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 && thumbprintMatches(want, certs[0]) {
				return c, nil
			}
		}
		_ = c.Close()
		return nil, fmt.Errorf("host %q thumbprint does not match %q", addr, want)
	}

	trips := new(atomic.Int64)
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	vc, err := vim25.NewClient(lctx, counter{sc, trips})
	if err != nil {
		return nil, connectError(hostport, conn, err)
	}
	vc.Client = sc
	vc.RoundTripper = vim25.Retry(counter{sc, trips}, vim25.RetryTemporaryNetworkError, retryAttempts)

	sm := session.NewManager(vc)
	if err := sm.Login(lctx, url.UserPassword(conn.Username, conn.Password)); err != nil {
		return nil, connectError(hostport, conn, err)
	}
	return &Session{c: vc, sm: sm, trips: trips, host: hostport}, nil
}

func thumbprintMatches(want string, cert *x509.Certificate) bool {
	return want == soap.ThumbprintSHA1(cert) || want == soap.ThumbprintSHA256(cert)
}

// connectError turns a failed connect or login into a message that names
// the option to change.
func connectError(hostport string, conn Conn, err error) error {
	var hint string
	msg := err.Error()
	switch {
	case strings.Contains(msg, "thumbprint does not match"):
		hint = "the server certificate does not match option thumbprint; check it with 'govc about.cert -thumbprint'"
	case soap.IsCertificateUntrusted(err) || isCertError(err):
		hint = "certificate not trusted: set option ca_file to the vCenter CA, or thumbprint to pin it; validate_certs: false only in a lab"
	case soap.IsSoapFault(err) && strings.Contains(strings.ToLower(msg), "login"):
		hint = fmt.Sprintf("check options username (%q) and password", conn.Username)
	case errors.Is(err, context.DeadlineExceeded):
		hint = "check options hostname and port, or raise the timeout"
	default:
		var nerr net.Error
		if errors.As(err, &nerr) {
			hint = "check options hostname and port"
		}
	}
	if conn.Password != "" && strings.Contains(msg, conn.Password) {
		// Not wrapped: the raw error's text would carry the password.
		msg = strings.ReplaceAll(msg, conn.Password, "********")
		if hint != "" {
			msg += " (" + hint + ")"
		}
		return fmt.Errorf("connect to %s: %s", hostport, msg)
	}
	if hint == "" {
		return fmt.Errorf("connect to %s: %w", hostport, err)
	}
	return fmt.Errorf("connect to %s: %w (%s)", hostport, err, hint)
}

func isCertError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		ve  *tls.CertificateVerificationError
		ua2 *x509.UnknownAuthorityError
	)
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &ve) || errors.As(err, &ua2)
}
