// Package sweep is the pure part of `mcsim sweep`: reading --set
// FIELD=V1,V2,… flags, the cartesian product of their values in a stable
// order, merging each combination over a scenario's settings with the
// settings service's own rules (so a combination the service would refuse
// is skipped with its reason), which unhealthy declarations were false
// failovers, and their rate per simulated hour. It runs nothing and reads
// no clock: the command runs the scenarios and hands over what the
// witnesses saw.
package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/settings"
)

// Set is one --set flag: a settings field and the values to try, in the
// order given.
type Set struct {
	Field  string
	Values []json.RawMessage
}

// ParseSet reads FIELD=V1,V2,…. A field nested in an object is spelled
// with dots (webhooks.url). Each value is a JSON scalar (1, 2.5, true,
// null, "x"); a bare word that is not JSON is taken as a string, so
// log_level=debug,info works. Values cannot contain commas.
func ParseSet(s string) (Set, error) {
	field, vals, ok := strings.Cut(s, "=")
	field = strings.TrimSpace(field)
	if !ok || field == "" {
		return Set{}, fmt.Errorf("--set %q: want FIELD=V1,V2,… (e.g. unhealthy_interval=3,5,10)", s)
	}
	out := Set{Field: field}
	for _, v := range strings.Split(vals, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			return Set{}, fmt.Errorf("--set %s: empty value in %q (want FIELD=V1,V2,…)", field, s)
		}
		raw := json.RawMessage(v)
		var x any
		if err := json.Unmarshal(raw, &x); err != nil {
			raw, _ = json.Marshal(v)
		} else if _, isMap := x.(map[string]any); isMap {
			return Set{}, fmt.Errorf("--set %s: value %s is not a JSON scalar", field, v)
		} else if _, isArr := x.([]any); isArr {
			return Set{}, fmt.Errorf("--set %s: value %s is not a JSON scalar", field, v)
		}
		out.Values = append(out.Values, raw)
	}
	return out, nil
}

// Assign is one field set to one value.
type Assign struct {
	Field string
	Value json.RawMessage
}

// Combo is one combination: one value of every --set, in flag order.
type Combo []Assign

// String is "field=value field=value", in flag order.
func (c Combo) String() string {
	parts := make([]string, len(c))
	for i, a := range c {
		parts[i] = a.Field + "=" + string(a.Value)
	}
	return strings.Join(parts, " ")
}

// Body is the combination as a settings PATCH body (dotted fields as
// nested objects).
func (c Combo) Body() json.RawMessage {
	m := map[string]any{}
	for _, a := range c {
		put(m, strings.Split(a.Field, "."), a.Value)
	}
	b, _ := json.Marshal(m)
	return b
}

func put(m map[string]any, path []string, v json.RawMessage) {
	if len(path) == 1 {
		m[path[0]] = v
		return
	}
	sub, ok := m[path[0]].(map[string]any)
	if !ok {
		sub = map[string]any{}
		m[path[0]] = sub
	}
	put(sub, path[1:], v)
}

// Product is every combination of the sets' values. The first --set
// varies slowest and the last fastest, so the order is the flags' order
// and the table reads like nested loops.
func Product(sets []Set) []Combo {
	out := []Combo{{}}
	for _, s := range sets {
		next := make([]Combo, 0, len(out)*len(s.Values))
		for _, c := range out {
			for _, v := range s.Values {
				next = append(next, append(slices.Clone(c), Assign{Field: s.Field, Value: v}))
			}
		}
		out = next
	}
	return out
}

// validationWAID stands in for the service's wa_id, which is read-only.
const validationWAID = "16315551019"

// CheckFields refuses a field the settings service does not know or a
// field given twice: those are bad flags, not combinations to skip. Only
// the "unknown field" answer counts here; a value the field refuses is
// one combination's problem.
func CheckFields(sets []Set) error {
	seen := map[string]bool{}
	for _, s := range sets {
		if seen[s.Field] {
			return fmt.Errorf("--set %s: given twice (put every value in one --set)", s.Field)
		}
		seen[s.Field] = true
		if len(s.Values) == 0 {
			return fmt.Errorf("--set %s: no values", s.Field)
		}
		_, errs := settings.Patch(settings.Defaults(validationWAID), Combo{{Field: s.Field, Value: s.Values[0]}}.Body())
		for _, e := range errs {
			if e.Code == settings.CodeNotRequired {
				return fmt.Errorf("--set %s: %s (see SETTINGS.md)", s.Field, e.Details)
			}
		}
	}
	return nil
}

// Merge is the scenario's settings body with the combination laid over it
// (PATCH semantics: the combination's fields replace the scenario's, the
// rest stay), checked as the settings service checks a PATCH over the
// defaults. An error is the reason to skip the combination, in the
// service's words (e.g. "unhealthy_interval: must be greater than
// heartbeat_interval (5), got 3").
func Merge(base json.RawMessage, c Combo) (json.RawMessage, error) {
	app := settings.Defaults(validationWAID)
	if len(bytes.TrimSpace(base)) > 0 {
		var errs settings.Errors
		if app, errs = settings.Patch(app, base); len(errs) > 0 {
			return nil, fmt.Errorf("the scenario's settings: %s", details(errs))
		}
	}
	if _, errs := settings.Patch(app, c.Body()); len(errs) > 0 {
		return nil, fmt.Errorf("%s", details(errs))
	}
	m := map[string]any{}
	if len(bytes.TrimSpace(base)) > 0 {
		if err := json.Unmarshal(base, &m); err != nil {
			return nil, fmt.Errorf("the scenario's settings: %v", err)
		}
	}
	var patch map[string]any
	_ = json.Unmarshal(c.Body(), &patch)
	mergePatch(m, patch)
	b, _ := json.Marshal(m)
	return b, nil
}

func details(errs settings.Errors) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Details
	}
	return strings.Join(parts, "; ")
}

// mergePatch is RFC 7386 on decoded JSON: objects merge, anything else
// replaces.
func mergePatch(dst, patch map[string]any) {
	for k, v := range patch {
		if pm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergePatch(dm, pm)
				continue
			}
		}
		dst[k] = v
	}
}

// Fault is a span during which a node was down or cut off as far as the
// cluster could tell: killed, stopped or paused (until restarted or
// resumed), on one side of a cut link, or running on a skewed clock. End
// zero: until the run's end.
type Fault struct {
	Node       string
	Start, End time.Time
	// Kind is what it was (kill, stop, pause, restart, cut, clock), for
	// reports; FalseFailovers does not read it.
	Kind string
}

// Intervals and IntervalsFrom are the run's intervals over time, as the
// scenario runner keeps them (scenarios.Intervals, whose Window the
// runner's no_false_failover judges by too).
type (
	Intervals     = scenarios.Intervals
	IntervalsFrom = scenarios.IntervalsFrom
)

// FalseFailovers counts the declarations that no fault explains: neither
// the coreapp nor the declaring master was in a fault within the window
// (unhealthy + heartbeat + ε, Intervals.Window) before the declaration.
// Unlike the runner's no_false_failover, a delay or loss on a link is no
// fault here: a slow coreapp is a healthy one (rule 4), and a sweep asks
// how low unhealthy_interval can go before such a coreapp is failed over.
func FalseFailovers(decls []scenarios.Declaration, faults []Fault, iv Intervals, eps time.Duration) int {
	n := 0
	for _, d := range decls {
		window := iv.Window(d.At, eps)
		explained := slices.ContainsFunc(faults, func(f Fault) bool {
			return (f.Node == d.Coreapp || f.Node == d.Master) && !f.Start.After(d.At) &&
				(f.End.IsZero() || !f.End.Before(d.At.Add(-window)))
		})
		if !explained {
			n++
		}
	}
	return n
}

// PerHour is n events over a total run time of d, per hour (0 for no
// time at all).
func PerHour(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Hours()
}

// Percentile of sorted values, nearest rank as scenarios.Distributions
// has it: always a measured value (0 for none).
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}
