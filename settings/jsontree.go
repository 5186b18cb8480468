package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
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
	key string
	val *node
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
	// value the client never sent (RFC 8259 requires UTF-8).
	if !utf8.Valid(body) {
		e := InvalidRequest("request body is not valid UTF-8")
		return nil, &e
	}
	if !json.Valid(body) {
		e := InvalidRequest("request body is not valid JSON")
		return nil, &e
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	n, err := parseValue(dec, "", 0)
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

func parseValue(dec *json.Decoder, path string, depth int) (*node, error) {
	tok, err := dec.Token()
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
		return &node{kind: kindString, str: t}, nil
	case json.Delim:
		if depth >= maxDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
		}
		switch t {
		case '{':
			n := &node{kind: kindObject}
			seen := make(map[string]bool)
			for dec.More() {
				ktok, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := ktok.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				kpath := joinPath(path, key)
				if seen[key] {
					return nil, fmt.Errorf("duplicate key %s", strconv.Quote(truncate(kpath, maxGot)))
				}
				seen[key] = true
				v, err := parseValue(dec, kpath, depth+1)
				if err != nil {
					return nil, err
				}
				n.members = append(n.members, member{key: key, val: v})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return n, nil
		case '[':
			n := &node{kind: kindArray}
			for dec.More() {
				v, err := parseValue(dec, fmt.Sprintf("%s[%d]", path, len(n.elems)), depth+1)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
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
		writeJSONString(b, n.str)
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
			writeJSONString(b, m.key)
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
