package launcher

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mcsim/mcsim/health"
)

// The live view of `mcsim up` on a terminal. It is drawn below whatever
// the terminal showed before and redrawn in place by moving the cursor up
// over the previous frame and clearing from there down: the user's screen
// above it is never erased, and because a frame is cut to the terminal's
// height and width (no line wraps), no frame scrolls off into the
// scrollback. While the process is not the terminal's foreground process
// group (`mcsim up &`), nothing is redrawn: one plain line per change, as
// when Out is a pipe.

const (
	defaultCols, defaultRows = 80, 24
	// cursorUpFmt moves to the first column n lines up; clearDown clears
	// from the cursor to the end of the screen.
	cursorUpFmt = "\x1b[%dF"
	clearDown   = "\x1b[J"
)

// tally is the run's summary, printed when the cluster stops.
type tally struct {
	failovers, takeovers int
	longestMS            int64
	longestShard         int32
}

func (t *tally) failover(shard int32, ms int64) {
	if t.failovers == 0 || ms > t.longestMS {
		t.longestMS, t.longestShard = ms, shard
	}
	t.failovers++
}

func (t tally) String() string {
	s := fmt.Sprintf("%d failover%s, %d takeover%s", t.failovers, plural(t.failovers), t.takeovers, plural(t.takeovers))
	if t.failovers > 0 {
		s += fmt.Sprintf(", longest downtime %d ms (shard %d)", t.longestMS, t.longestShard)
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// inPlaceLocked says whether the view is redrawn in place right now.
func (e *emitter) inPlaceLocked() bool {
	return e.cfg.Terminal && !e.cfg.JSON && (e.cfg.Foreground == nil || e.cfg.Foreground())
}

func (e *emitter) sizeLocked() (cols, rows int) {
	if e.cfg.TermSize != nil {
		if c, r, ok := e.cfg.TermSize(); ok && c > 0 && r > 0 {
			return c, r
		}
	}
	return defaultCols, defaultRows
}

// render redraws the view on a terminal when something changed.
func (e *emitter) render() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dirty || !e.inPlaceLocked() {
		return
	}
	e.dirty = false
	cols, rows := e.sizeLocked()
	e.drawLocked(fitFrame(e.frameLocked(), cols, rows))
}

// drawLocked replaces the previous frame with lines.
func (e *emitter) drawLocked(lines []string) {
	var b strings.Builder
	if e.frameLines > 0 {
		fmt.Fprintf(&b, cursorUpFmt, e.frameLines)
	}
	b.WriteString(clearDown)
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(e.cfg.Out, b.String())
	e.frameLines = len(lines)
}

// frameLocked is the whole view, one string per line, before fitting.
func (e *emitter) frameLocked() []string {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	lines = append(lines, strings.Split(strings.TrimRight(e.headerLocked(), "\n"), "\n")...)
	add("")
	add("shards (per the gateway)")
	for _, s := range slices.Sorted(maps.Keys(e.shards)) {
		h := e.shards[s]
		silent := ""
		if h.silent {
			silent = "  SILENT: not heard by the gateway, not serving"
		}
		add("  %2d → %-12s epoch %d%s", s, h.coreapp, h.epoch, silent)
	}
	for s := int32(0); s < int32(e.cfg.Shards); s++ {
		if _, ok := e.shards[s]; !ok {
			add("  %2d → (none)", s)
		}
	}
	add("")
	add("nodes")
	ids := slices.Collect(maps.Keys(e.nodes))
	sort.Strings(ids)
	for _, id := range ids {
		n := e.nodes[id]
		role, state, tail := n.role, n.status, n.metrics
		switch {
		case n.exited:
			role, state, tail = "-", "EXITED", strings.TrimSpace("process exited "+n.exit)
		case n.err != "":
			state, tail = "-", n.err
		}
		add("  %-12s %-17s %-14s shards %-10s pid %-7d %s", id, role, state, health.FormatShards(n.shards), n.pid, tail)
	}
	if e.note != "" {
		add("")
		add("%s", e.note)
	}
	add("")
	add("recent failovers and takeovers")
	if len(e.recent) == 0 {
		add("  (none)")
	}
	for _, r := range e.recent {
		add("  %s", r)
	}
	add("")
	add("Ctrl-C stops the cluster.")
	return lines
}

// fitFrame cuts a frame to the terminal: every line to cols-1 columns (a
// line that fills the last column makes some terminals wrap), and the
// frame to rows-1 lines, dropping lines from the middle of the longest
// section (the node table) and saying how many.
func fitFrame(lines []string, cols, rows int) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, cutLine(l, cols-1))
	}
	if max := rows - 1; max > 0 && len(out) > max {
		// Keep the head (header, shards) and the last lines (recent events,
		// the Ctrl-C hint); elide in between.
		tail := min(len(out)/3, max/3)
		head := max - tail - 1
		elided := len(out) - head - tail
		fitted := append(slices.Clone(out[:head]), cutLine(fmt.Sprintf("  … %d more lines (a taller terminal shows them; `mcsim status` lists all)", elided), cols-1))
		out = append(fitted, out[len(out)-tail:]...)
	}
	return out
}

// cutLine shortens s to at most n runes (every rune of the view is one
// column wide), marking the cut with "…".
func cutLine(s string, n int) string {
	if n < 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// stopping is said as soon as Ctrl-C (or SIGTERM) arrives: stopping the
// nodes takes a moment, and the view must not look frozen. The last
// frame stays on the screen above it.
func (e *emitter) stopping() {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.cfg.JSON:
		e.emitLocked(Event{Event: "stopping"}, e.now())
	case e.inPlaceLocked():
		cols, rows := e.sizeLocked()
		e.drawLocked(fitFrame(e.frameLocked(), cols, rows))
		fmt.Fprintln(e.cfg.Out, "stopping…")
		e.frameLines = 0
	default:
		fmt.Fprintln(e.cfg.Out, e.now().Format("15:04:05.000"), "stopping…")
	}
}

// stopped ends the run with its summary: what a person wants to know
// after a chaos session without scrolling back.
func (e *emitter) stopped() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg.JSON {
		t := e.tally
		ev := Event{Event: "stopped", Failovers: &t.failovers, Takeovers: &t.takeovers}
		if t.failovers > 0 {
			ev.LongestDowntimeMS, ev.Shard = &t.longestMS, &t.longestShard
		}
		e.emitLocked(ev, e.now())
		return
	}
	fmt.Fprintln(e.cfg.Out, "stopped:", e.tally.String())
}
