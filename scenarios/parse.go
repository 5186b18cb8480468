package scenarios

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mcsim/mcsim/settings"
	"github.com/mcsim/mcsim/shard"
)

// problem is one thing wrong with a file.
type problem struct {
	at   pos
	path string // steps[3].kill
	msg  string
}

// Problem is one thing wrong with a scenario file, where it is.
type Problem struct {
	File      string
	Line, Col int
	Path      string
	Message   string
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s:%d:%d: ", p.File, p.Line, p.Col)
	if p.Path != "" {
		s += p.Path + ": "
	}
	return s + p.Message
}

// ParseError lists every problem of a file, in file order.
type ParseError struct{ Problems []Problem }

func (e *ParseError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// selectorHelp is the list of selectors every selector error ends with.
const selectorHelp = "want master-N, coreapp-N, primary, secondary, owner(S), standby, random(coreapp|master)"

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	idRE   = regexp.MustCompile(`^(master|coreapp)-([1-9][0-9]*)$`)
	ownRE  = regexp.MustCompile(`^owner\(\s*([0-9]+)\s*\)$`)
	randRE = regexp.MustCompile(`^random\(\s*([a-z]*)\s*\)$`)
)

// The actions and the sibling keys each allows besides "as".
var actions = map[string][]string{
	"wait":      {"timeout"},
	"sleep":     {},
	"kill":      {},
	"stop":      {},
	"pause":     {"for"},
	"resume":    {},
	"restart":   {},
	"start":     {},
	"partition": {"for"},
	"isolate":   {"for"},
	"delay":     {"for"},
	"loss":      {"for"},
	"heal":      {},
	"clock":     {"for"},
	"set":       {},
	"shards":    {},
	"nemesis":   {"for"},
	"webhook":   {"for"},
	"expect":    {"shard", "after", "within", "for", "max"},
}

func actionNames() string {
	names := make([]string, 0, len(actions))
	for a := range actions {
		names = append(names, a)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// The expectations and what each needs.
var expectKinds = []string{"failover", "no_failover", "takeover", "served", "errors", "callbacks_lost"}

// Parse reads and validates a scenario. file names it in errors. Every
// problem is reported, each with its line and column; a *ParseError
// holds them.
func Parse(file string, data []byte) (*Scenario, error) {
	d := &decoder{file: file, marks: map[string]int{}, app: settings.Defaults(validationWAID)}
	t, probs := parseTree(data)
	d.probs = probs
	if t != nil {
		d.scenario(t)
	}
	if len(d.probs) > 0 {
		slices.SortStableFunc(d.probs, func(a, b problem) int {
			if a.at.line != b.at.line {
				return a.at.line - b.at.line
			}
			return a.at.col - b.at.col
		})
		e := &ParseError{}
		for _, p := range d.probs {
			e.Problems = append(e.Problems, Problem{File: file, Line: p.at.line, Col: p.at.col, Path: p.path, Message: p.msg})
		}
		return nil, e
	}
	d.sc.File = file
	return d.sc, nil
}

type decoder struct {
	file  string
	probs []problem
	sc    *Scenario
	// marks are the names given by "as", with the step that set them.
	marks map[string]int
	// masters, coreapps and shards follow the steps that change them
	// (start, shards), so a selector is checked against the cluster as it
	// will be when its step begins.
	masters, coreapps, shards int
	// app is the settings as they will be at the current step: the
	// defaults, the scenario's settings, then every earlier set.
	app settings.Application
}

func (d *decoder) fail(t *tree, path, format string, args ...any) {
	d.probs = append(d.probs, problem{at: t.at, path: path, msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) failAt(at pos, path, format string, args ...any) {
	d.probs = append(d.probs, problem{at: at, path: path, msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) scenario(t *tree) {
	d.sc = &Scenario{Cluster: DefaultCluster()}
	if t.kind != kindMap {
		d.fail(t, "", "a scenario is a map (name, description, cluster, settings, steps, checks), got %s", t.describe())
		return
	}
	known := []string{"name", "description", "cluster", "settings", "workload", "steps", "checks"}
	for _, e := range t.keys {
		if !slices.Contains(known, e.key) {
			d.failAt(e.at, "", "unknown key %q (want %s)", e.key, strings.Join(known, ", "))
		}
	}
	if n := t.get("name"); n == nil {
		d.fail(t, "name", "required: lowercase letters, digits and '-'")
	} else if s, ok := d.str(n, "name"); ok {
		if !nameRE.MatchString(s) {
			d.fail(n, "name", "must be lowercase letters, digits and '-', got %q", s)
		}
		d.sc.Name = s
	}
	if n := t.get("description"); n != nil {
		d.sc.Description, _ = d.str(n, "description")
	}
	if n := t.get("cluster"); n != nil {
		d.cluster(n)
	}
	d.masters, d.coreapps, d.shards = d.sc.Cluster.Masters, d.sc.Cluster.Coreapps, d.sc.Cluster.Shards
	if n := t.get("workload"); n != nil {
		d.sc.Workload = d.workload(n, "workload")
	}
	if n := t.get("settings"); n != nil {
		d.sc.Settings = d.settings(n, "settings")
		d.noWebhookURL(n, "settings", d.sc.Settings)
	}
	if n := t.get("steps"); n == nil {
		d.fail(t, "steps", "required: the list of steps")
	} else if n.kind != kindList || len(n.items) == 0 {
		d.fail(n, "steps", "must be a non-empty list of steps, got %s", n.describe())
	} else {
		for i, s := range n.items {
			d.step(i, s)
		}
	}
	d.sc.Checks = slices.Clone(Invariants)
	if d.sc.Workload != nil {
		d.sc.Checks = append(d.sc.Checks, TrafficInvariants...)
	}
	if n := t.get("checks"); n != nil {
		d.checks(n)
	}
}

func (d *decoder) cluster(t *tree) {
	if t.kind != kindMap {
		d.fail(t, "cluster", "must be a map of masters, coreapps, shards, got %s", t.describe())
		return
	}
	c := &d.sc.Cluster
	for _, e := range t.keys {
		path := "cluster." + e.key
		switch e.key {
		case "masters":
			if v, ok := d.intIn(e.val, path, 1, 99); ok {
				c.Masters = v
			}
		case "coreapps":
			if v, ok := d.intIn(e.val, path, 1, 99); ok {
				c.Coreapps = v
			}
		case "shards":
			if v, ok := d.integer(e.val, path); ok {
				if err := shard.CountError(v); err != nil {
					d.fail(e.val, path, "%v", err)
				} else {
					c.Shards = v
				}
			}
		default:
			d.failAt(e.at, "cluster", "unknown key %q (want masters, coreapps, shards)", e.key)
		}
	}
	if c.Coreapps < c.Shards {
		d.fail(t, "cluster.coreapps", "must be ≥ shards (%d) so every shard has a coreapp, got %d", c.Shards, c.Coreapps)
	}
}

// settings turns a map into a PATCH body and checks it against the
// settings contract (SETTINGS.md) as the service would.
func (d *decoder) settings(t *tree, path string) json.RawMessage {
	if t.kind != kindMap {
		d.fail(t, path, "must be a map of settings fields (SETTINGS.md), got %s", t.describe())
		return nil
	}
	body, err := json.Marshal(toJSON(t))
	if err != nil {
		d.fail(t, path, "%v", err)
		return nil
	}
	app, errs := settings.Patch(d.app, body)
	if len(errs) > 0 {
		for _, e := range errs {
			field, _, _ := strings.Cut(e.Details, ":")
			top, _, _ := strings.Cut(field, ".")
			where := t
			for _, k := range t.keys {
				if k.key == top {
					where = k.val
				}
			}
			d.fail(where, path+"."+field, "%s", strings.TrimSpace(strings.TrimPrefix(e.Details, field+":")))
		}
		return nil
	}
	d.app = app
	return body
}

// validationWAID is any valid wa_id: the settings of a scenario are
// checked without a service, and wa_id is read-only anyway.
const validationWAID = "16315551019"

// toJSON is the tree as the value encoding/json would have read from
// the same document in JSON.
func toJSON(t *tree) any {
	switch t.kind {
	case kindMap:
		m := make(map[string]any, len(t.keys))
		for _, e := range t.keys {
			m[e.key] = toJSON(e.val)
		}
		return m
	case kindList:
		l := make([]any, len(t.items))
		for i, it := range t.items {
			l[i] = toJSON(it)
		}
		return l
	case kindScalar:
		switch t.scalar {
		case scalarInt, scalarFloat:
			return json.Number(t.text)
		case scalarBool:
			return t.text == "true"
		}
		return t.text
	}
	return nil
}

// workload parses the workload section.
func (d *decoder) workload(t *tree, path string) *Workload {
	if !d.fieldMap(t, path, "rate", "recipients", "webhook") {
		return nil
	}
	w := &Workload{Recipients: 1000}
	if n := t.get("rate"); n == nil {
		d.fail(t, path+".rate", "required: messages per second, as 200/s")
	} else {
		w.Rate = d.rate(n, path+".rate")
	}
	if n := t.get("recipients"); n != nil {
		if v, ok := d.intIn(n, path+".recipients", 1, 10_000_000); ok {
			w.Recipients = v
		}
	}
	if n := t.get("webhook"); n != nil {
		if p := d.webhookPatch(n, path+".webhook"); p != nil {
			w.Webhook = p.apply(w.Webhook)
		}
	}
	return w
}

// rate reads "200/s" (a positive number of messages per second).
func (d *decoder) rate(t *tree, path string) float64 {
	s, ok := d.str(t, path)
	if !ok {
		return 0
	}
	num, unit, found := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !found || strings.TrimSpace(unit) != "s" || err != nil || v <= 0 || v > 100_000 {
		d.fail(t, path, "want messages per second as N/s with 0 < N ≤ 100000, e.g. 200/s, got %q", s)
		return 0
	}
	return v
}

// webhookPatch reads {fail: 30%, latency: 200ms, down: true}.
func (d *decoder) webhookPatch(t *tree, path string) *WebhookPatch {
	if !d.fieldMap(t, path, "fail", "latency", "down") {
		return nil
	}
	p := &WebhookPatch{}
	if n := t.get("fail"); n != nil {
		if v, ok := d.percent(n, path+".fail"); ok {
			p.FailPercent = &v
		}
	}
	if n := t.get("latency"); n != nil {
		// 0 is a latency too (the receiver answers at once).
		if n.kind == kindScalar && (n.text == "0" || n.text == "0s") {
			p.Latency = ptr(time.Duration(0))
		} else if v := d.duration(n, path+".latency"); v > 0 {
			p.Latency = &v
		}
	}
	if n := t.get("down"); n != nil {
		if n.kind != kindScalar || (n.text != "true" && n.text != "false") {
			d.fail(n, path+".down", "want true or false, got %s", n.describe())
		} else {
			p.Down = ptr(n.text == "true")
		}
	}
	if p.FailPercent == nil && p.Latency == nil && p.Down == nil && len(t.keys) == 0 {
		d.fail(t, path, "want at least one of fail, latency, down")
	}
	return p
}

// percent reads 30% or 30 (0..100).
func (d *decoder) percent(t *tree, path string) (float64, bool) {
	if t.kind == kindScalar {
		if v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(t.text), "%"), 64); err == nil {
			if v < 0 || v > 100 {
				d.fail(t, path, "must be 0%%..100%%, got %s", t.text)
				return 0, false
			}
			return v, true
		}
	}
	d.fail(t, path, "want a percentage such as 30%%, got %s", t.describe())
	return 0, false
}

// noWebhookURL refuses webhooks.url in a scenario with a workload: the
// runner points it at its own receiver, which the checks read.
func (d *decoder) noWebhookURL(t *tree, path string, body json.RawMessage) {
	if d.sc.Workload == nil || body == nil {
		return
	}
	var s struct {
		Webhooks map[string]json.RawMessage `json:"webhooks"`
	}
	if json.Unmarshal(body, &s) == nil {
		if _, ok := s.Webhooks["url"]; ok {
			d.fail(t, path+".webhooks.url", "not with a workload: the runner points webhooks.url at its built-in receiver (change how it answers with a webhook: step)")
		}
	}
}

func (d *decoder) checks(t *tree) {
	all := slices.Concat(Invariants, TrafficInvariants)
	if t.kind == kindScalar && t.text == "all" {
		return
	}
	if t.kind != kindList {
		d.fail(t, "checks", "must be all or a list of %s, got %s", strings.Join(all, ", "), t.describe())
		return
	}
	var got []string
	for i, it := range t.items {
		s, ok := d.str(it, fmt.Sprintf("checks[%d]", i))
		if !ok {
			continue
		}
		switch {
		case !slices.Contains(all, s):
			d.fail(it, fmt.Sprintf("checks[%d]", i), "unknown invariant %q (want %s)", s, strings.Join(all, ", "))
			continue
		case slices.Contains(TrafficInvariants, s) && d.sc.Workload == nil:
			d.fail(it, fmt.Sprintf("checks[%d]", i), "%s judges traffic: it needs a workload: section", s)
			continue
		}
		got = append(got, s)
	}
	d.sc.Checks = nil
	for _, inv := range all {
		if slices.Contains(got, inv) {
			d.sc.Checks = append(d.sc.Checks, inv)
		}
	}
}

func (d *decoder) step(i int, t *tree) {
	base := fmt.Sprintf("steps[%d]", i)
	if t.kind != kindMap {
		d.fail(t, base, "a step is a map with one action (%s), got %s", actionNames(), t.describe())
		return
	}
	st := Step{Index: i, Line: t.at.line, Col: t.at.col, Shard: -1, Max: -1}
	var action *entry
	for j, e := range t.keys {
		if _, ok := actions[e.key]; ok {
			if action != nil {
				d.failAt(e.at, base, "one action per step: %q and %q are both here", action.key, e.key)
				continue
			}
			action = &t.keys[j]
		}
	}
	if action == nil {
		for _, e := range t.keys {
			if !slices.Contains([]string{"as", "for", "timeout", "shard", "after", "within"}, e.key) {
				d.failAt(e.at, base, "unknown action %q (want one of %s)", e.key, actionNames())
				return
			}
		}
		d.fail(t, base, "no action: want one of %s", actionNames())
		return
	}
	st.Action = action.key
	path := base + "." + action.key
	allowed := actions[action.key]
	for _, e := range t.keys {
		if e.key == action.key || e.key == "as" || slices.Contains(allowed, e.key) {
			continue
		}
		if _, isAction := actions[e.key]; isAction {
			continue // reported above
		}
		want := append([]string{"as"}, allowed...)
		d.failAt(e.at, base, "unknown key %q for %s (want %s)", e.key, action.key, strings.Join(want, ", "))
	}
	v := action.val
	switch action.key {
	case "wait":
		st.What = d.oneOf(v, path, "served", "primary", "stable")
	case "sleep":
		st.Duration = d.duration(v, path)
	case "kill", "stop", "pause", "resume", "restart", "isolate":
		st.Node = d.selector(v, path, false)
	case "start":
		st.What = d.oneOf(v, path, "coreapp", "master")
		switch st.What {
		case "coreapp":
			d.coreapps++
		case "master":
			d.masters++
		}
	case "heal":
		if v.kind == kindScalar && v.text == "all" {
			st.What = "all"
		} else {
			st.Node = d.selector(v, path, true)
		}
	case "partition":
		st.Groups = d.partition(v, path)
	case "delay", "loss":
		st.Link = d.link(v, path, action.key)
	case "clock":
		st.Clock = d.clock(v, path)
	case "set":
		st.Set = d.settings(v, path)
		d.noWebhookURL(v, path, st.Set)
	case "webhook":
		st.Webhook = d.webhookPatch(v, path)
		if d.sc.Workload == nil {
			d.fail(v, path, "needs a workload: section (the receiver it changes runs with the workload)")
		}
	case "shards":
		if n, ok := d.integer(v, path); ok {
			if err := shard.CountError(n); err != nil {
				d.fail(v, path, "%v", err)
			} else if n > d.coreapps {
				d.fail(v, path, "%d shards need at least %d coreapps; the cluster has %d at this step", n, n, d.coreapps)
			} else {
				st.Shards, d.shards = n, n
			}
		}
	case "nemesis":
		st.Nemesis = d.nemesis(v, path)
	case "expect":
		d.expect(t, &st, v, path)
	}
	if n := t.get("as"); n != nil {
		if s, ok := d.str(n, base+".as"); ok {
			if !nameRE.MatchString(s) {
				d.fail(n, base+".as", "a mark is lowercase letters, digits and '-', got %q", s)
			} else if prev, dup := d.marks[s]; dup {
				d.fail(n, base+".as", "mark %q already names steps[%d]", s, prev)
			} else {
				d.marks[s] = i
				st.As = s
			}
		}
	}
	if n := t.get("for"); n != nil {
		st.For = d.duration(n, base+".for")
	}
	if n := t.get("timeout"); n != nil {
		st.Timeout = d.duration(n, base+".timeout")
	}
	d.sc.Steps = append(d.sc.Steps, st)
}

func (d *decoder) expect(t *tree, st *Step, v *tree, path string) {
	base := fmt.Sprintf("steps[%d]", st.Index)
	st.What = d.oneOf(v, path, expectKinds...)
	if n := t.get("shard"); n != nil {
		if s, ok := d.integer(n, base+".shard"); ok {
			if s < 0 || s >= d.shards {
				d.fail(n, base+".shard", "no shard %d: the cluster has %d shards at this step (0..%d)", s, d.shards, d.shards-1)
			} else {
				st.Shard = s
			}
		}
	}
	if n := t.get("after"); n != nil {
		if s, ok := d.str(n, base+".after"); ok {
			if _, known := d.marks[s]; !known {
				d.fail(n, base+".after", "no earlier step is marked %q (name a moment with as: on a step before this one)%s", s, d.markList())
			} else {
				st.After = s
			}
		}
	}
	if n := t.get("within"); n != nil {
		st.Within = d.bound(n, base+".within")
	}
	if n := t.get("max"); n != nil {
		if st.What != "callbacks_lost" {
			d.fail(n, base+".max", "expect: %s does not take max", st.What)
		} else if m, ok := d.intIn(n, base+".max", 0, 1<<30); ok {
			st.Max = m
		}
	}
	if (st.What == "errors" || st.What == "callbacks_lost") && d.sc.Workload == nil {
		d.fail(v, path, "expect: %s needs a workload: section (it judges the traffic's clients or callbacks)", st.What)
	}
	need := func(key, why string) {
		if t.get(key) == nil {
			d.fail(v, base, "expect: %s needs %s: %s", st.What, key, why)
		}
	}
	switch st.What {
	case "failover":
		need("shard", "the shard that must move")
		need("after", "the mark to time it from")
		need("within", "a bound (rule1, a duration, or [min, max])")
	case "takeover":
		need("after", "the mark to time it from")
		need("within", "a bound (lease, a duration, or [min, max])")
	case "served":
		need("within", "a bound (a duration, or [min, max])")
	case "no_failover":
		if t.get("within") != nil || t.get("shard") != nil || t.get("after") != nil {
			d.fail(v, base, "expect: no_failover takes for (or lasts until the next mark), not shard, after or within")
		}
	case "errors":
		need("after", "the mark the client-visible error window starts at")
		need("within", "a bound on the window (rule1, lease, a duration, or [min, max])")
	case "callbacks_lost":
		need("max", "the most callbacks the run may lose (0: none)")
	}
	// Fields a kind does not use are errors, not silently ignored.
	unused := map[string][]string{"takeover": {"shard", "for"}, "served": {"shard", "for"}, "failover": {"for"},
		"errors": {"shard", "for"}, "callbacks_lost": {"shard", "for", "after", "within"}}
	for _, key := range unused[st.What] {
		if n := t.get(key); n != nil {
			d.fail(n, base+"."+key, "expect: %s does not take %s", st.What, key)
		}
	}
}

func (d *decoder) markList() string {
	if len(d.marks) == 0 {
		return ""
	}
	names := make([]string, 0, len(d.marks))
	for m := range d.marks {
		names = append(names, m)
	}
	sort.Strings(names)
	return "; marks so far: " + strings.Join(names, ", ")
}

func (d *decoder) bound(t *tree, path string) *Bound {
	switch {
	case t.kind == kindScalar && slices.Contains([]string{"rule1", "lease", "rule5"}, t.text):
		return &Bound{Named: t.text}
	case t.kind == kindScalar:
		if dur, err := time.ParseDuration(t.text); err == nil && dur > 0 && t.scalar == scalarString {
			return &Bound{Max: dur}
		}
	case t.kind == kindList && len(t.items) == 2:
		lo, hi := d.duration(t.items[0], path+"[0]"), d.duration(t.items[1], path+"[1]")
		if lo > 0 && hi > 0 {
			if hi < lo {
				d.fail(t, path, "range [%v, %v] ends before it starts", lo, hi)
				return nil
			}
			return &Bound{Min: lo, Max: hi}
		}
		return nil
	}
	d.fail(t, path, "want rule1, lease, rule5, a duration (4s) or a range [3s, 4s], got %s", t.describe())
	return nil
}

func (d *decoder) partition(t *tree, path string) [][]Selector {
	if t.kind != kindList || len(t.items) < 2 {
		d.fail(t, path, "want a list of at least two groups of nodes: [[master-1], [coreapp-1, coreapp-2]], got %s", t.describe())
		return nil
	}
	var groups [][]Selector
	seen := map[string]bool{}
	for i, g := range t.items {
		gp := fmt.Sprintf("%s[%d]", path, i)
		if g.kind != kindList || len(g.items) == 0 {
			d.fail(g, gp, "a group is a non-empty list of nodes, got %s", g.describe())
			continue
		}
		var group []Selector
		for j, n := range g.items {
			if s := d.selector(n, fmt.Sprintf("%s[%d]", gp, j), true); s != nil {
				if seen[s.String()] {
					d.fail(n, fmt.Sprintf("%s[%d]", gp, j), "%s is in two groups", s)
				}
				seen[s.String()] = true
				group = append(group, *s)
			}
		}
		groups = append(groups, group)
	}
	return groups
}

func (d *decoder) link(t *tree, path, kind string) *Link {
	keys := []string{"from", "to", "latency", "jitter"}
	if kind == "loss" {
		keys = []string{"from", "to", "percent"}
	}
	if !d.fieldMap(t, path, keys...) {
		return nil
	}
	l := &Link{}
	if n := t.get("from"); n == nil {
		d.fail(t, path+".from", "required: the node whose messages are affected")
	} else if s := d.selector(n, path+".from", true); s != nil {
		l.From = *s
	}
	switch n := t.get("to"); {
	case n == nil:
		d.fail(t, path+".to", "required: a node or a list of nodes")
	case n.kind == kindList:
		for i, it := range n.items {
			if s := d.selector(it, fmt.Sprintf("%s.to[%d]", path, i), true); s != nil {
				l.To = append(l.To, *s)
			}
		}
	default:
		if s := d.selector(n, path+".to", true); s != nil {
			l.To = []Selector{*s}
		}
	}
	if kind == "delay" {
		if n := t.get("latency"); n == nil {
			d.fail(t, path+".latency", "required: the added one-way latency (400ms)")
		} else {
			l.Latency = d.duration(n, path+".latency")
		}
		if n := t.get("jitter"); n != nil {
			l.Jitter = d.duration(n, path+".jitter")
			// The delay is latency ± jitter: a negative one would be a
			// message that arrives before it is sent.
			if l.Jitter > l.Latency {
				d.fail(n, path+".jitter", "must not exceed latency %v, got %v", l.Latency, l.Jitter)
			}
		}
	} else {
		if n := t.get("percent"); n == nil {
			d.fail(t, path+".percent", "required: the share of messages lost, 0-100")
		} else if p, ok := d.number(n, path+".percent"); ok {
			if p <= 0 || p > 100 {
				d.fail(n, path+".percent", "must be in (0, 100], got %v", p)
			}
			l.Percent = p
		}
	}
	return l
}

func (d *decoder) clock(t *tree, path string) *ClockSkew {
	if !d.fieldMap(t, path, "node", "rate") {
		return nil
	}
	c := &ClockSkew{}
	if n := t.get("node"); n == nil {
		d.fail(t, path+".node", "required")
	} else if s := d.selector(n, path+".node", false); s != nil {
		c.Node = *s
	}
	if n := t.get("rate"); n == nil {
		d.fail(t, path+".rate", "required: how fast its clock runs (0.9: 10%% slow)")
	} else if r, ok := d.number(n, path+".rate"); ok {
		if r <= 0 || r > 10 {
			d.fail(n, path+".rate", "must be in (0, 10], got %v", r)
		}
		c.Rate = r
	}
	return c
}

var nemesisFaults = []string{"kill", "stop", "pause", "restart", "partition", "isolate", "delay", "loss", "clock"}

func (d *decoder) nemesis(t *tree, path string) *Nemesis {
	if !d.fieldMap(t, path, "faults", "every", "max_down") {
		return nil
	}
	nm := &Nemesis{MaxDown: -1}
	if n := t.get("faults"); n == nil || n.kind != kindList || len(n.items) == 0 {
		at := t
		if n != nil {
			at = n
		}
		d.fail(at, path+".faults", "required: a list of %s", strings.Join(nemesisFaults, ", "))
	} else {
		for i, it := range n.items {
			if f := d.oneOf(it, fmt.Sprintf("%s.faults[%d]", path, i), nemesisFaults...); f != "" {
				nm.Faults = append(nm.Faults, f)
			}
		}
	}
	if n := t.get("every"); n == nil {
		d.fail(t, path+".every", "required: the mean interval between faults")
	} else {
		nm.Every = d.duration(n, path+".every")
	}
	if n := t.get("max_down"); n != nil {
		if v, ok := d.intIn(n, path+".max_down", 0, 99); ok {
			nm.MaxDown = v
		}
	}
	return nm
}

// selector parses a node selector; infra allows settings and gateway.
func (d *decoder) selector(t *tree, path string, infra bool) *Selector {
	s, ok := d.str(t, path)
	if !ok {
		return nil
	}
	bad := func(why string) *Selector {
		d.fail(t, path, "%s node selector %q (%s)", why, s, selectorHelp)
		return nil
	}
	switch s {
	case SelPrimary, SelSecondary, SelStandby:
		return &Selector{Kind: s}
	case SelSettings, SelGateway:
		if !infra {
			d.fail(t, path, "%s is not a master or coreapp: it can only be named in partition, isolate's peers, delay and loss", s)
			return nil
		}
		return &Selector{Kind: s}
	}
	if m := idRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[2])
		limit := d.coreapps
		if m[1] == "master" {
			limit = d.masters
		}
		if n > limit {
			d.fail(t, path, "no %s: the cluster has %s-1..%s-%d at this step", s, m[1], m[1], limit)
			return nil
		}
		return &Selector{Kind: SelID, ID: s}
	}
	if m := ownRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n >= d.shards {
			d.fail(t, path, "no shard %d: the cluster has %d shards at this step (0..%d)", n, d.shards, d.shards-1)
			return nil
		}
		return &Selector{Kind: SelOwner, Shard: n}
	}
	if m := randRE.FindStringSubmatch(s); m != nil {
		if m[1] != "coreapp" && m[1] != "master" {
			return bad("random needs coreapp or master:")
		}
		return &Selector{Kind: SelRandom, Role: m[1]}
	}
	return bad("unknown")
}

// fieldMap checks that t is a map whose keys are all among keys, reporting
// each other key at its position; false when t is not a map at all.
func (d *decoder) fieldMap(t *tree, path string, keys ...string) bool {
	if t.kind != kindMap {
		d.fail(t, path, "want a map {%s}, got %s", strings.Join(keys, ", "), t.describe())
		return false
	}
	for _, e := range t.keys {
		if !slices.Contains(keys, e.key) {
			d.failAt(e.at, path, "unknown key %q (want %s)", e.key, strings.Join(keys, ", "))
		}
	}
	return true
}

func (d *decoder) str(t *tree, path string) (string, bool) {
	if t.kind != kindScalar || t.scalar != scalarString {
		d.fail(t, path, "want a string, got %s", t.describe())
		return "", false
	}
	return t.text, true
}

func (d *decoder) oneOf(t *tree, path string, values ...string) string {
	s, ok := d.str(t, path)
	if !ok {
		return ""
	}
	if !slices.Contains(values, s) {
		d.fail(t, path, "unknown value %q (want %s)", s, strings.Join(values, ", "))
		return ""
	}
	return s
}

func (d *decoder) integer(t *tree, path string) (int, bool) {
	if t.kind != kindScalar || t.scalar != scalarInt {
		d.fail(t, path, "want a whole number, got %s", t.describe())
		return 0, false
	}
	n, err := strconv.Atoi(t.text)
	if err != nil {
		d.fail(t, path, "want a whole number, got %s", t.describe())
		return 0, false
	}
	return n, true
}

func (d *decoder) intIn(t *tree, path string, lo, hi int) (int, bool) {
	n, ok := d.integer(t, path)
	if ok && (n < lo || n > hi) {
		d.fail(t, path, "must be %d..%d, got %d", lo, hi, n)
		return 0, false
	}
	return n, ok
}

func (d *decoder) number(t *tree, path string) (float64, bool) {
	if t.kind != kindScalar || (t.scalar != scalarInt && t.scalar != scalarFloat) {
		d.fail(t, path, "want a number, got %s", t.describe())
		return 0, false
	}
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil {
		d.fail(t, path, "want a number, got %s", t.describe())
		return 0, false
	}
	return f, true
}

// duration reads a Go duration string ("500ms", "3s"); it must be > 0.
func (d *decoder) duration(t *tree, path string) time.Duration {
	if t.kind != kindScalar || t.scalar != scalarString {
		hint := ""
		if t.kind == kindScalar && t.scalar == scalarInt {
			hint = fmt.Sprintf(" (write %ss)", t.text)
		}
		d.fail(t, path, "want a duration such as 500ms, 3s or 2m, got %s%s", t.describe(), hint)
		return 0
	}
	v, err := time.ParseDuration(t.text)
	if err != nil || v <= 0 {
		d.fail(t, path, "want a positive duration such as 500ms, 3s or 2m, got %q", t.text)
		return 0
	}
	return v
}
