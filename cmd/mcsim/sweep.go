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
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcsim/mcsim/report"
	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/scenarios/procstarget"
	"github.com/mcsim/mcsim/sim"
	"github.com/mcsim/mcsim/sweep"
)

type sweepFlags struct {
	target string
	seed   uint64
	runs   int
	asJSON bool
	report string
	sets   []string
}

func newSweepCommand() *cobra.Command {
	var f sweepFlags
	c := &cobra.Command{
		Use:   "sweep FILE|NAME --set FIELD=V1,V2,… [--set …]",
		Short: "Run a scenario over a grid of settings: failover time and false failovers per combination",
		Long: `Run one scenario (a library name or a file) for every combination of the
--set values, --runs times each, and print one row per combination: the
settings, the runs, failover time p50 and p99, the runs that failed, and
the false failovers per hour.

--set FIELD=V1,V2,… names any settings field (SETTINGS.md; a nested one
with dots, webhooks.url) and the values to try, each a JSON scalar (a bare
word is a string; no commas inside a value). Each combination is laid
over the scenario's settings: as a PATCH (the fields it sets replace the
scenario's, the rest stay). A combination the settings service would
refuse (e.g. unhealthy_interval not greater than heartbeat_interval) is
skipped and listed with the service's reason. Combinations run in flag
order, the first --set varying slowest. Run i of every combination uses
seed --seed + i, so the combinations see the same draws.

Failover time: the measures of the scenario's failover and takeover
expectations (from the fault to the new owner or primary, as 'scenario
run' measures them); a scenario without such an expectation is timed by
the downtime of every failover the gateway witnessed (last heard from the
old owner → first heard from the new one). n is how many were measured.

False failovers: unhealthy declarations where neither the coreapp nor
the declaring master was killed, stopped, paused, restarted, cut off by a
partition or isolation, or clock-skewed within unhealthy_interval +
heartbeat_interval + ε before (the largest intervals in force during
that window, should a set step change them mid-run). Unlike the no_false_failover invariant, a
delay or loss is no excuse: a slow coreapp is a healthy one (rule 4), and
this is what a sweep of unhealthy_interval over a slow or lossy network
is for. The rate is per hour of run time (virtual time on sim) summed
over the combination's runs. "failed" counts runs whose verdict was FAIL
as 'scenario run' would print it (a failed expectation or invariant).

--json prints one JSON line per combination instead (skipped ones with
"skipped": the reason). --report DIR writes an HTML report, DIR/index.html
with PNG plots beside it (no network needed to view it): heat maps of p99
failover time and of false failovers per hour over the grid (columns: the
last --set's values; rows: the combinations of the others), the table,
every run's verdict, seed and replay command, and a timeline of up to 20
runs (failed ones first). Its path goes to stderr. Results go to stdout; the seed and the progress
bar to stderr.

Exit codes: 0 the sweep ran (whatever it found); 2 bad flags (a --set
without values, an unknown field, a bad scenario); 3 the cluster could
not be started.`,
		Example: `  mcsim sweep slow-answers --target sim --set heartbeat_interval=1,2 --set unhealthy_interval=2,3,5 --runs 20 --seed 1
  mcsim sweep coreapp-crash --target sim --set unhealthy_interval=3,5,10 --runs 10 --seed 1
  mcsim sweep coreapp-crash --target sim --set heartbeat_interval=1,2 --set unhealthy_interval=2,3 --runs 3 --seed 1 --json
  mcsim sweep coreapp-crash --set heartbeat_interval=1,2 --set unhealthy_interval=2,3,5 --runs 20 --seed 1 --report /tmp/sweep-report
  mcsim sweep docs/jittery-network.yaml --set unhealthy_interval=2,3,5,10 --runs 20 --seed 1   # from the repository root: the README's trade-off`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSweep(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringArrayVar(&f.sets, "set", nil, "FIELD=V1,V2,…: a settings field and the values to try (repeatable; one combination per value of each)")
	fl.StringVar(&f.target, "target", "sim", `where to run: "sim" (the deterministic simulator) or "procs" (real processes: slow)`)
	fl.Uint64Var(&f.seed, "seed", 0, "seed of run 0 of every combination (run i: seed + i); default: drawn at random and printed")
	fl.IntVar(&f.runs, "runs", 20, "runs per combination")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON line per combination")
	fl.StringVar(&f.report, "report", "", "write an HTML report (heat maps of p99 failover time and false failovers, timelines) into this directory")
	completeValues(c, "target", "procs", "sim")
	return c
}

// sweepRow is one combination's result (or why it was skipped).
type sweepRow struct {
	combo    sweep.Combo
	skipped  string
	times    []time.Duration
	failed   int
	falseFos int
	runTime  time.Duration
}

func runSweep(cmd *cobra.Command, arg string, f sweepFlags) error {
	if f.target != "procs" && f.target != "sim" {
		return usageErr(`--target: must be "procs" or "sim", got %q`, f.target)
	}
	if f.runs < 1 {
		return usageErr("--runs: must be ≥ 1, got %d", f.runs)
	}
	if len(f.sets) == 0 {
		return usageErr("--set: at least one FIELD=V1,V2,… to sweep (e.g. --set unhealthy_interval=3,5,10)")
	}
	var sets []sweep.Set
	for _, s := range f.sets {
		p, err := sweep.ParseSet(s)
		if err != nil {
			return usageErr("%v", err)
		}
		sets = append(sets, p)
	}
	if err := sweep.CheckFields(sets); err != nil {
		return usageErr("%v", err)
	}
	scs, err := loadScenarios([]string{arg})
	if err != nil {
		return err
	}
	sc := scs[0]
	if !cmd.Flags().Changed("seed") {
		var b [8]byte
		_, _ = rand.Read(b[:])
		f.seed = binary.LittleEndian.Uint64(b[:]) % 1_000_000
	}
	eps := scenarios.DefaultEpsilon
	if f.target == "sim" {
		eps = sim.DefaultEpsilon
	}
	fromExpect := slices.ContainsFunc(sc.Steps, func(st scenarios.Step) bool {
		return st.Action == "expect" && (st.What == "failover" || st.What == "takeover")
	})
	combos := sweep.Product(sets)
	rows := make([]sweepRow, len(combos))
	merged := make([]json.RawMessage, len(combos))
	valid := 0
	for i, c := range combos {
		rows[i].combo = c
		m, err := sweep.Merge(sc.Settings, c)
		if err != nil {
			rows[i].skipped = err.Error()
			continue
		}
		merged[i] = m
		valid++
	}
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "seed %d (replay: --seed %d)\n", f.seed, f.seed)
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	var runs []report.Run
	bar := newBar(stderr, int64(valid*f.runs), fmt.Sprintf("sweep %s on %s", sc.Name, f.target), "runs")
	for i := range combos {
		if merged[i] == nil {
			continue
		}
		run := *sc
		run.Settings = merged[i]
		for r := range f.runs {
			seed := f.seed + uint64(r)
			inner, err := newTarget(f.target, procstarget.Config{Binary: bin, Seed: seed})
			if err != nil {
				endBar(bar, stderr)
				return err
			}
			rec := newRecordedTarget(inner, f.report != "")
			o, err := scenarios.Run(cmd.Context(), rec.asTarget(), &run, scenarios.Options{Run: r, Seed: seed, Epsilon: eps})
			if err != nil {
				endBar(bar, stderr)
				where := fmt.Sprintf("mcsim sweep %s (%s) run %d seed %d on %s", sc.Name, combos[i], r, seed, f.target)
				switch {
				case errors.Is(err, scenarios.ErrStart):
					return &exitError{code: exitTransprt, msg: fmt.Sprintf("%s: %v", where, err)}
				case errors.Is(err, context.Canceled):
					return &exitError{code: exitFailure, msg: "mcsim sweep: interrupted; every process was stopped"}
				}
				return &exitError{code: exitFailure, msg: fmt.Sprintf("%s: %v", where, err)}
			}
			if f.report != "" {
				runs = append(runs, rec.reportRun(fmt.Sprintf("%s (%s) run %d", sc.Name, combos[i], r), sc.Name, r, seed, o,
					sweepReplay(arg, f.target, seed, combos[i])))
			}
			row := &rows[i]
			row.runTime += o.Duration
			if !o.OK {
				row.failed++
			}
			row.falseFos += sweep.FalseFailovers(rec.declarations, rec.faults, rec.intervals, eps)
			if fromExpect {
				for _, e := range o.Expectations {
					if (e.What == "failover" || e.What == "takeover") && e.Measured != nil && (e.OK || *e.Measured > 0) {
						row.times = append(row.times, *e.Measured)
					}
				}
			} else {
				for _, fo := range rec.failovers {
					row.times = append(row.times, fo.Downtime())
				}
			}
			_ = bar.Add(1)
		}
	}
	endBar(bar, stderr)
	measure := "downtime of witnessed failovers"
	if fromExpect {
		measure = "failover/takeover expectations"
	}
	if f.asJSON {
		printSweepJSON(cmd.OutOrStdout(), sc.Name, f, measure, rows)
	} else {
		printSweepTable(cmd.OutOrStdout(), sc.Name, f, measure, sets, rows)
	}
	if f.report != "" {
		var text strings.Builder
		printSweepTable(&text, sc.Name, f, measure, sets, rows)
		rep := report.Report{Title: "mcsim sweep " + sc.Name, Command: commandLine(), Text: text.String(), Runs: runs,
			Timelines: maxTimelines, Grid: sweepGrid(sets, rows)}
		if valid <= 4 {
			m := report.Measure{Name: "failover time (" + measure + ")"}
			for _, r := range rows {
				if r.skipped == "" {
					m.Series = append(m.Series, report.Series{Label: r.combo.String(), Values: r.times})
				}
			}
			rep.Measures = append(rep.Measures, m)
		}
		if err := writeReport(stderr, f.report, rep); err != nil {
			return err
		}
	}
	return nil
}

// sweepGrid lays the combinations out for heat maps: a column per value
// of the last --set, a row per combination of the others (flag order:
// the last --set varies fastest, so combination i is row i / columns).
func sweepGrid(sets []sweep.Set, rows []sweepRow) *report.Grid {
	last := sets[len(sets)-1]
	g := &report.Grid{ColField: last.Field}
	for _, v := range last.Values {
		g.Cols = append(g.Cols, string(v))
	}
	var fields []string
	for _, s := range sets[:len(sets)-1] {
		fields = append(fields, s.Field)
	}
	g.RowField = strings.Join(fields, ", ")
	for i, r := range rows {
		if i%len(g.Cols) == 0 {
			var name []string
			for _, a := range r.combo[:len(r.combo)-1] {
				name = append(name, string(a.Value))
			}
			g.Rows = append(g.Rows, strings.Join(name, ", "))
			g.P99MS = append(g.P99MS, make([]float64, 0, len(g.Cols)))
			g.FalsePerHour = append(g.FalsePerHour, make([]float64, 0, len(g.Cols)))
			g.Skipped = append(g.Skipped, make([]bool, 0, len(g.Cols)))
		}
		p99, fph := math.NaN(), math.NaN()
		j := len(g.Rows) - 1
		g.Skipped[j] = append(g.Skipped[j], r.skipped != "")
		if r.skipped == "" {
			if n, _, p := r.percentiles(); n > 0 {
				p99 = sweepMS(p)
			}
			fph = sweep.PerHour(r.falseFos, r.runTime)
		}
		g.P99MS[j] = append(g.P99MS[j], p99)
		g.FalsePerHour[j] = append(g.FalsePerHour[j], fph)
	}
	if g.RowField == "" {
		g.RowField, g.Rows[0] = "(one row)", ""
	}
	return g
}

// sweepReplay is the command that runs one run of one combination again.
func sweepReplay(arg, target string, seed uint64, c sweep.Combo) string {
	parts := []string{"mcsim sweep", shellQuote(arg), "--target", target, "--seed", fmt.Sprint(seed), "--runs 1"}
	for _, a := range c {
		parts = append(parts, "--set", shellQuote(a.Field+"="+string(a.Value)))
	}
	return strings.Join(parts, " ")
}

// sweepIntervals are the intervals a merged settings body sets, else the
// seed's defaults (5 s, 30 s).
func sweepIntervals(body json.RawMessage) (hb, ui time.Duration) {
	return scenarios.IntervalsIn(body, 5*time.Second, 30*time.Second)
}

func sweepMS(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (r sweepRow) percentiles() (n int, p50, p99 time.Duration) {
	s := slices.Clone(r.times)
	slices.Sort(s)
	return len(s), sweep.Percentile(s, 0.5), sweep.Percentile(s, 0.99)
}

func printSweepTable(w io.Writer, name string, f sweepFlags, measure string, sets []sweep.Set, rows []sweepRow) {
	fmt.Fprintf(w, "mcsim sweep %s on %s: %d runs per combination, seeds %d..%d; failover time from the %s\n",
		name, f.target, f.runs, f.seed, f.seed+uint64(f.runs)-1, measure)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := ""
	for _, s := range sets {
		head += s.Field + "\t"
	}
	fmt.Fprintln(tw, head+"runs\tn\tp50 ms\tp99 ms\tfailed\tfalse\tfalse/h\t")
	var skipped []sweepRow
	for _, r := range rows {
		if r.skipped != "" {
			skipped = append(skipped, r)
			continue
		}
		line := ""
		for _, a := range r.combo {
			line += string(a.Value) + "\t"
		}
		n, p50, p99 := r.percentiles()
		if n == 0 {
			line += fmt.Sprintf("%d\t0\t-\t-\t", f.runs)
		} else {
			line += fmt.Sprintf("%d\t%d\t%.1f\t%.1f\t", f.runs, n, sweepMS(p50), sweepMS(p99))
		}
		line += fmt.Sprintf("%d\t%d\t%.1f\t", r.failed, r.falseFos, sweep.PerHour(r.falseFos, r.runTime))
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
	for _, r := range skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", r.combo, r.skipped)
	}
}

func printSweepJSON(w io.Writer, name string, f sweepFlags, measure string, rows []sweepRow) {
	for _, r := range rows {
		set := map[string]json.RawMessage{}
		for _, a := range r.combo {
			set[a.Field] = a.Value
		}
		ev := map[string]any{"event": "sweep", "scenario": name, "target": f.target, "settings": set, "runs": f.runs, "seed": f.seed}
		if r.skipped != "" {
			ev["skipped"] = r.skipped
		} else {
			n, p50, p99 := r.percentiles()
			ev["failover_from"] = measure
			ev["n"] = n
			if n > 0 {
				ev["p50_ms"], ev["p99_ms"] = sweepMS(p50), sweepMS(p99)
			}
			ev["failed"] = r.failed
			ev["false_failovers"] = r.falseFos
			ev["false_per_hour"] = math.Round(sweep.PerHour(r.falseFos, r.runTime)*1000) / 1000
			ev["run_hours"] = math.Round(r.runTime.Hours()*1e6) / 1e6
		}
		b, _ := json.Marshal(ev)
		fmt.Fprintln(w, string(b))
	}
}
