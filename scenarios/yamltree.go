package scenarios

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// pos is a place in a scenario file (1-based).
type pos struct{ line, col int }

func (p pos) String() string { return fmt.Sprintf("%d:%d", p.line, p.col) }

// tree is one YAML value with its position: a map (keys in file order), a
// list, or a scalar with the YAML type it was written as.
type tree struct {
	at     pos
	kind   treeKind
	keys   []entry // kindMap
	items  []*tree // kindList
	text   string  // kindScalar: the value as written (unquoted)
	scalar scalarType
}

type entry struct {
	key string
	at  pos // of the key
	val *tree
}

type treeKind int

const (
	kindNull treeKind = iota
	kindScalar
	kindMap
	kindList
)

type scalarType int

const (
	scalarString scalarType = iota
	scalarInt
	scalarFloat
	scalarBool
)

func (t *tree) describe() string {
	switch t.kind {
	case kindNull:
		return "nothing"
	case kindMap:
		return "a map"
	case kindList:
		return "a list"
	}
	switch t.scalar {
	case scalarInt:
		return "the number " + t.text
	case scalarFloat:
		return "the number " + t.text
	case scalarBool:
		return "the boolean " + t.text
	}
	return fmt.Sprintf("%q", t.text)
}

// get returns the value of key in a map, or nil.
func (t *tree) get(key string) *tree {
	for _, e := range t.keys {
		if e.key == key {
			return e.val
		}
	}
	return nil
}

// parseTree parses one YAML document. A syntax error is one problem with
// the position the YAML parser gives.
func parseTree(data []byte) (*tree, []problem) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, []problem{syntaxProblem(err)}
	}
	if len(f.Docs) != 1 {
		return nil, []problem{{at: pos{1, 1}, msg: fmt.Sprintf("want exactly one YAML document, got %d", len(f.Docs))}}
	}
	var probs []problem
	t := convert(f.Docs[0].Body, &probs)
	return t, probs
}

// syntaxProblem takes the position out of a go-yaml error ("[3:5] …").
func syntaxProblem(err error) problem {
	msg := err.Error()
	var line, col int
	if _, scanErr := fmt.Sscanf(msg, "[%d:%d]", &line, &col); scanErr == nil {
		if i := strings.Index(msg, "]"); i >= 0 {
			msg = strings.TrimSpace(msg[i+1:])
		}
		// go-yaml appends the source excerpt after the first line.
		msg, _, _ = strings.Cut(msg, "\n")
		return problem{at: pos{line, col}, msg: "YAML: " + msg}
	}
	msg, _, _ = strings.Cut(msg, "\n")
	return problem{at: pos{1, 1}, msg: "YAML: " + msg}
}

func at(n ast.Node) pos {
	if n == nil || n.GetToken() == nil {
		return pos{1, 1}
	}
	p := n.GetToken().Position
	return pos{p.Line, p.Column}
}

func convert(n ast.Node, probs *[]problem) *tree {
	switch n := n.(type) {
	case nil:
		return &tree{at: pos{1, 1}, kind: kindNull}
	case *ast.NullNode:
		return &tree{at: at(n), kind: kindNull}
	case *ast.MappingNode:
		t := &tree{at: at(n), kind: kindMap}
		for _, v := range n.Values {
			t.keys = append(t.keys, convertEntry(v, probs))
		}
		if len(n.Values) > 0 {
			t.at = at(n.Values[0].Key)
		}
		checkDuplicateKeys(t, probs)
		return t
	case *ast.MappingValueNode:
		t := &tree{at: at(n.Key), kind: kindMap, keys: []entry{convertEntry(n, probs)}}
		return t
	case *ast.SequenceNode:
		t := &tree{at: at(n), kind: kindList}
		for _, v := range n.Values {
			t.items = append(t.items, convert(v, probs))
		}
		return t
	case *ast.StringNode:
		return &tree{at: at(n), kind: kindScalar, text: n.Value, scalar: scalarString}
	case *ast.LiteralNode:
		return &tree{at: at(n), kind: kindScalar, text: n.Value.Value, scalar: scalarString}
	case *ast.IntegerNode:
		return &tree{at: at(n), kind: kindScalar, text: n.GetToken().Value, scalar: scalarInt}
	case *ast.FloatNode:
		return &tree{at: at(n), kind: kindScalar, text: n.GetToken().Value, scalar: scalarFloat}
	case *ast.BoolNode:
		return &tree{at: at(n), kind: kindScalar, text: n.GetToken().Value, scalar: scalarBool}
	case *ast.InfinityNode, *ast.NanNode:
		return &tree{at: at(n), kind: kindScalar, text: n.GetToken().Value, scalar: scalarFloat}
	case *ast.CommentNode, *ast.CommentGroupNode:
		return &tree{at: at(n), kind: kindNull}
	}
	*probs = append(*probs, problem{at: at(n), msg: fmt.Sprintf("YAML %s is not supported in scenario files (write the value out)", n.Type())})
	return &tree{at: at(n), kind: kindNull}
}

func convertEntry(v *ast.MappingValueNode, probs *[]problem) entry {
	key := ""
	if v.Key != nil {
		key = v.Key.String()
		if s, ok := v.Key.(*ast.StringNode); ok {
			key = s.Value
		}
	}
	return entry{key: key, at: at(v.Key), val: convert(v.Value, probs)}
}

func checkDuplicateKeys(t *tree, probs *[]problem) {
	seen := map[string]pos{}
	for _, e := range t.keys {
		if first, dup := seen[e.key]; dup {
			*probs = append(*probs, problem{at: e.at, msg: fmt.Sprintf("key %q given twice (first at %s)", e.key, first)})
			continue
		}
		seen[e.key] = e.at
	}
}
