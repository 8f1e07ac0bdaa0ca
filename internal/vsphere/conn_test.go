package vsphere

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/vim25/soap"
)

func TestNormalizeThumbprint(t *testing.T) {
	sha1 := "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01"
	tests := []struct {
		in, want, err string
	}{
		{in: sha1, want: strings.ToUpper(sha1)},
		{in: strings.ReplaceAll(sha1, ":", ""), want: strings.ToUpper(sha1)},
		{in: strings.Repeat("0a", 32), want: strings.TrimSuffix(strings.Repeat("0A:", 32), ":")},
		{in: "ab:cd", err: "neither SHA-1"},
		{in: strings.Repeat("zz", 20), err: "not hexadecimal"},
	}
	for _, tt := range tests {
		got, err := NormalizeThumbprint(tt.in)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got)
	}
}

func TestConnectTLS(t *testing.T) {
	l := newLab(t, nil)
	ctx := context.Background()
	cert := l.srv.Certificate()
	caFile, err := l.srv.CertificateFile()
	require.NoError(t, err)

	lower := strings.ToLower(soap.ThumbprintSHA1(cert))
	wrong := strings.Repeat("00:", 19) + "00"
	tests := []struct {
		name   string
		change func(*Conn)
		err    string // "" means the login works
	}{
		{name: "sha1 thumbprint, lower case", change: func(c *Conn) { c.Thumbprint = lower }},
		{name: "sha256 thumbprint", change: func(c *Conn) { c.Thumbprint = soap.ThumbprintSHA256(cert) }},
		{name: "pin wins over validate_certs false", change: func(c *Conn) { c.Thumbprint = wrong; c.ValidateCerts = false }, err: "does not match option thumbprint"},
		{name: "wrong thumbprint", change: func(c *Conn) { c.Thumbprint = wrong }, err: "does not match option thumbprint"},
		{name: "untrusted by default", change: func(c *Conn) { c.Thumbprint = "" }, err: "set option ca_file"},
		{name: "ca_file", change: func(c *Conn) { c.Thumbprint = ""; c.CAFile = caFile }},
		{name: "insecure only when asked", change: func(c *Conn) { c.Thumbprint = ""; c.ValidateCerts = false }},
		{name: "bad thumbprint", change: func(c *Conn) { c.Thumbprint = "xyz" }, err: "option thumbprint"},
		{name: "no hostname", change: func(c *Conn) { c.Hostname = "" }, err: "VMWARE_HOST"},
		{name: "closed port", change: func(c *Conn) { c.Port = 1 }, err: "check options hostname and port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := l.conn
			tt.change(&c)
			s, err := Connect(ctx, c)
			if tt.err == "" {
				require.NoError(t, err)
				assert.Positive(t, s.RoundTrips())
				require.NoError(t, s.Logout(ctx))
				return
			}
			require.ErrorContains(t, err, tt.err)
			t.Log(err)
			assert.NotContains(t, err.Error(), c.Password)
		})
	}
}

func TestConnectBadLogin(t *testing.T) {
	l := newLab(t, nil)
	ctx := context.Background()
	// The simulator accepts any non-empty user and password by default.
	c := l.conn
	c.Password = ""
	_, err := Connect(ctx, c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "check options username")
}
