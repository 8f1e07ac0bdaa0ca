package vsphere

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
)

// lab is one in-process govmomi simulator serving TLS on loopback.
type lab struct {
	m    *simulator.Model
	srv  *simulator.Server
	conn Conn // pinned to the simulator's certificate
}

// newLab starts a VPX simulator (1 datacenter, cluster DC0_C0 with 3 hosts,
// standalone host DC0_H0); tweak may change the model before it is built.
func newLab(t testing.TB, tweak func(*simulator.Model)) *lab {
	t.Helper()
	m := simulator.VPX()
	m.Machine = 1
	if tweak != nil {
		tweak(m)
	}
	require.NoError(t, m.Create())
	m.Service.TLS = new(tls.Config)
	srv := m.Service.NewServer()
	t.Cleanup(func() {
		srv.Close()
		m.Remove()
	})
	host, port, err := net.SplitHostPort(srv.URL.Host)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return &lab{m: m, srv: srv, conn: Conn{
		Hostname: host, Port: p, Username: "admin", Password: "s3cret-Pa55",
		ValidateCerts: true, Thumbprint: soap.ThumbprintSHA1(srv.Certificate()),
		Timeout: 10 * time.Second,
	}}
}

func (l *lab) session(t testing.TB) *Session {
	t.Helper()
	ctx := context.Background()
	s, err := Connect(ctx, l.conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Logout(ctx) })
	return s
}
