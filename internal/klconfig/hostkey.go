package klconfig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// errGotKey aborts the handshake once the host key is in hand: nothing past the key exchange is
// needed, and no credential is ever offered.
var errGotKey = errors.New("host key captured")

// FetchHostKey returns the host key addr ("host" or "host:port", port 22 by default) presents
// with the client's default algorithm preferences, without authenticating. It does not verify
// the key: callers use it to name an SVM (records keyed by its fingerprint, pinning the key when
// following the SVM to a new address) and still connect through a verifying SSHRunner.
// timeout bounds dialling and the key exchange (default 15s); errors wrap ErrUnreachable when no
// SSH server answered.
func FetchHostKey(ctx context.Context, addr string, timeout time.Duration) (ssh.PublicKey, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "22")
	}
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetch host key of %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("fetch host key of %s: %w: %w", addr, ErrUnreachable, err)
	}
	defer conn.Close()
	deadline, _ := dctx.Deadline()
	_ = conn.SetDeadline(deadline) // bounds the key exchange; failing to set it only loses the bound
	stop := context.AfterFunc(dctx, func() { _ = conn.Close() })
	defer stop()
	var key ssh.PublicKey
	_, _, _, err = ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User: "klconfig",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errGotKey
		},
	})
	if key != nil {
		return key, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("fetch host key of %s: %w", addr, ctx.Err())
	}
	// Anything before the key exchange finished (reset, EOF, timeout): sshd is not serving yet.
	return nil, fmt.Errorf("fetch host key of %s: %w: %w", addr, ErrUnreachable, err)
}
