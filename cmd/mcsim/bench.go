package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcsim/mcsim/bench"
	"github.com/mcsim/mcsim/report"
	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/scenarios/procstarget"
	"github.com/mcsim/mcsim/sim"
)

type benchFlags struct {
	target  string
	seed    uint64
	runs    int
	asJSON  bool
	compare bool
	report  string
	epsilon time.Duration
	cfg     bench.Config
}

func newBenchCommand() *cobra.Command {
	var f benchFlags
	kinds := make([]string, 0, len(bench.Kinds()))
	for _, k := range bench.Kinds() {
		kinds = append(kinds, string(k))
	}
	c := &cobra.Command{
		Use:   "bench failover|takeover|handover|pause",
		Short: "Failover timing tests: the distribution of detection, recovery, downtime and ε against the rule's window",
		Long: `Time one kind of failover over many runs and judge every run against the
rule's window. Each run is a generated scenario ('mcsim scenario run' does
the running and the measuring): the cluster of --masters, --coreapps and
--shards with the two intervals set, a wait until it is stable, a seeded
wait of a fraction of heartbeat_interval (so the fault falls at a random
phase of the heartbeat cycle), then the fault:

  failover  kill the owner of shard 0 (SIGKILL)          rule 1
  takeover  kill the primary master                      rule 3 (the lease)
  handover  stop the owner of shard 0 (SIGTERM)          rule 5
  pause     pause the owner of shard 0 past unhealthy    rule 1

Measured from the gateway's witness and the store's lease grants, counted
from the fault:

  detection  the coreapp declared unhealthy (failover, pause), or the old
             primary's lease lapsed by the store's record (takeover)
  recovery   the new owner of shard 0 first heard by the gateway, or
             another master granted the lease (takeover)
  downtime   per shard that moved: last heard from the old owner → first
             heard from the new one (not for takeover: no shard moves)
  epsilon    recovery minus the earliest moment the rule allowed it in
             that run: the declaration (rule 1), the lease's lapse
             (takeover), the stop itself (rule 5)

The windows (ε: --epsilon, default 250ms on procs, 50ms on sim; TTL is
unhealthy_interval, as the lease has it):

  rule 1     detection [unhealthy, unhealthy + heartbeat] ± ε,
             recovery [unhealthy, unhealthy + heartbeat] + ε,
             downtime ≤ unhealthy + heartbeat + ε (pause: + the
             gateway's ping, 250ms: a frozen session counts as served
             until its last pong), epsilon ≤ ε
  takeover   detection [TTL − heartbeat, TTL] ± ε,
             recovery ≤ TTL + heartbeat + ε, epsilon ≤ ε
  rule 5     recovery, downtime and epsilon ≤ heartbeat

--within D judges recovery against ≤ D instead of the rule (a CI gate
tighter than the rule, or a check that the gate can fail).

Prints, per measure, n, min, p50, p90, p99 and max in milliseconds, how
many runs fell outside the window (a measure not seen at all counts as
outside), and the window. --json prints one line per measure instead, in
the shape of SCENARIOS.md's distribution event (n, min_ms, p50_ms, p90_ms,
p99_ms, max_ms, bound, outside) plus bench, target, runs and seed.
--compare runs the same seeds on procs and then on sim and prints both.
--report DIR writes an HTML report, DIR/index.html with PNG plots beside
it (no network needed to view it): the table above, every run's verdict,
seed and replay command, a timeline per run (failed runs first, at most
20) and a histogram and CDF of each measure with the window shaded; with
--compare both targets are on each plot. Its path goes to stderr.
Results go to stdout; the progress bar, the seed and every run that fell
outside (with the command to replay it) go to stderr.

Run i uses seed --seed + i on every target. A procs run takes 10-15 s
(starting the cluster, waiting until it is stable, the failover); a sim
run takes milliseconds of wall time.

Exit codes: 0 every run inside every window; 1 at least one run fell
outside a window, failed its expectation or broke an invariant; 2 bad
flags; 3 the cluster could not be started.`,
		Example: `  mcsim bench failover --runs 20
  mcsim bench takeover --runs 10 --seed 1
  mcsim bench failover --target sim --runs 200 --seed 1
  mcsim bench pause --target sim --runs 50 --heartbeat-interval 2s --unhealthy-interval 10s
  mcsim bench handover --target sim --runs 100 --coreapps 5 --shards 4 --json
  mcsim bench failover --compare --runs 5 --seed 1
  mcsim bench failover --runs 20 --report /tmp/r                     # then open /tmp/r/index.html
  mcsim bench failover --target sim --runs 20 --within 1s   # an impossible bound: exit 1`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: kinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "procs", `where to run: "procs" (real processes) or "sim" (the deterministic simulator)`)
	fl.Uint64Var(&f.seed, "seed", 0, "seed of run 0 (run i: seed + i); default: drawn at random and printed")
	fl.IntVar(&f.runs, "runs", 10, "runs per target")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON line per measure (SCENARIOS.md's distribution shape, plus outside)")
	fl.BoolVar(&f.compare, "compare", false, "run the same seeds on procs and on sim and print both side by side")
	fl.StringVar(&f.report, "report", "", "write an HTML report (index.html, timelines, histograms and CDFs) into this directory")
	durationFlag(fl, &f.epsilon, "epsilon", 0, "ε, the allowance on the rule 1 and lease windows (default 250ms on procs, 50ms on sim)")
	durationFlag(fl, &f.cfg.Within, "within", 0, "judge recovery against ≤ this instead of the rule's window (0: the rule)")
	def := scenarios.DefaultCluster()
	fl.IntVar(&f.cfg.Masters, "masters", def.Masters, "number of masters (≥ 1; takeover needs 2)")
	fl.IntVar(&f.cfg.Coreapps, "coreapps", def.Coreapps, "number of coreapps (> --shards: a standby must take the shard)")
	fl.IntVar(&f.cfg.Shards, "shards", def.Shards, "number of shards: 1, 2, 4, 8, 16 or 32")
	durationFlag(fl, &f.cfg.Heartbeat, "heartbeat-interval", time.Second, "heartbeat_interval (whole seconds)")
	durationFlag(fl, &f.cfg.Unhealthy, "unhealthy-interval", 3*time.Second, "unhealthy_interval (whole seconds)")
	completeValues(c, "target", "procs", "sim")
	return c
}

// benchResult is one target's bench.
type benchResult struct {
	target string
	eps    time.Duration
	b      *bench.Bench
	failed int // runs that fell outside or failed their scenario
	runs   []report.Run
}

func runBench(cmd *cobra.Command, arg string, f benchFlags) error {
	kind, err := bench.ParseKind(arg)
	if err != nil {
		return usageErr("bench: %v", err)
	}
	if f.target != "procs" && f.target != "sim" {
		return usageErr(`--target: must be "procs" or "sim", got %q`, f.target)
	}
	if f.compare && cmd.Flags().Changed("target") {
		return usageErr("--compare runs on both targets, procs then sim: drop --target %s", f.target)
	}
	if f.runs < 1 {
		return usageErr("--runs: must be ≥ 1, got %d", f.runs)
	}
	if err := f.cfg.Validate(); err != nil {
		return usageErr("%v", err)
	}
	if kind == bench.Takeover && f.cfg.Masters < 2 {
		return usageErr("--masters: takeover needs a second master to take the lease, got %d", f.cfg.Masters)
	}
	if kind != bench.Takeover && f.cfg.Coreapps <= f.cfg.Shards {
		return usageErr("--coreapps: %s needs a standby to take shard 0: more coreapps than --shards (%d), got %d", kind, f.cfg.Shards, f.cfg.Coreapps)
	}
	// The generated file is checked once up front: a bad shape or setting
	// is exit 2 before anything starts.
	if _, err := scenarios.Parse("bench-"+string(kind), bench.ScenarioYAML(kind, f.cfg, 0)); err != nil {
		return usageErr("bench: %v", err)
	}
	if !cmd.Flags().Changed("seed") {
		var b [8]byte
		_, _ = rand.Read(b[:])
		f.seed = binary.LittleEndian.Uint64(b[:]) % 1_000_000
	}
	targets := []string{f.target}
	if f.compare {
		targets = []string{"procs", "sim"}
	}
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "seed %d (replay: --seed %d)\n", f.seed, f.seed)
	var results []benchResult
	for _, target := range targets {
		res, err := benchTarget(cmd, kind, target, f)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	if f.asJSON {
		printBenchJSON(cmd.OutOrStdout(), kind, f, results)
	} else {
		printBenchTable(cmd.OutOrStdout(), kind, f, results)
	}
	if f.report != "" {
		if err := writeReport(stderr, f.report, benchReport(kind, f, results)); err != nil {
			return err
		}
	}
	failed := 0
	for _, r := range results {
		failed += r.failed
	}
	if failed > 0 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim bench %s: %d run(s) fell outside a window or failed (see above)", kind, failed)}
	}
	return nil
}

// benchTarget runs the bench's runs on one target, with a progress bar.
func benchTarget(cmd *cobra.Command, kind bench.Kind, target string, f benchFlags) (benchResult, error) {
	stderr := cmd.ErrOrStderr()
	eps := f.epsilon
	if !cmd.Flags().Changed("epsilon") {
		eps = scenarios.DefaultEpsilon
		if target == "sim" {
			eps = sim.DefaultEpsilon
		}
	}
	res := benchResult{target: target, eps: eps, b: bench.New(kind, eps, f.cfg.Within)}
	sched := bench.Schedule{{Heartbeat: f.cfg.Heartbeat, Unhealthy: f.cfg.Unhealthy}}
	bin, err := os.Executable()
	if err != nil {
		return res, err
	}
	bar := newBar(stderr, int64(f.runs), fmt.Sprintf("bench %s on %s", kind, target), "runs")
	defer endBar(bar, stderr)
	for run := range f.runs {
		seed := f.seed + uint64(run)
		sc, err := scenarios.Parse("bench-"+string(kind), bench.ScenarioYAML(kind, f.cfg, bench.Phase(seed, f.cfg.Heartbeat)))
		if err != nil {
			return res, err // checked before the first run: the phase cannot break it
		}
		inner, err := newTarget(target, procstarget.Config{Binary: bin, Seed: seed})
		if err != nil {
			return res, err
		}
		rec := newRecordedTarget(inner, f.report != "")
		o, err := scenarios.Run(cmd.Context(), rec, sc, scenarios.Options{Run: run, Seed: seed, Epsilon: eps})
		switch {
		case errors.Is(err, scenarios.ErrStart):
			return res, &exitError{code: exitTransprt, msg: fmt.Sprintf("mcsim bench %s run %d seed %d on %s: %v", kind, run, seed, target, err)}
		case errors.Is(err, context.Canceled):
			return res, &exitError{code: exitFailure, msg: "mcsim bench: interrupted; every process was stopped"}
		case err != nil:
			return res, &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim bench %s run %d seed %d on %s: %v", kind, run, seed, target, err)}
		}
		why := res.b.Add(rec.benchRun(kind, o), sched)
		if f.report != "" {
			res.runs = append(res.runs, rec.reportRun(fmt.Sprintf("bench %s on %s run %d", kind, target, run), sc.Name, run, seed, o,
				benchReplay(cmd, kind, target, seed)))
		}
		if len(why) > 0 || !o.OK {
			res.failed++
			_ = bar.Clear()
			fmt.Fprintf(stderr, "OUTSIDE %s run %d seed %d on %s: %s\n", kind, run, seed, target, strings.Join(why, "; "))
			// A failed expectation is already said by why; a violation or
			// a step that failed is not.
			if len(o.Violations) > 0 || o.Aborted != "" || len(why) == 0 {
				printVerdict(stderr, sc, run, o)
			}
			fmt.Fprintf(stderr, "  replay: %s\n", benchReplay(cmd, kind, target, seed))
			bar.Describe(fmt.Sprintf("bench %s on %s (%d outside)", kind, target, res.failed))
		}
		_ = bar.Add(1)
	}
	return res, nil
}

// benchReplay is the command that runs one run again: the same flags,
// one run, its seed, its target.
func benchReplay(cmd *cobra.Command, kind bench.Kind, target string, seed uint64) string {
	parts := []string{"mcsim bench", string(kind), "--target", target, "--seed", fmt.Sprint(seed), "--runs 1"}
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		switch fl.Name {
		case "target", "seed", "runs", "compare", "json", "report":
			return
		}
		parts = append(parts, "--"+fl.Name, fl.Value.String())
	})
	return strings.Join(parts, " ")
}

func printBenchTable(w io.Writer, kind bench.Kind, f benchFlags, results []benchResult) {
	c := f.cfg
	fmt.Fprintf(w, "mcsim bench %s: %d runs per target, seeds %d..%d; %d masters, %d coreapps, %d shards; heartbeat %v, unhealthy %v\n",
		kind, f.runs, f.seed, f.seed+uint64(f.runs)-1, c.Masters, c.Coreapps, c.Shards, c.Heartbeat, c.Unhealthy)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := fmt.Sprintf("%-9s\t", "ms")
	for _, r := range results {
		pre := ""
		if len(results) > 1 {
			pre = r.target + " "
		}
		head += fmt.Sprintf("%sn\tmin\tp50\tp90\tp99\tmax\toutside\t", pre)
	}
	if len(results) == 1 {
		head += "  window"
	}
	fmt.Fprintln(tw, head)
	dists := make([][]bench.Distribution, len(results))
	for i, r := range results {
		dists[i] = r.b.Distributions()
	}
	for m := range kind.Measures() {
		line := fmt.Sprintf("%-9s\t", dists[0][m].Measure)
		for i := range results {
			d := dists[i][m]
			if d.N == 0 {
				line += fmt.Sprintf("0\t-\t-\t-\t-\t-\t%d\t", d.Outside)
				continue
			}
			line += fmt.Sprintf("%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t", d.N, d.MinMS, d.P50MS, d.P90MS, d.P99MS, d.MaxMS, d.Outside)
		}
		if len(results) == 1 {
			line += "  " + dists[0][m].Bound
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
	if len(results) > 1 {
		fmt.Fprintln(w, "windows:")
		for m := range kind.Measures() {
			for i, r := range results {
				fmt.Fprintf(w, "  %-9s %-5s %s\n", dists[i][m].Measure, r.target, dists[i][m].Bound)
			}
		}
	}
	for _, r := range results {
		verdict := "PASS: every run inside every window"
		if r.failed > 0 {
			verdict = fmt.Sprintf("FAIL: %d of %d runs outside a window or failed", r.failed, f.runs)
		}
		fmt.Fprintf(w, "%s (ε %v): %s\n", r.target, r.eps, verdict)
	}
}

func printBenchJSON(w io.Writer, kind bench.Kind, f benchFlags, results []benchResult) {
	for _, r := range results {
		for _, d := range r.b.Distributions() {
			b, _ := json.Marshal(map[string]any{"event": "distribution", "bench": string(kind), "target": r.target,
				"what": string(d.Measure), "n": d.N, "min_ms": d.MinMS, "p50_ms": d.P50MS, "p90_ms": d.P90MS, "p99_ms": d.P99MS,
				"max_ms": d.MaxMS, "bound": d.Bound, "outside": d.Outside, "runs": f.runs, "seed": f.seed})
			fmt.Fprintln(w, string(b))
		}
	}
}

// benchRun reads one run's moments for the bench math: the recovery is
// the runner's measure of the kind's expectation (from its mark), the
// rest what the witnesses recorded after the fault.
func (t *recordedTarget) benchRun(kind bench.Kind, o scenarios.Outcome) bench.Run {
	if len(t.faults) == 0 {
		return bench.Run{} // the run stopped before its fault: nothing seen
	}
	// A bench's scenario has one fault, and nothing before it.
	fault, victim := t.faults[0].Start, t.faults[0].Node
	r := bench.Run{Fault: fault}
	want := "failover"
	if kind == bench.Takeover {
		want = "takeover"
	}
	for _, e := range o.Expectations {
		if e.What == want && e.Measured != nil && (e.OK || *e.Measured > 0) {
			r.Recovered = fault.Add(*e.Measured)
			break
		}
	}
	switch kind {
	case bench.Takeover:
		// The lease lapses when the old primary's last grant or renewal
		// expires; one granted after the fault was already in flight.
		for _, g := range t.grants {
			if !r.Recovered.IsZero() && g.At.After(r.Recovered) {
				break
			}
			if g.Master == victim && !g.Released {
				r.Detected = g.Expires
			}
		}
	default:
		for _, d := range t.declarations {
			if d.Coreapp == victim && !d.At.Before(fault) {
				r.Detected = d.At
				break
			}
		}
	}
	if kind != bench.Takeover {
		for _, fo := range t.failovers {
			if fo.From == victim && !fo.ServedAgain.Before(fault) {
				r.Downtimes = append(r.Downtimes, fo.Downtime())
			}
		}
	}
	return r
}

// benchReport is the bench as a report: every run (its timeline and
// replay command) and one plot per measure with every target's values
// against the window (the widest of the targets': ε differs).
func benchReport(kind bench.Kind, f benchFlags, results []benchResult) report.Report {
	var text strings.Builder
	printBenchTable(&text, kind, f, results)
	rep := report.Report{Title: fmt.Sprintf("mcsim bench %s", kind), Command: commandLine(), Text: text.String(), Timelines: maxTimelines}
	sched := bench.Schedule{{Heartbeat: f.cfg.Heartbeat, Unhealthy: f.cfg.Unhealthy}}
	windows := make([]map[bench.Measure]bench.Window, len(results)) // per target: its ε
	for i, r := range results {
		windows[i] = bench.Windows(kind, sched, time.Time{}, r.eps, f.cfg.Within)
	}
	for _, m := range kind.Measures() {
		rm := report.Measure{Name: fmt.Sprintf("%s %s", kind, m)}
		if len(windows) > 0 {
			rm.Window.Lo, rm.Window.Hi = windows[0][m].Lo, windows[0][m].Hi
		}
		var texts []string
		for i, r := range results {
			w := windows[i][m]
			rm.Window.Lo, rm.Window.Hi = min(rm.Window.Lo, w.Lo), max(rm.Window.Hi, w.Hi)
			t := w.Text
			if len(results) > 1 {
				t = r.target + " " + t
			}
			texts = append(texts, t)
			rm.Series = append(rm.Series, report.Series{Label: r.target, Values: r.b.Values(m)})
		}
		rm.Window.Text = strings.Join(texts, "; ")
		rep.Measures = append(rep.Measures, rm)
	}
	for _, r := range results {
		rep.Runs = append(rep.Runs, r.runs...)
	}
	return rep
}
