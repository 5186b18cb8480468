package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Options are a run's knobs; the zero value is usable.
type Options struct {
	// Run is the 0-based number of this run (--runs), for the events.
	Run int
	// Seed seeds every random choice of the run (random and standby
	// selectors, and in the simulator the network).
	Seed uint64
	// Epsilon is the allowance on rule1 and lease bounds (0: the
	// target's default, 250ms on procs).
	Epsilon time.Duration
	// Poll is how often the runner looks at the witnesses while it waits
	// (0: 20ms). Measured times come from the witnesses' own timestamps,
	// not from when the runner looked.
	Poll time.Duration
	// Events receives the --json lines; Progress one line per step as it
	// begins and ends. Either may be nil.
	Events, Progress io.Writer
}

// DefaultEpsilon is ε on real processes: assign, connect and the
// scheduler of a loaded 2-core machine.
const DefaultEpsilon = 250 * time.Millisecond

// Outcome is what one run found.
type Outcome struct {
	OK           bool
	Seed         uint64
	Duration     time.Duration
	Expectations []ExpectResult
	Violations   []Violation
	// Aborted says why the steps stopped early ("" if they all ran).
	Aborted string
	// Schedule is every fault the run's nemesis steps drew, in the order
	// drawn (the whole of each step's schedule, also when the run stopped
	// part way through it); nil when the scenario has no nemesis step.
	// ExplicitScenario turns it into steps, Shrink makes it smaller.
	Schedule []ScheduledFault
	// Traffic sums up the workload (nil: the scenario has none).
	Traffic *TrafficSummary
}

// TrafficSummary is a workload's totals: messages started, answered 201,
// error answers by code (retried or final, as the traffic events count
// them), the worst second's p99 latency, the client-visible failed
// attempts, and what became of the callbacks.
type TrafficSummary struct {
	Sent, OK                 int
	Errors                   map[string]int
	WorstP99                 time.Duration
	FailedAttempts           int
	Delivered, Retried, Lost int
	// Untaken: status updates of accepted messages no coreapp took
	// charge of by the end of the drain (the gateway still held them).
	Untaken int
}

// ExpectResult is the verdict on one expectation (or a failed wait).
type ExpectResult struct {
	Index    int
	What     string
	Measured *time.Duration
	Bound    string
	// Lo and Hi are the bound resolved as it was judged (timed
	// expectations only; Hi zero: no window), for reports to draw.
	Lo, Hi time.Duration
	OK     bool
	Detail string
}

// ErrStart wraps a failure to start the cluster (exit 3).
var ErrStart = errors.New("the cluster could not be started")

// mark is a named moment and what the cluster looked like then.
type mark struct {
	at      time.Time
	served  map[int]string
	primary string
	hb, ui  time.Duration
}

// fault is one window during which a node was faulted (killed, stopped or
// paused), for no_false_failover and liveness.
type fault struct {
	node       string
	kind       string
	start, end time.Time // end zero: not undone
	// net is the network fault this window belongs to (0: none); one
	// partition touches many nodes and heals for all at once.
	net int
}

// intervals are the heartbeat and unhealthy intervals from a time on.
// Intervals is a run's heartbeat and unhealthy intervals over time: the
// first entry is what the run started with, each later one a live change
// (a `set` step) from its At on.
type Intervals []IntervalsFrom

// IntervalsFrom: the intervals in force from At on.
type IntervalsFrom struct {
	At                   time.Time
	Heartbeat, Unhealthy time.Duration
}

// Window is how far before a declaration at `at` a fault still explains
// it: unhealthy + heartbeat + eps with the largest intervals in force at
// any moment of that window (a live change counts both ways), so raising
// the intervals mid-run cannot turn the failover of a coreapp faulted
// under the old ones into a false one.
func (iv Intervals) Window(at time.Time, eps time.Duration) time.Duration {
	var w time.Duration
	for i, s := range iv {
		end := at
		if i+1 < len(iv) {
			end = iv[i+1].At
		}
		span := s.Unhealthy + s.Heartbeat + eps
		if s.At.After(at) || end.Before(at.Add(-span)) {
			continue
		}
		w = max(w, span)
	}
	return w
}

type runner struct {
	t      Target
	allSrv allServer // t, if it is one
	sc     *Scenario
	opt    Options
	rng    *rand.Rand
	t0     time.Time
	eps    time.Duration
	poll   time.Duration

	shards   int
	settings Intervals
	marks    map[string]mark
	faults   []fault
	paused   map[string]time.Time // node → scheduled resume (zero: by a resume step)
	results  []ExpectResult

	seenFailovers, seenGrants int
	lastHolder                string
	aborted                   string
	pendingNoFailover         *pendingNoFailover
	// netFaults are the network faults in force, clocks the skewed
	// clocks (network.go).
	netFaults []netFault
	netSeq    int
	clocks    map[string]clockSkew
	// skewed are the nodes whose clock a step ever set: each is set back
	// to rate 1 at the end, even if a step's own undo failed.
	skewed map[string]bool
	// servedLog are the moments the runner saw every shard served or
	// not, in order (liveness is judged from them).
	servedLog []servedAt
	// drawn are the nemesis schedules drawn so far (Outcome.Schedule).
	drawn []ScheduledFault
	// wl is the scenario's traffic (nil: no workload).
	wl *workloadRun
}

type servedAt struct {
	at     time.Time
	all    bool
	shards int // the count "all" was judged against
}

// Run runs one scenario on a target: starts the cluster, runs the steps,
// judges every invariant, and always closes the target. err is set only
// when the run could not be made (the cluster did not start: ErrStart;
// ctx ended); a failed expectation or a violation is an Outcome with OK
// false.
func Run(ctx context.Context, t Target, sc *Scenario, opt Options) (out Outcome, err error) {
	defer func() {
		if cerr := t.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("stopping the cluster: %w", cerr)
		}
	}()
	r := &runner{
		t: t, sc: sc, opt: opt,
		rng:    rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x6d637369)),
		eps:    opt.Epsilon,
		poll:   opt.Poll,
		shards: sc.Cluster.Shards,
		marks:  map[string]mark{},
		paused: map[string]time.Time{},
		clocks: map[string]clockSkew{},
		skewed: map[string]bool{},
	}
	if r.eps == 0 {
		r.eps = DefaultEpsilon
	}
	r.allSrv, _ = t.(allServer)
	if r.poll == 0 {
		r.poll = 20 * time.Millisecond
	}
	if err := t.Start(ctx, sc.Cluster, sc.Settings); err != nil {
		if ctx.Err() != nil {
			return Outcome{}, ctx.Err() // interrupted, not broken
		}
		return Outcome{}, fmt.Errorf("%w: %v", ErrStart, err)
	}
	r.t0 = t.Now()
	// The seed's defaults (5 s, 30 s), then the scenario's settings.
	hb, ui := IntervalsIn(sc.Settings, 5*time.Second, 30*time.Second)
	r.settings = Intervals{{At: r.t0, Heartbeat: hb, Unhealthy: ui}}
	r.emit(event{Event: "start", Scenario: sc.Name, Target: t.Name(), Seed: ptr(opt.Seed)})
	if err := r.startWorkload(ctx); err != nil {
		if ctx.Err() != nil {
			return Outcome{}, ctx.Err()
		}
		return Outcome{}, fmt.Errorf("%w: %v", ErrStart, err)
	}

	for _, st := range sc.Steps {
		if err := ctx.Err(); err != nil {
			return Outcome{}, err
		}
		if err := r.step(ctx, st); err != nil {
			if ctx.Err() != nil {
				return Outcome{}, ctx.Err()
			}
			r.aborted = fmt.Sprintf("steps[%d] (%s): %v", st.Index, st.Action, err)
			r.results = append(r.results, ExpectResult{Index: st.Index, What: st.Action, OK: false, Detail: err.Error()})
			// A failed step is no expectation: its end says it failed.
			r.emit(event{Event: "step", Index: ptr(st.Index), Action: st.Action, Phase: "end", OK: ptr(false), Detail: err.Error()})
			r.progress("steps[%d] %s FAILED: %v", st.Index, st.Action, err)
			break
		}
	}
	r.endNoFailover()
	if err := r.resumeAll(ctx); err != nil && ctx.Err() != nil {
		return Outcome{}, ctx.Err()
	}
	if err := r.healEverything(ctx); err != nil {
		if ctx.Err() != nil {
			return Outcome{}, ctx.Err()
		}
		r.results = append(r.results, ExpectResult{Index: -1, What: "heal", Detail: err.Error()})
		r.progress("healing every fault at the end FAILED: %v", err)
	}
	if err := r.finishWorkload(ctx); err != nil {
		if ctx.Err() != nil {
			return Outcome{}, ctx.Err()
		}
		r.results = append(r.results, ExpectResult{Index: -1, What: "workload", Detail: err.Error()})
		r.progress("stopping the workload FAILED: %v", err)
	}
	vios := r.judge(ctx)
	if ctx.Err() != nil {
		return Outcome{}, ctx.Err()
	}
	r.observe()
	out = Outcome{Seed: opt.Seed, Duration: t.Now().Sub(r.t0), Expectations: r.results, Violations: vios, Aborted: r.aborted, Schedule: r.drawn,
		Traffic: r.trafficSummary()}
	failed := 0
	for _, e := range r.results {
		if !e.OK {
			failed++
		}
	}
	out.OK = failed == 0 && len(vios) == 0
	for _, v := range vios {
		r.emit(event{Event: "violation", Invariant: v.Invariant, Details: v.Details})
	}
	if r.wl != nil && r.wl.tally != nil {
		c := r.wl.tally
		r.emit(event{Event: "callbacks", Delivered: ptr(c.Delivered), Retried: ptr(c.Retried), Lost: ptr(c.Lost)})
		r.progress("callbacks: %d delivered, %d retries, %d lost", c.Delivered, c.Retried, c.Lost)
	}
	r.emit(event{Event: "summary", OK: ptr(out.OK), Seed: ptr(opt.Seed), DurationS: ptr(seconds(out.Duration)),
		Expectations: ptr(len(r.results)), Failed: ptr(failed), Violations: ptr(len(vios))})
	return out, nil
}

// IntervalsIn are the intervals after a settings PATCH body: the ones it
// sets, else hb and ui.
func IntervalsIn(body json.RawMessage, hb, ui time.Duration) (time.Duration, time.Duration) {
	var s struct {
		HB *int `json:"heartbeat_interval"`
		UI *int `json:"unhealthy_interval"`
	}
	_ = json.Unmarshal(body, &s)
	if s.HB != nil {
		hb = time.Duration(*s.HB) * time.Second
	}
	if s.UI != nil {
		ui = time.Duration(*s.UI) * time.Second
	}
	return hb, ui
}

func (r *runner) emit(ev event) { r.emitAt(ev, r.t.Now()) }

// emitAt writes an event that happened at `at` (a witness's time, not when
// the runner looked).
func (r *runner) emitAt(ev event, at time.Time) {
	ev.Run = r.opt.Run
	ev.T = seconds(at.Sub(r.t0))
	writeEvent(r.opt.Events, ev)
}

func (r *runner) progress(format string, args ...any) {
	if r.opt.Progress == nil {
		return
	}
	fmt.Fprintf(r.opt.Progress, "[run %d %8.3fs] %s\n", r.opt.Run, r.t.Now().Sub(r.t0).Seconds(), fmt.Sprintf(format, args...))
}

// intervals returns the intervals in force now.
func (r *runner) intervals() (hb, ui time.Duration) {
	s := r.settings[len(r.settings)-1]
	return s.Heartbeat, s.Unhealthy
}

// observe reports the failovers and takeovers the witnesses saw since the
// last look, and notes whether every shard is served.
func (r *runner) observe() {
	all := r.allServed()
	if n := len(r.servedLog); n == 0 || r.servedLog[n-1].all != all || r.servedLog[n-1].shards != r.shards {
		r.servedLog = append(r.servedLog, servedAt{at: r.t.Now(), all: all, shards: r.shards})
	}
	fs := r.t.Failovers()
	for _, f := range fs[r.seenFailovers:] {
		r.emitAt(event{Event: "failover", Shard: ptr(f.Shard), From: f.From, To: f.To, Epoch: f.Epoch,
			DowntimeMS: ptr(f.Downtime().Milliseconds())}, f.ServedAgain)
		r.progress("failover: shard %d %s → %s (epoch %d), %d ms without service", f.Shard, f.From, f.To, f.Epoch,
			f.Downtime().Milliseconds())
	}
	r.seenFailovers = len(fs)
	gs := r.t.Grants()
	for _, g := range gs[r.seenGrants:] {
		if g.newTerm() && g.Master != r.lastHolder {
			if r.lastHolder != "" {
				r.emitAt(event{Event: "takeover", From: r.lastHolder, To: g.Master, LeaseEpoch: g.Epoch}, g.At)
				r.progress("takeover: %s is primary (was %s), lease epoch %d", g.Master, r.lastHolder, g.Epoch)
			}
			r.lastHolder = g.Master
		}
	}
	r.seenGrants = len(gs)
	r.reportTraffic()
}

// sleep lets d pass on the target's clock, resuming paused nodes when
// their time comes and reporting what the witnesses saw.
func (r *runner) sleep(ctx context.Context, d time.Duration) error {
	_, err := r.until(ctx, r.t.Now().Add(d), func() (bool, error) { return false, nil })
	return err
}

// until polls cond until it holds (true) or the deadline passes (false),
// resuming paused nodes when their time comes and reporting what the
// witnesses saw.
func (r *runner) until(ctx context.Context, deadline time.Time, cond func() (bool, error)) (bool, error) {
	for {
		if err := r.resumeDue(ctx); err != nil {
			return false, err
		}
		if err := r.netDue(ctx); err != nil {
			return false, err
		}
		if err := r.webhookDue(ctx); err != nil {
			return false, err
		}
		r.observe()
		ok, err := cond()
		if err != nil || ok {
			return ok, err
		}
		if !r.t.Now().Before(deadline) {
			return false, nil
		}
		// min(r.poll, deadline − now), without a Sub on every look (the
		// simulator's run is mostly these looks).
		d, now := r.poll, r.t.Now()
		if !now.Add(d).Before(deadline) {
			d = deadline.Sub(now)
		}
		if err := r.t.Sleep(ctx, d); err != nil {
			return false, err
		}
	}
}

func (r *runner) resumeDue(ctx context.Context) error {
	now := r.t.Now()
	if !anyDue(r.paused, now, func(at time.Time) time.Time { return at }) {
		return nil // the common case, without sorting on every look
	}
	for _, id := range slices.Sorted(maps.Keys(r.paused)) {
		if at := r.paused[id]; !at.IsZero() && !now.Before(at) {
			if err := r.resume(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// resumeAll ends every pause still in force: a run leaves no node frozen.
func (r *runner) resumeAll(ctx context.Context) error {
	for _, id := range slices.Sorted(maps.Keys(r.paused)) {
		if err := r.resume(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) resume(ctx context.Context, id string) error {
	err := r.t.Resume(ctx, id)
	// Resumed or not, it is not for the runner to resume again: a resume
	// that failed fails its step, and a second try would only repeat it.
	delete(r.paused, id)
	r.endFault(id, "pause")
	if err != nil {
		return err
	}
	r.progress("resumed %s", id)
	return nil
}

// endFault ends id's fault windows of a kind; kind "" ends its process
// faults (kill, stop, pause, restart) only: a restart does not heal a
// partition or set a clock back (the target gives a restarted node both
// again).
func (r *runner) endFault(id, kind string) {
	now := r.t.Now()
	for i := range r.faults {
		f := &r.faults[i]
		if f.node != id || !f.end.IsZero() {
			continue
		}
		if kind == f.kind || kind == "" && f.net == 0 && f.kind != "clock" {
			f.end = now
		}
	}
}

func (r *runner) step(ctx context.Context, st Step) error {
	node := ""
	// The node a step acts on is resolved before its begin event names it.
	var sel *Selector
	switch {
	case st.Node != nil:
		sel = st.Node
	case st.Clock != nil:
		sel = &st.Clock.Node
	case st.Link != nil:
		sel = &st.Link.From
	}
	if sel != nil {
		id, err := r.resolveInfra(ctx, *sel)
		if err != nil {
			return err
		}
		node = id
	}
	r.emit(event{Event: "step", Index: ptr(st.Index), Action: st.Action, Node: node, Phase: "begin"})
	r.progress("steps[%d] %s %s", st.Index, st.Action, describeStep(st, node))
	if st.As != "" {
		r.endNoFailover()
	}
	// The mark is the moment the step acts: what the cluster looked like
	// is read first (from the witnesses in this process, no round trip),
	// then the clock, then the signal.
	m := r.snapshot()
	at := r.t.Now()
	if st.As != "" {
		m.at = at
		r.marks[st.As] = m
	}
	var err error
	switch st.Action {
	case "wait":
		err = r.wait(ctx, st)
	case "sleep":
		err = r.sleep(ctx, st.Duration)
	case "kill", "stop":
		if st.Action == "kill" {
			err = r.t.Kill(ctx, node)
		} else {
			err = r.t.Stop(ctx, node)
		}
		// A killed or stopped node is no longer paused: nothing to resume.
		delete(r.paused, node)
		r.endFault(node, "pause")
		r.faults = append(r.faults, fault{node: node, kind: st.Action, start: at})
	case "pause":
		if err = r.t.Pause(ctx, node); err == nil {
			r.faults = append(r.faults, fault{node: node, kind: "pause", start: at})
			r.paused[node] = time.Time{}
			if st.For > 0 {
				r.paused[node] = at.Add(st.For)
			}
		}
	case "resume":
		err = r.resume(ctx, node)
	case "restart":
		if err = r.t.Restart(ctx, node); err == nil {
			delete(r.paused, node)
			// Restarting a running node is a fault of its own (the nemesis
			// counts it so), and a replayed nemesis restart must be judged
			// as the nemesis's was. After a kill, stop or pause the window
			// adds nothing: theirs ends at this same moment.
			r.faults = append(r.faults, fault{node: node, kind: "restart", start: at})
			r.endFault(node, "")
		}
	case "start":
		node, err = r.t.StartNode(ctx, st.What)
	case "set":
		if err = r.t.Patch(ctx, st.Set); err == nil {
			hb, ui := r.intervals()
			nhb, nui := IntervalsIn(st.Set, hb, ui)
			r.settings = append(r.settings, IntervalsFrom{At: r.t.Now(), Heartbeat: nhb, Unhealthy: nui})
			if st.As != "" {
				m := r.marks[st.As]
				m.hb, m.ui = nhb, nui
				r.marks[st.As] = m
			}
			if r.wl != nil {
				cur := r.wl.callbacks[len(r.wl.callbacks)-1]
				r.wl.callbacks = append(r.wl.callbacks, cur.withPatch(st.Set, r.t.Now()))
			}
		}
	case "shards":
		if err = r.t.SetShards(ctx, st.Shards); err == nil {
			r.shards = st.Shards
			r.observe() // "every shard served" means the new count from now on
		}
	case "expect":
		r.expect(ctx, st)
	case "nemesis":
		err = r.nemesis(ctx, st)
	case "webhook":
		err = r.webhookStep(ctx, st, at)
	case "partition", "isolate", "delay", "loss", "heal":
		node, err = r.networkStep(ctx, st, node, at)
	case "clock":
		until := time.Time{}
		if st.For > 0 {
			until = at.Add(st.For)
		}
		err = r.setClock(ctx, node, st.Clock.Rate, until)
	}
	if err != nil {
		return err
	}
	r.emit(event{Event: "step", Index: ptr(st.Index), Action: st.Action, Node: node, Phase: "end"})
	r.progress("steps[%d] %s done", st.Index, st.Action)
	return nil
}

func describeStep(st Step, node string) string {
	switch {
	case st.Action == "partition":
		return fmt.Sprint(st.Groups)
	case st.Link != nil:
		return fmt.Sprintf("%s → %v: latency %v ± %v, loss %g%%", st.Link.From, st.Link.To, st.Link.Latency, st.Link.Jitter, st.Link.Percent)
	case st.Clock != nil:
		return fmt.Sprintf("%s at rate %g", node, st.Clock.Rate)
	case node != "" && st.Node != nil && st.Node.Kind != SelID:
		return fmt.Sprintf("%s (%s)", st.Node, node)
	case node != "":
		return node
	case st.Action == "sleep":
		return st.Duration.String()
	case st.Action == "set":
		return string(st.Set)
	case st.Action == "shards":
		return fmt.Sprint(st.Shards)
	case st.Action == "webhook" && st.Webhook != nil:
		return webhookText(*st.Webhook)
	case st.Action == "expect" && st.Shard >= 0:
		return fmt.Sprintf("%s shard %d", st.What, st.Shard)
	}
	return st.What
}

// snapshot is the cluster as the witnesses show it now, for a mark: who
// serves each shard (the gateway) and who holds the lease (the store).
func (r *runner) snapshot() mark {
	hb, ui := r.intervals()
	return mark{served: r.t.Served(), primary: holderAt(r.t.Grants(), r.t.Now()), hb: hb, ui: ui}
}

// holderAt is the master whose lease runs at t by the store's record.
func holderAt(grants []LeaseGrant, t time.Time) string {
	holder, until := "", time.Time{}
	for _, g := range grants {
		if g.At.After(t) {
			break
		}
		switch {
		case g.Released && g.Master == holder:
			holder = ""
		case !g.Released:
			holder, until = g.Master, g.Expires
		}
	}
	if holder != "" && !until.After(t) {
		return ""
	}
	return holder
}

// resolve turns a selector into a node id when its step begins.
func (r *runner) resolve(ctx context.Context, s Selector) (string, error) {
	if s.Kind == SelID {
		return s.ID, nil
	}
	if s.Kind == SelOwner {
		if id := r.t.Served()[s.Shard]; id != "" {
			return id, nil
		}
		return "", fmt.Errorf("owner(%d): nobody serves shard %d now", s.Shard, s.Shard)
	}
	nodes, err := r.t.Nodes(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: reading the cluster: %w", s, err)
	}
	var pick []string
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		n := nodes[id]
		if !n.Up {
			continue
		}
		switch {
		case s.Kind == SelPrimary && n.Role == "primary_master",
			s.Kind == SelSecondary && n.Role == "secondary_master",
			s.Kind == SelStandby && n.Role == "coreapp" && len(n.Shards) == 0 && !slices.Contains(valuesOf(r.t.Served()), id),
			s.Kind == SelRandom && strings.HasPrefix(id, s.Role+"-"):
			pick = append(pick, id)
		}
	}
	if len(pick) == 0 {
		return "", fmt.Errorf("%s: no such node now", s)
	}
	return pick[r.rng.IntN(len(pick))], nil
}

func valuesOf(m map[int]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// allServed says whether every shard is served now.
func (r *runner) allServed() bool {
	if r.allSrv != nil {
		return r.allSrv.AllServed(r.shards)
	}
	served := r.t.Served()
	for s := range r.shards {
		if served[s] == "" {
			return false
		}
	}
	return true
}

// allServer is a Target that answers allServed itself, without building
// the map of holders on every look (the simulator looks every 20 ms of
// virtual time).
type allServer interface {
	// AllServed says whether every shard below n is served now, as
	// Served would show it.
	AllServed(n int) bool
}

// hasPrimary says whether some master holds the lease now, by the store.
func (r *runner) hasPrimary() bool {
	return holderAt(r.t.Grants(), r.t.Now()) != ""
}

func (r *runner) wait(ctx context.Context, st Step) error {
	timeout := st.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	deadline := r.t.Now().Add(timeout)
	ready := func() (bool, error) {
		switch st.What {
		case "served":
			return r.allServed(), nil
		case "primary":
			return r.hasPrimary(), nil
		}
		return r.allServed() && r.hasPrimary(), nil
	}
	for {
		ok, err := r.until(ctx, deadline, ready)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("wait: %s: not after %v", st.What, timeout)
		}
		if st.What != "stable" {
			return nil
		}
		// stable: both, and no failover for one unhealthy_interval; a
		// failover or a lost shard starts the wait over.
		_, ui := r.intervals()
		quietFrom, seen := r.t.Now(), len(r.t.Failovers())
		broke, err := r.until(ctx, minTime(quietFrom.Add(ui), deadline), func() (bool, error) {
			return len(r.t.Failovers()) != seen || !r.allServed() || !r.hasPrimary(), nil
		})
		if err != nil {
			return err
		}
		if !broke && !r.t.Now().Before(quietFrom.Add(ui)) {
			return nil
		}
		if !r.t.Now().Before(deadline) {
			return fmt.Errorf("wait: stable: the cluster did not stay served without a failover for %v within %v", ui, timeout)
		}
		if err := r.t.Sleep(ctx, r.poll); err != nil {
			return err
		}
	}
}

// servedFrom is the first moment at or after t that every shard of the
// current count was served, as the runner saw it (to its poll interval).
func (r *runner) servedFrom(t time.Time) (time.Time, bool) {
	state := false
	for _, s := range r.servedLog {
		all := s.all && s.shards == r.shards
		if !s.at.After(t) {
			state = all
			continue
		}
		s.all = all
		if state {
			return t, true
		}
		if s.all {
			return s.at, true
		}
	}
	if state {
		return t, true
	}
	return time.Time{}, false
}

// anyDue says whether some entry of m is due at now by its time (zero:
// never).
func anyDue[V any](m map[string]V, now time.Time, at func(V) time.Time) bool {
	if len(m) == 0 {
		return false // mostly: asked on every look
	}
	for _, v := range m {
		if t := at(v); !t.IsZero() && !now.Before(t) {
			return true
		}
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
