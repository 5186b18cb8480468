package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/bench"
)

// runSplit executes the CLI in-process with stdout and stderr apart.
func runSplit(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	root := newRootCommand()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	var ex *exitError
	switch {
	case err == nil:
		return exitOK, out.String(), errb.String()
	case errors.As(err, &ex):
		return ex.code, out.String(), errb.String() + ex.msg
	}
	return exitUsage, out.String(), errb.String() + err.Error()
}

// mcsim bench on the simulator (virtual time: these runs take
// milliseconds): the distributions inside the rule, the --json shape, an
// impossible bound failing the gate with a replay that replays, and
// usage errors before anything runs.
func TestBenchCommand(t *testing.T) {
	t.Run("failover inside rule 1, as JSON", func(t *testing.T) {
		code, out, errs := runSplit(t, "bench", "failover", "--target", "sim", "--runs", "5", "--seed", "1", "--json")
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		var whats []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var d map[string]any
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			for _, k := range []string{"n", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "bound", "outside"} {
				if _, ok := d[k]; !ok {
					t.Errorf("line without %s: %s", k, line)
				}
			}
			if d["event"] != "distribution" || d["target"] != "sim" || d["n"] != 5.0 || d["outside"] != 0.0 {
				t.Errorf("line %s", line)
			}
			if d["what"] == "recovery" && (d["min_ms"].(float64) < 3000 || d["max_ms"].(float64) > 4050 || d["bound"] != "rule1: [3s, 4s] + ε 50ms") {
				t.Errorf("recovery outside rule 1: %s", line)
			}
			whats = append(whats, d["what"].(string))
		}
		if strings.Join(whats, ",") != "detection,recovery,downtime,epsilon" {
			t.Errorf("measures %v", whats)
		}
		if !strings.Contains(errs, "seed 1 (replay: --seed 1)") {
			t.Errorf("stderr lacks the seed: %s", errs)
		}
	})
	t.Run("every kind passes with its own measures", func(t *testing.T) {
		for _, k := range []string{"takeover", "handover", "pause"} {
			code, out, errs := runSplit(t, "bench", k, "--target", "sim", "--runs", "3", "--seed", "3")
			if code != exitOK || !strings.Contains(out, "sim (ε 50ms): PASS") {
				t.Errorf("%s: exit %d\n%s\n%s", k, code, out, errs)
			}
		}
	})
	t.Run("an impossible bound exits 1 and names the runs", func(t *testing.T) {
		code, out, errs := runSplit(t, "bench", "failover", "--target", "sim", "--runs", "3", "--seed", "1", "--unhealthy-interval", "3s", "--within", "1s")
		if code != exitFailure {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
		}
		if !strings.Contains(out, "forced: ≤ 1s") || !strings.Contains(out, "FAIL: 3 of 3 runs outside") {
			t.Errorf("stdout:\n%s", out)
		}
		i := strings.Index(errs, "replay: mcsim ")
		if i < 0 || !strings.Contains(errs, "OUTSIDE failover run 0 seed 1 on sim: recovery") {
			t.Fatalf("stderr:\n%s", errs)
		}
		replay := strings.Fields(errs[i+len("replay: mcsim ") : i+strings.Index(errs[i:], "\n")])
		code, out, _ = runSplit(t, replay...)
		if code != exitFailure || !strings.Contains(out, "1 runs per target, seeds 1..1") {
			t.Errorf("replay %v: exit %d\n%s", replay, code, out)
		}
	})
	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"bench", "crash"},
			{"bench"},
			{"bench", "failover", "--target", "nowhere"},
			{"bench", "failover", "--runs", "0"},
			{"bench", "failover", "--heartbeat-interval", "1500ms"},
			{"bench", "failover", "--coreapps", "2"},
			{"bench", "takeover", "--masters", "1"},
			{"bench", "failover", "--shards", "3", "--coreapps", "4"},
			{"bench", "failover", "--compare", "--target", "sim"},
		} {
			if code, out, errs := runSplit(t, args...); code != exitUsage {
				t.Errorf("mcsim %v: exit %d, want 2\n%s%s", args, code, out, errs)
			}
		}
	})
}

// --compare prints the targets side by side, each with its own ε in its
// window.
func TestBenchCompareTable(t *testing.T) {
	var results []benchResult
	for _, tg := range []struct {
		name string
		eps  time.Duration
		rec  time.Duration
	}{{"procs", 250 * time.Millisecond, 3600 * time.Millisecond}, {"sim", 50 * time.Millisecond, 3400 * time.Millisecond}} {
		b := bench.New(bench.Failover, tg.eps, 0)
		f := time.Unix(0, 0)
		b.Add(bench.Run{Fault: f, Detected: f.Add(tg.rec - 10*time.Millisecond), Recovered: f.Add(tg.rec), Downtimes: []time.Duration{tg.rec}},
			bench.Schedule{{Heartbeat: time.Second, Unhealthy: 3 * time.Second}})
		results = append(results, benchResult{target: tg.name, eps: tg.eps, b: b})
	}
	var out bytes.Buffer
	f := benchFlags{runs: 1, seed: 4}
	f.cfg = bench.Config{Masters: 2, Coreapps: 3, Shards: 2, Heartbeat: time.Second, Unhealthy: 3 * time.Second}
	printBenchTable(&out, bench.Failover, f, results)
	lines := strings.Split(out.String(), "\n")
	if !strings.Contains(lines[1], "procs n") || !strings.Contains(lines[1], "sim n") {
		t.Errorf("header %q", lines[1])
	}
	var recovery string
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "recovery ") {
			recovery = l
			break
		}
	}
	if !strings.Contains(recovery, "3600.0") || !strings.Contains(recovery, "3400.0") || strings.Index(recovery, "3600.0") > strings.Index(recovery, "3400.0") {
		t.Errorf("recovery row %q: want procs then sim", recovery)
	}
	for _, want := range []string{"recovery  procs rule1: [3s, 4s] + ε 250ms", "recovery  sim   rule1: [3s, 4s] + ε 50ms", "procs (ε 250ms): PASS", "sim (ε 50ms): PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}
