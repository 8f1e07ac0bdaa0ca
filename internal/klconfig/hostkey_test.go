package klconfig

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestFetchHostKey(t *testing.T) {
	l := startLabSVM(t, nil)
	key, err := FetchHostKey(ctx(t), l.Addr(), 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, ssh.FingerprintSHA256(l.HostKey()), ssh.FingerprintSHA256(key))
	assert.Empty(t, l.commands(), "no command, no login")

	// Nothing listening: unreachable, so callers may wait and retry.
	ln, err := net.Listen("tcp", labIP()+":0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = FetchHostKey(ctx(t), addr, time.Second)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrUnreachable), "%v", err)
}
