package sim

import (
	"context"
	"fmt"
	"strings"

	"github.com/mcsim/mcsim/scenarios"
)

// What a failing run broke, so that a shrunk run can be held to breaking
// the same thing: the first violated invariant, or else the first failed
// expectation (by step index).
type breach struct {
	invariant string
	expect    int
}

func (b breach) String() string {
	if b.invariant != "" {
		return b.invariant
	}
	return fmt.Sprintf("the expectation of steps[%d]", b.expect)
}

func breachOf(o scenarios.Outcome) (breach, bool) {
	if len(o.Violations) > 0 {
		return breach{invariant: o.Violations[0].Invariant}, true
	}
	for _, e := range o.Expectations {
		if !e.OK {
			return breach{expect: e.Index}, true
		}
	}
	return breach{}, false
}

func (b breach) in(o scenarios.Outcome) bool {
	if b.invariant != "" {
		for _, v := range o.Violations {
			if v.Invariant == b.invariant {
				return true
			}
		}
		return false
	}
	for _, e := range o.Expectations {
		if !e.OK && e.Index == b.expect {
			return true
		}
	}
	return false
}

// Shrunk is a failing run made as small as it would go.
type Shrunk struct {
	Seed uint64
	// Breach names what the run broke and the minimal one still breaks.
	Breach string
	// Original and Minimal are the nemesis schedules before and after.
	Original, Minimal []scenarios.ScheduledFault
	// Scenario is the minimal run as a file with no nemesis: explicit
	// steps that replay it with the same seed.
	Scenario *scenarios.Scenario
	// Runs is how many runs the shrinking took.
	Runs int
	// Reproduced is false when even the whole schedule, written out as
	// explicit steps, did not break the same thing again (then Minimal is
	// the original and Scenario still the best replay there is).
	Reproduced bool
}

// ShrinkBudget bounds the runs a shrink may make.
const ShrinkBudget = 400

// Shrink makes a failing run small: its nemesis schedule written out as
// explicit steps, then faults dropped, shortened and moved later
// (scenarios.Shrink) while a run with the same seed still breaks the same
// invariant (or expectation): invariant, or if "" the first one the run
// broke.
func Shrink(ctx context.Context, sc *scenarios.Scenario, failed SeedRun, sab Sabotage, invariant string) (Shrunk, error) {
	b, ok := breachOf(failed.Outcome)
	if invariant != "" {
		b, ok = breach{invariant: invariant}, true
	}
	if !ok || !b.in(failed.Outcome) {
		return Shrunk{}, fmt.Errorf("seed %d: the run broke nothing to shrink", failed.Seed)
	}
	out := Shrunk{Seed: failed.Seed, Breach: b.String(), Original: failed.Outcome.Schedule, Minimal: failed.Outcome.Schedule}
	fails := func(sched []scenarios.ScheduledFault) bool {
		if ctx.Err() != nil {
			return false
		}
		ex, err := scenarios.ExplicitScenario(sc, sched)
		if err != nil {
			return false
		}
		out.Runs++
		r := RunSeed(ctx, ex, failed.Seed, sab, nil)
		return r.Err == nil && b.in(r.Outcome)
	}
	out.Reproduced = fails(out.Original)
	if out.Reproduced {
		out.Minimal = scenarios.Shrink(out.Original, fails, ShrinkBudget)
	}
	ex, err := scenarios.ExplicitScenario(sc, out.Minimal)
	if err != nil {
		return out, err
	}
	ex.Name = fmt.Sprintf("%s-seed%d-min", sc.Name, failed.Seed)
	ex.Description = strings.TrimSpace(fmt.Sprintf("%s (shrunk by mcsim scenario explore: seed %d broke %s with %d nemesis faults; these %d still do)",
		sc.Description, failed.Seed, out.Breach, len(out.Original), len(out.Minimal)))
	out.Scenario = ex
	return out, ctx.Err()
}
