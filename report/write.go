package report

import (
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Write writes dir/index.html and its PNGs (created if missing; files of
// the same names are replaced, others left alone). It returns the path of
// index.html.
func Write(dir string, r Report) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	page := pageData{Title: r.Title, Command: r.Command, Text: r.Text}
	for _, run := range r.Runs {
		page.Runs = append(page.Runs, summaryRow{Name: run.Name, Target: run.Target, Seed: run.Seed, OK: run.OK,
			Duration: fmt.Sprintf("%.1f s", run.Duration.Seconds()), Replay: run.Replay,
			Failovers: len(run.Failovers), Takeovers: len(run.Takeovers), Violations: len(run.Violations),
			Expectations: expectationText(run), Anchor: anchor(run)})
		if !run.OK {
			page.Failed++
		}
	}
	for i, run := range timelineRuns(r) {
		png, w, h, ovs, err := timeline(run)
		if err != nil {
			return "", err
		}
		name := fmt.Sprintf("timeline-%d.png", i)
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			return "", fmt.Errorf("report: %w", err)
		}
		tl := timelineData{Name: run.Name, Anchor: anchor(run), OK: run.OK, Image: name, Width: w, Height: h,
			Replay: run.Replay, Seconds: run.Duration.Seconds(), Legend: legend(run)}
		rs := runRows(run)
		// The time axis in image pixels, for the cursor's readout.
		for _, o := range ovs {
			if o.Class == "lane" {
				tl.X0, tl.X1 = o.X0/float64(w)*100, o.X1/float64(w)*100
				break
			}
		}
		for _, o := range ovs {
			tl.Overlays = append(tl.Overlays, overlayData{Class: o.Class, Title: o.Title, Data: dataAttrs(o.Data),
				Style: template.CSS(fmt.Sprintf("left:%.3f%%;top:%.3f%%;width:%.3f%%;height:%.3f%%",
					o.X0/float64(w)*100, o.Y0/float64(h)*100, (o.X1-o.X0)/float64(w)*100, (o.Y1-o.Y0)/float64(h)*100))})
		}
		tl.Lanes, tl.FailoverCount = len(rs.nodes), len(run.Failovers)
		for _, e := range run.Expectations {
			tl.Expectations = append(tl.Expectations, expectationLine(e))
		}
		for _, v := range run.Violations {
			tl.Violations = append(tl.Violations, fmt.Sprintf("%s at %s: %s", v.Invariant, msText(v.At), v.Details))
		}
		page.Timelines = append(page.Timelines, tl)
	}
	page.Omitted = len(r.Runs) - len(page.Timelines)
	for i, m := range r.Measures {
		if !slices.ContainsFunc(m.Series, func(s Series) bool { return len(s.Values) > 0 }) {
			continue // nothing measured: no plot
		}
		png, err := distribution(m)
		if err != nil {
			return "", err
		}
		name := fmt.Sprintf("distribution-%d.png", i)
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			return "", fmt.Errorf("report: %w", err)
		}
		page.Plots = append(page.Plots, plotData{Title: m.Name, Image: name, Width: distWidth, Height: distHeight, Class: "distribution"})
	}
	if g := r.Grid; g != nil && len(g.Rows) > 0 && len(g.Cols) > 0 {
		for i, hm := range []struct {
			title, unit string
			z           [][]float64
		}{
			{"p99 failover time", " ms", g.P99MS},
			{"false failovers per hour", "/h", g.FalsePerHour},
		} {
			png, err := heatMap(g, hm.title, hm.unit, hm.z)
			if err != nil {
				return "", err
			}
			name := fmt.Sprintf("heatmap-%d.png", i)
			if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
				return "", fmt.Errorf("report: %w", err)
			}
			page.Heatmaps = append(page.Heatmaps, plotData{Title: hm.title, Image: name, Width: heatWidth, Height: heatHeight, Class: "heatmap"})
		}
	}
	f, err := os.Create(filepath.Join(dir, "index.html"))
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	if err := pageTemplate.Execute(f, page); err != nil {
		f.Close()
		return "", fmt.Errorf("report: index.html: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	return filepath.Join(dir, "index.html"), nil
}

// timelineRuns are the runs that get a timeline: the failed ones first,
// then the others, up to the cap.
func timelineRuns(r Report) []Run {
	out := slices.Clone(r.Runs)
	slices.SortStableFunc(out, func(a, b Run) int {
		switch {
		case a.OK == b.OK:
			return 0
		case !a.OK:
			return -1
		}
		return 1
	})
	if r.Timelines > 0 && len(out) > r.Timelines {
		out = out[:r.Timelines]
	}
	return out
}

func anchor(r Run) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		return '-'
	}, strings.ToLower(fmt.Sprintf("run-%s-%s-%d-%d", r.Scenario, r.Target, r.Index, r.Seed)))
}

func expectationText(r Run) string {
	var parts []string
	for _, e := range r.Expectations {
		s := e.What
		if e.Measured != nil && (e.OK || *e.Measured > 0) {
			s += fmt.Sprintf(" %.1f ms", float64(*e.Measured)/1e6)
		}
		if !e.OK {
			s += " FAILED"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func expectationLine(e Expectation) string {
	verdict := "ok"
	if !e.OK {
		verdict = "FAILED"
	}
	s := fmt.Sprintf("steps[%d] expect %s: %s", e.Index, e.What, verdict)
	if e.Measured != nil && (e.OK || *e.Measured > 0) {
		s += ", measured " + msText(*e.Measured)
	}
	if e.Bound != "" {
		s += " (" + e.Bound + ")"
	}
	if e.Detail != "" {
		s += " " + e.Detail
	}
	return s
}

type legendItem struct {
	Class, Label string
	Style        template.CSS
}

// legend names the colours and marks the timeline uses.
func legend(r Run) []legendItem {
	var out []legendItem
	for _, id := range r.Coreapps {
		out = append(out, legendItem{Class: "swatch", Label: "session of " + id, Style: template.CSS("background:" + hexColour(ownerColour(r, id)))})
	}
	out = append(out, legendItem{Class: "swatch", Label: "primary (holds the lease)", Style: template.CSS("background:" + hexColour(termColour))})
	for _, k := range []string{"kill", "stop", "pause", "cut", "clock", "delay"} {
		c := faultColour(k)
		label := k
		if k == "delay" {
			label = "delay or loss on its messages"
		}
		out = append(out, legendItem{Class: "swatch", Label: label, Style: template.CSS(fmt.Sprintf("background:rgba(%d,%d,%d,%.2f)", c.R, c.G, c.B, float64(c.A)/255))})
	}
	out = append(out,
		legendItem{Class: "swatch", Label: "downtime", Style: template.CSS("background:rgba(214,39,40,0.25)")},
		legendItem{Class: "glyph", Label: "▲ failover (new owner heard)"},
		legendItem{Class: "glyph", Label: "✕ declared unhealthy"},
		legendItem{Class: "glyph", Label: "■ takeover (lease granted)"},
		legendItem{Class: "glyph", Label: "○ settings change"},
		legendItem{Class: "glyph violation-key", Label: "● violation"},
	)
	return out
}

type pageData struct {
	Title, Command, Text string
	Runs                 []summaryRow
	Failed               int
	Timelines            []timelineData
	Omitted              int
	Plots, Heatmaps      []plotData
}

type summaryRow struct {
	Name, Target, Duration, Replay, Expectations, Anchor string
	Seed                                                 uint64
	OK                                                   bool
	Failovers, Takeovers, Violations                     int
}

type timelineData struct {
	Name, Anchor, Image, Replay string
	OK                          bool
	Width, Height               int
	Seconds, X0, X1             float64
	Overlays                    []overlayData
	Legend                      []legendItem
	Lanes, FailoverCount        int
	Expectations, Violations    []string
}

type overlayData struct {
	Class, Title string
	Data         template.HTMLAttr
	Style        template.CSS
}

type plotData struct {
	Title, Image, Class string
	Width, Height       int
}

// dataAttrs renders data-* attributes; names are the package's own,
// values escaped.
func dataAttrs(kv [][2]string) template.HTMLAttr {
	var b strings.Builder
	for _, a := range kv {
		fmt.Fprintf(&b, ` data-%s="%s"`, a[0], template.HTMLEscapeString(a[1]))
	}
	return template.HTMLAttr(b.String())
}

var pageTemplate = template.Must(template.New("index").Funcs(template.FuncMap{
	"pct": func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"secs": func(v float64) string {
		return fmt.Sprintf("%.3f", math.Round(v*1000)/1000)
	},
}).Parse(pageHTML))
