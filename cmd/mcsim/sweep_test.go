package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/sim"
)

// mcsim sweep on the simulator: one row per valid combination in flag
// order, the invalid one skipped with the settings service's reason, the
// failover times of the scenario's expectation, false failovers counted
// only where no fault explains them, and bad flags refused before
// anything runs.
func TestSweepCommand(t *testing.T) {
	args := []string{"sweep", "coreapp-crash", "--target", "sim", "--set", "heartbeat_interval=1,3", "--set", "unhealthy_interval=3,5", "--runs", "3", "--seed", "1"}
	t.Run("table", func(t *testing.T) {
		code, out, errs := runSplit(t, args...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 6 {
			t.Fatalf("want a title, a header, 3 rows and 1 skipped, got:\n%s", out)
		}
		if f := strings.Fields(lines[1]); strings.Join(f, " ") != "heartbeat_interval unhealthy_interval runs n p50 ms p99 ms failed false false/h" {
			t.Errorf("header %q", lines[1])
		}
		for i, want := range [][]string{{"1", "3"}, {"1", "5"}, {"3", "5"}} {
			f := strings.Fields(lines[2+i])
			if len(f) != 9 || f[0] != want[0] || f[1] != want[1] || f[2] != "3" || f[3] != "3" || f[6] != "0" || f[7] != "0" {
				t.Errorf("row %d: %q, want hb %s ui %s, 3 runs, 3 failovers, none failed, no false failover", i, lines[2+i], want[0], want[1])
			}
		}
		if !strings.HasPrefix(lines[5], "skipped heartbeat_interval=3 unhealthy_interval=3: ") || !strings.Contains(lines[5], "unhealthy_interval: must be greater than heartbeat_interval (3)") {
			t.Errorf("skipped line %q", lines[5])
		}
		if !strings.Contains(errs, "seed 1") {
			t.Errorf("stderr without the seed: %s", errs)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, out, errs := runSplit(t, append(args, "--json")...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		var evs []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev map[string]any
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			evs = append(evs, ev)
		}
		if len(evs) != 4 {
			t.Fatalf("want 4 lines, one per combination, got %d:\n%s", len(evs), out)
		}
		for i, ev := range evs {
			set := ev["settings"].(map[string]any)
			if i == 2 {
				if set["heartbeat_interval"] != 3.0 || set["unhealthy_interval"] != 3.0 || !strings.Contains(ev["skipped"].(string), "must be greater than") {
					t.Errorf("line %d: want the skipped 3/3 combination, got %v", i, ev)
				}
				continue
			}
			if ev["n"] != 3.0 || ev["failed"] != 0.0 || ev["false_failovers"] != 0.0 || ev["runs"] != 3.0 {
				t.Errorf("line %d: %v", i, ev)
			}
			// rule 1: the failover comes in [unhealthy, unhealthy + heartbeat] + ε.
			ui, hb := set["unhealthy_interval"].(float64)*1000, set["heartbeat_interval"].(float64)*1000
			if p50, p99 := ev["p50_ms"].(float64), ev["p99_ms"].(float64); p50 < ui || p99 > ui+hb+50 || p50 > p99 {
				t.Errorf("line %d: p50 %v p99 %v outside rule 1 for %v", i, p50, p99, set)
			}
		}
	})
	t.Run("false failovers on a jittery network", func(t *testing.T) {
		code, out, errs := runSplit(t, "sweep", "../../docs/jittery-network.yaml", "--set", "unhealthy_interval=2,10", "--runs", "3", "--seed", "1", "--json")
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var low, high map[string]any
		_ = json.Unmarshal([]byte(lines[0]), &low)
		_ = json.Unmarshal([]byte(lines[1]), &high)
		if low["false_failovers"].(float64) == 0 || low["false_per_hour"].(float64) <= 0 {
			t.Errorf("unhealthy_interval 2 over 1 s ± 900 ms: want false failovers, got %v", low)
		}
		if high["false_failovers"] != 0.0 {
			t.Errorf("unhealthy_interval 10: want no false failover (the kill explains its declaration), got %v", high)
		}
	})
	// A declaration after a cut or a pause is explained by it: the
	// failover is timed, not counted as false.
	for _, sc := range []string{"partition-primary-owner", "coreapp-pause-long"} {
		t.Run("explained by "+sc, func(t *testing.T) {
			code, out, errs := runSplit(t, "sweep", sc, "--set", "unhealthy_interval=5", "--runs", "2", "--seed", "1", "--json")
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, out, errs)
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &ev); err != nil {
				t.Fatalf("%q: %v", out, err)
			}
			if ev["n"] != 2.0 || ev["false_failovers"] != 0.0 {
				t.Errorf("want 2 failovers timed and none false, got %v", ev)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no --set", []string{"sweep", "coreapp-crash"}, "--set: at least one"},
		{"a --set without values", []string{"sweep", "coreapp-crash", "--set", "unhealthy_interval="}, "empty value"},
		{"an unknown field", []string{"sweep", "coreapp-crash", "--set", "unhealthy_intervl=3,5"}, "unhealthy_intervl: unknown field"},
		{"an unknown scenario", []string{"sweep", "no-such-scenario", "--set", "unhealthy_interval=3"}, "no-such-scenario"},
		{"a bad target", []string{"sweep", "coreapp-crash", "--target", "moon", "--set", "unhealthy_interval=3"}, "--target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runSplit(t, tc.args...)
			if code != exitUsage || !strings.Contains(errs, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 naming %q", code, out, errs, tc.want)
			}
		})
	}
}

// The recorder keeps the intervals the run started with and each live
// change of them, which is what sweep's false-failover window follows.
func TestRecordedIntervalsFollowSet(t *testing.T) {
	sc, err := scenarios.Load("live-interval-change")
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecordedTarget(sim.New(sim.Config{Seed: 1}), false)
	o, err := scenarios.Run(t.Context(), rec.asTarget(), sc, scenarios.Options{Seed: 1})
	if err != nil || !o.OK {
		t.Fatalf("run: %v, ok %v", err, o.OK)
	}
	_ = rec.Close()
	if len(rec.intervals) != 2 {
		t.Fatalf("intervals %+v, want the start and the set", rec.intervals)
	}
	first, set := rec.intervals[0], rec.intervals[1]
	if first.Heartbeat != 5*time.Second || first.Unhealthy != 30*time.Second ||
		set.Heartbeat != time.Second || set.Unhealthy != 3*time.Second || set.At.Before(first.At) {
		t.Errorf("intervals %+v, want 5s/30s, then 1s/3s", rec.intervals)
	}
}
