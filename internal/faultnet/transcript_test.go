package faultnet

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestTranscripts runs testdata/*.txt, each in its own synctest bubble:
// a stream a dialed to b, faults set on both layers as the runner sets
// them, and what each end read and when. Regenerate with
// go test ./internal/faultnet -run Transcripts -rewrite and review the diff.
//
// Vocabulary:
//
//	open                  a dials b; both ends start reading (t=0)
//	set [seed=N]          the table, one link a line ("a>b cut",
//	a>b latency=400ms     "a>b latency=400ms jitter=100ms", "b>a loss=50");
//	                      no lines heals everything
//	write a|b TEXT        that node writes TEXT on its end
//	sleep DUR             virtual time passes
//
// After each command the transcript shows what arrived meanwhile:
// "t=400ms b read "x"" (t since open).
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		synctest.Test(t, func(t *testing.T) {
			var h *streamHarness
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				if d.Cmd != "open" && h == nil {
					t.Fatalf("%s: open first", d.Pos)
				}
				return h.run(t, &h, d)
			})
		})
	})
}

type streamHarness struct {
	start  time.Time
	la, lb *Layer
	p      pair
	ra, rb *recorder
}

func (h *streamHarness) run(t *testing.T, hp **streamHarness, d *datadriven.TestData) string {
	var out strings.Builder
	switch d.Cmd {
	case "open":
		nh := &streamHarness{la: New("a"), lb: New("b"), start: time.Now()}
		nh.p = openPair(t, nh.la, nh.lb)
		nh.ra, nh.rb = record(nh.p.a, nh.start), record(nh.p.b, nh.start)
		*hp, h = nh, nh
	case "set":
		var seed int64 = 1
		if d.HasArg("seed") {
			d.ScanArgs(t, "seed", &seed)
		}
		links, err := parseLinks(d.Input)
		if err != nil {
			t.Fatalf("%s: %v", d.Pos, err)
		}
		for _, l := range []*Layer{h.la, h.lb} {
			if err := l.Set(Table{Links: links, Book: testBook, Seed: seed}); err != nil {
				fmt.Fprintf(&out, "error: %v\n", err)
			}
		}
	case "write":
		if len(d.CmdArgs) != 2 {
			t.Fatalf("%s: write a|b TEXT", d.Pos)
		}
		c := h.p.a
		if d.CmdArgs[0].Key == "b" {
			c = h.p.b
		}
		before := time.Now()
		if _, err := c.Write([]byte(d.CmdArgs[1].Key)); err != nil {
			fmt.Fprintf(&out, "write error: %v\n", err)
		}
		if waited := time.Since(before); waited > 0 {
			fmt.Fprintf(&out, "write blocked %v\n", waited)
		}
	case "sleep":
		if len(d.CmdArgs) != 1 {
			t.Fatalf("%s: sleep DUR", d.Pos)
		}
		dur, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			t.Fatalf("%s: %v", d.Pos, err)
		}
		time.Sleep(dur)
	default:
		t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	}
	synctest.Wait()
	type line struct {
		at   time.Duration
		node string
		data string
	}
	var lines []line
	for _, a := range h.ra.take() {
		lines = append(lines, line{a.at, "a", a.data})
	}
	for _, a := range h.rb.take() {
		lines = append(lines, line{a.at, "b", a.data})
	}
	slices.SortStableFunc(lines, func(x, y line) int { return int(x.at - y.at) })
	for _, l := range lines {
		fmt.Fprintf(&out, "t=%v %s read %q\n", l.at, l.node, l.data)
	}
	return out.String()
}
