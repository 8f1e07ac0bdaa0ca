package ansible

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// pyLiteral is the part of ast.literal_eval that check_type_dict's
// fallback needs: dicts, lists, tuples, strings, numbers, True, False and
// None. Anything else (sets, bytes, complex, comments) is an error. Keys
// that are not strings are spelled as json.dumps spells them, since that is
// what the module would see.
func pyLiteral(s string) (any, error) {
	p := &litParser{src: []rune(s)}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.src) {
		return nil, errBadLiteral
	}
	return v, nil
}

var errBadLiteral = errors.New("malformed literal")

type litParser struct {
	src   []rune
	pos   int
	depth int
}

// maxLiteralDepth is the nesting Python's tokenizer allows (MAXLEVEL); it
// also bounds the recursion here.
const maxLiteralDepth = 200

func (p *litParser) space() {
	for p.pos < len(p.src) && strings.ContainsRune(" \t\n\r\f\v", p.src[p.pos]) {
		p.pos++
	}
}

func (p *litParser) peek() rune {
	p.space()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *litParser) value() (any, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxLiteralDepth {
		return nil, errBadLiteral
	}
	switch c := p.peek(); {
	case c == '{':
		return p.dict()
	case c == '[':
		p.pos++
		return p.sequence(']')
	case c == '(':
		p.pos++
		return p.sequence(')')
	case c == '\'' || c == '"' || ((c == 'u' || c == 'U' || c == 'r' || c == 'R') && p.pos+1 < len(p.src) && (p.src[p.pos+1] == '\'' || p.src[p.pos+1] == '"')):
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		for { // adjacent literals concatenate
			if c := p.peek(); c != '\'' && c != '"' {
				return s, nil
			}
			more, err := p.str()
			if err != nil {
				return nil, err
			}
			s += more
		}
	case c == '+' || c == '-':
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case int:
			if c == '-' {
				return -x, nil
			}
			return x, nil
		case float64:
			if c == '-' {
				return -x, nil
			}
			return x, nil
		}
		return nil, errBadLiteral
	case c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	case unicode.IsLetter(c) || c == '_':
		start := p.pos
		for p.pos < len(p.src) && (unicode.IsLetter(p.src[p.pos]) || unicode.IsDigit(p.src[p.pos]) || p.src[p.pos] == '_') {
			p.pos++
		}
		switch string(p.src[start:p.pos]) {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
	}
	return nil, errBadLiteral
}

func (p *litParser) dict() (any, error) {
	p.pos++ // {
	out := map[string]any{}
	for {
		if p.peek() == '}' {
			p.pos++
			return out, nil
		}
		k, err := p.value()
		if err != nil {
			return nil, err
		}
		key, ok := jsonKey(k)
		if !ok || p.peek() != ':' {
			return nil, errBadLiteral
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out[key] = v
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
		default:
			return nil, errBadLiteral
		}
	}
}

func (p *litParser) sequence(end rune) (any, error) {
	out := []any{}
	commas := 0
	for {
		if p.peek() == end {
			p.pos++
			if end == ')' && len(out) == 1 && commas == 0 {
				return out[0], nil // (x) is x, not a tuple
			}
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		switch p.peek() {
		case ',':
			p.pos++
			commas++
		case end:
		default:
			return nil, errBadLiteral
		}
	}
}

func jsonKey(k any) (string, bool) {
	switch x := k.(type) {
	case string:
		return x, true
	case nil:
		return "null", true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	case int, float64:
		if f, ok := x.(float64); ok {
			switch {
			case math.IsNaN(f):
				return "NaN", true
			case math.IsInf(f, 1):
				return "Infinity", true
			case math.IsInf(f, -1):
				return "-Infinity", true
			}
		}
		return pyStr(x), true
	}
	return "", false // lists are not hashable
}

func (p *litParser) str() (string, error) {
	raw := false
	for p.pos < len(p.src) && strings.ContainsRune("uUrR", p.src[p.pos]) {
		raw = raw || p.src[p.pos] == 'r' || p.src[p.pos] == 'R'
		p.pos++
	}
	quote := p.src[p.pos]
	p.pos++
	if p.pos+1 < len(p.src) && p.src[p.pos] == quote && p.src[p.pos+1] == quote {
		return "", errBadLiteral // triple-quoted strings are not supported
	}
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == quote:
			return b.String(), nil
		case c == '\n':
			return "", errBadLiteral
		case c == '\\' && p.pos < len(p.src):
			e := p.src[p.pos]
			p.pos++
			if raw {
				b.WriteRune('\\')
				b.WriteRune(e)
				continue
			}
			if err := p.escape(&b, e); err != nil {
				return "", err
			}
		default:
			b.WriteRune(c)
		}
	}
	return "", errBadLiteral
}

func (p *litParser) escape(b *strings.Builder, e rune) error {
	simple := map[rune]string{'\n': "", '\\': `\`, '\'': "'", '"': `"`, 'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v"}
	if s, ok := simple[e]; ok {
		b.WriteString(s)
		return nil
	}
	hex := map[rune]int{'x': 2, 'u': 4, 'U': 8}
	if n, ok := hex[e]; ok {
		if p.pos+n > len(p.src) {
			return errBadLiteral
		}
		r, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
		if err != nil || r > unicode.MaxRune {
			return errBadLiteral
		}
		p.pos += n
		b.WriteRune(rune(r))
		return nil
	}
	if e >= '0' && e <= '7' {
		r := e - '0'
		for i := 0; i < 2 && p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '7'; i++ {
			r = r*8 + p.src[p.pos] - '0'
			p.pos++
		}
		b.WriteRune(r)
		return nil
	}
	if e == 'N' {
		return errBadLiteral
	}
	b.WriteRune('\\') // unknown escapes stay as they are
	b.WriteRune(e)
	return nil
}

var (
	pyIntLiteral   = regexp.MustCompile(`^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?0)*|[1-9](?:_?[0-9])*)`)
	pyFloatLiteral = regexp.MustCompile(`^(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*|[0-9](?:_?[0-9])*\.?)(?:[eE][+-]?[0-9](?:_?[0-9])*)?`)
)

func (p *litParser) number() (any, error) {
	rest := string(p.src[p.pos:])
	fl := pyFloatLiteral.FindString(rest)
	in := pyIntLiteral.FindString(rest)
	if len(in) >= len(fl) && in != "" {
		p.pos += len([]rune(in))
		i, err := strconv.ParseInt(strings.ReplaceAll(in, "_", ""), 0, 64)
		if err != nil {
			return nil, errBadLiteral
		}
		return p.numberEnd(int(i))
	}
	if fl == "" || !strings.ContainsAny(fl, ".eE") {
		return nil, errBadLiteral // "0443" is a syntax error in Python
	}
	p.pos += len([]rune(fl))
	f, err := strconv.ParseFloat(strings.ReplaceAll(fl, "_", ""), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, errBadLiteral
	}
	return p.numberEnd(f)
}

// numberEnd rejects "1j", "1abc" and the like.
func (p *litParser) numberEnd(v any) (any, error) {
	if p.pos < len(p.src) && (unicode.IsLetter(p.src[p.pos]) || unicode.IsDigit(p.src[p.pos]) || p.src[p.pos] == '_') {
		return nil, errBadLiteral
	}
	return v, nil
}
