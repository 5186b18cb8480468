package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// twoCrashes kills both owners one after the other, then the primary
// master: two failovers and a takeover in one run, on 2 masters and 4
// coreapps.
const twoCrashes = `name: two-crashes
description: Both owners crash one after the other, then the primary master.
cluster: {masters: 2, coreapps: 4, shards: 2}
settings: {heartbeat_interval: 1, unhealthy_interval: 3}
steps:
  - wait: served
  - kill: owner(0)
    as: first
  - expect: failover
    shard: 0
    after: first
    within: rule1
  - kill: owner(1)
    as: second
  - expect: failover
    shard: 1
    after: second
    within: rule1
  - kill: primary
    as: third
  - expect: takeover
    after: third
    within: lease
  - sleep: 2s
checks: all
`

// twoCrashesReport runs twoCrashes on the simulator with --report and
// returns the report's directory and the run's --json events.
func twoCrashesReport(t *testing.T) (dir string, events string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "two-crashes.yaml")
	if err := os.WriteFile(file, []byte(twoCrashes), 0o644); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "report")
	code, out, errs := runSplit(t, "scenario", "run", file, "--target", "sim", "--seed", "7", "--json", "--report", dir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	return dir, out
}

// classed are the elements of an HTML file with every class given.
func classed(t *testing.T, path string, classes ...string) []*html.Node {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	var out []*html.Node
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		have := strings.Fields(htmlAttr(n, "class"))
		ok := len(have) > 0
		for _, c := range classes {
			ok = ok && slices.Contains(have, c)
		}
		if ok {
			out = append(out, n)
		}
	}
	return out
}

func htmlAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// scenario run --report on a run with known failovers: the events file
// and summary.json as before, and an index.html whose timeline has one
// lane per node and one marker per failover and takeover of the events;
// every image decodes at the size the page gives it; the --json bytes
// are those of the same run without --report.
func TestScenarioRunReport(t *testing.T) {
	dir, events := twoCrashesReport(t)
	for _, f := range []string{"two-crashes-run0.jsonl", "summary.json", "index.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	index := filepath.Join(dir, "index.html")
	var lanes []string
	for _, n := range classed(t, index, "ov", "lane") {
		lanes = append(lanes, htmlAttr(n, "data-node"))
	}
	if want := []string{"master-1", "master-2", "coreapp-1", "coreapp-2", "coreapp-3", "coreapp-4", "settings"}; !slices.Equal(lanes, want) {
		t.Errorf("lanes %v, want %v", lanes, want)
	}
	for _, kind := range []string{"failover", "takeover"} {
		want := strings.Count(events, `"event":"`+kind+`"`)
		if want == 0 {
			t.Fatalf("the run had no %s: the test shows nothing", kind)
		}
		if got := len(classed(t, index, "marker", kind)); got != want {
			t.Errorf("%d %s markers, want %d (the run's %s events)", got, kind, want, kind)
		}
	}
	imgs := classed(t, index, "plot")
	imgs = append(imgs, timelineImages(t, index)...)
	if len(imgs) < 4 {
		t.Errorf("%d images, want a timeline and the distributions", len(imgs))
	}
	for _, img := range imgs {
		f, err := os.Open(filepath.Join(dir, htmlAttr(img, "src")))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", htmlAttr(img, "src"), err)
		}
		if w, h := htmlAttr(img, "width"), htmlAttr(img, "height"); strconv.Itoa(cfg.Width) != w || strconv.Itoa(cfg.Height) != h {
			t.Errorf("%s is %dx%d, the page says %sx%s", htmlAttr(img, "src"), cfg.Width, cfg.Height, w, h)
		}
	}

	bare := filepath.Join(t.TempDir(), "two-crashes.yaml")
	if err := os.WriteFile(bare, []byte(twoCrashes), 0o644); err != nil {
		t.Fatal(err)
	}
	_, plain, _ := runSplit(t, "scenario", "run", bare, "--target", "sim", "--seed", "7", "--json")
	if plain != events {
		t.Errorf("--report changed the --json output:\nwith:\n%s\nwithout:\n%s", events, plain)
	}
}

// timelineImages are the timelines' img elements.
func timelineImages(t *testing.T, index string) []*html.Node {
	var out []*html.Node
	for _, tl := range classed(t, index, "timeline") {
		for n := range tl.Descendants() {
			if n.Type == html.ElementNode && n.Data == "img" {
				out = append(out, n)
			}
		}
	}
	return out
}

// bench --report plots every measure; sweep --report draws both heat
// maps; neither changes what goes to stdout.
func TestBenchAndSweepReports(t *testing.T) {
	dir := t.TempDir()
	args := []string{"bench", "failover", "--target", "sim", "--runs", "3", "--seed", "1"}
	code, withReport, errs := runSplit(t, append(args, "--report", filepath.Join(dir, "bench"))...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, withReport, errs)
	}
	if _, plain, _ := runSplit(t, args...); plain != withReport {
		t.Errorf("--report changed stdout:\n%s\nwant\n%s", withReport, plain)
	}
	index := filepath.Join(dir, "bench", "index.html")
	if n := len(classed(t, index, "distribution")); n != 4 {
		t.Errorf("%d distribution plots, want 4 (detection, recovery, downtime, epsilon)", n)
	}
	if n := len(classed(t, index, "run")); n != 3 {
		t.Errorf("%d runs in the summary, want 3", n)
	}
	if n := len(classed(t, index, "marker", "failover")); n != 3 {
		t.Errorf("%d failover markers over 3 timelines, want 3", n)
	}
	if !strings.Contains(errs, "report: ") {
		t.Errorf("stderr does not say where the report is: %s", errs)
	}

	code, out, errs := runSplit(t, "sweep", "coreapp-crash", "--target", "sim", "--set", "heartbeat_interval=1,3", "--set", "unhealthy_interval=3,5",
		"--runs", "1", "--seed", "1", "--report", filepath.Join(dir, "sweep"))
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if n := len(classed(t, filepath.Join(dir, "sweep", "index.html"), "heatmap")); n != 2 {
		t.Errorf("%d heat maps, want 2", n)
	}
}
