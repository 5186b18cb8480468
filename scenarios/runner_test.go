package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// fakeTarget is a scripted cluster on a virtual clock: it lets the runner's
// decisions and verdicts be tested exactly, without processes or wall
// time. A killed owner's shard moves to a standby after failoverAfter
// (never, if zero); a killed primary's lease goes to another master after
// takeoverAfter.
type fakeTarget struct {
	now                          time.Time
	failoverAfter, takeoverAfter time.Duration
	nodes                        map[string]*NodeState
	served                       map[int]string
	failovers                    []FailoverSeen
	grants                       []LeaseGrant
	declarations                 []Declaration
	violations                   []Violation
	later                        []scheduled
	closed                       int
	killed                       map[string]bool
	servedCalls                  int
	log                          []string
	commands                     []Command
	// tables are every fault table the runner set, clocks every rate.
	tables [][]NetLink
	clocks []string
	// failNetwork fails the Network call of that number (1: the first),
	// after recording it, as a push that reached only some nodes does.
	failNetwork int
}

type scheduled struct {
	at time.Time
	do func()
}

func newFake() *fakeTarget {
	t0 := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	f := &fakeTarget{now: t0, failoverAfter: 3500 * time.Millisecond, takeoverAfter: 3200 * time.Millisecond,
		nodes: map[string]*NodeState{}, served: map[int]string{}, killed: map[string]bool{}}
	return f
}

func (f *fakeTarget) Name() string { return "fake" }
func (f *fakeTarget) Start(_ context.Context, c Cluster, _ json.RawMessage) error {
	for i := 1; i <= c.Masters; i++ {
		role := "secondary_master"
		if i == 1 {
			role = "primary_master"
			f.grants = append(f.grants, LeaseGrant{At: f.now, Master: "master-1", Epoch: 1, Expires: f.now.Add(3 * time.Second)})
		}
		id := fmt.Sprintf("master-%d", i)
		f.nodes[id] = &NodeState{ID: id, Role: role, Up: true}
	}
	f.renew()
	for i := 1; i <= c.Coreapps; i++ {
		id := fmt.Sprintf("coreapp-%d", i)
		f.nodes[id] = &NodeState{ID: id, Role: "coreapp", Up: true}
		if i <= c.Shards {
			f.served[i-1] = id
			f.nodes[id].Shards = []int{i - 1}
		}
	}
	return nil
}

// renew is master-1's lease renewal every second, while it is up.
func (f *fakeTarget) renew() {
	f.at(time.Second, func() {
		if n := f.nodes["master-1"]; n != nil && n.Up && n.Role == "primary_master" {
			f.grants = append(f.grants, LeaseGrant{At: f.now, Master: "master-1", Epoch: 1, Expires: f.now.Add(3 * time.Second), Renewal: true})
			f.renew()
		}
	})
}

func (f *fakeTarget) Close() error   { f.closed++; return nil }
func (f *fakeTarget) Now() time.Time { return f.now }
func (f *fakeTarget) Sleep(_ context.Context, d time.Duration) error {
	f.now = f.now.Add(d)
	sort.SliceStable(f.later, func(i, j int) bool { return f.later[i].at.Before(f.later[j].at) })
	for len(f.later) > 0 && !f.later[0].at.After(f.now) {
		s := f.later[0]
		f.later = f.later[1:]
		s.do()
	}
	return nil
}
func (f *fakeTarget) at(d time.Duration, do func()) {
	f.later = append(f.later, scheduled{f.now.Add(d), do})
}
func (f *fakeTarget) Nodes(context.Context) (map[string]NodeState, error) {
	out := map[string]NodeState{}
	for id, n := range f.nodes {
		out[id] = *n
	}
	return out, nil
}
func (f *fakeTarget) Served() map[int]string {
	f.servedCalls++
	out := map[int]string{}
	for s, c := range f.served {
		out[s] = c
	}
	return out
}
func (f *fakeTarget) Failovers() []FailoverSeen                 { return f.failovers }
func (f *fakeTarget) Grants() []LeaseGrant                      { return f.grants }
func (f *fakeTarget) Declarations() []Declaration               { return f.declarations }
func (f *fakeTarget) Violations() []Violation                   { return f.violations }
func (f *fakeTarget) Commands() []Command                       { return f.commands }
func (f *fakeTarget) Where() string                             { return "" }
func (f *fakeTarget) Stop(ctx context.Context, id string) error { return f.Kill(ctx, id) }
func (f *fakeTarget) Pause(_ context.Context, id string) error {
	f.log = append(f.log, "pause "+id)
	f.nodes[id].Up = false
	return nil
}
func (f *fakeTarget) Resume(_ context.Context, id string) error {
	if f.killed[id] {
		return fmt.Errorf("resume %s: process has exited", id)
	}
	f.log = append(f.log, "resume "+id)
	f.nodes[id].Up = true
	return nil
}
func (f *fakeTarget) Restart(_ context.Context, id string) error {
	delete(f.killed, id)
	f.log = append(f.log, "restart "+id)
	f.nodes[id].Up = true
	return nil
}
func (f *fakeTarget) StartNode(context.Context, string) (string, error) { return "", nil }

// Network records the table; a link from the primary to an owner cut
// makes that owner's shards fail over as a crash would.
func (f *fakeTarget) Network(_ context.Context, links []NetLink) error {
	f.tables = append(f.tables, slices.Clone(links))
	var desc []string
	for _, l := range links {
		desc = append(desc, fmt.Sprintf("%s>%s", l.From, l.To))
		if l.Cut && l.From == "master-1" && strings.HasPrefix(l.To, "coreapp-") && !f.killed[l.To] {
			f.moveShards(l.To, f.now)
		}
	}
	f.log = append(f.log, "network ["+strings.Join(desc, " ")+"]")
	if len(f.tables) == f.failNetwork {
		return fmt.Errorf("coreapp-2: did not answer")
	}
	return nil
}

func (f *fakeTarget) Clock(_ context.Context, id string, rate float64) error {
	f.clocks = append(f.clocks, fmt.Sprintf("%s@%v=%v", id, f.now.Sub(time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)), rate))
	return nil
}
func (f *fakeTarget) Patch(context.Context, json.RawMessage) error { return nil }
func (f *fakeTarget) SetShards(context.Context, int) error         { return nil }

func (f *fakeTarget) Kill(_ context.Context, id string) error {
	f.log = append(f.log, "kill "+id)
	f.killed[id] = true
	n := f.nodes[id]
	n.Up = false
	killed := f.now
	if n.Role == "primary_master" && f.takeoverAfter > 0 {
		n.Role = "unknown"
		f.at(f.takeoverAfter, func() {
			f.nodes["master-2"].Role = "primary_master"
			f.grants = append(f.grants, LeaseGrant{At: f.now, Master: "master-2", Epoch: 2, Expires: f.now.Add(3 * time.Second)})
		})
	}
	f.moveShards(id, killed)
	return nil
}

// moveShards is a lost owner: declared unhealthy, then its shards go to
// coreapp-3 after failoverAfter.
func (f *fakeTarget) moveShards(id string, lost time.Time) {
	for s, c := range f.served {
		if c != id {
			continue
		}
		delete(f.served, s)
		if f.failoverAfter == 0 {
			continue
		}
		f.at(f.failoverAfter-500*time.Millisecond, func() {
			f.declarations = append(f.declarations, Declaration{At: f.now, Master: "master-1", Coreapp: id})
		})
		f.at(f.failoverAfter, func() {
			standby := "coreapp-3"
			f.served[s] = standby
			f.failovers = append(f.failovers, FailoverSeen{Shard: s, From: id, To: standby, Epoch: 3, ServedUntil: lost, ServedAgain: f.now})
		})
	}
}

func runFake(t *testing.T, f *fakeTarget, yaml string) (Outcome, []map[string]any) {
	t.Helper()
	sc, err := Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var events, progress bytes.Buffer
	out, err := Run(t.Context(), f, sc, Options{Seed: 7, Events: &events, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if f.closed != 1 {
		t.Errorf("target closed %d times, want once", f.closed)
	}
	var evs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(events.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		evs = append(evs, m)
	}
	t.Logf("progress:\n%s", progress.String())
	return out, evs
}

func eventsOf(evs []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, e := range evs {
		if e["event"] == kind {
			out = append(out, e)
		}
	}
	return out
}

const crashScenario = `name: crash
settings: {heartbeat_interval: 1, unhealthy_interval: 3}
steps:
  - wait: served
  - kill: owner(0)
    as: crash
  - expect: failover
    shard: 0
    after: crash
    within: %s
checks: all
`

// The crash of an owner, failed over 3.5 s later: rule 1's window is
// [3 s, 4.25 s], so the run passes, and its --json tells the story.
func TestRunMeasuresAFailoverAgainstRule1(t *testing.T) {
	out, evs := runFake(t, newFake(), fmt.Sprintf(crashScenario, "rule1"))
	if !out.OK {
		t.Fatalf("outcome %+v, want ok", out)
	}
	e := out.Expectations[0]
	if *e.Measured != 3500*time.Millisecond || e.Bound != "rule1: [3s, 4.25s]" {
		t.Errorf("expectation = %+v (measured %v)", e, *e.Measured)
	}
	kinds := []string{}
	for _, ev := range evs {
		kinds = append(kinds, ev["event"].(string))
	}
	want := "start step step step step step failover expect step summary"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("events %q\nwant   %q", got, want)
	}
	if s := eventsOf(evs, "step")[2]; s["node"] != "coreapp-1" || s["action"] != "kill" || s["phase"] != "begin" {
		t.Errorf("kill step event %v: want the resolved node", s)
	}
	if f := eventsOf(evs, "failover")[0]; f["downtime_ms"] != 3500.0 || f["t"] != 3.5 {
		t.Errorf("failover event %v", f)
	}
	if x := eventsOf(evs, "expect")[0]; x["measured_ms"] != 3500.0 || x["ok"] != true {
		t.Errorf("expect event %v", x)
	}
}

// A runner that always passes is worthless: an expectation that cannot
// hold fails the run and is named.
func TestRunFailsAnExpectationThatCannotHold(t *testing.T) {
	out, evs := runFake(t, newFake(), fmt.Sprintf(crashScenario, "100ms"))
	if out.OK || len(out.Expectations) != 1 || out.Expectations[0].OK {
		t.Fatalf("outcome %+v, want the failover expectation failed", out)
	}
	// It still says what was measured, against which bound.
	if x := eventsOf(evs, "expect")[0]; x["ok"] != false || x["measured_ms"] != 3500.0 || x["bound"] != "≤ 100ms" {
		t.Errorf("expect event %v", x)
	}
	// And when nothing happens at all, it says so.
	f := newFake()
	f.failoverAfter = 0
	out, evs = runFake(t, f, fmt.Sprintf(crashScenario, "100ms"))
	if x := eventsOf(evs, "expect")[0]; out.OK || x["ok"] != false || !strings.Contains(x["detail"].(string), "not served by a coreapp other than coreapp-1 within 8.25s of crash") {
		t.Errorf("expect event %v", x)
	}
	if s := eventsOf(evs, "summary")[0]; s["ok"] != false || s["failed"] != 1.0 {
		t.Errorf("summary %v", s)
	}
}

// Each checker fires on a bad history, with the right invariant's name.
func TestRunCatchesEveryKindOfViolation(t *testing.T) {
	t.Run("no_false_failover", func(t *testing.T) {
		f := newFake()
		f.at(2*time.Second, func() {
			f.declarations = append(f.declarations, Declaration{At: f.now, Master: "master-1", Coreapp: "coreapp-2"})
		})
		out, _ := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - sleep: 5s\n")
		assertViolation(t, out, "no_false_failover", "master-1 declared coreapp-2 unhealthy")
	})
	t.Run("a declaration explained by a fault is no violation", func(t *testing.T) {
		out, _ := runFake(t, newFake(), fmt.Sprintf(crashScenario, "rule1"))
		if len(out.Violations) > 0 {
			t.Errorf("violations %v", out.Violations)
		}
	})
	t.Run("single_primary", func(t *testing.T) {
		f := newFake()
		f.at(time.Second, func() {
			f.grants = append(f.grants, LeaseGrant{At: f.now, Master: "master-2", Epoch: 2, Expires: f.now.Add(3 * time.Second)})
		})
		out, _ := runFake(t, f, "name: t\nsteps:\n  - sleep: 2s\n")
		assertViolation(t, out, "single_primary", "lease granted to master-2 (epoch 2)")
	})
	t.Run("single_owner and epoch_monotonic from the gateway", func(t *testing.T) {
		f := newFake()
		f.violations = []Violation{{Invariant: "single_owner", Details: "two sessions"}, {Invariant: "epoch_monotonic", Details: "stale"}}
		out, _ := runFake(t, f, "name: t\nsteps:\n  - sleep: 1s\n")
		assertViolation(t, out, "single_owner", "two sessions")
		assertViolation(t, out, "epoch_monotonic", "stale")
		f = newFake()
		f.violations = []Violation{{Invariant: "single_owner", Details: "two sessions"}, {Invariant: "epoch_monotonic", Details: "stale"}}
		out, _ = runFake(t, f, "name: t\nsteps:\n  - sleep: 1s\nchecks: [single_owner]\n")
		if len(out.Violations) != 1 {
			t.Errorf("checks: [single_owner] judged %v", out.Violations)
		}
	})
	t.Run("liveness", func(t *testing.T) {
		f := newFake()
		f.failoverAfter = 0 // nobody takes the shard over
		out, _ := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - kill: owner(1)\n")
		assertViolation(t, out, "liveness", "shards [1] unserved")
	})
}

func assertViolation(t *testing.T, out Outcome, inv, detail string) {
	t.Helper()
	if out.OK {
		t.Errorf("run passed; want a %s violation", inv)
	}
	for _, v := range out.Violations {
		if v.Invariant == inv && strings.Contains(v.Details, detail) {
			return
		}
	}
	t.Errorf("violations %+v: want %s with %q", out.Violations, inv, detail)
}

// A pause with for is undone on time, and no run leaves a node paused.
func TestRunResumesEveryPause(t *testing.T) {
	f := newFake()
	_, _ = runFake(t, f, "name: t\nsteps:\n  - pause: coreapp-3\n    for: 1s\n  - pause: coreapp-2\n  - sleep: 2s\n")
	if got := strings.Join(f.log, ", "); got != "pause coreapp-3, pause coreapp-2, resume coreapp-3, resume coreapp-2" {
		t.Errorf("faults: %s", got)
	}
}

// The primary killed: the takeover is timed from the store's grant (the
// fake's lease, granted at the start for 3 s, lapses before it).
func TestRunTimesATakeoverFromTheStoresGrant(t *testing.T) {
	out, evs := runFake(t, newFake(), "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - kill: primary\n    as: crash\n  - expect: takeover\n    after: crash\n    within: lease\n")
	if !out.OK || *out.Expectations[0].Measured != 3200*time.Millisecond {
		t.Fatalf("outcome %+v", out)
	}
	if tk := eventsOf(evs, "takeover"); len(tk) != 1 || tk[0]["from"] != "master-1" || tk[0]["to"] != "master-2" || tk[0]["lease_epoch"] != 2.0 {
		t.Errorf("takeover events %v", tk)
	}
}

// Steps a target cannot run yet are refused before anything starts.
// A nemesis draws its schedule from the seed (the same seed, the same
// faults, so a failing run replays), undoes each fault before the next,
// network faults included.
func TestNemesisIsSeededAndUndoesEveryFault(t *testing.T) {
	const yaml = "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - nemesis: {faults: [kill, pause, stop, restart], every: 4s}\n    for: 60s\nchecks: [single_owner]\n"
	faults := func(seed uint64) []string {
		f := newFake()
		f.failoverAfter, f.takeoverAfter = 0, 0
		sc, err := Parse("n.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(t.Context(), f, sc, Options{Seed: seed}); err != nil {
			t.Fatal(err)
		}
		return f.log
	}
	a, b, c := faults(5), faults(5), faults(6)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("seed 5 twice gave\n%v\n%v", a, b)
	}
	if strings.Join(a, ",") == strings.Join(c, ",") {
		t.Errorf("seeds 5 and 6 gave the same schedule %v", a)
	}
	if len(a) < 10 {
		t.Errorf("60 s of faults every ~4 s: only %v", a)
	}
	// Each kill, stop (a kill in the fake) or pause is followed by its undo.
	for i := 0; i < len(a); i++ {
		kind, node, _ := strings.Cut(a[i], " ")
		switch kind {
		case "kill":
			if i+1 >= len(a) || a[i+1] != "restart "+node {
				t.Errorf("%s not undone next: %v", a[i], a)
			}
			i++
		case "pause":
			if i+1 >= len(a) || a[i+1] != "resume "+node {
				t.Errorf("%s not undone next: %v", a[i], a)
			}
			i++
		}
	}

}

// Findings of a review, each a test that failed before its fix.
func TestRunnerReviewFindings(t *testing.T) {
	t.Run("a release ends a hold: a graceful handover is no single_primary violation", func(t *testing.T) {
		t0 := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
		gs := []LeaseGrant{
			{At: t0, Master: "m1", Epoch: 1, Expires: t0.Add(3 * time.Second)},
			{At: t0.Add(time.Second), Master: "m1", Epoch: 1, Expires: t0.Add(4 * time.Second), Renewal: true},
			{At: t0.Add(2 * time.Second), Master: "m1", Epoch: 1, Released: true},
			{At: t0.Add(2*time.Second + 10*time.Millisecond), Master: "m2", Epoch: 2, Expires: t0.Add(5 * time.Second)},
			{At: t0.Add(3 * time.Second), Master: "m2", Epoch: 2, Expires: t0.Add(6 * time.Second), Renewal: true},
		}
		if v := checkSinglePrimary(gs); len(v) != 0 {
			t.Errorf("violations %v", v)
		}
		// Without the release it is one violation, not one per renewal.
		bad := append(slices.Clone(gs[:2]), gs[3:]...)
		if v := checkSinglePrimary(bad); len(v) != 1 {
			t.Errorf("violations %v, want exactly one", v)
		}
	})
	t.Run("served is judged against its upper bound, from when the shards were served", func(t *testing.T) {
		f := newFake()
		f.failoverAfter = 6 * time.Second
		out, _ := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - kill: owner(0)\n    as: crash\n  - sleep: 20s\n  - expect: served\n    after: crash\n    within: 5s\nchecks: [single_owner]\n")
		e := out.Expectations[0]
		if e.OK || e.Measured == nil || *e.Measured < 6*time.Second || *e.Measured > 6100*time.Millisecond {
			t.Errorf("served = %+v (measured %v), want failed at about 6 s", e, e.Measured)
		}
	})
	t.Run("liveness fires when service came back late, even if it is back by the end", func(t *testing.T) {
		f := newFake()
		f.failoverAfter = 60 * time.Second
		out, _ := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - kill: coreapp-1\n  - sleep: 90s\nchecks: [liveness]\n")
		assertViolation(t, out, "liveness", "every shard served again only 1m0s after the last fault ended")
	})
	t.Run("liveness fires for a crash nobody takes over, also when the gateway notices it late", func(t *testing.T) {
		// Found by the simulator's selftest: the shard was still served at
		// the instant of the kill (the gateway hears of a crash a moment
		// later), and that used to count as "served again".
		f := newFake()
		f.failoverAfter = 0
		// The kill changes nothing the runner can see at once; 3 ms later
		// shard 0 is unserved, for good.
		f.at(5*time.Second, func() { f.at(3*time.Millisecond, func() { delete(f.served, 0) }) })
		out, _ := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - sleep: 5s\n  - kill: coreapp-3\n  - sleep: 20s\nchecks: [liveness]\n")
		assertViolation(t, out, "liveness", "shards [0] unserved 20s after the last fault ended")
	})
	t.Run("wait: stable waits out a failover without spinning", func(t *testing.T) {
		f := newFake()
		f.at(time.Millisecond, func() { _ = f.Kill(context.Background(), "coreapp-1") })
		out, _ := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - wait: stable\nchecks: [single_owner]\n")
		if !out.OK || f.servedCalls > 5000 {
			t.Errorf("outcome %+v after %d Served calls", out, f.servedCalls)
		}
	})
	t.Run("a paused node that is killed is not resumed", func(t *testing.T) {
		out, _ := runFake(t, newFake(), "name: t\nsteps:\n  - pause: coreapp-3\n    for: 1s\n  - kill: coreapp-3\n  - sleep: 2s\nchecks: [single_owner]\n")
		if !out.OK || out.Aborted != "" {
			t.Errorf("outcome %+v", out)
		}
	})
	t.Run("no_failover without for lasts until the next mark", func(t *testing.T) {
		f := newFake()
		f.at(2*time.Second, func() {
			f.declarations = append(f.declarations, Declaration{At: f.now, Master: "master-1", Coreapp: "coreapp-2"})
		})
		out, evs := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - expect: no_failover\n  - sleep: 3s\n  - kill: coreapp-3\n    as: later\nchecks: [single_owner]\n")
		x := eventsOf(evs, "expect")
		if len(x) != 1 || x[0]["ok"] != false || x[0]["t"] != 3.0 || !strings.Contains(x[0]["detail"].(string), "master-1 declared coreapp-2 unhealthy at +2s") || out.OK {
			t.Errorf("expect events %v", x)
		}
	})
}
