package bench_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/bench"
	"github.com/mcsim/mcsim/scenarios"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	ms  = time.Millisecond
	sec = time.Second
	eps = 250 * ms
)

// hb 1s, ui 3s from the start.
var steady = bench.Schedule{{From: t0, Heartbeat: sec, Unhealthy: 3 * sec}}

// The windows of each rule, with the intervals in force around the
// fault: a change before the fault is the only setting that counts, one
// while the fault is handled widens the window to cover both (rule 6:
// they apply live), one after the latest deadline changes nothing.
func TestWindows(t *testing.T) {
	type lohi struct{ lo, hi time.Duration }
	cases := []struct {
		name   string
		kind   bench.Kind
		sched  bench.Schedule
		fault  time.Duration
		forced time.Duration
		want   map[bench.Measure]lohi
		text   map[bench.Measure]string
	}{{
		name: "rule 1", kind: bench.Failover, sched: steady, fault: 10 * sec,
		want: map[bench.Measure]lohi{
			bench.Detection: {3*sec - eps, 4*sec + eps},
			bench.Recovery:  {3 * sec, 4*sec + eps},
			bench.Downtime:  {0, 4*sec + eps},
			bench.Epsilon:   {0, eps},
		},
		text: map[bench.Measure]string{bench.Recovery: "rule1: [3s, 4s] + ε 250ms"},
	}, {
		name: "pause: downtime runs from the last pong", kind: bench.Pause, sched: steady, fault: 10 * sec,
		want: map[bench.Measure]lohi{
			bench.Recovery: {3 * sec, 4*sec + eps},
			bench.Downtime: {0, 4*sec + eps + 250*ms},
		},
	}, {
		name: "takeover: TTL is unhealthy_interval", kind: bench.Takeover, sched: steady, fault: 10 * sec,
		want: map[bench.Measure]lohi{
			bench.Detection: {2*sec - eps, 3*sec + eps},
			bench.Recovery:  {0, 4*sec + eps},
			bench.Epsilon:   {0, eps},
		},
		text: map[bench.Measure]string{bench.Recovery: "lease: ≤ TTL 3s + heartbeat 1s + ε 250ms"},
	}, {
		name: "rule 5: no ε", kind: bench.Handover, sched: steady, fault: 10 * sec,
		want: map[bench.Measure]lohi{
			bench.Recovery: {0, sec},
			bench.Downtime: {0, sec},
			bench.Epsilon:  {0, sec},
		},
		text: map[bench.Measure]string{bench.Recovery: "rule5: ≤ 1s"},
	}, {
		name: "a forced bound replaces the rule for recovery only", kind: bench.Failover, sched: steady, fault: 10 * sec, forced: sec,
		want: map[bench.Measure]lohi{
			bench.Detection: {3*sec - eps, 4*sec + eps},
			bench.Recovery:  {0, sec},
		},
		text: map[bench.Measure]string{bench.Recovery: "forced: ≤ 1s"},
	}, {
		name: "intervals changed before the fault: only the new ones", kind: bench.Failover, fault: 10 * sec,
		sched: bench.Schedule{{From: t0, Heartbeat: sec, Unhealthy: 3 * sec}, {From: at(5 * sec), Heartbeat: 2 * sec, Unhealthy: 10 * sec}},
		want:  map[bench.Measure]lohi{bench.Recovery: {10 * sec, 12*sec + eps}},
	}, {
		name: "intervals changed at the fault: the new ones", kind: bench.Failover, fault: 10 * sec,
		sched: bench.Schedule{{From: t0, Heartbeat: sec, Unhealthy: 3 * sec}, {From: at(10 * sec), Heartbeat: 2 * sec, Unhealthy: 10 * sec}},
		want:  map[bench.Measure]lohi{bench.Recovery: {10 * sec, 12*sec + eps}},
	}, {
		name: "unhealthy raised while the fault is handled: both", kind: bench.Failover, fault: 10 * sec,
		sched: bench.Schedule{{From: t0, Heartbeat: sec, Unhealthy: 3 * sec}, {From: at(12 * sec), Heartbeat: sec, Unhealthy: 10 * sec}},
		want:  map[bench.Measure]lohi{bench.Recovery: {3 * sec, 11*sec + eps}},
	}, {
		name: "unhealthy lowered while the fault is handled: both", kind: bench.Failover, fault: 10 * sec,
		sched: bench.Schedule{{From: t0, Heartbeat: sec, Unhealthy: 10 * sec}, {From: at(12 * sec), Heartbeat: sec, Unhealthy: 3 * sec}},
		want:  map[bench.Measure]lohi{bench.Recovery: {3 * sec, 11*sec + eps}},
	}, {
		name: "a change after the latest deadline: the old ones", kind: bench.Failover, fault: 10 * sec,
		sched: bench.Schedule{{From: t0, Heartbeat: sec, Unhealthy: 3 * sec}, {From: at(14*sec + ms), Heartbeat: 5 * sec, Unhealthy: 30 * sec}},
		want:  map[bench.Measure]lohi{bench.Recovery: {3 * sec, 4*sec + eps}},
	}, {
		name: "a chain of changes each inside the widened window", kind: bench.Takeover, fault: 10 * sec,
		sched: bench.Schedule{{From: t0, Heartbeat: sec, Unhealthy: 3 * sec}, {From: at(13 * sec), Heartbeat: sec, Unhealthy: 5 * sec},
			{From: at(15 * sec), Heartbeat: 2 * sec, Unhealthy: 8 * sec}},
		want: map[bench.Measure]lohi{bench.Recovery: {0, 10*sec + eps}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := bench.Windows(c.kind, c.sched, at(c.fault), eps, c.forced)
			for m, want := range c.want {
				if got := w[m]; got.Lo != want.lo || got.Hi != want.hi {
					t.Errorf("%s: [%v, %v], want [%v, %v] (%s)", m, got.Lo, got.Hi, want.lo, want.hi, got.Text)
				}
			}
			for m, want := range c.text {
				if got := w[m].Text; got != want {
					t.Errorf("%s: %q, want %q", m, got, want)
				}
			}
		})
	}
}

// ε is recovery minus the earliest moment the rule allowed it in that
// run.
func TestEpsilon(t *testing.T) {
	cases := []struct {
		name string
		kind bench.Kind
		run  bench.Run
		want time.Duration
		seen bool
	}{
		{"rule 1: after the declaration", bench.Failover,
			bench.Run{Fault: at(0), Detected: at(3400 * ms), Recovered: at(3520 * ms)}, 120 * ms, true},
		{"rule 1 without a declaration: after fault + unhealthy", bench.Pause,
			bench.Run{Fault: at(0), Recovered: at(3700 * ms)}, 700 * ms, true},
		{"lease: after the lapse", bench.Takeover,
			bench.Run{Fault: at(0), Detected: at(2600 * ms), Recovered: at(3100 * ms)}, 500 * ms, true},
		{"lease without a lapse seen: none", bench.Takeover,
			bench.Run{Fault: at(0), Recovered: at(3100 * ms)}, 0, false},
		{"rule 5: after the stop", bench.Handover,
			bench.Run{Fault: at(0), Recovered: at(40 * ms)}, 40 * ms, true},
		{"no recovery: none", bench.Failover,
			bench.Run{Fault: at(0), Detected: at(3400 * ms)}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, seen := c.run.Epsilon(c.kind, steady)
			if got != c.want || seen != c.seen {
				t.Errorf("ε %v (seen %v), want %v (seen %v)", got, seen, c.want, c.seen)
			}
		})
	}
}

// Outside counting: a value out of its window, and a measure not seen at
// all, each count once per measure; a run counts once however many of
// its measures fell outside.
func TestOutsideCounting(t *testing.T) {
	b := bench.New(bench.Failover, eps, 0)
	inside := bench.Run{Fault: at(0), Detected: at(3500 * ms), Recovered: at(3520 * ms), Downtimes: []time.Duration{3520 * ms}}
	if why := b.Add(inside, steady); len(why) != 0 {
		t.Errorf("inside run reported outside: %v", why)
	}
	// Declared and recovered late: three measures outside, one run.
	late := bench.Run{Fault: at(0), Detected: at(4400 * ms), Recovered: at(4900 * ms), Downtimes: []time.Duration{4900 * ms, 10 * ms}}
	why := b.Add(late, steady)
	if len(why) != 4 || !strings.HasPrefix(why[0], "detection 4400.0 ms outside rule1") {
		t.Errorf("late run: %q", why)
	}
	// Nothing seen: every measure outside, none with a value.
	b.Add(bench.Run{Fault: at(0)}, steady)
	if b.RunsOutside() != 2 {
		t.Errorf("runs outside %d, want 2", b.RunsOutside())
	}
	got := map[bench.Measure][2]int{}
	for _, d := range b.Distributions() {
		got[d.Measure] = [2]int{d.N, d.Outside}
	}
	want := map[bench.Measure][2]int{
		bench.Detection: {2, 2}, bench.Recovery: {2, 2},
		// Two shards moved in the late run: one too slow, one fine.
		bench.Downtime: {3, 2},
		// 4900 − 4400 = 500 ms > ε.
		bench.Epsilon: {2, 2},
	}
	for m, w := range want {
		if got[m] != w {
			t.Errorf("%s: n, outside = %v, want %v", m, got[m], w)
		}
	}
}

// An impossible bound: a forced 1 s window against unhealthy_interval 3s
// puts every run outside.
func TestImpossibleBoundIsOutside(t *testing.T) {
	b := bench.New(bench.Failover, eps, sec)
	for i := range 5 {
		d := 3*sec + time.Duration(i)*200*ms
		b.Add(bench.Run{Fault: at(0), Detected: at(d), Recovered: at(d + 5*ms), Downtimes: []time.Duration{d}}, steady)
	}
	if b.RunsOutside() != 5 {
		t.Errorf("runs outside %d, want 5", b.RunsOutside())
	}
	for _, d := range b.Distributions() {
		if d.Measure == bench.Recovery && (d.Outside != 5 || d.Bound != "forced: ≤ 1s") {
			t.Errorf("recovery %+v", d)
		}
	}
}

// The distribution is nearest rank (a measured value), as
// scenarios.Distributions has it.
func TestDistributionPercentiles(t *testing.T) {
	b := bench.New(bench.Handover, eps, 0)
	for i := 1; i <= 100; i++ {
		d := time.Duration(i) * ms
		b.Add(bench.Run{Fault: at(0), Recovered: at(d), Downtimes: []time.Duration{0}}, steady)
	}
	d := b.Distributions()[0]
	if d.Measure != bench.Recovery || d.N != 100 || d.MinMS != 1 || d.P50MS != 50 || d.P90MS != 90 || d.P99MS != 99 || d.MaxMS != 100 || d.Outside != 0 {
		t.Errorf("%+v", d)
	}
	var ms []string
	for _, d := range b.Distributions() {
		ms = append(ms, string(d.Measure))
	}
	if !slices.Equal(ms, []string{"recovery", "downtime", "epsilon"}) {
		t.Errorf("handover measures %v", ms)
	}
}

// Each kind's generated run parses as a scenario: its fault, marked, and
// the expectation of its rule after it; the phase is seeded and below
// one heartbeat.
func TestScenarios(t *testing.T) {
	cfg := bench.Config{Masters: 2, Coreapps: 3, Shards: 2, Heartbeat: sec, Unhealthy: 3 * sec}
	want := map[bench.Kind][2]string{
		bench.Failover: {"kill", "rule1"}, bench.Takeover: {"kill", "lease"},
		bench.Handover: {"stop", "rule5"}, bench.Pause: {"pause", "rule1"},
	}
	for _, k := range bench.Kinds() {
		phase := bench.Phase(7, cfg.Heartbeat)
		sc, err := scenarios.Parse("bench", bench.ScenarioYAML(k, cfg, phase))
		if err != nil {
			t.Fatalf("%s: %v\n%s", k, err, bench.ScenarioYAML(k, cfg, phase))
		}
		var fault, expect *scenarios.Step
		for i, st := range sc.Steps {
			if st.As == "fault" {
				fault = &sc.Steps[i]
			}
			if st.Action == "expect" {
				expect = &sc.Steps[i]
			}
		}
		if fault == nil || fault.Action != want[k][0] || expect == nil || expect.Within.String() != want[k][1] || sc.Steps[1].Duration != phase {
			t.Errorf("%s: steps %+v", k, sc.Steps)
		}
	}
	forced := cfg
	forced.Within = sec
	sc, err := scenarios.Parse("bench", bench.ScenarioYAML(bench.Failover, forced, 0))
	if err != nil || sc.Steps[2].Within.Max != sec {
		t.Errorf("forced: %v %+v", err, sc)
	}
	seen := map[time.Duration]bool{}
	for seed := range uint64(50) {
		p := bench.Phase(seed, sec)
		if p < 0 || p >= sec || p%ms != 0 || p != bench.Phase(seed, sec) {
			t.Fatalf("seed %d: phase %v", seed, p)
		}
		seen[p] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 seeds drew only %d phases", len(seen))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		hb, ui time.Duration
		want   string
	}{
		{sec, 3 * sec, ""},
		{1500 * ms, 3 * sec, "--heartbeat-interval: must be whole seconds"},
		{sec, 0, "--unhealthy-interval: must be whole seconds"},
	} {
		err := bench.Config{Heartbeat: c.hb, Unhealthy: c.ui}.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v/%v: %v, want %q", c.hb, c.ui, err, c.want)
		}
	}
}
