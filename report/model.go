// Package report turns recorded runs into a self-contained HTML report:
// DIR/index.html plus PNG plots beside it (made with gonum.org/v1/plot),
// viewable with no network access (inline CSS, a few lines of inline JS
// for the cursor's time, relative image paths).
//
// What it draws:
//   - a summary table: every run's verdict, seed and the command that
//     replays it;
//   - a timeline per run: one lane per node (masters, coreapps, the
//     settings service), fault spans shaded, the master lease's terms,
//     one bar per gateway session in a lane per shard coloured by its
//     owner, failovers, takeovers and unhealthy declarations marked,
//     violations in red; HTML elements laid over the image carry the
//     exact milliseconds (title attributes) and name what they are
//     (class lane, failover, takeover, …) so a browser test can count
//     them;
//   - histograms and CDFs of measured times against the rule's window,
//     several series on one plot (bench --compare: procs and sim);
//   - heat maps of a sweep's p99 failover time and false-failover rate.
//
// The package reads no clock and runs nothing: the commands record runs
// (cmd/mcsim's recordedTarget) and hand them over as a Report.
package report

import (
	"time"
)

// Report is everything one index.html shows.
type Report struct {
	// Title heads the page ("mcsim bench failover").
	Title string
	// Command is the command line that made the report.
	Command string
	// Text is the command's own printed result (a table), shown verbatim.
	Text string
	// Runs are every run, in order; each gets a row of the summary table.
	Runs []Run
	// Timelines caps how many runs get a timeline (0: every run). Runs
	// that failed come first, then the others in order.
	Timelines int
	// Measures are the distributions to plot, in order.
	Measures []Measure
	// Grid is a sweep's results (nil: not a sweep).
	Grid *Grid
}

// Run is one recorded run. Every moment is counted from the run's start
// (the runner's t = 0).
type Run struct {
	// Name is what the run is called in headings ("coreapp-crash run 0").
	Name     string
	Scenario string
	Target   string
	Index    int
	Seed     uint64
	OK       bool
	// Replay is the command that runs this run again.
	Replay   string
	Duration time.Duration
	// Masters and Coreapps are the node ids, in lane order; the settings
	// service gets a lane after them, and any other node a fault names
	// (the gateway) one after that.
	Masters, Coreapps []string
	Shards            int
	Faults            []Fault
	Sessions          []Session
	Terms             []Term
	Failovers         []Failover
	Takeovers         []Takeover
	Declarations      []Declaration
	Violations        []Violation
	Expectations      []Expectation
	// Changes are settings changes and shard-count changes (the
	// settings lane's marks).
	Changes []Change
}

// Fault is a span in which a node was down, paused, cut off or skewed.
// End equal to the run's duration or zero: until the end.
type Fault struct {
	Node, Kind string
	Start, End time.Duration
}

// Session is one gateway session of a shard.
type Session struct {
	Shard      int
	Coreapp    string
	Epoch      uint64
	Start, End time.Duration
	// Silent are spans in which the gateway did not hear the session.
	Silent [][2]time.Duration
}

// Term is a master holding the lease, from its grant to the next holder's
// grant, its release or its last renewal's expiry.
type Term struct {
	Master     string
	Epoch      uint64
	Start, End time.Duration
}

// Failover is a shard passing between coreapps, as the gateway saw it.
type Failover struct {
	Shard                    int
	From, To                 string
	Epoch                    uint64
	ServedUntil, ServedAgain time.Duration
}

// Takeover is another master granted the lease.
type Takeover struct {
	From, To   string
	LeaseEpoch uint64
	At         time.Duration
}

// Declaration is a master declaring a coreapp unhealthy.
type Declaration struct {
	Master, Coreapp string
	At              time.Duration
}

// Violation is a broken invariant.
type Violation struct {
	Invariant, Details string
	At                 time.Duration
}

// Expectation is one expectation's verdict.
type Expectation struct {
	Index    int
	What     string
	Measured *time.Duration
	Bound    string
	OK       bool
	Detail   string
}

// Change is a live change through the settings service.
type Change struct {
	At   time.Duration
	What string
}

// Measure is one distribution to plot: a histogram and a CDF of every
// series, with the window shaded.
type Measure struct {
	// Name is the measure ("recovery", "steps[2] failover").
	Name string
	// Window is what the values are judged against (Hi zero: none).
	Window Window
	Series []Series
}

// Window is a range of times and its text.
type Window struct {
	Lo, Hi time.Duration
	Text   string
}

// Series is one set of values (one target's).
type Series struct {
	Label  string
	Values []time.Duration
}

// Grid is a sweep over settings: rows by every swept field but the last,
// columns by the last, one cell per combination.
type Grid struct {
	RowField, ColField string
	Rows, Cols         []string
	// P99MS and FalsePerHour are by [row][col]; NaN: skipped or nothing
	// measured.
	P99MS, FalsePerHour [][]float64
	// Skipped marks the combinations the settings service refused, by
	// [row][col] (nil: none).
	Skipped [][]bool
}
