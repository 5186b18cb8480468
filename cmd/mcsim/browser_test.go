package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds the browser: $MCSIM_CHROMIUM, /usr/bin/chromium, or
// chromium on PATH. Without one the test skips on a developer's machine
// and fails in CI (MCSIM_CI set: .ci/run installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("MCSIM_CHROMIUM"), "/usr/bin/chromium"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("MCSIM_CI") != "" {
		t.Fatal("chromium not found and MCSIM_CI is set: .ci/run installs it (apt-get install -y chromium)")
	}
	t.Skip("chromium not found (apt-get install chromium); in CI (MCSIM_CI=1) this fails instead")
	return ""
}

// A generated report in headless Chromium: no console error, no
// exception, no image that fails to load; one lane per node and one
// marker per failover; hovering a failover marker shows its exact
// milliseconds, and the cursor's readout there says the marker's moment.
func TestReportInBrowser(t *testing.T) {
	exe := chromium(t)
	dir, events := twoCrashesReport(t)
	wantFailovers := strings.Count(events, `"event":"failover"`)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// Every console message, exception and browser log entry, in order,
	// up to a sentinel the test logs last.
	const sentinel = "mcsim-report-test-end"
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	var problems []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range chromedp.Console(bctx) {
			if err != nil {
				problems = append(problems, "console: "+err.Error())
				return
			}
			if m.Text == sentinel {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				problems = append(problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
			}
		}
	}()

	start := time.Now()
	run := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, a); err != nil {
			t.Fatalf("chromium: %s: %v", what, err)
		}
	}
	eval := func(js string, into any) {
		t.Helper()
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[[]byte](js))
		if err != nil {
			t.Fatalf("chromium: %s: %v", js, err)
		}
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatalf("%s: %s: %v", js, raw, err)
		}
	}
	run("open the report", chromedp.Navigate("file://"+filepath.Join(dir, "index.html")))
	run("wait for the page", chromedp.WaitReady("body"))
	var lanes []string
	var failovers, images, brokenImages int
	eval(`Array.from(document.querySelectorAll(".timeline .lane")).map(e => e.dataset.node)`, &lanes)
	eval(`document.querySelectorAll(".timeline .marker.failover").length`, &failovers)
	eval(`document.images.length`, &images)
	eval(`Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length`, &brokenImages)
	// A real mouse over the first failover marker shows its tooltip.
	var at struct{ X, Y float64 }
	eval(`(() => { const m = document.querySelector(".timeline .marker.failover"); m.scrollIntoView({block: "center"});
		const r = m.getBoundingClientRect(); return {X: r.left + r.width / 2, Y: r.top + r.height / 2}; })()`, &at)
	run("hover the failover marker", chromedp.MouseEvent(chromedp.MouseMoved, at.X, at.Y))
	var tip, label, readout string
	var markerMS, runMS float64
	eval(`document.getElementById("tip").textContent`, &tip)
	eval(`document.querySelector(".timeline .marker.failover").getAttribute("aria-label")`, &label)
	eval(`document.querySelector(".run-timeline .readout").textContent`, &readout)
	eval(`parseFloat(document.querySelector(".timeline .marker.failover").dataset.ms)`, &markerMS)
	eval(`parseFloat(document.querySelector(".timeline").dataset.seconds) * 1000`, &runMS)
	run("log the sentinel", chromedp.Evaluate[chromedp.Void](`console.log("`+sentinel+`")`))
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the console's messages did not arrive")
	}
	t.Logf("browser checks took %v", time.Since(start).Round(time.Millisecond))
	for _, p := range problems {
		t.Errorf("in the browser: %s", p)
	}
	if want := []string{"master-1", "master-2", "coreapp-1", "coreapp-2", "coreapp-3", "coreapp-4", "settings"}; strings.Join(lanes, ",") != strings.Join(want, ",") {
		t.Errorf("lanes %v, want one per node %v", lanes, want)
	}
	if failovers != wantFailovers || wantFailovers == 0 {
		t.Errorf("%d failover markers, want %d (the run's failover events)", failovers, wantFailovers)
	}
	if images == 0 || brokenImages > 0 {
		t.Errorf("%d of %d images did not load", brokenImages, images)
	}
	// The cursor's readout over the marker's centre is the marker's moment,
	// to within a pixel of the time axis (about 1/1000 of the run).
	var cursorMS float64
	if _, err := fmt.Sscanf(readout, "cursor: t = %f ms", &cursorMS); err != nil {
		t.Errorf("readout %q: %v", readout, err)
	} else if d := cursorMS - markerMS; d < -runMS/500 || d > runMS/500 {
		t.Errorf("readout over the failover marker says %.1f ms, the marker is at %.1f ms", cursorMS, markerMS)
	}
	if tip == "" || tip != label || !strings.Contains(tip, " ms") {
		t.Errorf("hovering the failover marker shows %q, want its label with milliseconds %q", tip, label)
	}
}
