package report

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// page is what a test reads from index.html: every element with a class,
// and every image.
type page struct {
	elems  []*html.Node
	images []*html.Node
}

func parsePage(t *testing.T, path string) page {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	var p page
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "img" {
			p.images = append(p.images, n)
		}
		if attr(n, "class") != "" {
			p.elems = append(p.elems, n)
		}
	}
	return p
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, c string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), c)
}

// with are the elements that have every class given.
func (p page) with(classes ...string) []*html.Node {
	var out []*html.Node
	for _, n := range p.elems {
		ok := true
		for _, c := range classes {
			ok = ok && hasClass(n, c)
		}
		if ok {
			out = append(out, n)
		}
	}
	return out
}

// A run with two failovers of shard 0 and a kill, on a cluster of two
// masters and three coreapps.
func crashRun() Run {
	return Run{
		Name: "coreapp-crash run 0", Scenario: "coreapp-crash", Target: "sim", Seed: 7, OK: false,
		Replay: "mcsim scenario run coreapp-crash --target sim --seed 7", Duration: 10 * time.Second,
		Masters: []string{"master-1", "master-2"}, Coreapps: []string{"coreapp-1", "coreapp-2", "coreapp-3"}, Shards: 2,
		Faults: []Fault{{Node: "coreapp-1", Kind: "kill", Start: 2 * time.Second}, {Node: "coreapp-3", Kind: "pause", Start: 6 * time.Second, End: 9 * time.Second}},
		Sessions: []Session{
			{Shard: 0, Coreapp: "coreapp-1", Epoch: 1, End: 2 * time.Second},
			{Shard: 1, Coreapp: "coreapp-2", Epoch: 2},
			{Shard: 0, Coreapp: "coreapp-3", Epoch: 3, Start: 5200 * time.Millisecond, End: 8 * time.Second, Silent: [][2]time.Duration{{6 * time.Second, 8 * time.Second}}},
			{Shard: 0, Coreapp: "coreapp-1", Epoch: 4, Start: 9500 * time.Millisecond},
		},
		Terms: []Term{{Master: "master-2", Epoch: 1}},
		Failovers: []Failover{
			{Shard: 0, From: "coreapp-1", To: "coreapp-3", Epoch: 3, ServedUntil: 2 * time.Second, ServedAgain: 5200 * time.Millisecond},
			{Shard: 0, From: "coreapp-3", To: "coreapp-1", Epoch: 4, ServedUntil: 6 * time.Second, ServedAgain: 9500 * time.Millisecond},
		},
		Declarations: []Declaration{{Master: "master-2", Coreapp: "coreapp-1", At: 5100 * time.Millisecond}},
		Violations:   []Violation{{Invariant: "liveness", Details: "shard 0 unserved", At: 9 * time.Second}},
		Changes:      []Change{{At: 7 * time.Second, What: `settings PATCH {"unhealthy_interval":5}`}},
	}
}

// index.html parses; the timeline has a lane per node (masters,
// coreapps, settings) and a marker per failover, each at its moment on
// the time axis; every image decodes at the size the page gives it.
func TestWriteTimelineAndImages(t *testing.T) {
	dir := t.TempDir()
	r := crashRun()
	ms := func(d int) time.Duration { return time.Duration(d) * time.Millisecond }
	path, err := Write(dir, Report{Title: "mcsim scenario run coreapp-crash", Command: "mcsim scenario run coreapp-crash --target sim --seed 7 --report x",
		Runs: []Run{r}, Measures: []Measure{{Name: "failover", Window: Window{Lo: 3 * time.Second, Hi: 4050 * time.Millisecond, Text: "rule1"},
			Series: []Series{{Label: "procs", Values: []time.Duration{ms(3200), ms(3900), ms(4010)}}, {Label: "sim", Values: []time.Duration{ms(3100), ms(3500)}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := parsePage(t, path)

	var lanes []string
	for _, n := range p.with("ov", "lane") {
		lanes = append(lanes, attr(n, "data-node"))
	}
	if want := []string{"master-1", "master-2", "coreapp-1", "coreapp-2", "coreapp-3", "settings"}; !slices.Equal(lanes, want) {
		t.Errorf("lanes %v, want %v", lanes, want)
	}
	if n := len(p.with("ov", "shard-lane")); n != 2 {
		t.Errorf("%d shard lanes, want 2", n)
	}
	fos := p.with("marker", "failover")
	if len(fos) != len(r.Failovers) {
		t.Fatalf("%d failover markers, want %d", len(fos), len(r.Failovers))
	}
	// The lane spans the time axis: a marker's centre sits at its moment.
	lane := p.with("ov", "lane")[0]
	l0, lw := pct(t, lane, "left"), pct(t, lane, "width")
	for i, n := range fos {
		want := l0 + lw*r.Failovers[i].ServedAgain.Seconds()/r.Duration.Seconds()
		if got := pct(t, n, "left") + pct(t, n, "width")/2; math.Abs(got-want) > 0.1 {
			t.Errorf("failover %d marker centred at %.3f%%, want %.3f%% (%v of %v)", i, got, want, r.Failovers[i].ServedAgain, r.Duration)
		}
		if title := attr(n, "title"); !strings.Contains(title, "5200.000 ms") && !strings.Contains(title, "9500.000 ms") {
			t.Errorf("failover %d title %q without its exact milliseconds", i, title)
		}
	}
	for class, want := range map[string]int{"session": 4, "fault": 2, "term": 1} {
		if n := len(p.with("span", class)); n != want {
			t.Errorf("%d %s spans, want %d", n, class, want)
		}
	}
	for class, want := range map[string]int{"declaration": 1, "violation": 1, "change": 1, "takeover": 0} {
		if n := len(p.with("marker", class)); n != want {
			t.Errorf("%d %s markers, want %d", n, class, want)
		}
	}
	if rows := p.with("run"); len(rows) != 1 || attr(rows[0], "data-ok") != "false" || attr(rows[0], "data-seed") != "7" {
		t.Errorf("summary rows: %d", len(rows))
	}
	if replay := p.with("replay"); len(replay) == 0 || replay[0].FirstChild == nil || replay[0].FirstChild.Data != r.Replay {
		t.Errorf("the summary does not give the replay command %q", r.Replay)
	}
	checkImages(t, dir, p, 2)
}

// pct reads left/top/width/height from an overlay's style, in percent.
func pct(t *testing.T, n *html.Node, prop string) float64 {
	t.Helper()
	for _, decl := range strings.Split(attr(n, "style"), ";") {
		k, v, _ := strings.Cut(decl, ":")
		if strings.TrimSpace(k) == prop {
			f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), "%"), 64)
			if err != nil {
				t.Fatalf("style %q: %v", attr(n, "style"), err)
			}
			return f
		}
	}
	t.Fatalf("no %s in style %q", prop, attr(n, "style"))
	return 0
}

// checkImages: every img is a PNG beside index.html, decoding at the
// width and height the page declares; want is how many there are.
func checkImages(t *testing.T, dir string, p page, want int) {
	t.Helper()
	if len(p.images) != want {
		t.Errorf("%d images, want %d", len(p.images), want)
	}
	for _, img := range p.images {
		src := attr(img, "src")
		if strings.Contains(src, "://") || strings.HasPrefix(src, "/") {
			t.Errorf("image %q is not a relative path", src)
			continue
		}
		f, err := os.Open(filepath.Join(dir, src))
		if err != nil {
			t.Error(err)
			continue
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		w, _ := strconv.Atoi(attr(img, "width"))
		h, _ := strconv.Atoi(attr(img, "height"))
		if cfg.Width != w || cfg.Height != h {
			t.Errorf("%s decodes at %dx%d, the page says %dx%d", src, cfg.Width, cfg.Height, w, h)
		}
	}
}

// A sweep's report has the two heat maps over its grid (a skipped
// combination drawn as such), a cap on timelines keeps the failed run,
// and a measure with no values gets no plot.
func TestWriteSweepHeatMapsAndTimelineCap(t *testing.T) {
	dir := t.TempDir()
	nan := math.NaN()
	ok, failed := crashRun(), crashRun()
	ok.OK, ok.Name = true, "passing run"
	failed.Name = "failing run"
	path, err := Write(dir, Report{Title: "mcsim sweep", Runs: []Run{ok, ok, failed}, Timelines: 1,
		Measures: []Measure{{Name: "nothing measured", Series: []Series{{Label: "sim"}}}}, Grid: &Grid{
			RowField: "heartbeat_interval", ColField: "unhealthy_interval", Rows: []string{"1", "2"}, Cols: []string{"2", "3", "5"},
			P99MS:        [][]float64{{2913, 3913, 5913}, {nan, 4847, 6847}},
			FalsePerHour: [][]float64{{12.5, 0, 0}, {nan, 0, 0}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	p := parsePage(t, path)
	if n := len(p.with("heatmap")); n != 2 {
		t.Errorf("%d heat maps, want 2", n)
	}
	tls := p.with("run-timeline")
	if len(tls) != 1 || !strings.Contains(attr(tls[0], "id"), "run-") {
		t.Fatalf("%d timelines, want 1 (the cap)", len(tls))
	}
	if h := tls[0].FirstChild.NextSibling; h == nil || !strings.Contains(h.FirstChild.Data, "failing run") {
		t.Errorf("the one timeline is not the failed run's")
	}
	checkImages(t, dir, p, 3)
}
