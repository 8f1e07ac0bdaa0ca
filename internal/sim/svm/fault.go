package svm

import "strings"

// DropPoint says where in a command the SSH connection goes away.
type DropPoint int

const (
	// DropBeforeRun closes the connection once the exec request is accepted and before the
	// command runs: the SVM never applies it.
	DropBeforeRun DropPoint = iota + 1
	// DropAfterRun runs the command and closes the connection before its output is sent: the SVM
	// applied it, and the client cannot tell this case from DropBeforeRun.
	DropAfterRun
)

type dropRule struct {
	prefix string
	left   int // matching commands still to let through before the one that drops
	at     DropPoint
}

// DropConnection makes the n-th command from now on (n >= 1) whose line starts with prefix lose
// its SSH connection at point, once. It stands for a network cut or an sshd crash in the middle of
// a session. A later call replaces a rule that has not fired yet.
func (s *SVM) DropConnection(prefix string, n int, at DropPoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = &dropRule{prefix: prefix, left: n - 1, at: at}
}

// takeDrop reports whether the command line cmdline is the one to drop, and where.
func (s *SVM) takeDrop(cmdline string) (DropPoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.drop
	if r == nil || !strings.HasPrefix(cmdline, r.prefix) {
		return 0, false
	}
	if r.left > 0 {
		r.left--
		return 0, false
	}
	s.drop = nil
	return r.at, true
}

// RefuseSSH makes the SVM refuse SSH connections while refuse is true (its sshd down, or a
// firewall in the way), without touching its state; false serves them again if it is up.
func (s *SVM) RefuseSSH(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused = refuse
	if refuse {
		s.dropLocked()
		return
	}
	_ = s.syncListenerLocked() // an error leaves the SVM not answering, which the client reports
}
