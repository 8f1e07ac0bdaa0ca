package klconfig

import (
	"fmt"
	"strings"
	"time"
)

// Result is the parsed output of one command.
type Result struct {
	Lines  []string // value lines, in order (an empty value line is kept: dnsshow prints one)
	Errors []string // "ERROR:" lines, text after the prefix, trimmed
	Usage  string   // the "Usage: ..." line, if any
	OK     bool     // the marker was KLCONFIG OK
	Output string   // the raw output
}

const (
	markerOK     = "KLCONFIG OK"
	markerFailed = "KLCONFIG FAILED"
)

// Parse reads klconfig output. The last non-empty line is authoritative: KLCONFIG OK or KLCONFIG
// FAILED; an ERROR line before KLCONFIG OK is a warning, not a failure. Output without a marker is
// an error wrapping ErrNoMarker.
func Parse(output string) (Result, error) {
	res := Result{Output: output}
	lines := strings.Split(strings.ReplaceAll(output, "\r\n", "\n"), "\n")
	last := len(lines) - 1
	for last >= 0 && strings.TrimSpace(lines[last]) == "" {
		last--
	}
	if last < 0 {
		return res, fmt.Errorf("parse klconfig output: empty: %w", ErrNoMarker)
	}
	switch strings.TrimSpace(lines[last]) {
	case markerOK:
		res.OK = true
	case markerFailed:
	default:
		return res, fmt.Errorf("parse klconfig output: last line %q: %w", truncate(lines[last], 80), ErrNoMarker)
	}
	for _, l := range lines[:last] {
		switch {
		case strings.HasPrefix(l, "ERROR:"):
			res.Errors = append(res.Errors, strings.TrimSpace(strings.TrimPrefix(l, "ERROR:")))
		case strings.HasPrefix(l, "Usage:"):
			res.Usage = strings.TrimSpace(l)
		default:
			res.Lines = append(res.Lines, l)
		}
	}
	return res, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// TestInfo is what `test` prints.
type TestInfo struct {
	User    string    // identity running klconfig, e.g. "root"
	Date    time.Time // zero when the date line is not in `date`'s C-locale format
	Product string    // e.g. "Kaspersky Security for Virtualization 6.2 Light Agent 6.2.0.200"
	Version string    // last word of Product, e.g. "6.2.0.200"
	Uptime  string    // the uptime line as printed
}

// ParseTest reads the block printed by `test`: id line, date, product line, uptime, DONE.
func ParseTest(r Result) (TestInfo, error) {
	var info TestInfo
	for _, l := range r.Lines {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "uid="):
			if i, j := strings.Index(l, "("), strings.Index(l, ")"); i >= 0 && j > i {
				info.User = l[i+1 : j]
			}
		case strings.Contains(l, "Light Agent") || strings.HasPrefix(l, "Kaspersky"):
			info.Product = l
			f := strings.Fields(l)
			info.Version = f[len(f)-1]
		case strings.Contains(l, " up ") && strings.Contains(l, "load average"):
			info.Uptime = l
		default:
			if t, err := time.Parse(time.UnixDate, l); err == nil {
				info.Date = t
			}
		}
	}
	if info.Product == "" {
		return info, fmt.Errorf("parse klconfig test output: no product line")
	}
	return info, nil
}

// ParseDNSShow reads `dnsshow`: entries on one line, space separated; an empty line means none.
func ParseDNSShow(r Result) []string {
	var out []string
	for _, l := range r.Lines {
		out = append(out, strings.Fields(l)...)
	}
	return out
}
