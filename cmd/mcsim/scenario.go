package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcsim/mcsim/report"
	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/scenarios/procstarget"
	"github.com/mcsim/mcsim/sim"
)

func newScenarioCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "scenario",
		Short: "Chaos scenario scripts: run (real processes or the simulator), explore and selftest in the simulator, check, list, schema",
		Long: `A scenario is a chaos script and a timing test in one YAML file: a cluster
shape, the settings it starts with, steps (faults, changes, waits,
expectations) and the invariants judged over the whole run. The contract is
SCENARIOS.md; the README's "Writing a scenario" explains the format.

Exit codes: 0 every expectation and invariant held in every run; 1 at least
one failed (the output says which, in which run, with which seed); 2 the
file or the flags are invalid, nothing was run; 3 the cluster could not be
started.`,
		Example: `  mcsim scenario list
  mcsim scenario run coreapp-crash
  mcsim scenario run coreapp-crash --target sim --seed 7 --json
  mcsim scenario run crash-under-load callbacks-persisted callbacks-in-memory
  mcsim scenario run webhook-down --target sim --seed 1 --json | jq -c 'select(.event=="callbacks")'
  mcsim scenario explore nemesis-soak --target sim --seeds 1..1000
  mcsim scenario selftest
  mcsim scenario check my-scenario.yaml
  mcsim scenario schema > scenario.schema.json`,
	}
	c.AddCommand(newScenarioRunCommand(), newScenarioCheckCommand(), newScenarioListCommand(),
		newScenarioSchemaCommand(), newScenarioExploreCommand(), newScenarioSelftestCommand())
	return c
}

// loadScenarios parses every FILE|NAME; any problem is exit 2 with every
// problem of every file listed.
func loadScenarios(args []string) ([]*scenarios.Scenario, error) {
	var out []*scenarios.Scenario
	var msgs []string
	for _, a := range args {
		sc, err := scenarios.Load(a)
		if err != nil {
			msgs = append(msgs, err.Error())
			continue
		}
		out = append(out, sc)
	}
	if len(msgs) > 0 {
		return nil, &exitError{code: exitUsage, msg: strings.Join(msgs, "\n")}
	}
	return out, nil
}

func newScenarioCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE|NAME...",
		Short: "Parse and validate scenario files; run nothing",
		Long: `Parse and validate each scenario and print "FILE: ok (N steps)". Every
problem of every file is printed as FILE:LINE:COL: PATH: MESSAGE on stderr,
and the exit status is 2.`,
		Example: `  mcsim scenario check coreapp-crash
  mcsim scenario check ./my-scenario.yaml ./other.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scs, err := loadScenarios(args)
			if err != nil {
				return err
			}
			for i, sc := range scs {
				where := args[i]
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%s, %d steps, checks %s)\n", where, sc.Name, len(sc.Steps), strings.Join(sc.Checks, ","))
			}
			return nil
		},
	}
}

func newScenarioListCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "list",
		Short:   "List the built-in library: name and description",
		Example: "  mcsim scenario list\n  mcsim scenario list --json | jq -r '.[].name'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lib, err := scenarios.Library()
			if err != nil {
				return err
			}
			if asJSON {
				b, _ := json.MarshalIndent(lib, "", "  ")
				_, err := fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			for _, e := range lib {
				fmt.Fprintf(tw, "%s\t%s\n", e.Name, e.Description)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of {name, description}")
	return c
}

func newScenarioSchemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "schema",
		Short:   "Print the JSON Schema of the scenario format",
		Example: "  mcsim scenario schema > scenario.schema.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(scenarios.Schema())
			return err
		},
	}
}

type scenarioRunFlags struct {
	target  string
	seed    uint64
	runs    int
	asJSON  bool
	report  string
	keep    bool
	epsilon time.Duration
	data    string
}

func newScenarioRunCommand() *cobra.Command {
	var f scenarioRunFlags
	c := &cobra.Command{
		Use:   "run FILE|NAME...",
		Short: "Run scenarios against a real multi-process cluster or in the simulator, and judge them",
		Long: `Run each scenario: start its cluster (with --target procs, every node a
real process, as 'mcsim up' does; with --target sim, the deterministic
simulator in virtual time), apply the steps, measure every expectation
from what the gateway witnessed and the store granted, judge every
invariant over the whole run, and stop every process it started (also on
failure, Ctrl-C or a timeout). One line per step goes to stdout as it begins and ends (to stderr
with --json), then the verdicts; the seed is always printed.

--seed seeds every random choice (random(...) and standby selectors,
the nemesis, and on sim also latencies, loss and the heartbeat phase);
without it a random seed is drawn and printed. --runs N repeats each
scenario with seeds seed, seed+1, … and prints the distribution of every
timed expectation (n, min, p50, p90, p99, max, bound, outside). --json
prints the events of SCENARIOS.md, one JSON object per line. --report DIR
writes each run's events (DIR/<scenario>-run<N>.jsonl), the summary
(DIR/summary.json) and an HTML report, DIR/index.html with PNG plots
beside it (no network needed to view it): a table of every run's
verdict, seed and replay command; a timeline per run (one lane per node,
fault spans shaded, one bar per shard session coloured by its owner,
failovers, takeovers and unhealthy declarations marked, violations in
red; hover for exact milliseconds; failed runs first, at most 20); and a
histogram and CDF of every timed expectation and of the failovers'
downtime against the window. The path of index.html goes to stderr with
--json, to stdout otherwise; --json's lines are the same with or without
--report. --keep keeps each run's data dir and node logs and
prints where they are (procs only). --epsilon is the allowance ε on rule1
and lease bounds (default 250ms on procs, 50ms on sim).

Targets: procs (real processes; every step runs, network faults and clock
skew through the fault layer in every node) and sim (the same machines in
the deterministic simulator: one thread, virtual time, one seeded source;
the same file, seed and binary print the same --json bytes; a run of
minutes takes milliseconds; on sim the invariants are also judged by the
simulator's ground truth, see the README). 'mcsim scenario explore' and
'mcsim scenario selftest' run many seeds in the simulator.

Network faults are one-way and applied by the sender on every link
(gRPC, gossip, gateway sessions, settings), open connections included: a
cut holds a stream's bytes until the heal (as TCP would retransmit them)
and drops datagrams; delay adds latency ± jitter keeping streams in
order; loss drops datagrams and delays stream writes by a retransmission
timeout. heal ends network faults, not clock skew.`,
		Example: `  mcsim scenario run coreapp-crash
  mcsim scenario run coreapp-crash --runs 5 --seed 42
  mcsim scenario run primary-killed --json | jq -c 'select(.event=="expect")'
  mcsim scenario run partition-primary-owner slow-answers clock-skew-primary
  mcsim scenario run ./my-scenario.yaml --keep
  mcsim scenario run coreapp-crash --target sim --seed 7 --json
  mcsim scenario run nemesis-soak --target sim --runs 500 --seed 1
  mcsim scenario run coreapp-crash --target sim --runs 10 --seed 1 --report /tmp/crash-report   # then open /tmp/crash-report/index.html`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScenarios(cmd, args, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "procs", `where to run: "procs" (real processes) or "sim" (the deterministic simulator)`)
	fl.Uint64Var(&f.seed, "seed", 0, "seed of every random choice (default: drawn at random and printed)")
	fl.IntVar(&f.runs, "runs", 1, "runs per scenario (seeds seed, seed+1, …); prints distributions")
	fl.BoolVar(&f.asJSON, "json", false, "print the events as JSON lines (SCENARIOS.md)")
	fl.StringVar(&f.report, "report", "", "write each run's events, a summary.json and an HTML report (index.html, timelines, plots) into this directory")
	fl.BoolVar(&f.keep, "keep", false, "keep each run's data dir and node logs, and print where")
	durationFlag(fl, &f.epsilon, "epsilon", scenarios.DefaultEpsilon, "ε: the allowance on rule1 and lease bounds")
	fl.StringVar(&f.data, "data", "", "parent directory of the runs' data dirs (default: a temporary directory)")
	completeValues(c, "target", "procs", "sim")
	return c
}

func runScenarios(cmd *cobra.Command, args []string, f scenarioRunFlags) error {
	if f.target != "procs" && f.target != "sim" {
		return usageErr(`--target: must be "procs" or "sim", got %q`, f.target)
	}
	if f.target == "sim" && !cmd.Flags().Changed("epsilon") {
		f.epsilon = sim.DefaultEpsilon
	}
	if f.runs < 1 {
		return usageErr("--runs: must be ≥ 1, got %d", f.runs)
	}
	if f.data != "" {
		if fi, err := os.Stat(f.data); err != nil || !fi.IsDir() {
			return usageErr("--data %s: must be an existing directory", f.data)
		}
	}
	scs, err := loadScenarios(args)
	if err != nil {
		return err
	}
	seedGiven := cmd.Flags().Changed("seed")
	if !seedGiven {
		var b [8]byte
		_, _ = rand.Read(b[:])
		f.seed = binary.LittleEndian.Uint64(b[:]) % 1_000_000
	}
	out := cmd.OutOrStdout()
	progress := out
	var events io.Writer
	if f.asJSON {
		progress, events = cmd.ErrOrStderr(), out
	}
	if f.report != "" {
		if err := os.MkdirAll(f.report, 0o755); err != nil {
			return usageErr("--report %s: %v", f.report, err)
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "seed %d (replay: --seed %d)\n", f.seed, f.seed)
	failed := false
	var summary []map[string]any
	rep := report.Report{Title: "mcsim scenario run " + strings.Join(args, " "), Command: commandLine(), Timelines: maxTimelines}
	var reportText strings.Builder
	for scIndex, sc := range scs {
		var outs []scenarios.Outcome
		var downtimes []time.Duration
		for run := range f.runs {
			seed := f.seed + uint64(run)
			evw := events
			var file *os.File
			if f.report != "" {
				file, err = os.Create(filepath.Join(f.report, fmt.Sprintf("%s-run%d.jsonl", sc.Name, run)))
				if err != nil {
					return err
				}
				if evw == nil {
					evw = file
				} else {
					evw = io.MultiWriter(evw, file)
				}
			}
			t, err := newTarget(f.target, procstarget.Config{Binary: bin, Parent: f.data, Keep: f.keep, Seed: seed})
			if err != nil {
				return err
			}
			// The report's recorder only watches: the run and its events
			// are the same with and without it.
			var rec *recordedTarget
			if f.report != "" {
				rec = newRecordedTarget(t, true)
				t = rec.asTarget()
			}
			o, err := scenarios.Run(cmd.Context(), t, sc, scenarios.Options{Run: run, Seed: seed, Epsilon: f.epsilon, Events: evw, Progress: progress})
			if file != nil {
				file.Close()
			}
			if f.keep && t.Where() != "" {
				fmt.Fprintf(progress, "kept: %s (node logs in %s)\n", t.Where(), filepath.Join(t.Where(), "logs"))
			}
			switch {
			case errors.Is(err, scenarios.ErrStart):
				return &exitError{code: exitTransprt, msg: fmt.Sprintf("mcsim scenario run %s: %v", sc.Name, err)}
			case errors.Is(err, context.Canceled):
				return &exitError{code: exitFailure, msg: "mcsim scenario run: interrupted; every process was stopped"}
			case err != nil:
				return &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim scenario run %s: %v", sc.Name, err)}
			}
			outs = append(outs, o)
			printVerdict(progress, sc, run, o)
			if rec != nil {
				printVerdict(&reportText, sc, run, o)
				rep.Runs = append(rep.Runs, rec.reportRun(fmt.Sprintf("%s run %d", sc.Name, run), sc.Name, run, seed, o,
					scenarioReplay(cmd, args[scIndex], f.target, seed)))
				downtimes = append(downtimes, rec.downtimes()...)
			}
			if !o.OK {
				failed = true
			}
			summary = append(summary, map[string]any{"scenario": sc.Name, "run": run, "seed": seed, "ok": o.OK,
				"duration_s": o.Duration.Seconds(), "expectations": len(o.Expectations), "violations": len(o.Violations)})
		}
		if f.runs > 1 {
			ds := scenarios.Distributions(outs)
			printDistributions(out, events, sc, ds, outs[len(outs)-1], f.runs)
			if f.report != "" {
				printDistributions(&reportText, nil, sc, ds, outs[len(outs)-1], f.runs)
			}
		}
		if f.report != "" {
			rep.Measures = append(rep.Measures, timedMeasures(sc.Name, f.target, outs, downtimes)...)
		}
	}
	if f.report != "" {
		b, _ := json.MarshalIndent(summary, "", "  ")
		if err := os.WriteFile(filepath.Join(f.report, "summary.json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
		rep.Text = reportText.String()
		if err := writeReport(progress, f.report, rep); err != nil {
			return err
		}
	}
	if failed {
		return &exitError{code: exitFailure, msg: "mcsim scenario run: at least one expectation or invariant failed (see above)"}
	}
	return nil
}

func printVerdict(w io.Writer, sc *scenarios.Scenario, run int, o scenarios.Outcome) {
	verdict := "PASS"
	if !o.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s %s run %d seed %d: %d expectations, %d violations, %.1f s\n", verdict, sc.Name, run, o.Seed, len(o.Expectations), len(o.Violations), o.Duration.Seconds())
	for _, e := range o.Expectations {
		mark := "ok  "
		if !e.OK {
			mark = "FAIL"
		}
		measured := ""
		if e.Measured != nil && (e.OK || *e.Measured > 0) {
			measured = fmt.Sprintf(" %.1f ms", float64(*e.Measured)/float64(time.Millisecond))
		}
		fmt.Fprintf(w, "  %s steps[%d] expect %s:%s (%s) %s\n", mark, e.Index, e.What, measured, e.Bound, e.Detail)
	}
	for _, v := range o.Violations {
		fmt.Fprintf(w, "  FAIL invariant %s: %s\n", v.Invariant, v.Details)
	}
	if tr := o.Traffic; tr != nil {
		fmt.Fprintf(w, "  traffic: %d sent, %d answered 201, error answers %v, %d failed attempts seen by clients, worst second's p99 %.1f ms\n",
			tr.Sent, tr.OK, tr.Errors, tr.FailedAttempts, float64(tr.WorstP99)/float64(time.Millisecond))
		fmt.Fprintf(w, "  callbacks: %d delivered, %d retries, %d lost", tr.Delivered, tr.Retried, tr.Lost)
		if tr.Untaken > 0 {
			fmt.Fprintf(w, "; %d status updates no coreapp took by the end (the gateway still held them)", tr.Untaken)
		}
		fmt.Fprintln(w)
	}
}

func printDistributions(out, events io.Writer, sc *scenarios.Scenario, ds []scenarios.Distribution, last scenarios.Outcome, runs int) {
	for _, d := range ds {
		if events != nil {
			// Every --json line has run and t: a distribution line comes
			// after the last run, at its end.
			b, _ := json.Marshal(map[string]any{"run": runs - 1, "t": math.Round(last.Duration.Seconds()*1000) / 1000,
				"event": "distribution", "scenario": sc.Name, "expect": d.Expect, "what": d.What,
				"n": d.N, "min_ms": d.MinMS, "p50_ms": d.P50MS, "p90_ms": d.P90MS, "p99_ms": d.P99MS, "max_ms": d.MaxMS,
				"bound": d.Bound, "outside": d.Outside})
			fmt.Fprintln(events, string(b))
			continue
		}
		fmt.Fprintf(out, "%s steps[%d] %s over %d runs: min %.1f  p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms (%s; %d outside)\n",
			sc.Name, d.Expect, d.What, d.N, d.MinMS, d.P50MS, d.P90MS, d.P99MS, d.MaxMS, d.Bound, d.Outside)
	}
}

// scenarioReplay is the command that runs one run of a scenario again:
// its file or name, its target and seed, and the flags that change a
// run (--epsilon).
func scenarioReplay(cmd *cobra.Command, arg, target string, seed uint64) string {
	parts := []string{"mcsim scenario run", shellQuote(arg), "--target", target, "--seed", fmt.Sprint(seed)}
	if fl := cmd.Flags().Lookup("epsilon"); fl != nil && fl.Changed {
		parts = append(parts, "--epsilon", fl.Value.String())
	}
	return strings.Join(parts, " ")
}
