package sim

import (
	"context"
	"embed"
	"fmt"

	"github.com/mcsim/mcsim/scenarios"
)

// The selftest's scenarios, one per mechanism (selftest/NAME.yaml): each
// puts the cluster where that mechanism is what stands between it and a
// broken invariant, after a random nemesis of network noise (so every
// seed is another run, and the shrinker has faults to throw away).
//
//go:embed selftest/*.yaml
var selftestFiles embed.FS

// SelftestSeeds is how many seeds selftest explores per mechanism: each
// must be caught within them (the rarest, the stall guard, is caught in
// about one seed in eight).
const SelftestSeeds = 100

// SelftestCase is one mechanism and how it must be caught.
type SelftestCase struct {
	Mechanism Mechanism
	Scenario  *scenarios.Scenario
	// Want is the invariant that must break with the mechanism off.
	Want string
}

// SelftestCases are the mechanisms in selftest's order.
func SelftestCases() ([]SelftestCase, error) {
	want := map[string]string{
		"gateway-epoch-fencing": "epoch_monotonic",
		"coreapp-lease-fence":   "single_primary",
		"store-map-fencing":     "epoch_monotonic",
		"own-clock-lease":       "single_primary",
		"stall-guard":           "no_false_failover",
		"rule1-deadline":        "liveness",
	}
	var out []SelftestCase
	for _, m := range Mechanisms() {
		name := "selftest/" + m.Name + ".yaml"
		b, err := selftestFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		sc, err := scenarios.Parse(name, b)
		if err != nil {
			return nil, err
		}
		out = append(out, SelftestCase{Mechanism: m, Scenario: sc, Want: want[m.Name]})
	}
	return out, nil
}

// SelftestResult is one mechanism's verdict.
type SelftestResult struct {
	Case SelftestCase
	// Dirty is a seed that failed with every mechanism on (the scenario
	// then proves nothing): 0 if none did.
	Dirty uint64
	// Caught is the first seed that broke Want with the mechanism off;
	// Found is what it broke if not Want (or nothing within the seeds).
	Caught *SeedRun
	Found  string
	Shrunk Shrunk
}

// OK says whether the mechanism was caught, by the right invariant, and
// shrunk to a schedule that still shows it, while the same scenario with
// every mechanism on stays clean.
func (r SelftestResult) OK() bool {
	return r.Dirty == 0 && r.Caught != nil && r.Shrunk.Reproduced
}

// Selftest runs one case: the control (every mechanism on, every seed
// clean), then explore with the mechanism off until a seed breaks the
// invariant it exists for, then the shrink.
func Selftest(ctx context.Context, c SelftestCase, workers int, progress func(done, failed int)) (SelftestResult, error) {
	res := SelftestResult{Case: c}
	control := Explore(ctx, c.Scenario, ExploreConfig{From: 1, To: SelftestSeeds, Workers: workers})
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(control) > 0 {
		res.Dirty = control[0].Seed
		return res, nil
	}
	var sab Sabotage
	c.Mechanism.Set(&sab)
	found := Explore(ctx, c.Scenario, ExploreConfig{From: 1, To: SelftestSeeds, Workers: workers, Sabotage: sab, Progress: progress})
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(found) == 0 {
		res.Found = fmt.Sprintf("nothing in %d seeds", SelftestSeeds)
		return res, nil
	}
	r := found[0]
	if b, _ := breachOf(r.Outcome); !(breach{invariant: c.Want}).in(r.Outcome) {
		res.Found = fmt.Sprintf("seed %d broke %s, not %s", r.Seed, b, c.Want)
		return res, nil
	}
	res.Caught = &r
	// The shrink holds the run to the invariant it was caught by.
	s, err := Shrink(ctx, c.Scenario, r, sab, c.Want)
	res.Shrunk = s
	return res, err
}
