// Package filter builds KSC search filters (wstrFilter of FindHosts and
// FindGroups) so that user-supplied values can never change a filter's
// structure: strings are quoted with embedded quotes doubled, and Eq also
// neutralises the wildcards ? * [ that "=" would otherwise interpret.
package filter

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Expr is one parenthesised filter expression.
type Expr string

// All is the empty filter, which matches everything.
const All Expr = ""

var attrName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// attr checks an attribute name. Names come from code, never from users,
// so a bad one is a programming error.
func attr(a string) string {
	if !attrName.MatchString(a) {
		panic(fmt.Sprintf("filter: invalid attribute name %q", a))
	}
	return a
}

// Quote returns s as a filter string literal ("" doubles a quote).
func Quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// escapeWildcards makes ? * [ match themselves, using one-character sets.
var escapeWildcards = strings.NewReplacer("*", "[*]", "?", "[?]", "[", "[[]")

// Eq matches attribute a equal to s exactly (wildcards in s are literal).
func Eq(a, s string) Expr {
	return Expr("(" + attr(a) + " = " + Quote(escapeWildcards.Replace(s)) + ")")
}

// Like matches a against a wildcard pattern (? * [a-f] [^a-f]).
func Like(a, pattern string) Expr { return Expr("(" + attr(a) + " = " + Quote(pattern) + ")") }

// Ne matches a different from s.
func Ne(a, s string) Expr { return Expr("(" + attr(a) + " <> " + Quote(s) + ")") }

// EqInt matches an integer attribute equal to n.
func EqInt(a string, n int64) Expr {
	return Expr("(" + attr(a) + " = " + strconv.FormatInt(n, 10) + ")")
}

// NeInt matches an integer attribute different from n.
func NeInt(a string, n int64) Expr {
	return Expr("(" + attr(a) + " <> " + strconv.FormatInt(n, 10) + ")")
}

// BitSet matches when any bit of mask is set in a, e.g. KLHST_WKS_STATUS & 1.
func BitSet(a string, mask int64) Expr {
	return Expr("(" + attr(a) + " & " + strconv.FormatInt(mask, 10) + " <> 0)")
}

// BitClear matches when no bit of mask is set in a.
func BitClear(a string, mask int64) Expr {
	return Expr("(" + attr(a) + " & " + strconv.FormatInt(mask, 10) + " = 0)")
}

// Before matches a datetime attribute earlier than t.
func Before(a string, t time.Time) Expr {
	return Expr("(" + attr(a) + ` < T"` + t.UTC().Format("2006-01-02 15:04:05") + `")`)
}

// OlderThan matches a datetime attribute more than d before the server's now.
func OlderThan(a string, d time.Duration) Expr {
	return Expr("(" + attr(a) + " < CURTIME(" + strconv.FormatInt(-int64(d/time.Second), 10) + "))")
}

func join(op string, es []Expr) Expr {
	var b strings.Builder
	n := 0
	for _, e := range es {
		if e != All {
			b.WriteString(string(e))
			n++
		}
	}
	switch n {
	case 0:
		return All
	case 1:
		return Expr(b.String())
	}
	return Expr("(" + op + b.String() + ")")
}

// And matches when every expression matches (All operands are dropped).
func And(es ...Expr) Expr { return join("&", es) }

// Or matches when any expression matches. Or of nothing is All.
func Or(es ...Expr) Expr { return join("|", es) }

// Not negates e. Not(All) yields "(!)", which the server rejects: an
// error is better than silently matching everything or nothing.
func Not(e Expr) Expr { return Expr("(!" + string(e) + ")") }

// String returns the filter text.
func (e Expr) String() string { return string(e) }
