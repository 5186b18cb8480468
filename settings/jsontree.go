package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A node is one JSON value of a request body, parsed strictly: numbers keep
// their literal text (so 5.5 and 1e400 can be told from integers and echoed
// back exactly), object members keep body order, duplicate keys are refused.
type node struct {
	kind    nodeKind
	members []member // kindObject, in body order
	elems   []*node  // kindArray
	str     string   // kindString
	num     json.Number
	b       bool
	// lone is the first escape in a kindString literal that is a lone
	// UTF-16 surrogate (\ud800); raw is then the literal as sent, so
	// error messages echo what the client wrote, not the U+FFFD
	// encoding/json put in str.
	lone, raw string
}

type nodeKind int

const (
	kindNull nodeKind = iota
	kindBoolean
	kindNumber
	kindString
	kindArray
	kindObject
)

type member struct {
	// key is the decoded key, or, when the key's literal holds a lone
	// surrogate (lone), the literal's text between the quotes, escapes and
	// all: paths built from it then never carry a U+FFFD, and it matches no
	// known field.
	key  string
	lone string
	val  *node
}

// maxDepth bounds nesting. The deepest settings path has three levels; the
// limit only has to keep recursion cheap on hostile bodies.
const maxDepth = 32

// parseBody parses a whole request body into a node tree. Any problem with
// the body as JSON (syntax, trailing data, duplicate keys, nesting) is one
// 1025 error: the body as a whole is not an acceptable JSON document.
func parseBody(body []byte) (*node, *Error) {
	if len(bytes.TrimSpace(body)) == 0 {
		e := InvalidRequest("request body is empty; expected a JSON document")
		return nil, &e
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD, storing a
	// value the client never sent (RFC 8259 requires UTF-8). The bad byte is
	// shown as hex: echoing it would put the same U+FFFD in the answer.
	if off := invalidUTF8(body); off >= 0 {
		e := InvalidRequest(fmt.Sprintf("request body is not valid UTF-8: byte 0x%02X at offset %d", body[off], off))
		return nil, &e
	}
	if !json.Valid(body) {
		e := InvalidRequest("request body is not valid JSON")
		return nil, &e
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	p := &parser{dec: dec, body: body}
	n, err := p.value("", 0)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("unexpected data after the JSON document")
		}
	}
	if err != nil {
		e := InvalidRequest("request body is not acceptable JSON: " + err.Error())
		return nil, &e
	}
	return n, nil
}

// invalidUTF8 returns the offset of the first byte of b that is not part
// of valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// parser walks the decoder's tokens, keeping the body so that a string's
// literal can be read back when decoding lost information.
type parser struct {
	dec  *json.Decoder
	body []byte
}

// token is dec.Token, plus, for a string whose literal escapes a lone UTF-16
// surrogate, that escape and the literal. encoding/json decodes such an
// escape to U+FFFD without complaint; the decoded string is then a value the
// client never sent, just like invalid UTF-8.
func (p *parser) token() (tok json.Token, lone, raw string, err error) {
	start := p.dec.InputOffset()
	tok, err = p.dec.Token()
	if err != nil {
		return nil, "", "", err
	}
	// The body is valid UTF-8, so a string without U+FFFD cannot have lost
	// anything; only the others are worth reading back.
	if s, ok := tok.(string); ok && strings.ContainsRune(s, utf8.RuneError) {
		lit := p.body[start:p.dec.InputOffset()]
		// Between the previous token and this one there is only white
		// space, ',' and ':'; the first quote opens the literal.
		lit = lit[bytes.IndexByte(lit, '"'):]
		if lone = loneSurrogate(lit); lone != "" {
			raw = string(lit)
		}
	}
	return tok, lone, raw, nil
}

// loneSurrogate returns the first \uXXXX escape of a JSON string literal
// (quotes included, already known to be valid JSON) that is a UTF-16
// surrogate not part of a high-low pair, or "".
func loneSurrogate(lit []byte) string {
	for i := 1; i < len(lit)-1; i++ {
		if lit[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if lit[i] != 'u' {
			continue
		}
		r := hex4(lit[i+1 : i+5])
		esc := string(lit[i-1 : i+5])
		i += 4
		switch {
		case r < 0xD800 || r > 0xDFFF:
		case r >= 0xDC00: // a low surrogate with no high one before it
			return esc
		case i+6 < len(lit) && lit[i+1] == '\\' && lit[i+2] == 'u' && isLowSurrogate(hex4(lit[i+3:i+7])):
			i += 6 // a proper pair
		default:
			return esc
		}
	}
	return ""
}

func isLowSurrogate(r rune) bool { return r >= 0xDC00 && r <= 0xDFFF }

// hex4 reads four hex digits (json.Valid has checked them).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		}
	}
	return r
}

func (p *parser) value(path string, depth int) (*node, error) {
	tok, lone, raw, err := p.token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &node{kind: kindNull}, nil
	case bool:
		return &node{kind: kindBoolean, b: t}, nil
	case json.Number:
		return &node{kind: kindNumber, num: t}, nil
	case string:
		return &node{kind: kindString, str: t, lone: lone, raw: raw}, nil
	case json.Delim:
		if depth >= maxDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
		}
		switch t {
		case '{':
			n := &node{kind: kindObject}
			// Keys with a lone surrogate are told apart by their literal
			// (two different ones both decode to U+FFFD).
			type seenKey struct {
				key  string
				lone bool
			}
			seen := make(map[seenKey]bool)
			for p.dec.More() {
				ktok, klone, kraw, err := p.token()
				if err != nil {
					return nil, err
				}
				key, ok := ktok.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				if klone != "" {
					key = kraw[1 : len(kraw)-1]
				}
				kpath := joinPath(path, key)
				if seen[seenKey{key, klone != ""}] {
					return nil, fmt.Errorf("duplicate key %s", strconv.Quote(truncate(kpath, maxGot)))
				}
				seen[seenKey{key, klone != ""}] = true
				v, err := p.value(kpath, depth+1)
				if err != nil {
					return nil, err
				}
				n.members = append(n.members, member{key: key, lone: klone, val: v})
			}
			if _, err := p.dec.Token(); err != nil { // '}'
				return nil, err
			}
			return n, nil
		case '[':
			n := &node{kind: kindArray}
			for p.dec.More() {
				v, err := p.value(fmt.Sprintf("%s[%d]", path, len(n.elems)), depth+1)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
			if _, err := p.dec.Token(); err != nil { // ']'
				return nil, err
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// render writes n as compact JSON, stopping once b holds more than limit
// bytes (the caller truncates); HTML characters are not escaped.
func (n *node) render(b *bytes.Buffer, limit int) {
	if b.Len() > limit {
		return
	}
	switch n.kind {
	case kindNull:
		b.WriteString("null")
	case kindBoolean:
		b.WriteString(strconv.FormatBool(n.b))
	case kindNumber:
		b.WriteString(n.num.String())
	case kindString:
		if n.raw != "" {
			b.WriteString(n.raw) // already a JSON string; see node.lone
		} else {
			writeJSONString(b, n.str)
		}
	case kindArray:
		b.WriteByte('[')
		for i, e := range n.elems {
			if b.Len() > limit {
				return
			}
			if i > 0 {
				b.WriteByte(',')
			}
			e.render(b, limit)
		}
		b.WriteByte(']')
	case kindObject:
		b.WriteByte('{')
		for i, m := range n.members {
			if b.Len() > limit {
				return
			}
			if i > 0 {
				b.WriteByte(',')
			}
			if m.lone != "" {
				b.WriteString(`"` + m.key + `"`) // the literal's own text
			} else {
				writeJSONString(b, m.key)
			}
			b.WriteByte(':')
			m.val.render(b, limit)
		}
		b.WriteByte('}')
	}
}

func writeJSONString(b *bytes.Buffer, s string) {
	if len(s) > maxGot+1 {
		s = s[:maxGot+1] // only the start is ever shown
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a Go string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}

// describe names a node's JSON type for messages.
func (n *node) describe() string {
	switch n.kind {
	case kindNull:
		return "null"
	case kindBoolean:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindArray:
		return "an array"
	default:
		return "an object"
	}
}

// unicodeErrors returns one 1009 for every string in n, at any depth, whose
// literal escapes a lone UTF-16 surrogate: a value (named by its path) or an
// object key (named by the path it would have). Empty when there are none.
func unicodeErrors(path string, n *node) Errors {
	var errs Errors
	switch n.kind {
	case kindString:
		if n.lone != "" {
			errs = append(errs, InvalidValue(path, fmt.Sprintf("must be valid Unicode text (%s is a lone UTF-16 surrogate)", n.lone), n))
		}
	case kindArray:
		for i, e := range n.elems {
			errs = append(errs, unicodeErrors(fmt.Sprintf("%s[%d]", path, i), e)...)
		}
	case kindObject:
		for _, m := range n.members {
			p := joinPath(path, m.key)
			if m.lone != "" {
				errs = append(errs, badKey(p, m.lone))
				continue
			}
			errs = append(errs, unicodeErrors(p, m.val)...)
		}
	}
	return errs
}

// badKey is the 1009 for an object key escaping a lone surrogate.
func badKey(path, lone string) Error {
	return Error{
		Status:  http.StatusBadRequest,
		Code:    CodeInvalidValue,
		Title:   TitleInvalidValue,
		Details: fmt.Sprintf("%s: a field name must be valid Unicode text (%s is a lone UTF-16 surrogate)", truncate(path, maxGot), lone),
	}
}
