package svm

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// klconfigUser is the only account that logs in; the SVM's root account is not reachable over SSH
// in the lab (the docs only describe klconfig access).
const klconfigUser = "klconfig"

// handshakeTimeout bounds a client that connects and then says nothing.
const handshakeTimeout = 10 * time.Second

var errAuth = errors.New("permission denied")

func (s *SVM) newServerConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(meta ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			s.mu.Lock()
			want := s.passwords[klconfigUser]
			s.mu.Unlock()
			// The password is read at every login: a `passwd klconfig` applies to the next session.
			if meta.User() != klconfigUser || subtle.ConstantTimeCompare(password, []byte(want)) != 1 {
				return nil, errAuth
			}
			return nil, nil
		},
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() != klconfigUser {
				return nil, errAuth
			}
			blob := key.Marshal()
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, k := range s.authorizedKeys {
				if bytes.Equal(k.Marshal(), blob) {
					return nil, nil
				}
			}
			return nil, errAuth
		},
		ServerVersion: "SSH-2.0-OpenSSH_8.4p1 KSVLA-lab",
	}
	cfg.AddHostKey(s.cfg.HostKey)
	return cfg
}

func (s *SVM) serve(ln net.Listener) {
	defer s.acceptWG.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // listener closed: power off, address change or sshd stop
		}
		go s.handleConn(ln, c)
	}
}

func (s *SVM) handleConn(ln net.Listener, c net.Conn) {
	s.mu.Lock()
	if s.ln != ln {
		// Accepted just before the listener went away: the SVM is no longer here.
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close() // the connection is finished either way
	}()

	_ = c.SetDeadline(time.Now().Add(handshakeTimeout)) // best effort; a failure only loses the bound
	sc, chans, reqs, err := ssh.NewServerConn(c, s.serverCfg)
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.handleSession(c, ch, chReqs)
	}
}

// handleSession serves one SSH session on connection c: exactly one exec request runs one klconfig
// command.
func (s *SVM) handleSession(c net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "exec":
			var payload struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			if at, drop := s.takeDrop(payload.Command); drop {
				if at == DropAfterRun {
					_, _ = s.Exec(payload.Command, ch)
				}
				_ = c.Close() // the fault: the client gets no output, no marker and no exit status
				return
			}
			out, ok := s.Exec(payload.Command, ch)
			_, _ = io.WriteString(ch, out) // a client gone mid-write has nothing left to tell
			sendExit(ch, ok)
			return
		case "shell":
			// klconfig is a forced-command account: there is no shell.
			_ = req.Reply(true, nil)
			_, _ = fmt.Fprintf(ch, "ERROR: interactive login is not allowed; use: ssh %s@<SVM address> <command> [arguments]\n", klconfigUser)
			sendExit(ch, false)
			return
		default:
			// pty-req, env, subsystem (sftp/scp) and the rest are refused.
			_ = req.Reply(false, nil)
		}
	}
}

// sendExit sends the exit status. The real klconfig exit status is NOT FOUND in the vendor docs;
// the lab sends 0 for KLCONFIG OK and 1 for KLCONFIG FAILED, and clients must parse the marker.
func sendExit(ch ssh.Channel, ok bool) {
	status := uint32(1)
	if ok {
		status = 0
	}
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
}
