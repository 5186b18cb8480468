package sim

import (
	"cmp"
	"context"
	"io"
	"slices"
	"sync"

	"github.com/mcsim/mcsim/scenarios"
)

// SeedRun is one explored seed and what its run found.
type SeedRun struct {
	Seed    uint64
	Outcome scenarios.Outcome
	Err     error
}

// Failed says whether the run broke an expectation or an invariant.
func (s SeedRun) Failed() bool { return s.Err != nil || !s.Outcome.OK }

// ExploreConfig configures Explore.
type ExploreConfig struct {
	// From, To are the seeds, both included.
	From, To uint64
	// Workers run seeds in parallel (≤ 0: 1). Each has its own world:
	// nothing is shared but the scenario, which runs never change.
	Workers int
	// All runs every seed; otherwise Explore stops after the first
	// failing seed (the lowest, whatever the workers' order).
	All      bool
	Sabotage Sabotage
	// Progress is called after each seed with the seeds done and the
	// failing ones so far, from one goroutine at a time.
	Progress func(done, failed int)
}

// Explore runs sc once per seed in [From, To] and returns the failing
// runs in seed order. Without All it returns only the lowest failing seed:
// seeds are handed out in order, and once one fails no higher seed is
// started, while lower ones still running are waited for, so the answer
// does not depend on the workers' timing.
func Explore(ctx context.Context, sc *scenarios.Scenario, cfg ExploreConfig) []SeedRun {
	workers := max(cfg.Workers, 1)
	var (
		mu      sync.Mutex
		next    = cfg.From
		stopAt  = cfg.To // no seed above it is started
		done    int
		failing []SeedRun
	)
	take := func() (uint64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next > stopAt || next < cfg.From || ctx.Err() != nil {
			return 0, false
		}
		s := next
		next++
		return s, true
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				seed, ok := take()
				if !ok {
					return
				}
				r := RunSeed(ctx, sc, seed, cfg.Sabotage, nil)
				mu.Lock()
				done++
				if r.Failed() && ctx.Err() == nil {
					failing = append(failing, r)
					if !cfg.All && seed < stopAt {
						stopAt = seed
					}
				}
				if cfg.Progress != nil {
					cfg.Progress(done, len(failing))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(failing, func(a, b SeedRun) int { return cmp.Compare(a.Seed, b.Seed) })
	if !cfg.All && len(failing) > 1 {
		failing = failing[:1]
	}
	return failing
}

// RunSeed runs sc once in the simulator with seed; events (may be nil)
// receives its --json lines.
func RunSeed(ctx context.Context, sc *scenarios.Scenario, seed uint64, sab Sabotage, events io.Writer) SeedRun {
	out, err := scenarios.Run(ctx, New(Config{Seed: seed, Sabotage: sab}), sc,
		scenarios.Options{Seed: seed, Epsilon: DefaultEpsilon, Events: events})
	return SeedRun{Seed: seed, Outcome: out, Err: err}
}
