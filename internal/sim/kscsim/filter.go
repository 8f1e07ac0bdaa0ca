package kscsim

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file implements the search filter syntax of the KSC OpenAPI
// ("Search filter syntax", reference 3.1):
//
//	filter     = "(" filtercomp ")"
//	filtercomp = and / or / not / item
//	and = "&" 1*filter ; or = "|" 1*filter ; not = "!" filter
//	item       = attr [ "&" mask ] filtertype value
//	filtertype = "=" | ">" | "<" | "<>"
//	value      = Integer | "Quoted string" | T"UTC time" | CURTIME(±s) | 0xBinary
//
// plus what clients send in practice: spaces anywhere between tokens, a bare
// item without the outer parentheses (XSOAR), and bit tests (`attr & 4 <> 0`).
//
// Lab assumptions (not confirmed against a real server):
//   - string comparison is case-insensitive (KSC stores names in a SQL
//     database with a case-insensitive collation);
//   - a filter naming an attribute the server does not know, or comparing an
//     attribute with a literal of the wrong kind, is rejected (BADPARAM)
//     rather than matching nothing;
//   - an attribute a record has no value for never matches, not even "<>";
//   - multi-valued search-only attributes (KLHST_WKS_PRODUCT_NAME,
//     KLHST_WKS_GROUPID_GP, ...) match "=", "<", ">" when any value matches,
//     and "<>" when no value is equal.

// kind is the KLOAPI type of an attribute, as far as filters care.
type kind int

const (
	kString kind = iota
	kInt         // int, long and bool compare as integers
	kTime
	kBinary
)

// schema maps the attributes a filter may name to their kinds.
type schema map[string]kind

// multi marks a multi-valued attribute value in a record.
type multi []any

// record is one searchable object: attribute name -> value (string, int64,
// long, bool, time.Time, binary or multi).
type record = map[string]any

type node interface {
	match(r record, now time.Time) bool
}

type matchAll struct{}

func (matchAll) match(record, time.Time) bool { return true }

type andNode []node

func (n andNode) match(r record, now time.Time) bool {
	for _, c := range n {
		if !c.match(r, now) {
			return false
		}
	}
	return true
}

type orNode []node

func (n orNode) match(r record, now time.Time) bool {
	for _, c := range n {
		if c.match(r, now) {
			return true
		}
	}
	return false
}

type notNode struct{ n node }

func (n notNode) match(r record, now time.Time) bool { return !n.n.match(r, now) }

type op int

const (
	opEq op = iota
	opNe
	opLt
	opGt
)

// literal is a parsed filter value.
type literal struct {
	k       kind
	str     string
	glob    []globTok // for string "=" only
	num     int64
	abs     time.Time // T"..."
	rel     *int64    // CURTIME(delta): seconds relative to the clock at match time
	bin     []byte
	hasMask bool
	mask    int64
}

type itemNode struct {
	attr string
	op   op
	lit  literal
}

func (n itemNode) match(r record, now time.Time) bool {
	v, ok := r[n.attr]
	if !ok || v == nil {
		return false
	}
	if m, ok := v.(multi); ok {
		if len(m) == 0 {
			return false
		}
		if n.op == opNe {
			eq := n
			eq.op = opEq
			for _, e := range m {
				if eq.matchOne(e, now) {
					return false
				}
			}
			return true
		}
		for _, e := range m {
			if n.matchOne(e, now) {
				return true
			}
		}
		return false
	}
	return n.matchOne(v, now)
}

func (n itemNode) matchOne(v any, now time.Time) bool {
	switch n.lit.k {
	case kString:
		s, ok := v.(string)
		if !ok {
			return false
		}
		switch n.op {
		case opEq:
			return globMatch(n.lit.glob, s)
		case opNe:
			return !strings.EqualFold(s, n.lit.str)
		}
		return cmpResult(n.op, strings.Compare(strings.ToLower(s), strings.ToLower(n.lit.str)))
	case kInt:
		var x int64
		switch t := v.(type) {
		case int64:
			x = t
		case int:
			x = int64(t)
		case long:
			x = int64(t)
		case bool:
			if t {
				x = 1
			}
		default:
			return false
		}
		if n.lit.hasMask {
			x &= n.lit.mask
		}
		switch {
		case x < n.lit.num:
			return cmpResult(n.op, -1)
		case x > n.lit.num:
			return cmpResult(n.op, 1)
		}
		return cmpResult(n.op, 0)
	case kTime:
		t, ok := v.(time.Time)
		if !ok || t.IsZero() {
			return false
		}
		want := n.lit.abs
		if n.lit.rel != nil {
			want = now.Add(time.Duration(*n.lit.rel) * time.Second)
		}
		return cmpResult(n.op, t.Truncate(time.Second).Compare(want.Truncate(time.Second)))
	case kBinary:
		b, ok := v.(binary)
		if !ok {
			return false
		}
		return cmpResult(n.op, bytes.Compare(b, n.lit.bin))
	}
	return false
}

func cmpResult(o op, c int) bool {
	switch o {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	default:
		return c > 0
	}
}

// maxFilterDepth bounds nesting so a hostile filter cannot exhaust the stack.
const maxFilterDepth = 64

type parser struct {
	s     string
	pos   int
	sc    schema
	depth int
}

// parseFilter parses wstrFilter against the attributes in sc. An empty (or
// all-space) filter matches everything, as the doc says.
func parseFilter(s string, sc schema) (node, error) {
	p := &parser{s: s, sc: sc}
	p.ws()
	if p.eof() {
		return matchAll{}, nil
	}
	var n node
	var err error
	if p.peek() == '(' {
		n, err = p.filter()
	} else {
		n, err = p.item()
	}
	if err != nil {
		return nil, err
	}
	p.ws()
	if !p.eof() {
		return nil, p.errf("unexpected %q after the filter", p.s[p.pos:])
	}
	return n, nil
}

func (p *parser) errf(format string, a ...any) error {
	return fmt.Errorf("filter syntax error at offset %d: %s", p.pos, fmt.Sprintf(format, a...))
}

func (p *parser) eof() bool  { return p.pos >= len(p.s) }
func (p *parser) peek() byte { return p.s[p.pos] }

func (p *parser) ws() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == '\r' || p.peek() == '\n') {
		p.pos++
	}
}

func (p *parser) expect(c byte) error {
	p.ws()
	if p.eof() || p.peek() != c {
		return p.errf("expected %q", c)
	}
	p.pos++
	return nil
}

func (p *parser) filter() (node, error) {
	if p.depth++; p.depth > maxFilterDepth {
		return nil, p.errf("nested deeper than %d", maxFilterDepth)
	}
	defer func() { p.depth-- }()
	if err := p.expect('('); err != nil {
		return nil, err
	}
	p.ws()
	if p.eof() {
		return nil, p.errf("unterminated filter")
	}
	var n node
	switch p.peek() {
	case '&', '|':
		c := p.peek()
		p.pos++
		var kids []node
		for {
			p.ws()
			if p.eof() || p.peek() != '(' {
				break
			}
			k, err := p.filter()
			if err != nil {
				return nil, err
			}
			kids = append(kids, k)
		}
		if len(kids) == 0 {
			return nil, p.errf("%q needs at least one operand", c)
		}
		if c == '&' {
			n = andNode(kids)
		} else {
			n = orNode(kids)
		}
	case '!':
		p.pos++
		k, err := p.filter()
		if err != nil {
			return nil, err
		}
		n = notNode{k}
	default:
		k, err := p.item()
		if err != nil {
			return nil, err
		}
		n = k
	}
	if err := p.expect(')'); err != nil {
		return nil, err
	}
	return n, nil
}

func isAttrChar(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (p *parser) item() (node, error) {
	p.ws()
	start := p.pos
	for !p.eof() && isAttrChar(p.peek()) {
		p.pos++
	}
	attr := p.s[start:p.pos]
	if attr == "" {
		return nil, p.errf("expected an attribute name")
	}
	k, ok := p.sc[attr]
	if !ok {
		return nil, p.errf("unknown attribute %s", attr)
	}
	var lit literal
	p.ws()
	if !p.eof() && p.peek() == '&' {
		if k != kInt {
			return nil, p.errf("bit test on non-integer attribute %s", attr)
		}
		p.pos++
		p.ws()
		m, err := p.integer()
		if err != nil {
			return nil, err
		}
		lit.hasMask, lit.mask = true, m
	}
	o, err := p.op()
	if err != nil {
		return nil, err
	}
	if err := p.value(k, o, &lit); err != nil {
		return nil, err
	}
	if lit.k != k {
		return nil, p.errf("attribute %s cannot be compared with that kind of value", attr)
	}
	return itemNode{attr: attr, op: o, lit: lit}, nil
}

func (p *parser) op() (op, error) {
	p.ws()
	if p.eof() {
		return 0, p.errf("expected a comparison operator")
	}
	switch p.peek() {
	case '=':
		p.pos++
		return opEq, nil
	case '>':
		p.pos++
		return opGt, nil
	case '<':
		p.pos++
		if !p.eof() && p.peek() == '>' {
			p.pos++
			return opNe, nil
		}
		return opLt, nil
	}
	return 0, p.errf("expected a comparison operator")
}

// integer reads a signed decimal or a 0x-prefixed hex integer.
func (p *parser) integer() (int64, error) {
	start := p.pos
	if !p.eof() && (p.peek() == '-' || p.peek() == '+') {
		p.pos++
	}
	base := 10
	if strings.HasPrefix(p.s[p.pos:], "0x") || strings.HasPrefix(p.s[p.pos:], "0X") {
		p.pos += 2
		base = 16
	}
	ds := p.pos
	for !p.eof() && (p.peek() >= '0' && p.peek() <= '9' || base == 16 && isHex(p.peek())) {
		p.pos++
	}
	if ds == p.pos {
		return 0, p.errf("expected an integer")
	}
	digits := p.s[ds:p.pos]
	n, err := strconv.ParseInt(digits, base, 64)
	if err != nil {
		return 0, p.errf("integer %s: %v", p.s[start:p.pos], err)
	}
	if p.s[start] == '-' {
		n = -n
	}
	return n, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (p *parser) quoted() (string, error) {
	if p.eof() || p.peek() != '"' {
		return "", p.errf("expected a quoted string")
	}
	p.pos++
	var b strings.Builder
	for {
		if p.eof() {
			return "", p.errf("unterminated string")
		}
		c := p.peek()
		p.pos++
		if c == '"' {
			if !p.eof() && p.peek() == '"' {
				b.WriteByte('"')
				p.pos++
				continue
			}
			return b.String(), nil
		}
		b.WriteByte(c)
	}
}

func (p *parser) value(attrKind kind, o op, lit *literal) error {
	p.ws()
	if p.eof() {
		return p.errf("expected a value")
	}
	rest := p.s[p.pos:]
	switch {
	case p.peek() == '"':
		s, err := p.quoted()
		if err != nil {
			return err
		}
		lit.k, lit.str = kString, s
		if o == opEq {
			g, err := compileGlob(s)
			if err != nil {
				return p.errf("pattern %q: %v", s, err)
			}
			lit.glob = g
		}
	case strings.HasPrefix(rest, `T"`):
		p.pos++
		s, err := p.quoted()
		if err != nil {
			return err
		}
		t, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			return p.errf("time %q: want T\"YYYY-MM-DD hh:mm:ss\"", s)
		}
		lit.k, lit.abs = kTime, t
	case strings.HasPrefix(rest, "CURTIME"):
		p.pos += len("CURTIME")
		if err := p.expect('('); err != nil {
			return err
		}
		p.ws()
		d, err := p.integer()
		if err != nil {
			return err
		}
		if err := p.expect(')'); err != nil {
			return err
		}
		lit.k, lit.rel = kTime, &d
	case (strings.HasPrefix(rest, "0x") || strings.HasPrefix(rest, "0X")) && attrKind == kBinary:
		p.pos += 2
		start := p.pos
		for !p.eof() && isHex(p.peek()) {
			p.pos++
		}
		b, err := hex.DecodeString(p.s[start:p.pos])
		if err != nil || start == p.pos {
			return p.errf("binary value: want 0x followed by an even number of hex digits")
		}
		lit.k, lit.bin = kBinary, b
	default:
		// 0x before an integer attribute (e.g. a bit mask value) is read
		// as a hex integer: lenient, and unambiguous given the schema.
		n, err := p.integer()
		if err != nil {
			return p.errf("expected a value")
		}
		lit.k, lit.num = kInt, n
	}
	if lit.hasMask && lit.k != kInt {
		return p.errf("bit test needs an integer value")
	}
	return nil
}

// Glob patterns: ? one character, * any run, [abc] / [a-f] one character
// in a set, [^a-f] one character not in it. Matching is case-insensitive.

type globKind int

const (
	gLit globKind = iota
	gAny
	gStar
	gSet
)

type globTok struct {
	k      globKind
	r      rune
	neg    bool
	ranges [][2]rune
}

func compileGlob(s string) ([]globTok, error) {
	var toks []globTok
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		switch rs[i] {
		case '*':
			if len(toks) == 0 || toks[len(toks)-1].k != gStar {
				toks = append(toks, globTok{k: gStar})
			}
		case '?':
			toks = append(toks, globTok{k: gAny})
		case '[':
			t := globTok{k: gSet}
			j := i + 1
			if j < len(rs) && rs[j] == '^' {
				t.neg = true
				j++
			}
			for ; j < len(rs) && rs[j] != ']'; j++ {
				lo, hi := unicode.ToLower(rs[j]), unicode.ToLower(rs[j])
				if j+2 < len(rs) && rs[j+1] == '-' && rs[j+2] != ']' {
					hi = unicode.ToLower(rs[j+2])
					j += 2
				}
				if lo > hi {
					return nil, fmt.Errorf("bad range %c-%c", lo, hi)
				}
				t.ranges = append(t.ranges, [2]rune{lo, hi})
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unterminated [")
			}
			if len(t.ranges) == 0 {
				return nil, fmt.Errorf("empty set []")
			}
			toks = append(toks, t)
			i = j
		default:
			toks = append(toks, globTok{k: gLit, r: unicode.ToLower(rs[i])})
		}
	}
	return toks, nil
}

func (t globTok) one(r rune) bool {
	switch t.k {
	case gLit:
		return t.r == r
	case gAny:
		return true
	case gSet:
		in := false
		for _, rg := range t.ranges {
			if r >= rg[0] && r <= rg[1] {
				in = true
				break
			}
		}
		return in != t.neg
	}
	return false
}

// globMatch is the classic linear-backtracking wildcard match: every token
// but * consumes exactly one rune, so remembering the last * suffices and
// the match is O(len(pattern)*len(s)) even for hostile patterns.
func globMatch(toks []globTok, s string) bool {
	rs := make([]rune, 0, utf8.RuneCountInString(s))
	for _, r := range s {
		rs = append(rs, unicode.ToLower(r))
	}
	ti, si := 0, 0
	star, mark := -1, 0
	for si < len(rs) {
		switch {
		case ti < len(toks) && toks[ti].k == gStar:
			star, mark = ti, si
			ti++
		case ti < len(toks) && toks[ti].one(rs[si]):
			ti++
			si++
		case star >= 0:
			ti = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for ti < len(toks) && toks[ti].k == gStar {
		ti++
	}
	return ti == len(toks)
}
