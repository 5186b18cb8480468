package scenarios

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The bounds, resolved with the intervals in force at the mark (rule 6:
// the intervals apply live, the lease included).
//   - rule1: [unhealthy, unhealthy + heartbeat + ε]
//   - lease: ≤ TTL + heartbeat + ε (TTL = unhealthy_interval)
//   - rule5: ≤ heartbeat
func (r *runner) resolveBound(b Bound, hb, ui time.Duration) (lo, hi time.Duration) {
	switch b.Named {
	case "rule1":
		return ui, ui + hb + r.eps
	case "lease":
		return 0, ui + hb + r.eps
	case "rule5":
		return 0, hb
	}
	return b.Min, b.Max
}

// window is a timed expectation's bound resolved as its judge resolves
// it: with the intervals at its mark, or now when it has none.
func (r *runner) window(st Step) (lo, hi time.Duration) {
	hb, ui := r.intervals()
	if st.After != "" {
		m := r.marks[st.After]
		hb, ui = m.hb, m.ui
	}
	return r.resolveBound(*st.Within, hb, ui)
}

func boundText(b Bound, lo, hi time.Duration) string {
	if b.Named == "" {
		return b.String()
	}
	if lo == 0 {
		return fmt.Sprintf("%s: ≤ %v", b, hi)
	}
	return fmt.Sprintf("%s: [%v, %v]", b, lo, hi)
}

// expect judges one expectation and records it; a failed expectation does
// not stop the run.
func (r *runner) expect(ctx context.Context, st Step) {
	res := ExpectResult{Index: st.Index, What: st.What}
	var measured time.Duration
	var ok bool
	var err error
	switch st.What {
	case "failover", "takeover", "served", "errors":
		if st.Within != nil {
			res.Lo, res.Hi = r.window(st)
			if st.What == "errors" {
				res.Lo = 0 // only the upper end is judged (expectErrors)
			}
		}
	}
	switch st.What {
	case "failover":
		measured, res.Bound, ok, res.Detail, err = r.expectFailover(ctx, st)
		res.Measured = &measured
	case "takeover":
		measured, res.Bound, ok, res.Detail, err = r.expectTakeover(ctx, st)
		res.Measured = &measured
	case "served":
		measured, res.Bound, ok, res.Detail, err = r.expectServed(ctx, st)
		res.Measured = &measured
	case "errors":
		measured, res.Bound, ok, res.Detail, err = r.expectErrors(ctx, st)
		res.Measured = &measured
	case "callbacks_lost":
		// Judged when the load has stopped and the callbacks drained.
		r.wl.lostExpects = append(r.wl.lostExpects, st)
		r.progress("expect callbacks_lost: judged at the end of the run")
		return
	case "no_failover":
		if st.For == 0 {
			// Until the next mark: judged when a step with as begins, or
			// when the steps end.
			r.pendingNoFailover = &pendingNoFailover{st: st, from: r.t.Now(),
				failovers: len(r.t.Failovers()), declared: len(r.t.Declarations())}
			r.progress("expect no_failover: watching until the next mark")
			return
		}
		res.Bound, ok, res.Detail, err = r.expectNoFailover(ctx, st)
	}
	r.record(res, ok, err)
}

// record stores and reports an expectation's verdict.
func (r *runner) record(res ExpectResult, ok bool, err error) {
	if err != nil {
		ok, res.Detail = false, err.Error()
	}
	res.OK = ok
	r.results = append(r.results, res)
	ev := event{Event: "expect", Index: ptr(res.Index), What: res.What, Bound: res.Bound, OK: ptr(ok), Detail: res.Detail}
	verdict := "ok"
	if !ok {
		verdict = "FAILED"
	}
	if res.Measured != nil && *res.Measured > 0 || res.Measured != nil && ok {
		ev.MeasuredMS = ptr(ms(*res.Measured))
		r.progress("expect %s: %s measured %.1f ms, bound %s %s", res.What, verdict, ms(*res.Measured), res.Bound, res.Detail)
	} else {
		r.progress("expect %s: %s, %s %s", res.What, verdict, res.Bound, res.Detail)
	}
	r.emit(ev)
}

// lookFor is how long after the mark an expectation keeps looking: past
// its bound when the bound is tighter than the rules allow, so that a
// failed expectation still says what was measured ("3970 ms, bound
// ≤ 100ms") rather than only that it was not in time.
func (r *runner) lookFor(hi time.Duration, m mark) time.Duration {
	return max(hi, 2*(m.ui+m.hb)+r.eps)
}

// expectFailover: the shard is served by a coreapp other than its owner
// at the mark, measured from the mark to the gateway's first sign of the
// new owner.
func (r *runner) expectFailover(ctx context.Context, st Step) (time.Duration, string, bool, string, error) {
	m := r.marks[st.After]
	lo, hi := r.resolveBound(*st.Within, m.hb, m.ui)
	bound := boundText(*st.Within, lo, hi)
	owner := m.served[st.Shard]
	var found *FailoverSeen
	_, err := r.until(ctx, m.at.Add(r.lookFor(hi, m)), func() (bool, error) {
		for _, f := range r.t.Failovers() {
			if f.Shard == st.Shard && f.To != owner && !f.ServedAgain.Before(m.at) {
				found = &f
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return 0, bound, false, "", err
	}
	if found == nil {
		return 0, bound, false, fmt.Sprintf("shard %d not served by a coreapp other than %s within %v of %s", st.Shard, orNone(owner), r.lookFor(hi, m), st.After), nil
	}
	d := found.ServedAgain.Sub(m.at)
	detail := fmt.Sprintf("shard %d: %s → %s", st.Shard, orNone(owner), found.To)
	return d, bound, d >= lo && d <= hi, detail, nil
}

// expectTakeover: the store grants the lease to a master other than the
// primary at the mark, measured from the mark to the grant.
func (r *runner) expectTakeover(ctx context.Context, st Step) (time.Duration, string, bool, string, error) {
	m := r.marks[st.After]
	lo, hi := r.resolveBound(*st.Within, m.hb, m.ui)
	bound := boundText(*st.Within, lo, hi)
	var found *LeaseGrant
	_, err := r.until(ctx, m.at.Add(r.lookFor(hi, m)), func() (bool, error) {
		for _, g := range r.t.Grants() {
			if g.newTerm() && g.Master != m.primary && !g.At.Before(m.at) {
				found = &g
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return 0, bound, false, "", err
	}
	if found == nil {
		return 0, bound, false, fmt.Sprintf("no master other than %s was granted the lease within %v of %s", orNone(m.primary), r.lookFor(hi, m), st.After), nil
	}
	d := found.At.Sub(m.at)
	return d, bound, d >= lo && d <= hi, fmt.Sprintf("%s → %s (lease epoch %d)", orNone(m.primary), found.Master, found.Epoch), nil
}

// expectServed: every shard served, measured from the mark (after) or
// from the step's start.
func (r *runner) expectServed(ctx context.Context, st Step) (time.Duration, string, bool, string, error) {
	from := r.t.Now()
	hb, ui := r.intervals()
	if st.After != "" {
		m := r.marks[st.After]
		from, hb, ui = m.at, m.hb, m.ui
	}
	lo, hi := r.resolveBound(*st.Within, hb, ui)
	bound := boundText(*st.Within, lo, hi)
	ok, err := r.until(ctx, from.Add(hi), func() (bool, error) { return r.allServed(), nil })
	if err != nil {
		return 0, bound, false, "", err
	}
	if !ok {
		return 0, bound, false, fmt.Sprintf("unserved shards %v after %v", r.unserved(), hi), nil
	}
	at, seen := r.servedFrom(from)
	if !seen {
		at = r.t.Now()
	}
	d := at.Sub(from)
	return d, bound, d >= lo && d <= hi, "", nil
}

func (r *runner) unserved() []int {
	var out []int
	served := r.t.Served()
	for s := range r.shards {
		if served[s] == "" {
			out = append(out, s)
		}
	}
	return out
}

// pendingNoFailover is an expect: no_failover without for, watching until
// the next mark.
type pendingNoFailover struct {
	st                  Step
	from                time.Time
	failovers, declared int
}

// endNoFailover judges a pending no_failover over the time since its step.
func (r *runner) endNoFailover() {
	p := r.pendingNoFailover
	if p == nil {
		return
	}
	r.pendingNoFailover = nil
	d := r.t.Now().Sub(p.from)
	bound := fmt.Sprintf("no failover and no unhealthy declaration until the next mark (%v)", d.Round(time.Millisecond))
	detail := r.movedSince(p.from, p.failovers, p.declared)
	r.record(ExpectResult{Index: p.st.Index, What: p.st.What, Bound: bound, Detail: detail}, detail == "", nil)
}

// expectNoFailover: for the step's for, no shard changes owner and no
// coreapp is declared unhealthy.
func (r *runner) expectNoFailover(ctx context.Context, st Step) (string, bool, string, error) {
	from := r.t.Now()
	failovers, declared := len(r.t.Failovers()), len(r.t.Declarations())
	d := st.For
	if err := r.sleep(ctx, d); err != nil {
		return "", false, "", err
	}
	bound := fmt.Sprintf("no failover and no unhealthy declaration for %v", d)
	detail := r.movedSince(from, failovers, declared)
	return bound, detail == "", detail, nil
}

// movedSince says what failed over or was declared unhealthy after the
// given counts ("" for nothing).
func (r *runner) movedSince(from time.Time, failovers, declared int) string {
	var what []string
	for _, f := range r.t.Failovers()[failovers:] {
		what = append(what, fmt.Sprintf("shard %d moved %s → %s at +%v", f.Shard, f.From, f.To, f.ServedAgain.Sub(from).Round(time.Millisecond)))
	}
	for _, dcl := range r.t.Declarations()[declared:] {
		what = append(what, fmt.Sprintf("%s declared %s unhealthy at +%v", dcl.Master, dcl.Coreapp, dcl.At.Sub(from).Round(time.Millisecond)))
	}
	return strings.Join(what, "; ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// judge checks every invariant of the scenario over the whole run.
func (r *runner) judge(ctx context.Context) []Violation {
	var out []Violation
	for _, inv := range r.sc.Checks {
		switch inv {
		case "single_owner", "epoch_monotonic":
			// The gateway's log, as the target reads it (below).
		case "single_primary":
			out = append(out, checkSinglePrimary(r.t.Grants())...)
			out = append(out, checkFencedCommands(r.t.Commands())...)
		case "no_false_failover":
			out = append(out, r.checkNoFalseFailover()...)
		case "liveness":
			out = append(out, r.checkLiveness(ctx)...)
		default:
			out = append(out, r.judgeTraffic(inv)...)
		}
		// What the target itself saw break this invariant: the gateway's
		// fencing on every target; on the simulator also the ground truth
		// only it can see (sim/truth.go).
		for _, v := range r.t.Violations() {
			if v.Invariant == inv {
				out = append(out, v)
			}
		}
	}
	return out
}

// checkSinglePrimary: the store never begins a master's term while
// another's grant or renewal has not expired by the store's own clock (a
// release ends a hold at once).
func checkSinglePrimary(grants []LeaseGrant) []Violation {
	var out []Violation
	holds := map[string]LeaseGrant{} // per master: its latest grant or renewal, while it holds
	for _, g := range grants {
		if g.Released {
			delete(holds, g.Master)
			continue
		}
		if g.newTerm() {
			for _, other := range slices.Sorted(maps.Keys(holds)) {
				prev := holds[other]
				if other != g.Master && g.At.Before(prev.Expires) {
					out = append(out, Violation{Invariant: "single_primary", At: g.At,
						Details: fmt.Sprintf("lease granted to %s (epoch %d) at %s while %s held it until %s (epoch %d)",
							g.Master, g.Epoch, g.At.Format(timeLayout), other, prev.Expires.Format(timeLayout), prev.Epoch)})
				}
			}
		}
		holds[g.Master] = g
	}
	return out
}

const timeLayout = "15:04:05.000"

// checkFencedCommands is the coreapps' half of single_primary: each
// coreapp accepts commands only in growing lease epochs (once it heard a
// newer primary, by a command or a heartbeat, a deposed one's commands are
// refused). Under clock skew a deposed master may still believe it is
// primary and send; this is what makes that harmless.
func checkFencedCommands(cmds []Command) []Violation {
	var out []Violation
	type run struct {
		coreapp string
		n       int
	}
	newest := map[run]Command{} // per coreapp process: what it heard of the highest lease epoch
	for _, c := range cmds {
		if !c.Accepted {
			continue
		}
		key := run{c.Coreapp, c.Run}
		if prev, ok := newest[key]; ok && c.LeaseEpoch < prev.LeaseEpoch {
			if c.Kind == "heartbeat" {
				continue // a heartbeat is never refused; it only raises the bar
			}
			heard := "accepting " + prev.Kind
			if prev.Kind == "heartbeat" {
				heard = "a heartbeat"
			}
			out = append(out, Violation{Invariant: "single_primary", At: c.At,
				Details: fmt.Sprintf("%s accepted %s from %s at lease epoch %d (%s) after %s from %s at lease epoch %d (%s)",
					c.Coreapp, c.Kind, c.Master, c.LeaseEpoch, c.At.Format(timeLayout), heard, prev.Master, prev.LeaseEpoch, prev.At.Format(timeLayout))})
			continue
		}
		newest[key] = c
	}
	return out
}

// checkNoFalseFailover: every unhealthy declaration is explained by a
// fault that touched the coreapp or the master that declared it within
// unhealthy_interval + heartbeat_interval (+ ε) before it.
func (r *runner) checkNoFalseFailover() []Violation {
	var out []Violation
	for _, d := range r.t.Declarations() {
		window := r.maxWindow(d.At)
		explained := slices.ContainsFunc(r.faults, func(f fault) bool {
			touches := f.node == d.Coreapp || f.node == d.Master
			return touches && !f.start.After(d.At) && (f.end.IsZero() || !f.end.Before(d.At.Add(-window)))
		})
		if !explained {
			out = append(out, Violation{Invariant: "no_false_failover", At: d.At,
				Details: fmt.Sprintf("%s declared %s unhealthy at +%.3fs with no fault on either within %v before", d.Master, d.Coreapp, d.At.Sub(r.t0).Seconds(), window)})
		}
	}
	return out
}

// maxWindow is unhealthy + heartbeat + ε with the largest intervals in
// force during that window before at (a live change counts both ways).
func (r *runner) maxWindow(at time.Time) time.Duration { return r.settings.Window(at, r.eps) }

// servedStretch is when the stretch of "every shard of the current count
// served" that lasts until now began, as the runner saw it; false if not
// every shard is served now.
func (r *runner) servedStretch() (time.Time, bool) {
	n := len(r.servedLog)
	if n == 0 || !r.servedLog[n-1].all || r.servedLog[n-1].shards != r.shards {
		return time.Time{}, false
	}
	i := n - 1
	for i > 0 && r.servedLog[i-1].all && r.servedLog[i-1].shards == r.shards {
		i--
	}
	return r.servedLog[i].at, true
}

// checkLiveness: once every fault has ended, every shard is served again
// within lease + rule1, while enough coreapps and a master are up. A
// killed node that was never restarted ends its fault when it is killed.
func (r *runner) checkLiveness(ctx context.Context) []Violation {
	if len(r.faults) == 0 {
		return nil
	}
	var last time.Time
	for _, f := range r.faults {
		end := f.end
		if end.IsZero() {
			end = f.start
		}
		if end.After(last) {
			last = end
		}
	}
	hb, ui := r.intervals()
	deadline := last.Add(ui + hb + r.eps + ui + hb + r.eps)
	if _, err := r.until(ctx, deadline, func() (bool, error) { return r.allServed(), nil }); err != nil {
		return nil
	}
	// The shards must be served from the deadline on: the stretch of
	// "every shard served" the run ends in must have begun by then. (Being
	// served at the last fault's start proves nothing: the gateway hears
	// of a crash a moment after it.)
	servedAt, served := r.servedStretch()
	if served && !servedAt.After(deadline) {
		return nil
	}
	nodes, err := r.t.Nodes(ctx)
	if err != nil {
		return nil
	}
	coreapps, masters := 0, 0
	for _, n := range nodes {
		if !n.Up {
			continue
		}
		switch {
		case n.Role == "coreapp":
			coreapps++
		case strings.HasSuffix(n.Role, "_master"):
			masters++
		}
	}
	if coreapps < r.shards || masters == 0 {
		return nil // no healthy standby to serve with: liveness asks nothing
	}
	what := fmt.Sprintf("shards %v unserved %v after the last fault ended", r.unserved(), r.t.Now().Sub(last).Round(time.Millisecond))
	if served {
		what = fmt.Sprintf("every shard served again only %v after the last fault ended", max(0, servedAt.Sub(last)).Round(time.Millisecond))
	}
	return []Violation{{Invariant: "liveness", At: deadline,
		Details: fmt.Sprintf("%s (bound lease + rule1 = %v) with %d coreapps and %d masters up", what, deadline.Sub(last), coreapps, masters)}}
}
