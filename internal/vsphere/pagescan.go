package vsphere

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
)

// The inventory's pages are most of what a fleet read decodes: about 700
// bytes of XML per VM, 3 MB at 4096 VMs. govmomi's decoder resolves every
// element's type by reflection and spent more CPU on them than the rest of
// agent_facts together, on the critical path between vCenter's pages. The
// inventory asks for a few properties of known types, so scanPage reads
// its answers with a scanner that knows their shape; anything else (a
// fault, a value of another type, a construct it does not read) makes it
// decline, and the page is decoded by govmomi as before.

// errDecline: the page is not one scanPage reads.
var errDecline = errors.New("not an inventory page")

// scanPage reads a RetrievePropertiesEx or ContinueRetrievePropertiesEx
// answer holding only the value types the inventory asks for.
func scanPage(b []byte) (objs []types.ObjectContent, token string, err error) {
	s := scanner{b: b}
	defer func() {
		if recover() != nil { // an index past the end: a malformed page
			objs, token, err = nil, "", errDecline
		}
	}()
	for _, want := range []string{"Envelope", "Body"} {
		if t := s.next(); t.kind != tagStart || t.name != want {
			return nil, "", errDecline
		}
	}
	if t := s.next(); t.kind != tagStart || (t.name != "RetrievePropertiesExResponse" && t.name != "ContinueRetrievePropertiesExResponse") {
		return nil, "", errDecline // a Fault among others
	}
	t := s.next()
	if t.kind == tagEnd { // no returnval: nothing in scope
		return nil, "", nil
	}
	if t.kind != tagStart || t.name != "returnval" {
		return nil, "", errDecline
	}
	err = s.each(func(t tag) error {
		switch t.name {
		case "token":
			token = s.text(t)
		case "objects":
			oc, err := s.object()
			if err != nil {
				return err
			}
			objs = append(objs, oc)
		default:
			s.skip(t)
		}
		return nil
	})
	if err != nil || s.declined {
		return nil, "", errDecline
	}
	return objs, token, nil
}

func (s *scanner) object() (oc types.ObjectContent, err error) {
	err = s.each(func(t tag) error {
		switch t.name {
		case "obj":
			oc.Obj = types.ManagedObjectReference{Type: t.attr("type"), Value: s.text(t)}
		case "propSet":
			p, err := s.property()
			if err != nil {
				return err
			}
			oc.PropSet = append(oc.PropSet, p)
		default:
			// missingSet, a property vCenter could not read: the
			// inventory leaves it unset either way.
			s.skip(t)
		}
		return nil
	})
	return oc, err
}

func (s *scanner) property() (p types.DynamicProperty, err error) {
	err = s.each(func(t tag) error {
		switch t.name {
		case "name":
			p.Name = s.text(t)
		case "val":
			v, err := s.value(t)
			p.Val = v
			return err
		default:
			s.skip(t)
		}
		return nil
	})
	return p, err
}

// each calls f for every child element up to the end of the element
// being read (f reads the child to its end); text between them is
// skipped, the end of the page declines.
func (s *scanner) each(f func(tag) error) error {
	for {
		switch t := s.next(); t.kind {
		case tagEnd:
			return nil
		case tagStart:
			if err := f(t); err != nil {
				return err
			}
		default:
			return errDecline
		}
	}
}

// value reads a val of the types the inventory's properties have.
func (s *scanner) value(t tag) (any, error) {
	switch t.xsiType() {
	case "string":
		return s.text(t), nil
	case "ManagedObjectReference":
		return types.ManagedObjectReference{Type: t.attr("type"), Value: s.text(t)}, nil
	case "VirtualMachinePowerState":
		return types.VirtualMachinePowerState(s.text(t)), nil
	case "ArrayOfCustomFieldValue":
		var a types.ArrayOfCustomFieldValue
		err := s.children("CustomFieldValue", func(c tag) error {
			if c.xsiType() != "CustomFieldStringValue" {
				return errDecline
			}
			v := &types.CustomFieldStringValue{}
			err := s.fields(map[string]func(string) error{
				"key":   func(x string) error { return parseKey(x, &v.Key) },
				"value": func(x string) error { v.Value = x; return nil },
			})
			a.CustomFieldValue = append(a.CustomFieldValue, v)
			return err
		})
		return a, err
	case "ArrayOfCustomFieldDef":
		var a types.ArrayOfCustomFieldDef
		err := s.children("CustomFieldDef", func(c tag) error {
			var d types.CustomFieldDef
			err := s.fields(map[string]func(string) error{
				"key":               func(x string) error { return parseKey(x, &d.Key) },
				"name":              func(x string) error { d.Name = x; return nil },
				"type":              func(x string) error { d.Type = x; return nil },
				"managedObjectType": func(x string) error { d.ManagedObjectType = x; return nil },
			})
			a.CustomFieldDef = append(a.CustomFieldDef, d)
			return err
		})
		return a, err
	}
	return nil, errDecline
}

func parseKey(x string, key *int32) error {
	n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 32)
	if err != nil {
		return errDecline
	}
	*key = int32(n)
	return nil
}

// children calls each for every child element of t named name; any other
// child declines.
func (s *scanner) children(name string, each func(tag) error) error {
	return s.each(func(c tag) error {
		if c.name != name {
			return errDecline
		}
		return each(c)
	})
}

// fields reads the child elements of the element being read: the text of
// those named in set, any other skipped (a field definition's privileges).
func (s *scanner) fields(set map[string]func(string) error) error {
	return s.each(func(c tag) error {
		if f, ok := set[c.name]; ok {
			return f(s.text(c))
		}
		s.skip(c)
		return nil
	})
}

// The scanner: elements and text of well-formed XML without a DTD.
// Element and attribute names are local (prefix dropped); text is
// unescaped. It panics past the end of b (scanPage recovers).

type tagKind int

const (
	tagStart tagKind = iota + 1
	tagEnd
	tagEOF
)

type tag struct {
	kind  tagKind
	name  string
	empty bool   // <x/>
	attrs []byte // raw attribute text of a start tag
}

type scanner struct {
	b   []byte
	pos int
	// pendingEnd: the last start tag was empty (<x/>), so its end is next.
	pendingEnd bool
	declined   bool
}

// next returns the next start or end tag, skipping text, comments and
// processing instructions between them.
func (s *scanner) next() tag {
	if s.pendingEnd {
		s.pendingEnd = false
		return tag{kind: tagEnd}
	}
	for {
		i := bytes.IndexByte(s.b[s.pos:], '<')
		if i < 0 {
			return tag{kind: tagEOF}
		}
		s.pos += i
		switch {
		case bytes.HasPrefix(s.b[s.pos:], []byte("<?")):
			s.pos += bytes.Index(s.b[s.pos:], []byte("?>")) + 2
		case bytes.HasPrefix(s.b[s.pos:], []byte("<!--")):
			s.pos += bytes.Index(s.b[s.pos:], []byte("-->")) + 3
		case s.b[s.pos+1] == '!': // CDATA or a DTD: not read here
			s.declined = true
			return tag{kind: tagEOF}
		case s.b[s.pos+1] == '/':
			i := bytes.IndexByte(s.b[s.pos:], '>')
			if i < 0 {
				s.declined = true
				return tag{kind: tagEOF}
			}
			s.pos += i + 1
			return tag{kind: tagEnd}
		default:
			return s.start()
		}
	}
}

// start reads the start tag at s.pos.
func (s *scanner) start() tag {
	end := s.pos + closeIndex(s.b[s.pos:])
	raw := s.b[s.pos+1 : end]
	s.pos = end + 1
	t := tag{kind: tagStart}
	if n := len(raw); n > 0 && raw[n-1] == '/' {
		t.empty, raw = true, raw[:n-1]
		s.pendingEnd = true
	}
	nameEnd := bytes.IndexAny(raw, " \t\r\n")
	if nameEnd < 0 {
		nameEnd = len(raw)
	}
	t.name = string(localName(raw[:nameEnd]))
	t.attrs = raw[nameEnd:]
	return t
}

// closeIndex is the index of the '>' closing the tag at the start of b,
// skipping quoted attribute values.
func closeIndex(b []byte) int {
	quote := byte(0)
	for i := 1; ; i++ {
		switch c := b[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i
		}
	}
}

func localName(n []byte) []byte {
	if i := bytes.IndexByte(n, ':'); i >= 0 {
		return n[i+1:]
	}
	return n
}

// text reads the character data of the element t starts up to its end
// tag; an element with children gives "" and declines.
func (s *scanner) text(t tag) string {
	if t.empty {
		s.next() // its end
		return ""
	}
	i := bytes.IndexByte(s.b[s.pos:], '<')
	raw := s.b[s.pos : s.pos+i]
	s.pos += i
	if e := s.next(); e.kind != tagEnd {
		s.declined = true
		return ""
	}
	if bytes.IndexByte(raw, '&') < 0 {
		return string(raw)
	}
	out, ok := unescape(raw)
	if !ok {
		s.declined = true
	}
	return out
}

// skip passes over the element t starts, children and all.
func (s *scanner) skip(t tag) {
	if t.empty {
		s.next()
		return
	}
	for depth := 1; depth > 0; {
		switch s.next().kind {
		case tagStart:
			depth++
		case tagEnd:
			depth--
		case tagEOF:
			s.declined = true
			return
		}
	}
}

// attr returns the value of the unprefixed attribute name.
func (t tag) attr(name string) string {
	v, _ := t.findAttr(func(n []byte) bool { return string(n) == name })
	return v
}

// xsiType is the local part of the xsi:type attribute ("xsd:string" ->
// "string"): the only prefixed attribute named type in vim answers.
func (t tag) xsiType() string {
	v, _ := t.findAttr(func(n []byte) bool {
		i := bytes.IndexByte(n, ':')
		return i > 0 && string(n[i+1:]) == "type"
	})
	return string(localName([]byte(v)))
}

func (t tag) findAttr(match func([]byte) bool) (string, bool) {
	a := t.attrs
	for {
		a = bytes.TrimLeft(a, " \t\r\n")
		eq := bytes.IndexByte(a, '=')
		if eq < 0 {
			return "", false
		}
		name := bytes.TrimSpace(a[:eq])
		a = bytes.TrimLeft(a[eq+1:], " \t\r\n")
		if len(a) == 0 || (a[0] != '"' && a[0] != '\'') {
			return "", false
		}
		q := a[0]
		end := bytes.IndexByte(a[1:], q)
		if end < 0 {
			return "", false
		}
		val := a[1 : 1+end]
		a = a[end+2:]
		if match(name) {
			out, _ := unescape(val)
			return out, true
		}
	}
}

// unescape replaces XML's predefined entities and character references.
func unescape(b []byte) (string, bool) {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			sb.Write(b)
			break
		}
		sb.Write(b[:i])
		b = b[i:]
		semi := bytes.IndexByte(b, ';')
		if semi < 0 {
			return "", false
		}
		ent := string(b[1:semi])
		b = b[semi+1:]
		switch ent {
		case "lt":
			sb.WriteByte('<')
		case "gt":
			sb.WriteByte('>')
		case "amp":
			sb.WriteByte('&')
		case "quot":
			sb.WriteByte('"')
		case "apos":
			sb.WriteByte('\'')
		default:
			var n uint64
			var err error
			switch {
			case strings.HasPrefix(ent, "#x"):
				n, err = strconv.ParseUint(ent[2:], 16, 32)
			case strings.HasPrefix(ent, "#"):
				n, err = strconv.ParseUint(ent[1:], 10, 32)
			default:
				return "", false
			}
			if err != nil {
				return "", false
			}
			sb.WriteRune(rune(n))
		}
	}
	return sb.String(), true
}
