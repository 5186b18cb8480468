// Package bench is the arithmetic of `mcsim bench`: which window each
// measure of a failover timing test is judged against, what ε a run
// shows, and how the runs of one bench fold into distributions with a
// count of the runs that fell outside. It runs nothing and reads no
// clock: the command runs generated scenarios (package scenarios) and
// hands each run's witnessed moments (Run) to a Bench.
//
// The windows are the rules of DESIGN.md, with the intervals in force
// around the fault (rule 6: a change applies live, so a change while the
// fault is being handled widens the window to cover both settings):
//   - rule 1 (failover, pause): detection and recovery in
//     [unhealthy, unhealthy + heartbeat] + ε;
//   - rule 3 (takeover): the lease lapses ≤ TTL after the fault and
//     another master holds it ≤ TTL + heartbeat + ε after it, with
//     TTL = unhealthy_interval as the runner's lease bound has it;
//   - rule 5 (handover): the new owner serves ≤ heartbeat after the stop.
package bench

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mcsim/mcsim/gateway"
)

// Kind is what a bench does to the cluster.
type Kind string

// The bench kinds.
const (
	// Failover kills the owner of shard 0 (rule 1).
	Failover Kind = "failover"
	// Takeover kills the primary master (rule 3, the lease).
	Takeover Kind = "takeover"
	// Handover stops the owner of shard 0 gracefully (rule 5).
	Handover Kind = "handover"
	// Pause freezes the owner of shard 0 past unhealthy_interval (rule 1).
	Pause Kind = "pause"
)

// Kinds are every kind, in the order the help lists them.
func Kinds() []Kind { return []Kind{Failover, Takeover, Handover, Pause} }

// ParseKind reads a kind's name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("unknown bench %q (want one of: %s)", s, strings.Join(names, ", "))
}

// Rule is the named bound of SCENARIOS.md the kind's recovery is judged
// by: rule1, lease or rule5.
func (k Kind) Rule() string {
	switch k {
	case Takeover:
		return "lease"
	case Handover:
		return "rule5"
	}
	return "rule1"
}

// Measure is one timed quantity of a run.
type Measure string

// The measures.
const (
	// Detection: fault → the coreapp declared unhealthy (rule 1), or the
	// old primary's lease lapsed by the store's record (takeover).
	Detection Measure = "detection"
	// Recovery: fault → the new owner serving (by the gateway), or
	// another master granted the lease (by the store).
	Recovery Measure = "recovery"
	// Downtime: per shard that moved, the last moment the gateway heard
	// the old owner → the first it heard the new one.
	Downtime Measure = "downtime"
	// Epsilon: recovery minus the earliest moment the rule allowed it in
	// this run (see Run.Epsilon).
	Epsilon Measure = "epsilon"
)

// Measures are the measures a kind reports, in output order. A graceful
// stop is announced, not detected, and a takeover moves no shard, so
// those kinds have no detection and no downtime respectively.
func (k Kind) Measures() []Measure {
	switch k {
	case Takeover:
		return []Measure{Detection, Recovery, Epsilon}
	case Handover:
		return []Measure{Recovery, Downtime, Epsilon}
	}
	return []Measure{Detection, Recovery, Downtime, Epsilon}
}

// Intervals are heartbeat_interval and unhealthy_interval from a moment
// on.
type Intervals struct {
	From                 time.Time
	Heartbeat, Unhealthy time.Duration
}

// Schedule is every setting of the intervals during a run, in time
// order; the first is in force from the start.
type Schedule []Intervals

// span is the intervals that matter to a fault at `at`: the smallest
// unhealthy and the largest unhealthy and heartbeat among the settings in
// force at any moment from `at` until the latest deadline they allow. A
// change after that cannot move the deadline; one before it may (rule 6),
// either way.
func (s Schedule) span(at time.Time) (minUI, maxUI, maxHB time.Duration) {
	i := 0
	for i+1 < len(s) && !s[i+1].From.After(at) {
		i++
	}
	minUI, maxUI, maxHB = s[i].Unhealthy, s[i].Unhealthy, s[i].Heartbeat
	for j := i + 1; j < len(s) && !s[j].From.After(at.Add(maxUI+maxHB)); j++ {
		minUI = min(minUI, s[j].Unhealthy)
		maxUI, maxHB = max(maxUI, s[j].Unhealthy), max(maxHB, s[j].Heartbeat)
	}
	return minUI, maxUI, maxHB
}

// Window is the range a measure must fall in, counted from the fault.
type Window struct {
	Lo, Hi time.Duration
	// Text is the bound as printed next to the distribution.
	Text string
}

// Contains says whether d is inside the window, ends included.
func (w Window) Contains(d time.Duration) bool { return d >= w.Lo && d <= w.Hi }

// Windows are the windows of each of the kind's measures for a fault at
// `at`, with ε the allowance (SCENARIOS.md: 250ms on procs, 50ms on sim)
// and forced, when not zero, the bound recovery is judged by instead of
// the rule (≤ forced).
func Windows(k Kind, s Schedule, at time.Time, eps, forced time.Duration) map[Measure]Window {
	minUI, maxUI, maxHB := s.span(at)
	w := map[Measure]Window{}
	switch k.Rule() {
	case "rule1":
		lo, hi := minUI, maxUI+maxHB
		// The deadline runs from the first heartbeat that got no answer;
		// one sent a round trip before the fault makes detection a round
		// trip early, which ε covers.
		w[Detection] = Window{Lo: lo - eps, Hi: hi + eps, Text: fmt.Sprintf("rule1: [%v, %v] ± ε %v", lo, hi, eps)}
		w[Recovery] = Window{Lo: lo, Hi: hi + eps, Text: fmt.Sprintf("rule1: [%v, %v] + ε %v", lo, hi, eps)}
		w[Downtime] = Window{Lo: 0, Hi: hi + eps, Text: fmt.Sprintf("≤ %v + ε %v", hi, eps)}
		if k == Pause {
			// A frozen session is not cut: the gateway stops counting it
			// from its last pong, up to a ping before the pause (rule 7).
			w[Downtime] = Window{Lo: 0, Hi: hi + eps + gateway.PingInterval,
				Text: fmt.Sprintf("≤ %v + ε %v + the gateway's ping %v", hi, eps, gateway.PingInterval)}
		}
		w[Epsilon] = Window{Lo: 0, Hi: eps, Text: fmt.Sprintf("≤ ε %v", eps)}
	case "lease":
		// The last renewal before the fault ran TTL; one in flight at
		// the fault is granted up to a round trip after it.
		w[Detection] = Window{Lo: max(0, minUI-maxHB-eps), Hi: maxUI + eps, Text: fmt.Sprintf("lease: [TTL − heartbeat, TTL] ± ε = [%v, %v] ± %v", max(0, minUI-maxHB), maxUI, eps)}
		w[Recovery] = Window{Lo: 0, Hi: maxUI + maxHB + eps, Text: fmt.Sprintf("lease: ≤ TTL %v + heartbeat %v + ε %v", maxUI, maxHB, eps)}
		w[Epsilon] = Window{Lo: 0, Hi: eps, Text: fmt.Sprintf("≤ ε %v", eps)}
	case "rule5":
		hi := maxHB
		w[Recovery] = Window{Lo: 0, Hi: hi, Text: fmt.Sprintf("rule5: ≤ %v", hi)}
		w[Downtime] = Window{Lo: 0, Hi: hi, Text: fmt.Sprintf("≤ %v", hi)}
		// The earliest a handover may complete is the stop itself, so its
		// ε is its recovery, held to the rule's own bound.
		w[Epsilon] = Window{Lo: 0, Hi: hi, Text: fmt.Sprintf("rule5: ≤ %v", hi)}
	}
	if forced > 0 {
		w[Recovery] = Window{Lo: 0, Hi: forced, Text: fmt.Sprintf("forced: ≤ %v", forced)}
	}
	return w
}

// Run is what one run's witnesses showed, as moments on the target's
// clock; a zero moment was not seen.
type Run struct {
	// Fault is when the fault was applied.
	Fault time.Time
	// Detected is when the coreapp was declared unhealthy, or when the
	// old primary's lease lapsed.
	Detected time.Time
	// Recovered is when the new owner first served, or when another
	// master was granted the lease.
	Recovered time.Time
	// Downtimes are, per shard that moved after the fault, the time
	// without service the gateway saw.
	Downtimes []time.Duration
}

// Epsilon is recovery minus the earliest moment the rule allowed it in
// this run: under rule 1 the declaration (the rule's deadline for the
// heartbeat phase the fault fell in), failing that the fault +
// unhealthy; under the lease its lapse; under rule 5 the stop itself.
// This is the overhead the rule's window adds ε for: assign, connect, or
// the secondary's next try for the lease.
func (r Run) Epsilon(k Kind, s Schedule) (time.Duration, bool) {
	if r.Recovered.IsZero() {
		return 0, false
	}
	earliest := r.Fault
	switch k.Rule() {
	case "rule1":
		earliest = r.Detected
		if earliest.IsZero() {
			minUI, _, _ := s.span(r.Fault)
			earliest = r.Fault.Add(minUI)
		}
	case "lease":
		if r.Detected.IsZero() {
			return 0, false
		}
		earliest = r.Detected
	}
	return r.Recovered.Sub(earliest), true
}

// Bench folds runs of one kind into distributions.
type Bench struct {
	kind        Kind
	eps, forced time.Duration
	values      map[Measure][]time.Duration
	outside     map[Measure]int
	bounds      map[Measure][]string
	runs        int
	runsOutside int
}

// New starts a bench; eps and forced are as for Windows.
func New(k Kind, eps, forced time.Duration) *Bench {
	return &Bench{kind: k, eps: eps, forced: forced, values: map[Measure][]time.Duration{},
		outside: map[Measure]int{}, bounds: map[Measure][]string{}}
}

// Add judges one run: every measure the kind reports is counted outside
// when it falls out of its window or was not seen at all. It returns
// what fell outside, one phrase per measure ("recovery 4412.0 ms outside
// rule1: …", "detection not seen"), empty when the run was inside.
func (b *Bench) Add(r Run, s Schedule) []string {
	b.runs++
	w := Windows(b.kind, s, r.Fault, b.eps, b.forced)
	var why []string
	note := func(m Measure, d time.Duration, seen bool) {
		if !slices.Contains(b.bounds[m], w[m].Text) {
			b.bounds[m] = append(b.bounds[m], w[m].Text)
		}
		if seen {
			b.values[m] = append(b.values[m], d)
		}
		switch {
		case !seen:
			b.outside[m]++
			why = append(why, fmt.Sprintf("%s not seen", m))
		case !w[m].Contains(d):
			b.outside[m]++
			why = append(why, fmt.Sprintf("%s %.1f ms outside %s", m, ms(d), w[m].Text))
		}
	}
	for _, m := range b.kind.Measures() {
		switch m {
		case Detection:
			note(m, r.Detected.Sub(r.Fault), !r.Detected.IsZero())
		case Recovery:
			note(m, r.Recovered.Sub(r.Fault), !r.Recovered.IsZero())
		case Downtime:
			if len(r.Downtimes) == 0 {
				note(m, 0, false)
			}
			for _, d := range r.Downtimes {
				note(m, d, true)
			}
		case Epsilon:
			d, seen := r.Epsilon(b.kind, s)
			note(m, d, seen)
		}
	}
	if len(why) > 0 {
		b.runsOutside++
	}
	return why
}

// Values are the measure's values so far, in the order the runs added
// them (for plots).
func (b *Bench) Values(m Measure) []time.Duration { return slices.Clone(b.values[m]) }

// RunsOutside is how many runs had at least one measure outside its
// window (or not seen).
func (b *Bench) RunsOutside() int { return b.runsOutside }

// Distribution is one measure over the runs, in the shape of SCENARIOS.md's
// distribution event.
type Distribution struct {
	Measure                           Measure
	N                                 int
	MinMS, P50MS, P90MS, P99MS, MaxMS float64
	Bound                             string
	// Outside counts the values out of the window and the runs in which
	// the measure was not seen.
	Outside int
}

// Distributions are the kind's measures in output order.
func (b *Bench) Distributions() []Distribution {
	out := make([]Distribution, 0, len(b.kind.Measures()))
	for _, m := range b.kind.Measures() {
		v := slices.Clone(b.values[m])
		slices.SortFunc(v, cmp.Compare)
		d := Distribution{Measure: m, N: len(v), Bound: strings.Join(b.bounds[m], " | "), Outside: b.outside[m]}
		if d.N > 0 {
			d.MinMS, d.MaxMS = ms(v[0]), ms(v[len(v)-1])
			d.P50MS, d.P90MS, d.P99MS = ms(percentile(v, 0.50)), ms(percentile(v, 0.90)), ms(percentile(v, 0.99))
		}
		out = append(out, d)
	}
	return out
}

// percentile of sorted values, nearest rank as scenarios.Distributions
// has it: always a measured value.
func percentile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// ms is d in milliseconds to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
