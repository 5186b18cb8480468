package settings

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/mcsim/mcsim/internal/loopback"
)

// MaxBodyBytes is the largest request body the API accepts (SETTINGS.md:
// over 1 MiB is 413).
const MaxBodyBytes = 1 << 20

// PatchStored applies a PATCH body to a stored document (nil: never
// written, the defaults) and returns the document to store. A body that
// breaks the rules returns its Errors (as the error); a stored document
// that does not decode returns a plain error (%v, not %w), so it is never
// mistaken for the client's validation errors.
func PatchStored(stored []byte, waID string, body []byte) ([]byte, error) {
	cur, err := Decode(stored, waID)
	if err != nil {
		return nil, fmt.Errorf("decoding the stored settings: %v", err)
	}
	next, errs := Patch(cur, body)
	if len(errs) > 0 {
		return nil, errs
	}
	return next.Encode(), nil
}

// Patch applies a PATCH body to cur: the fields present are set, objects
// merge deeply, arrays are replaced whole.
//
// All or nothing: on any problem it returns cur unchanged and one Error per
// bad field, with the field's full dotted path at the start of Details.
//
// Decisions where SETTINGS.md is silent:
//   - A body that is not JSON, is not UTF-8, is empty, has trailing data, nests deeper than
//     32 levels or repeats a key in any object is one 1025 error (a repeated
//     key is ambiguous, so the body is refused rather than last-one-wins).
//   - A string escaping a lone UTF-16 surrogate ("\ud800" alone, "\udc00"
//     alone, a high one not followed by a low one) is not Unicode text: 1009
//     naming the field (or the key, when the key holds it), with the
//     literal echoed as sent.
//   - A body that is JSON but not an object is one 1025 error.
//   - Integer fields take integer literals only: 5.0, 5e0, 5.5 and 1e400 are
//     1009. Numeric strings (callback delays only) are ASCII digits.
//   - A key containing "." (e.g. {"webhooks.url": ...}) is an unknown field:
//     nesting is spelled with objects.
//   - Errors are sorted by dotted path (byte order), so the order does not
//     depend on the order of keys in the body.
//   - Cross-field rules (unhealthy_interval > heartbeat_interval,
//     callback_backoff_delay_ms ≤ max_callback_backoff_delay_ms) are checked
//     on the merged result, only when both fields are individually valid.
//     The error goes to each of the two fields the body set (to the upper
//     one when the body set neither).
//   - A body over MaxBodyBytes is one 413 (the HTTP layer should refuse it
//     before reading it all; this is the backstop).
//
// On success errs is a nil Errors: test errs != nil (or len) on the Errors
// value itself; a nil Errors stored in an error interface is non-nil.
func Patch(cur Application, body []byte) (Application, Errors) {
	if len(body) > MaxBodyBytes {
		return cur, Errors{TooLarge(MaxBodyBytes)}
	}
	root, perr := parseBody(body)
	if perr != nil {
		return cur, Errors{*perr}
	}
	if root.kind != kindObject {
		return cur, Errors{InvalidRequest("request body must be a JSON object, got " + root.describe())}
	}
	leaves, groups := fieldIndex(schema())
	p := &patcher{
		leaves:  leaves,
		groups:  groups,
		next:    cur.clone(),
		touched: map[string]*node{},
		bad:     map[string]bool{},
	}
	p.object("", root)
	p.crossChecks()
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].path < p.errs[j].path })
		out := make(Errors, len(p.errs))
		for i, e := range p.errs {
			out[i] = e.err
		}
		return cur, out
	}
	return p.next, nil
}

type patcher struct {
	leaves  map[string]field
	groups  map[string]bool
	next    Application
	touched map[string]*node // valid leaves the body set, with their raw value
	bad     map[string]bool  // leaves the body set to something invalid
	errs    []pathError
}

type pathError struct {
	path string
	err  Error
}

func (p *patcher) fail(path string, err Error) {
	p.bad[path] = true
	p.errs = append(p.errs, pathError{path: path, err: err})
}

func (p *patcher) object(prefix string, obj *node) {
	for _, m := range obj.members {
		path := joinPath(prefix, m.key)
		shown := truncate(path, maxGot)
		if m.key == "" {
			shown = joinPath(prefix, `""`)
		}
		if m.lone != "" {
			p.fail(path, badKey(path, m.lone))
			continue
		}
		switch f, isLeaf := p.leaves[path]; {
		case m.key == "" || strings.Contains(m.key, "."):
			p.fail(path, NotRequired(shown, "unknown field (nested fields are spelled as objects)"))
		case isLeaf:
			p.leaf(f, m.val)
		case p.groups[path]:
			switch m.val.kind {
			case kindObject:
				p.object(path, m.val)
			case kindNull:
				p.fail(path, InvalidValue(path, "must not be null (use DELETE to reset to the defaults)", m.val))
			default:
				p.fail(path, InvalidValue(path, "must be an object", m.val))
			}
		case path == "wa_id":
			p.fail(path, NotRequired(path, "read-only, set by the service's configuration"))
		case path == "media.providers":
			p.fail(path, NotRequired(path, "managed by /v1/settings/application/media/providers"))
		default:
			p.fail(path, NotRequired(shown, "unknown field"))
		}
	}
}

func (p *patcher) leaf(f field, n *node) {
	// Before the kind's own check, which would judge the U+FFFD that
	// encoding/json made of the escape (and might even accept it).
	if es := unicodeErrors(f.path, n); len(es) > 0 {
		p.fail(f.path, es[0])
		return
	}
	if n.kind == kindNull {
		p.fail(f.path, InvalidValue(f.path, f.expected()+"; null is not accepted (use DELETE to reset to the defaults)", n))
		return
	}
	v, expected := parseLeaf(f, n)
	if expected == "" && f.rule != nil {
		expected = f.rule(v)
	}
	if expected != "" {
		p.fail(f.path, InvalidValue(f.path, expected, n))
		return
	}
	f.set(&p.next, v)
	p.touched[f.path] = n
}

// parseLeaf checks n against f's kind and returns the value, or what was
// expected.
func parseLeaf(f field, n *node) (any, string) {
	switch f.kind {
	case kindBool:
		if n.kind != kindBoolean {
			return nil, f.expected()
		}
		return n.b, ""
	case kindSeconds, kindMillis:
		unit, limit := "seconds", maxSeconds
		if f.kind == kindMillis {
			unit, limit = "milliseconds", maxMillis
		}
		var lit string
		switch {
		case n.kind == kindNumber:
			lit = n.num.String()
		case n.kind == kindString && f.kind == kindMillis:
			lit = n.str
			if !allDigits(lit) {
				return nil, f.expected()
			}
		default:
			return nil, f.expected()
		}
		v, ok, tooBig := parseIntLiteral(lit)
		if tooBig || (ok && v > limit) {
			return nil, fmt.Sprintf("must be at most %d %s", limit, unit)
		}
		if !ok || v < 1 {
			return nil, f.expected()
		}
		return v, ""
	case kindIntChoice:
		if n.kind != kindNumber {
			return nil, f.expected()
		}
		v, ok, _ := parseIntLiteral(n.num.String())
		if !ok || !inSet(f.intChoices, v) {
			return nil, f.expected()
		}
		return v, ""
	case kindStringChoice:
		if n.kind != kindString || !inSet(f.choices, n.str) {
			return nil, f.expected()
		}
		return n.str, ""
	case kindStringSet:
		if n.kind != kindArray {
			return nil, f.expected()
		}
		out := make([]string, 0, len(n.elems))
		for i, e := range n.elems {
			if e.kind != kindString || !inSet(f.choices, e.str) {
				return nil, fmt.Sprintf("%s (element %d is not)", f.expected(), i)
			}
			if slices.Contains(out, e.str) {
				return nil, fmt.Sprintf("%s (%q appears twice)", f.expected(), e.str)
			}
			out = append(out, e.str)
		}
		return out, ""
	case kindWebhookURL:
		if n.kind == kindString && len(n.str) > maxURLLen {
			// Otherwise a well-formed but long URL would be refused with
			// a message that does not say why.
			return nil, fmt.Sprintf("%s, of at most %d bytes (this one has %d)", f.expected(), maxURLLen, len(n.str))
		}
		if n.kind != kindString || !validWebhookURL(n.str) {
			return nil, f.expected()
		}
		return n.str, ""
	}
	return nil, f.expected()
}

// parseIntLiteral parses a JSON number literal that must be an integer.
// ok is false for a fraction or exponent; tooBig for an integer beyond int64.
func parseIntLiteral(lit string) (v int64, ok, tooBig bool) {
	if strings.ContainsAny(lit, ".eE") {
		return 0, false, false
	}
	v, err := strconv.ParseInt(lit, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, false, !strings.HasPrefix(lit, "-")
	}
	if err != nil {
		return 0, false, false
	}
	return v, true, false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validWebhookURL: "" clears; otherwise an absolute https URL with a host (a
// query string is fine), or http when the host is loopback, so a receiver on
// the same machine works without TLS. At most maxURLLen bytes.
func validWebhookURL(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > maxURLLen {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return false
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		return loopback.Host(u.Hostname())
	}
	return false
}

// crossChecks applies orderRules to the merged document.
func (p *patcher) crossChecks() {
	for _, r := range orderRules() {
		if p.bad[r.low] || p.bad[r.high] {
			continue // the field's own error says enough
		}
		lowV, _ := p.leaves[r.low].get(&p.next)
		highV, _ := p.leaves[r.high].get(&p.next)
		lo, hi := lowV.(int64), highV.(int64)
		if hi > lo || (!r.strict && hi == lo) {
			continue
		}
		above, below := "greater than", "less than"
		if !r.strict {
			above, below = "≥", "≤"
		}
		lowRaw, lowSet := p.touched[r.low]
		highRaw, highSet := p.touched[r.high]
		if highSet || !lowSet {
			got := any(hi)
			if highSet {
				got = highRaw
			}
			p.fail(r.high, InvalidValue(r.high, fmt.Sprintf("must be %s %s (%d)", above, r.low, lo), got))
		}
		if lowSet {
			p.fail(r.low, InvalidValue(r.low, fmt.Sprintf("must be %s %s (%d)", below, r.high, hi), lowRaw))
		}
	}
}
