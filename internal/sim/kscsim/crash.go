package kscsim

import (
	"net/http"
	"time"
)

// CrashPoint says where in a call a crash cuts it.
type CrashPoint int

const (
	// CrashBeforeServe cuts the call before the server acts on it.
	CrashBeforeServe CrashPoint = iota + 1
	// CrashAfterServe serves the call (its changes stay) and cuts it
	// before the answer is sent: the client cannot tell it from
	// CrashBeforeServe.
	CrashAfterServe
)

type crashRule struct {
	method string
	left   int // calls of method still to serve before the one that crashes
	at     CrashPoint
	down   time.Duration
}

// CrashOn makes the n-th call (n >= 1) of method from now on crash the
// server at point: that call's connection is closed with no answer, the
// server stops listening and drops every connection, session and accessor
// (as Restart does), and listens again on the same address down later.
// It fires once; a later CrashOn replaces a rule that has not fired.
func (s *Server) CrashOn(method string, n int, at CrashPoint, down time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashRule = &crashRule{method: method, left: n - 1, at: at, down: down}
}

func (s *Server) takeCrash(method string) (crashRule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.crashRule
	if r == nil || r.method != method {
		return crashRule{}, false
	}
	if r.left > 0 {
		r.left--
		return crashRule{}, false
	}
	s.crashRule = nil
	return *r, true
}

// crash stops the server, closes the connection of the call being served
// and starts listening again after down, unless the server is closed by
// then.
func (s *Server) crash(w http.ResponseWriter, down time.Duration) {
	// Stop first: the client's first retry must meet a server that is down.
	stopErr := s.stop()
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close() // cutting it is the point
		}
	}
	if stopErr != nil {
		return // already closed
	}
	time.AfterFunc(down, func() {
		// A server closed while down stays down (serve checks); a failed
		// listen leaves it down, as a failed restart would.
		_ = s.listen()
	})
}

// discardWriter takes the answer of a call whose connection is about to be
// cut.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}
