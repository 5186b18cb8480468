package scenarios

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Render writes sc as a scenario file: Parse reads it back to the same
// scenario (the same name, description, cluster, settings, steps and
// checks; not the same lines and columns). header, when not "", is
// written on top as comments (say there how the file was made); each
// step's Comment is written above it. The layout is the library's: the
// cluster and every step in full, an action's fields as a flow map on its
// line, its common fields (as, for, timeout, …) under it.
func Render(sc *Scenario, header string) []byte {
	var b bytes.Buffer
	writeComment(&b, "", header)
	fmt.Fprintf(&b, "name: %s\n", scalarText(sc.Name))
	if sc.Description != "" {
		b.WriteString("description:" + blockText(sc.Description, "  ") + "\n")
	}
	fmt.Fprintf(&b, "cluster: {masters: %d, coreapps: %d, shards: %d}\n", sc.Cluster.Masters, sc.Cluster.Coreapps, sc.Cluster.Shards)
	if sc.Settings != nil {
		b.WriteString("settings:")
		if v, err := decodeJSON(sc.Settings); err == nil && isNonEmptyMap(v) {
			m := v.(map[string]any)
			b.WriteString("\n")
			for _, k := range sortedKeys(m) {
				fmt.Fprintf(&b, "  %s: %s\n", scalarText(k), flowText(m[k]))
			}
		} else {
			b.WriteString(" " + jsonText(sc.Settings) + "\n")
		}
	}
	if w := sc.Workload; w != nil {
		fmt.Fprintf(&b, "workload:\n  rate: %s/s\n  recipients: %d\n  webhook: %s\n", numberText(w.Rate), w.Recipients,
			webhookText(WebhookPatch{FailPercent: &w.Webhook.FailPercent, Latency: &w.Webhook.Latency, Down: &w.Webhook.Down}))
	}
	b.WriteString("steps:\n")
	for _, st := range sc.Steps {
		writeStep(&b, st)
	}
	if slices.Equal(sc.Checks, Invariants) || sc.Workload != nil && slices.Equal(sc.Checks, slices.Concat(Invariants, TrafficInvariants)) {
		b.WriteString("checks: all\n")
	} else {
		b.WriteString("checks: [" + strings.Join(mapText(sc.Checks, scalarText), ", ") + "]\n")
	}
	return b.Bytes()
}

func writeComment(b *bytes.Buffer, indent, text string) {
	if text == "" {
		return
	}
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		if line = strings.TrimRight(line, " \t"); line == "" {
			b.WriteString(indent + "#\n")
		} else {
			b.WriteString(indent + "# " + line + "\n")
		}
	}
}

func writeStep(b *bytes.Buffer, st Step) {
	writeComment(b, "  ", st.Comment)
	fmt.Fprintf(b, "  - %s: %s\n", st.Action, actionText(st))
	field := func(key, value string) { fmt.Fprintf(b, "    %s: %s\n", key, value) }
	if st.As != "" {
		field("as", scalarText(st.As))
	}
	if st.Action == "expect" && st.Shard >= 0 {
		field("shard", strconv.Itoa(st.Shard))
	}
	if st.After != "" {
		field("after", scalarText(st.After))
	}
	if st.Within != nil {
		field("within", withinText(*st.Within))
	}
	if st.Action == "expect" && st.Max >= 0 {
		field("max", strconv.Itoa(st.Max))
	}
	if st.For > 0 {
		field("for", durationText(st.For))
	}
	if st.Timeout > 0 {
		field("timeout", durationText(st.Timeout))
	}
}

// actionText is the value of a step's action key.
func actionText(st Step) string {
	switch st.Action {
	case "sleep":
		return durationText(st.Duration)
	case "kill", "stop", "pause", "resume", "restart", "isolate":
		if st.Node != nil {
			return selectorText(*st.Node)
		}
	case "heal":
		if st.Node != nil {
			return selectorText(*st.Node)
		}
		return "all"
	case "partition":
		groups := make([]string, len(st.Groups))
		for i, g := range st.Groups {
			groups[i] = "[" + strings.Join(mapText(g, selectorText), ", ") + "]"
		}
		return "[" + strings.Join(groups, ", ") + "]"
	case "delay", "loss":
		if l := st.Link; l != nil {
			fields := []string{"from: " + selectorText(l.From), "to: [" + strings.Join(mapText(l.To, selectorText), ", ") + "]"}
			if st.Action == "delay" {
				fields = append(fields, "latency: "+durationText(l.Latency))
				if l.Jitter > 0 {
					fields = append(fields, "jitter: "+durationText(l.Jitter))
				}
			} else {
				fields = append(fields, "percent: "+numberText(l.Percent))
			}
			return "{" + strings.Join(fields, ", ") + "}"
		}
	case "clock":
		if c := st.Clock; c != nil {
			return fmt.Sprintf("{node: %s, rate: %s}", selectorText(c.Node), numberText(c.Rate))
		}
	case "set":
		return jsonText(st.Set)
	case "shards":
		return strconv.Itoa(st.Shards)
	case "webhook":
		if st.Webhook != nil {
			return webhookText(*st.Webhook)
		}
	case "nemesis":
		if n := st.Nemesis; n != nil {
			s := fmt.Sprintf("{faults: [%s], every: %s", strings.Join(mapText(n.Faults, scalarText), ", "), durationText(n.Every))
			if n.MaxDown >= 0 {
				s += fmt.Sprintf(", max_down: %d", n.MaxDown)
			}
			return s + "}"
		}
	}
	return scalarText(st.What)
}

// webhookText is a webhook patch as a flow map, its fields in a fixed
// order.
func webhookText(p WebhookPatch) string {
	var fields []string
	if p.FailPercent != nil {
		fields = append(fields, "fail: "+numberText(*p.FailPercent)+"%")
	}
	if p.Latency != nil {
		if *p.Latency == 0 {
			fields = append(fields, "latency: 0s")
		} else {
			fields = append(fields, "latency: "+durationText(*p.Latency))
		}
	}
	if p.Down != nil {
		fields = append(fields, "down: "+strconv.FormatBool(*p.Down))
	}
	return "{" + strings.Join(fields, ", ") + "}"
}

func mapText[T any](xs []T, text func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = text(x)
	}
	return out
}

func selectorText(s Selector) string { return scalarText(s.String()) }

func withinText(b Bound) string {
	switch {
	case b.Named != "":
		return scalarText(b.Named)
	case b.Min == 0:
		return durationText(b.Max)
	}
	return "[" + durationText(b.Min) + ", " + durationText(b.Max) + "]"
}

// durationText is d as a Go duration in its shortest exact spelling:
// "2m", "90s", "500ms", "3.046875s" (never "1m30s": one unit reads
// best).
func durationText(d time.Duration) string {
	if d < 0 {
		return "-" + durationText(-d)
	}
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Second && d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	frac := strings.TrimRight(fmt.Sprintf("%09d", d%time.Second), "0")
	return fmt.Sprintf("%d.%ss", d/time.Second, frac)
}

// numberText is a float as YAML reads it back exactly, without an
// exponent.
func numberText(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// plainRE is what a string may look like to be written unquoted: it
// cannot be read as a number, a boolean or null, and has none of the
// characters YAML gives a meaning to (in flow maps and lists too).
var plainRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_./()-]*$`)

// scalarText is a string as a YAML scalar that reads back as that string.
func scalarText(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf":
		return quoted(s)
	}
	if plainRE.MatchString(s) {
		return s
	}
	return quoted(s)
}

// quoted is s double-quoted: JSON's escapes are all YAML escapes too.
func quoted(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// blockText is a long text after its key: folded over lines of at most
// 72 columns (">-"), when folding gives back the same text, else quoted
// on the key's line.
func blockText(s, indent string) string {
	foldable := s == strings.TrimSpace(s) && !strings.Contains(s, "  ") &&
		!strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) })
	if !foldable {
		return " " + quoted(s)
	}
	var b strings.Builder
	b.WriteString(" >-")
	line := ""
	for _, w := range strings.Split(s, " ") {
		if line != "" && len(indent)+len(line)+1+len(w) > 72 {
			b.WriteString("\n" + indent + line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	b.WriteString("\n" + indent + line)
	return b.String()
}

// jsonText is a JSON value (a PATCH body) as a YAML flow value.
func jsonText(raw json.RawMessage) string {
	v, err := decodeJSON(raw)
	if err != nil {
		return string(raw) // not JSON: written as it is, for Parse to refuse
	}
	return flowText(v)
}

func decodeJSON(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers keep their text: 1 stays 1, not 1.0
	var v any
	err := dec.Decode(&v)
	return v, err
}

func isNonEmptyMap(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) > 0
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// flowText is a decoded JSON value as a YAML flow value.
func flowText(v any) string {
	switch v := v.(type) {
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range sortedKeys(v) {
			parts = append(parts, scalarText(k)+": "+flowText(v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		return "[" + strings.Join(mapText(v, flowText), ", ") + "]"
	case string:
		return scalarText(v)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return "null"
}
