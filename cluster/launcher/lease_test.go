package launcher

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/health"
)

// A cluster restarted on the same data dir: both masters are secondaries
// while the previous run's lease runs out, then one becomes primary. Each
// output mode says why nobody is primary.
func TestViewSaysItWaitsForThePreviousLease(t *testing.T) {
	waiting := map[string]health.Entry{
		"127.0.0.1:master-1": {Role: "secondary_master"},
		"127.0.0.1:master-2": {Role: "secondary_master"},
	}
	acting := map[string]health.Entry{
		"127.0.0.1:master-1": {Role: "primary_master"},
		"127.0.0.1:master-2": {Role: "secondary_master"},
	}
	polls := []struct {
		entries map[string]health.Entry
		lease   health.Lease
	}{
		{waiting, health.Lease{Holder: "master-1", Epoch: 3, RemainingMS: 23400}},
		{waiting, health.Lease{Holder: "master-1", Epoch: 3, RemainingMS: 23150}},
		{acting, health.Lease{Holder: "master-1", Epoch: 4, RemainingMS: 30000}},
	}
	const note = "no primary: waiting for the previous lease (master-1, epoch 3) to lapse, 24 s left"
	run := func(t *testing.T, cfg Config, each func(i int, out string)) string {
		var out bytes.Buffer
		cfg.Out = &out
		e := newEmitter(cfg)
		e.now = func() time.Time { return time.Date(2026, 1, 1, 21, 14, 3, 0, time.UTC) }
		for i, p := range polls {
			e.health(p.entries, nil)
			e.leaseWait(p.entries, &p.lease)
			e.render()
			if each != nil {
				each(i, out.String())
			}
		}
		return out.String()
	}

	t.Run("plain lines: once per lease", func(t *testing.T) {
		got := run(t, DefaultConfig(), nil)
		if n := strings.Count(got, "no primary: waiting"); n != 1 {
			t.Errorf("%d lease-wait lines, want 1:\n%s", n, got)
		}
		if !strings.Contains(got, "21:14:03.000 "+note+"\n") {
			t.Errorf("output lacks %q:\n%s", note, got)
		}
	})
	t.Run("json: a lease_wait event", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.JSON = true
		got := run(t, cfg, nil)
		want := `{"time":"2026-01-01T21:14:03Z","event":"lease_wait","node":"master-1","epoch":3,"remaining_ms":23400}` + "\n"
		if !strings.Contains(got, want) || strings.Count(got, "lease_wait") != 1 {
			t.Errorf("output lacks one %s:\n%s", want, got)
		}
	})
	t.Run("terminal: the view counts down and clears", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Terminal = true
		cfg.TermSize = func() (int, int, bool) { return 120, 60, true }
		var frames []string
		run(t, cfg, func(i int, out string) { frames = append(frames, out) })
		if !strings.Contains(frames[0], note) {
			t.Errorf("first frame lacks %q:\n%s", note, frames[0])
		}
		last := frames[2][strings.LastIndex(frames[2], "F\x1b[J"):] // the last redraw
		if strings.Contains(last, "no primary") {
			t.Errorf("the frame after the takeover still says there is no primary:\n%s", last)
		}
	})
}
