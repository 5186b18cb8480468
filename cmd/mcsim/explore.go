package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/sim"
)

// parseSeeds reads --seeds A..B (or one seed N).
func parseSeeds(s string) (from, to uint64, err error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		b = a
	}
	from, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
	to, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || from > to {
		return 0, 0, usageErr("--seeds %q: want A..B with A ≤ B (or one seed N), e.g. 1..1000", s)
	}
	return from, to, nil
}

// newBar is the progress bar of a long command, on stderr, counting n
// units (seeds, runs); endBar ends its line where it got to (an early
// stop shows how far it went).
func newBar(w io.Writer, n int64, what, units string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(units),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
	)
}

type exploreFlags struct {
	target  string
	seeds   string
	workers int
	all     bool
	out     string
	asJSON  bool
}

func newScenarioExploreCommand() *cobra.Command {
	var f exploreFlags
	c := &cobra.Command{
		Use:   "explore FILE|NAME --target sim --seeds A..B",
		Short: "Run a scenario in the simulator for every seed of a range; shrink the first failing run",
		Long: `Run the scenario once per seed in the deterministic simulator (each seed
is another run: another nemesis schedule, network and heartbeat phase), on
--workers cores, with a progress bar on stderr. Without --all it stops at
the first failing seed (the lowest one, whatever the workers' order);
with --all it runs every seed and lists each failing one.

The first failing run is then shrunk: its nemesis schedule is written out
as explicit steps, and faults are dropped, shortened and moved later while
a run with the same seed still breaks the same invariant (or expectation).
The minimal scenario is written to --out (default: the current directory)
as NAME-seedS-min.yaml, and the command to replay it is printed.

Exit codes: 0 no seed failed; 1 a seed failed (shrunk, replay printed); 2
bad flags or scenario; nothing was run. --target must be sim: only the
simulator can run thousands of seeds and replay one exactly.`,
		Example: `  mcsim scenario explore nemesis-soak --target sim --seeds 1..1000
  mcsim scenario explore nemesis-soak --target sim --seeds 1..200 --all --workers 2
  mcsim scenario explore ./my-scenario.yaml --target sim --seeds 1..500 --out /tmp`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runExplore(cmd, args[0], f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "sim", `where to run: only "sim"`)
	fl.StringVar(&f.seeds, "seeds", "1..100", "the seeds to run, A..B (both included)")
	fl.IntVar(&f.workers, "workers", runtime.NumCPU(), "seeds run in parallel (every core)")
	fl.BoolVar(&f.all, "all", false, "run every seed instead of stopping at the first failing one")
	fl.StringVar(&f.out, "out", ".", "directory for the minimal scenario file")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON line per failing seed and a summary line")
	completeValues(c, "target", "sim")
	return c
}

func runExplore(cmd *cobra.Command, arg string, f exploreFlags) error {
	if f.target != "sim" {
		return usageErr(`--target: explore runs in the simulator only ("sim"), got %q`, f.target)
	}
	from, to, err := parseSeeds(f.seeds)
	if err != nil {
		return err
	}
	if f.workers < 1 {
		return usageErr("--workers: must be ≥ 1, got %d", f.workers)
	}
	if fi, err := os.Stat(f.out); err != nil || !fi.IsDir() {
		return usageErr("--out %s: must be an existing directory", f.out)
	}
	scs, err := loadScenarios([]string{arg})
	if err != nil {
		return err
	}
	sc := scs[0]
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	n := int64(to - from + 1)
	bar := newBar(stderr, n, "explore "+sc.Name, "seeds")
	start := time.Now()
	done := 0
	failing := sim.Explore(cmd.Context(), sc, sim.ExploreConfig{From: from, To: to, Workers: f.workers, All: f.all,
		Progress: func(d, failed int) {
			_ = bar.Set(d)
			done = d
			if failed > 0 {
				bar.Describe(fmt.Sprintf("explore %s (%d failing)", sc.Name, failed))
			}
		}})
	endBar(bar, stderr)
	if err := cmd.Context().Err(); err != nil {
		return &exitError{code: exitFailure, msg: "mcsim scenario explore: interrupted"}
	}
	wall := time.Since(start)
	for _, r := range failing {
		if f.asJSON {
			b, _ := json.Marshal(map[string]any{"event": "failing_seed", "scenario": sc.Name, "seed": r.Seed, "violations": r.Outcome.Violations, "failed": failedExpectations(r.Outcome)})
			fmt.Fprintln(stdout, string(b))
			continue
		}
		fmt.Fprintf(stdout, "seed %d FAILED: %s\n", r.Seed, describeFailure(r))
	}
	summary := map[string]any{"event": "explore", "scenario": sc.Name, "seeds": done, "from": from, "to": to, "failing": len(failing),
		"wall_s": math.Round(wall.Seconds()*1000) / 1000, "seeds_per_s": math.Round(float64(done)/wall.Seconds()*10) / 10}
	if !f.asJSON {
		fmt.Fprintf(stdout, "explored %d seeds of %s (%d..%d) in %.1f s (%.0f seeds/s, %d workers): %d failing\n",
			done, sc.Name, from, to, wall.Seconds(), float64(done)/wall.Seconds(), f.workers, len(failing))
	}
	if len(failing) == 0 {
		if f.asJSON {
			b, _ := json.Marshal(summary)
			fmt.Fprintln(stdout, string(b))
		}
		return nil
	}
	first := failing[0]
	fmt.Fprintf(stderr, "shrinking seed %d (%d nemesis faults)…\n", first.Seed, len(first.Outcome.Schedule))
	s, err := sim.Shrink(cmd.Context(), sc, first, sim.Sabotage{}, "")
	if err != nil {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim scenario explore: shrinking seed %d: %v", first.Seed, err)}
	}
	path := filepath.Join(f.out, s.Scenario.Name+".yaml")
	replay := fmt.Sprintf("mcsim scenario run %s --target sim --seed %d", path, s.Seed)
	header := fmt.Sprintf("Shrunk by mcsim scenario explore from %s, seed %d: it broke %s.\nReplay: %s", sc.Name, s.Seed, s.Breach, replay)
	if err := os.WriteFile(path, scenarios.Render(s.Scenario, header), 0o644); err != nil {
		return err
	}
	summary["minimal"], summary["replay"], summary["breach"] = path, replay, s.Breach
	summary["faults"], summary["minimal_faults"], summary["shrink_runs"], summary["reproduced"] = len(s.Original), len(s.Minimal), s.Runs, s.Reproduced
	if f.asJSON {
		b, _ := json.Marshal(summary)
		fmt.Fprintln(stdout, string(b))
	} else {
		if !s.Reproduced {
			fmt.Fprintf(stdout, "seed %d: the schedule written out as explicit steps does not break %s again; kept whole (not shrunk), %d nemesis faults\n", s.Seed, s.Breach, len(s.Original))
		} else {
			fmt.Fprintf(stdout, "shrunk seed %d: %d nemesis faults → %d in %d runs, still breaking %s", s.Seed, len(s.Original), len(s.Minimal), s.Runs, s.Breach)
			if len(s.Minimal) > 0 {
				fmt.Fprint(stdout, ":")
			}
			fmt.Fprintln(stdout)
			for _, fl := range s.Minimal {
				fmt.Fprintf(stdout, "  %s\n", fl)
			}
		}
		fmt.Fprintf(stdout, "minimal scenario: %s\nreplay: %s\n", path, replay)
	}
	return &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim scenario explore: %d of %d seeds failed", len(failing), done)}
}

func failedExpectations(o scenarios.Outcome) []scenarios.ExpectResult {
	var out []scenarios.ExpectResult
	for _, e := range o.Expectations {
		if !e.OK {
			out = append(out, e)
		}
	}
	return out
}

func describeFailure(r sim.SeedRun) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	var parts []string
	for _, v := range r.Outcome.Violations {
		parts = append(parts, fmt.Sprintf("invariant %s: %s", v.Invariant, v.Details))
	}
	for _, e := range failedExpectations(r.Outcome) {
		parts = append(parts, fmt.Sprintf("steps[%d] %s: %s", e.Index, e.What, e.Detail))
	}
	if r.Outcome.Aborted != "" && len(parts) == 0 {
		parts = append(parts, r.Outcome.Aborted)
	}
	return strings.Join(parts, "; ")
}

func newScenarioSelftestCommand() *cobra.Command {
	var workers int
	var out string
	c := &cobra.Command{
		Use:   "selftest",
		Short: "Switch off each safety mechanism in the simulator in turn: every one must be caught and shrunk",
		Long: fmt.Sprintf(`Prove that the checks can fail. For each safety mechanism (the gateway's
epoch fencing, the coreapps' lease-epoch check, the store's map-write
fencing, the master's own-clock lease, the rule-4 stall guard, the rule-1
deadline) it runs a scenario built to need it:

  1. with every mechanism on, seeds 1..%[1]d must all pass (otherwise the
     scenario proves nothing);
  2. with that one mechanism off, explore must find a seed among 1..%[1]d
     that breaks the invariant the mechanism exists for;
  3. that run is shrunk (as explore does) to a schedule that still breaks it.

The switches exist in the simulator only; no node, flag or setting reaches
them. The scenarios are embedded (sim/selftest/*.yaml); --out writes each
minimal one there (it reproduces only with its mechanism off, so there is
no replay command for it).

Exit codes: 0 every mechanism was caught and shrunk; 1 one was not.`, sim.SelftestSeeds),
		Example: `  mcsim scenario selftest
  mcsim scenario selftest --workers 2 --out /tmp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workers < 1 {
				return usageErr("--workers: must be ≥ 1, got %d", workers)
			}
			if out != "" {
				if fi, err := os.Stat(out); err != nil || !fi.IsDir() {
					return usageErr("--out %s: must be an existing directory", out)
				}
			}
			cases, err := sim.SelftestCases()
			if err != nil {
				return err
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			failed := 0
			for _, tc := range cases {
				bar := newBar(stderr, sim.SelftestSeeds, tc.Mechanism.Name+" off", "seeds")
				r, err := sim.Selftest(cmd.Context(), tc, workers, func(d, _ int) { _ = bar.Set(d) })
				endBar(bar, stderr)
				if err != nil {
					return &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim scenario selftest: %s: %v", tc.Mechanism.Name, err)}
				}
				switch {
				case r.Dirty != 0:
					failed++
					fmt.Fprintf(stdout, "FAIL %s: its scenario fails at seed %d with every mechanism on: it proves nothing\n", tc.Mechanism.Name, r.Dirty)
				case r.Caught == nil:
					failed++
					fmt.Fprintf(stdout, "FAIL %s (%s): not caught: %s\n", tc.Mechanism.Name, tc.Mechanism.Description, r.Found)
				case !r.Shrunk.Reproduced:
					failed++
					fmt.Fprintf(stdout, "FAIL %s: caught at seed %d by %s, but not reproduced as explicit steps\n", tc.Mechanism.Name, r.Caught.Seed, tc.Want)
				default:
					fmt.Fprintf(stdout, "ok   %s (%s): caught at seed %d by %s; %d nemesis faults shrunk to %d in %d runs; seeds 1..%d clean with it on\n",
						tc.Mechanism.Name, tc.Mechanism.Description, r.Caught.Seed, tc.Want, len(r.Shrunk.Original), len(r.Shrunk.Minimal), r.Shrunk.Runs, sim.SelftestSeeds)
					for _, v := range r.Caught.Outcome.Violations {
						if v.Invariant == tc.Want {
							fmt.Fprintf(stdout, "       %s: %s\n", v.Invariant, v.Details)
							break
						}
					}
					for _, fl := range r.Shrunk.Minimal {
						fmt.Fprintf(stdout, "       minimal: %s\n", fl)
					}
					if out != "" {
						path := filepath.Join(out, "selftest-"+tc.Mechanism.Name+"-min.yaml")
						header := fmt.Sprintf("Shrunk by mcsim scenario selftest with %s switched off (seed %d broke %s).\nWith every mechanism on, as any real run has them, it passes.", tc.Mechanism.Name, r.Caught.Seed, tc.Want)
						if err := os.WriteFile(path, scenarios.Render(r.Shrunk.Scenario, header), 0o644); err != nil {
							return err
						}
						fmt.Fprintf(stdout, "       written: %s\n", path)
					}
				}
			}
			if failed > 0 {
				return &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim scenario selftest: %d of %d mechanisms not caught", failed, len(cases))}
			}
			fmt.Fprintf(stdout, "every one of the %d mechanisms was caught and shrunk\n", len(cases))
			return nil
		},
	}
	c.Flags().IntVar(&workers, "workers", runtime.NumCPU(), "seeds run in parallel (every core)")
	c.Flags().StringVar(&out, "out", "", "write each minimal scenario into this directory")
	return c
}

func endBar(bar *progressbar.ProgressBar, w io.Writer) {
	_ = bar.Exit()
	fmt.Fprintln(w)
}
