package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mcsim/mcsim/report"
	"github.com/mcsim/mcsim/scenarios"
)

// maxTimelines caps the timelines of one report: a sweep may run
// thousands of runs; failed runs are drawn first.
const maxTimelines = 20

// reportRun is one recorded run for the report: every moment counted
// from the run's start.
func (t *recordedTarget) reportRun(name, scenario string, run int, seed uint64, o scenarios.Outcome, replay string) report.Run {
	rel := func(at time.Time) time.Duration {
		if at.IsZero() {
			return 0
		}
		return max(0, at.Sub(t.start))
	}
	r := report.Run{Name: name, Scenario: scenario, Target: t.Name(), Index: run, Seed: seed, OK: o.OK, Replay: replay,
		Duration: o.Duration, Shards: t.cluster.Shards}
	for i := 1; i <= t.cluster.Masters; i++ {
		r.Masters = append(r.Masters, fmt.Sprintf("master-%d", i))
	}
	for i := 1; i <= t.cluster.Coreapps; i++ {
		r.Coreapps = append(r.Coreapps, fmt.Sprintf("coreapp-%d", i))
	}
	for _, id := range t.started {
		if strings.HasPrefix(id, "master-") {
			r.Masters = append(r.Masters, id)
		} else {
			r.Coreapps = append(r.Coreapps, id)
		}
	}
	for _, f := range slices.Concat(t.faults, t.slow) {
		end := time.Duration(0)
		if !f.End.IsZero() {
			end = rel(f.End)
		}
		r.Faults = append(r.Faults, report.Fault{Node: f.Node, Kind: f.Kind, Start: rel(f.Start), End: end})
	}
	for _, s := range t.sessions {
		rs := report.Session{Shard: s.Shard, Coreapp: s.Coreapp, Epoch: s.Epoch, Start: rel(s.Start)}
		if !s.End.IsZero() {
			rs.End = rel(s.End)
		}
		for _, q := range s.Silent {
			end := time.Duration(0)
			if !q.End.IsZero() {
				end = rel(q.End)
			}
			rs.Silent = append(rs.Silent, [2]time.Duration{rel(q.Start), end})
		}
		r.Sessions = append(r.Sessions, rs)
	}
	r.Terms, r.Takeovers = leaseTerms(t.grants, rel)
	for _, f := range t.failovers {
		r.Failovers = append(r.Failovers, report.Failover{Shard: f.Shard, From: f.From, To: f.To, Epoch: f.Epoch,
			ServedUntil: rel(f.ServedUntil), ServedAgain: rel(f.ServedAgain)})
	}
	for _, d := range t.declarations {
		r.Declarations = append(r.Declarations, report.Declaration{Master: d.Master, Coreapp: d.Coreapp, At: rel(d.At)})
	}
	for _, v := range o.Violations {
		r.Violations = append(r.Violations, report.Violation{Invariant: v.Invariant, Details: v.Details, At: rel(v.At)})
	}
	for _, e := range o.Expectations {
		r.Expectations = append(r.Expectations, report.Expectation{Index: e.Index, What: e.What, Measured: e.Measured, Bound: e.Bound, OK: e.OK, Detail: e.Detail})
	}
	for _, c := range t.changes {
		r.Changes = append(r.Changes, report.Change{At: rel(c.at), What: c.what})
	}
	return r
}

// leaseTerms reads the store's grants as terms (a master holding the
// lease from its grant until the next holder's grant, its release or the
// expiry of its last renewal) and takeovers (a grant to another master
// than the last holder).
func leaseTerms(grants []scenarios.LeaseGrant, rel func(time.Time) time.Duration) (terms []report.Term, takeovers []report.Takeover) {
	var cur *report.Term
	var expires time.Time
	last := ""
	closeTerm := func(at time.Time) {
		if cur == nil {
			return
		}
		end := at
		if !expires.IsZero() && expires.Before(end) {
			end = expires
		}
		cur.End = max(cur.Start, rel(end))
		terms = append(terms, *cur)
		cur = nil
	}
	for _, g := range grants {
		switch {
		case g.Released:
			if cur != nil && cur.Master == g.Master {
				closeTerm(g.At)
			}
		case g.Renewal:
			if cur != nil && cur.Master == g.Master {
				expires = g.Expires
			}
		default:
			closeTerm(g.At)
			if last != "" && last != g.Master {
				takeovers = append(takeovers, report.Takeover{From: last, To: g.Master, LeaseEpoch: g.Epoch, At: rel(g.At)})
			}
			cur, expires, last = &report.Term{Master: g.Master, Epoch: g.Epoch, Start: rel(g.At)}, g.Expires, g.Master
		}
	}
	if cur != nil {
		cur.End = 0 // until the run's end, unless it lapsed before
		if !expires.IsZero() {
			cur.End = rel(expires)
		}
		terms = append(terms, *cur)
	}
	return terms, takeovers
}

// writeReport writes the report and says where on progress.
func writeReport(progress io.Writer, dir string, r report.Report) error {
	path, err := report.Write(dir, r)
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	fmt.Fprintf(progress, "report: %s\n", abs)
	return nil
}

// commandLine is how the user invoked mcsim, quoted for a shell.
func commandLine() string {
	parts := []string{"mcsim"}
	for _, a := range os.Args[1:] {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// timedMeasures are the distributions of a scenario's runs: one per timed
// expectation (failover, takeover, served, errors) with its window, and
// the downtime of every failover the gateway saw, judged against the
// widest failover window when there is one.
func timedMeasures(name string, target string, outs []scenarios.Outcome, downtimes []time.Duration) []report.Measure {
	type key struct {
		index int
		what  string
	}
	var order []key
	byKey := map[key]*report.Measure{}
	var foHi time.Duration
	for _, o := range outs {
		for _, e := range o.Expectations {
			if e.Measured == nil || e.Hi == 0 || !(e.OK || *e.Measured > 0) {
				continue
			}
			k := key{e.Index, e.What}
			m := byKey[k]
			if m == nil {
				m = &report.Measure{Name: fmt.Sprintf("%s steps[%d] %s", name, e.Index, e.What),
					Window: report.Window{Lo: e.Lo, Hi: e.Hi, Text: e.Bound}, Series: []report.Series{{Label: target}}}
				byKey[k] = m
				order = append(order, k)
			}
			m.Window.Lo, m.Window.Hi = min(m.Window.Lo, e.Lo), max(m.Window.Hi, e.Hi)
			m.Series[0].Values = append(m.Series[0].Values, *e.Measured)
			if e.What == "failover" {
				foHi = max(foHi, e.Hi)
			}
		}
	}
	var out []report.Measure
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	if len(downtimes) > 0 {
		m := report.Measure{Name: name + " downtime per failover", Series: []report.Series{{Label: target, Values: downtimes}}}
		if foHi > 0 {
			m.Window = report.Window{Hi: foHi, Text: fmt.Sprintf("≤ %v (the failover bound)", foHi)}
		}
		out = append(out, m)
	}
	return out
}

// downtimes are the downtimes of the failovers a run's gateway saw.
func (t *recordedTarget) downtimes() []time.Duration {
	var out []time.Duration
	for _, f := range t.failovers {
		out = append(out, f.Downtime())
	}
	return out
}
