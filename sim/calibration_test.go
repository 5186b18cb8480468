package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/mcsim/mcsim/scenarios"
)

// phased is one run of a timed library scenario: what it measured and
// where in its cycle (heartbeat or lease renewal) the fault struck.
type phased struct {
	measured time.Duration
	phase    time.Duration // from the last heartbeat or renewal before the fault
}

// runPhased runs a library scenario for seeds 1..n and reads, for each,
// the expectation of steps[expect] and the phase of the fault of
// steps[fault], by phaseOf.
func runPhased(t *testing.T, name string, n uint64, fault, expect int, phaseOf func(w *World, node string, at time.Time) time.Duration) []phased {
	t.Helper()
	sc, err := scenarios.LoadLibrary(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []phased
	for seed := uint64(1); seed <= n; seed++ {
		var buf bytes.Buffer
		tg := New(Config{Seed: seed})
		o, err := scenarios.Run(context.Background(), tg, sc, scenarios.Options{Seed: seed, Epsilon: DefaultEpsilon, Events: &buf})
		if err != nil || !o.OK {
			t.Fatalf("%s seed %d: %v %+v", name, seed, err, o)
		}
		var at time.Time
		var node string
		for _, line := range bytes.Split(buf.Bytes(), []byte("\n")) {
			var ev struct {
				Event, Phase, Node string
				Index              *int
				T                  float64
			}
			if json.Unmarshal(line, &ev) == nil && ev.Event == "step" && ev.Phase == "begin" && ev.Index != nil && *ev.Index == fault {
				at, node = tg.started.Add(time.Duration(ev.T*1e9)), ev.Node
			}
		}
		for _, e := range o.Expectations {
			if e.Index == expect && e.Measured != nil {
				out = append(out, phased{measured: *e.Measured, phase: phaseOf(tg.w, node, at)})
			}
		}
	}
	return out
}

// lastHeartbeat is the phase of a crash of coreapp node at: how long
// after the primary last sent it a heartbeat.
func lastHeartbeat(w *World, node string, at time.Time) time.Duration {
	last, atNs := int64(math.MinInt64), w.sinceZero(at)
	for k, rs := range w.truth.heartbeats {
		if k.coreapp != node {
			continue
		}
		for _, r := range rs.recent() {
			if r.sentAt > last && r.sentAt <= atNs {
				last = r.sentAt
			}
		}
	}
	if last == math.MinInt64 {
		return at.Sub(time.Time{}) // none: as far back as a zero time
	}
	return time.Duration(atNs - last)
}

// lastRenewal is the phase of a crash of master node at: how long after
// the store last renewed its lease.
func lastRenewal(w *World, node string, at time.Time) time.Duration {
	var last time.Time
	for _, g := range w.grants {
		if g.Master == node && !g.At.After(at) {
			last = g.At
		}
	}
	return at.Sub(last)
}

// TestCalibration checks the simulator against the rules' arithmetic at
// every phase, and logs the figures at the phase real processes run at.
//
// On real processes `wait: stable` ends a whole number of heartbeat
// intervals after the first assignment, which follows a heartbeat round,
// so every kill lands a few tens of milliseconds after a heartbeat (and a
// lease renewal): their distributions are one phase's. The simulator
// draws the phase from the seed. Where both sample the same phase they
// must agree; the README's calibration table shows both.
func TestCalibration(t *testing.T) {
	const hb, ui = time.Second, 3 * time.Second
	crash := runPhased(t, "coreapp-crash", 200, 1, 2, lastHeartbeat)
	if len(crash) != 200 {
		t.Fatalf("coreapp-crash: %d measured failovers of 200 runs (did the library's steps move?)", len(crash))
	}
	for _, p := range crash {
		// Rule 1: unhealthy at the next heartbeat's send + ui; the
		// failover adds only the assign and the session (ε).
		earliest := hb - p.phase + ui
		if p.measured < earliest-time.Millisecond || p.measured > earliest+DefaultEpsilon {
			t.Errorf("coreapp-crash at phase %v: failover %v, want in [%v, %v + ε]", p.phase, p.measured, earliest, earliest)
		}
	}
	logPhased(t, "coreapp-crash failover", crash, 50*time.Millisecond)
	kill := runPhased(t, "primary-killed", 200, 1, 2, lastRenewal)
	if len(kill) != 200 {
		t.Fatalf("primary-killed: %d measured takeovers of 200 runs (did the library's steps move?)", len(kill))
	}
	for _, p := range kill {
		// The store grants the lease again TTL (= ui) after the last
		// renewal it granted; the secondary asks as it lapses.
		earliest := ui - p.phase
		if p.measured < earliest-time.Millisecond || p.measured > earliest+DefaultEpsilon {
			t.Errorf("primary-killed at phase %v: takeover %v, want in [%v, %v + ε]", p.phase, p.measured, earliest, earliest)
		}
	}
	logPhased(t, "primary-killed takeover", kill, 50*time.Millisecond)
}

func logPhased(t *testing.T, what string, ps []phased, near time.Duration) {
	var all, early []float64
	for _, p := range ps {
		ms := float64(p.measured) / float64(time.Millisecond)
		all = append(all, ms)
		if p.phase <= near {
			early = append(early, ms)
		}
	}
	q := func(xs []float64) string {
		if len(xs) == 0 {
			return "n=0"
		}
		slices.Sort(xs)
		return fmtQ(len(xs), xs[len(xs)/2], xs[0], xs[len(xs)-1])
	}
	t.Logf("%s: every phase %s; fault within %v of the cycle's start (as on real processes) %s", what, q(all), near, q(early))
}

func fmtQ(n int, p50, lo, hi float64) string {
	b, _ := json.Marshal(map[string]any{"n": n, "p50_ms": int(p50 + 0.5), "min_ms": int(lo + 0.5), "max_ms": int(hi + 0.5)})
	return string(b)
}
