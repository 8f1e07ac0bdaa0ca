// Package klconfig is the client of the KSVLA klconfig script API: typed commands, an SSH
// transport that runs one command per session as the `klconfig` account, the output parser and
// typed errors. Vendor facts: the KSVLA help's klconfig command pages
// (https://support.kaspersky.com/help/KSVLA/6.2/en-US/254869.htm).
package klconfig

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Command is one klconfig command. Build it with the constructors (APIVersion, Network, Passwd...)
// or Raw, which validate every argument; a Command built by hand is validated again by Line.
type Command struct {
	Name string
	Args []string
	// Stdin is sent on the session's standard input (passwd's new password). It is a secret: it
	// never appears in String, errors or logs.
	Stdin []byte
}

// Line is what goes on the wire as the SSH exec request: name and arguments joined by spaces.
// It fails if any part could be split or interpreted on the SVM.
func (c Command) Line() (string, error) {
	if err := checkArg(c.Name); err != nil {
		return "", fmt.Errorf("klconfig command name: %w", err)
	}
	for i, a := range c.Args {
		if err := checkArg(a); err != nil {
			return "", fmt.Errorf("klconfig %s argument %d: %w", c.Name, i+1, err)
		}
	}
	return strings.Join(append([]string{c.Name}, c.Args...), " "), nil
}

// String renders the command for messages and logs; stdin is never shown.
func (c Command) String() string {
	s := strings.Join(append([]string{c.Name}, c.Args...), " ")
	if len(c.Stdin) > 0 {
		s += " <stdin redacted>"
	}
	return s
}

// Runner runs klconfig commands, in the spirit of http.RoundTripper.
//
// Run executes exactly one command on the SVM and returns its parsed output. A command that ran
// and ended with KLCONFIG FAILED is NOT an error for a Runner: Result.OK is false and err is nil
// (Client turns it into *CommandFailedError). err is non-nil only when the command could not be
// run or its output carries no KLCONFIG marker. A Runner must not retry a command that may have
// reached the SVM unless the command is Repeatable, must be safe for concurrent use, must honour
// ctx, and must never put Command.Stdin or any credential into an error or log.
type Runner interface {
	Run(ctx context.Context, cmd Command) (Result, error)
}

var (
	// ErrHostKeyMismatch: the SVM presented a host key other than the one known or pinned.
	ErrHostKeyMismatch = errors.New("ssh host key mismatch")
	// ErrHostKeyUnknown: strict checking found no key for the SVM in known_hosts.
	ErrHostKeyUnknown = errors.New("ssh host key unknown")
	// ErrKnownHostsMissing: strict checking was given a known_hosts file that does not exist.
	ErrKnownHostsMissing = errors.New("known_hosts file does not exist")
	// ErrAuthFailed: the SVM refused the credentials (password or key).
	ErrAuthFailed = errors.New("ssh authentication failed")
	// ErrUnreachable: no SSH session could be opened (refused, unreachable, dropped before the
	// command was sent). Retrying is safe because the command did not reach the SVM.
	ErrUnreachable = errors.New("svm unreachable")
	// ErrNoMarker: the output did not end with KLCONFIG OK or KLCONFIG FAILED.
	ErrNoMarker = errors.New("no KLCONFIG marker")
	// ErrDropped: the connection went away after the command was sent and before its marker came
	// back, so the SVM may or may not have applied it. Only a Repeatable command may be sent again.
	ErrDropped = errors.New("connection dropped while the command ran")
)

// CommandFailedError reports a command that ended with KLCONFIG FAILED.
type CommandFailedError struct {
	Command    string   // Command.String(): stdin masked
	ErrorLines []string // text after "ERROR:"
	UsageLine  string   // "Usage: ..." when the SVM printed one
	Output     string   // the whole output
}

func (e *CommandFailedError) Error() string {
	detail := strings.Join(e.ErrorLines, "; ")
	if detail == "" {
		detail = e.UsageLine
	}
	if detail == "" {
		return fmt.Sprintf("klconfig %s: KLCONFIG FAILED", e.Command)
	}
	return fmt.Sprintf("klconfig %s: KLCONFIG FAILED: %s", e.Command, detail)
}

// Client runs commands through a Runner and reports KLCONFIG FAILED as an error.
type Client struct {
	Runner Runner
}

// New returns a Client over r.
func New(r Runner) *Client { return &Client{Runner: r} }

// Do runs cmd. On KLCONFIG FAILED it returns the result and a *CommandFailedError; an OK result
// may still carry warnings in Result.Errors (rollbackpatch does this).
func (c *Client) Do(ctx context.Context, cmd Command) (Result, error) {
	res, err := c.Runner.Run(ctx, cmd)
	if err != nil {
		return res, err
	}
	if !res.OK {
		return res, &CommandFailedError{Command: cmd.String(), ErrorLines: res.Errors, UsageLine: res.Usage, Output: res.Output}
	}
	return res, nil
}
