package ksc

import (
	"encoding/json"
	"errors"
	"fmt"
)

// PxgError is a method-level error reported by the Administration Server
// in a {"PxgError":{...}} body (normally with HTTP 200).
type PxgError struct {
	Method  string // e.g. "HostGroup.RemoveHost"
	Module  string // e.g. "KLSTD"
	Code    int
	Subcode int
	Message string
}

func (e *PxgError) Error() string {
	return fmt.Sprintf("ksc %s: %s error %d: %s", e.Method, e.Module, e.Code, e.Message)
}

// HTTPError is a non-200 answer without a PxgError body.
type HTTPError struct {
	Method string
	Status int
	Body   string // first bytes of the body, for the message
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("ksc %s: HTTP %d: %s", e.Method, e.Status, e.Body)
}

// Sentinel errors callers branch on.
var (
	// ErrSessionGone: the server no longer knows the session (401/403)
	// and a write was not retried, because it is not known to be safe.
	ErrSessionGone = errors.New("ksc session is gone")
	// ErrMFARequired: the account needs two-factor authentication, which
	// automation cannot answer; use a service account exempt from 2FA.
	ErrMFARequired = errors.New("ksc account requires two-factor authentication; use a service account exempt from 2FA")
	// ErrNotFound: a task (or other named object) looked up by name does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInterrupted: the connection was lost after a write was sent and
	// before its answer came, so the server may or may not have run it.
	// It is not repeated: check the state, then act again if needed.
	ErrInterrupted = errors.New("connection lost after the call was sent, so the server may or may not have run it")
)

// pxgFromBody returns the PxgError in a JSON body, if any: the vendor
// library expects them with HTTP 200, but any status is checked.
func pxgFromBody(method string, body []byte) *PxgError {
	var env struct {
		PxgError *struct {
			Code    int    `json:"code"`
			Subcode int    `json:"subcode"`
			Module  string `json:"module"`
			Message string `json:"message"`
		} `json:"PxgError"`
	}
	if json.Unmarshal(body, &env) != nil || env.PxgError == nil {
		return nil
	}
	p := env.PxgError
	return &PxgError{Method: method, Module: p.Module, Code: p.Code, Subcode: p.Subcode, Message: p.Message}
}
