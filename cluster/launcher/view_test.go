package launcher

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mcsim/mcsim/health"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// screen is the smallest terminal that understands what the view writes:
// text, newlines, "cursor N lines up to column 1" and "clear to the end
// of the screen". Any other escape sequence fails the test: clearing the
// whole screen (ESC[2J) or homing the cursor (ESC[H) would erase what the
// user had on it. Lines that scroll off the top land in scrollback.
type screen struct {
	t          *testing.T
	rows       int
	lines      []string // the visible lines, top first
	row        int      // the cursor's line in lines
	scrollback []string
}

var escape = regexp.MustCompile(`^\x1b\[(\d*)([A-Za-z])`)

func (s *screen) Write(p []byte) (int, error) {
	for rest := string(p); rest != ""; {
		if m := escape.FindStringSubmatch(rest); m != nil {
			n, _ := strconv.Atoi(m[1])
			switch m[2] {
			case "F":
				s.row = max(0, s.row-n)
			case "J":
				s.lines = s.lines[:s.row]
			default:
				s.t.Fatalf("the view wrote %q: it must not clear or home the screen", m[0])
			}
			rest = rest[len(m[0]):]
			continue
		}
		line, more, nl := strings.Cut(rest, "\n")
		if i := strings.IndexByte(line, 0x1b); i >= 0 {
			line, more, nl = line[:i], rest[i:], false
		}
		for len(s.lines) <= s.row {
			s.lines = append(s.lines, "")
		}
		s.lines[s.row] += line
		if nl {
			s.row++
			if s.row >= s.rows { // the top line scrolls off
				s.scrollback = append(s.scrollback, s.lines[0])
				s.lines, s.row = s.lines[1:], s.row-1
			}
		}
		rest = more
	}
	return len(p), nil
}

func liveView(t *testing.T, cols, rows int, fg *bool) (*emitter, *screen) {
	scr := &screen{t: t, rows: rows, lines: []string{"user@host:~$ mcsim up"}, row: 1}
	cfg := DefaultConfig()
	cfg.Out, cfg.Terminal, cfg.Shards = scr, true, 2
	cfg.Foreground = func() bool { return *fg }
	cfg.TermSize = func() (int, int, bool) { return cols, rows, true }
	e := newEmitter(cfg)
	e.now = func() time.Time { return time.Date(2026, 12, 1, 21, 14, 3, 512e6, time.UTC) }
	e.urls(Addrs{HTTP: "127.0.0.1:9090", GRPC: "127.0.0.1:40000", Gossip: "127.0.0.1:40001", Gateway: "127.0.0.1:40002"})
	return e, scr
}

// Redrawn in place: the user's line above the view survives every
// redraw, only the last frame is on the screen, nothing reaches the
// scrollback, and no line is wider than the terminal.
func TestLiveViewRedrawsInPlaceWithoutErasingTheTerminal(t *testing.T) {
	fg := true
	e, scr := liveView(t, 60, 30, &fg)
	t0 := time.Date(2026, 12, 1, 21, 14, 0, 0, time.UTC)
	const connect, disconnect = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT
	for i, step := range []func(){
		func() {},
		func() { e.gateway([]*mcsimv1.GatewayEvent{gwEvent(1, t0, connect, 0, 1, "coreapp-1")}) },
		func() {
			e.health(map[string]health.Entry{"127.0.0.1:coreapp-1": {Role: "coreapp", GatewayStatus: "connected", Shards: []int{0}, PID: 41,
				Metrics: "http://127.0.0.1:45555/metrics/with/a/very/long/path/that/does/not/fit"}}, nil)
		},
		func() {
			e.gateway([]*mcsimv1.GatewayEvent{gwEvent(2, t0.Add(time.Second), disconnect, 0, 1, "coreapp-1"),
				gwEvent(3, t0.Add(4*time.Second), connect, 0, 2, "coreapp-3")})
		},
	} {
		step()
		e.render()
		if scr.lines[0] != "user@host:~$ mcsim up" {
			t.Fatalf("after render %d the user's line is gone: %q", i, scr.lines)
		}
		if n := strings.Count(strings.Join(scr.lines, "\n"), "mcsim cluster (data"); n != 1 {
			t.Fatalf("after render %d the screen shows %d frames, want 1:\n%s", i, n, strings.Join(scr.lines, "\n"))
		}
		for _, l := range scr.lines {
			if utf8.RuneCountInString(l) >= 60 {
				t.Errorf("line of %d columns on a 60-column terminal: %q", utf8.RuneCountInString(l), l)
			}
		}
	}
	if len(scr.scrollback) > 0 {
		t.Errorf("frames scrolled into the scrollback: %q", scr.scrollback)
	}
	if !strings.Contains(strings.Join(scr.lines, "\n"), "shard 0: coreapp-1 → coreapp-3 (epoch 2)") {
		t.Errorf("the failover is not in the view:\n%s", strings.Join(scr.lines, "\n"))
	}

	e.stopping()
	e.stopped()
	tail := scr.lines[len(scr.lines)-2:]
	if tail[0] != "stopping…" || tail[1] != "stopped: 1 failover, 0 takeovers, longest downtime 3000 ms (shard 0)" {
		t.Errorf("the view ends with %q, want stopping… and the summary", tail)
	}
}

// A frame taller than the terminal is cut, so it never scrolls.
func TestLiveViewFitsAShortTerminal(t *testing.T) {
	fg := true
	e, scr := liveView(t, 100, 12, &fg)
	entries := map[string]health.Entry{}
	for i := range 30 {
		entries[fmt.Sprintf("127.0.0.1:coreapp-%02d", i)] = health.Entry{Role: "coreapp", GatewayStatus: "disconnected"}
	}
	for range 3 {
		e.health(entries, nil)
		e.dirty = true
		e.render()
	}
	if len(scr.scrollback) > 1 { // the user's line may scroll off once
		t.Errorf("%d lines scrolled into the scrollback on a 12-row terminal", len(scr.scrollback))
	}
	if !strings.Contains(strings.Join(scr.lines, "\n"), "more lines") {
		t.Errorf("a cut frame does not say so:\n%s", strings.Join(scr.lines, "\n"))
	}
}

// In the background (mcsim up &) nothing is redrawn: plain lines only,
// no escape sequences at all; back in the foreground the view returns.
func TestLiveViewInTheBackgroundPrintsPlainLines(t *testing.T) {
	fg := false
	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.Out, cfg.Terminal = &out, true
	cfg.Foreground = func() bool { return fg }
	e := newEmitter(cfg)
	e.urls(Addrs{HTTP: "127.0.0.1:9090"})
	e.gateway([]*mcsimv1.GatewayEvent{gwEvent(1, time.Now(), mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT, 0, 1, "coreapp-1")})
	e.render()
	e.stopping()
	if bytes.Contains(out.Bytes(), []byte("\x1b")) {
		t.Errorf("background output has escape sequences: %q", out.String())
	}
	if !strings.Contains(out.String(), "gateway: shard 0 connected by coreapp-1") || !strings.Contains(out.String(), "stopping…") {
		t.Errorf("background output lacks the plain lines: %q", out.String())
	}
	fg = true
	out.Reset()
	e.dirty = true
	e.render()
	if !strings.Contains(out.String(), "shards (per the gateway)") {
		t.Errorf("back in the foreground, no view: %q", out.String())
	}
}

func TestFitFrame(t *testing.T) {
	for _, tc := range []struct {
		lines      []string
		cols, rows int
		want       []string
	}{
		{[]string{"abc", "defgh"}, 5, 10, []string{"abc", "def…"}},
		{[]string{"a → b"}, 80, 10, []string{"a → b"}},
		{[]string{"1", "2", "3", "4", "5", "6", "7", "8"}, 80, 6, []string{"1", "2", "3", "  … 4 more lines (a taller terminal shows them; `mcsim status` lists all)", "8"}},
	} {
		got := fitFrame(tc.lines, tc.cols, tc.rows)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("fitFrame(%q, %d, %d) = %q, want %q", tc.lines, tc.cols, tc.rows, got, tc.want)
		}
	}
}
