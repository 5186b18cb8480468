package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mcsimCmd runs the built binary and returns its exit code, stdout, stderr.
func mcsimCmd(ctx context.Context, t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	code := exitCode(cmd.Run())
	return code, out.String(), errb.String()
}

// Scenarios on real processes, from outside: the library's coreapp crash
// passes with its failover measured against rule 1, an expectation that
// cannot hold fails the run (exit 1) and is named, a typo is a
// line:column error (exit 2) before anything starts, and no process or
// data dir is left behind.
func TestScenarioRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real clusters")
	}
	bin := buildMcsim(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	parent := t.TempDir()

	code, out, errs := mcsimCmd(ctx, t, bin, "scenario", "run", "coreapp-crash", "--seed", "7", "--json", "--data", parent)
	if code != 0 {
		t.Fatalf("coreapp-crash: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	var failover map[string]any
	kinds := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("--json line %q: %v", sc.Text(), err)
		}
		if _, ok := ev["run"]; !ok {
			t.Errorf("line without run: %s", sc.Text())
		}
		if _, ok := ev["t"]; !ok {
			t.Errorf("line without t: %s", sc.Text())
		}
		kinds[ev["event"].(string)]++
		if ev["event"] == "expect" && ev["what"] == "failover" {
			failover = ev
		}
	}
	if kinds["start"] != 1 || kinds["summary"] != 1 || kinds["failover"] < 1 || kinds["step"] < 8 {
		t.Errorf("event kinds %v", kinds)
	}
	if failover == nil || failover["ok"] != true || failover["bound"] != "rule1: [3s, 4.25s]" {
		t.Fatalf("failover expectation %v", failover)
	}
	if m := failover["measured_ms"].(float64); m < 3000 || m > 4250 {
		t.Errorf("measured %v ms, outside rule 1's window", m)
	}
	t.Logf("coreapp-crash: failover measured %.1f ms", failover["measured_ms"])
	if !strings.Contains(errs, "seed 7 (replay: --seed 7)") || !strings.Contains(errs, "steps[1] kill owner(0)") {
		t.Errorf("progress on stderr lacks the seed or the steps:\n%s", errs)
	}

	// wait: stable, not served: a kill that lands while the owner's
	// Assign is still being answered fails the assignment, and the master
	// moves the shard at once (seen in CI: "failed over" in 2 ms), which
	// no bound could call impossible.
	impossible := filepath.Join(t.TempDir(), "impossible.yaml")
	os.WriteFile(impossible, []byte("name: impossible\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - wait: stable\n    timeout: 30s\n  - kill: owner(0)\n    as: crash\n  - expect: failover\n    shard: 0\n    after: crash\n    within: 100ms\n"), 0o644)
	code, out, errs = mcsimCmd(ctx, t, bin, "scenario", "run", impossible, "--data", parent)
	if code != exitFailure || !strings.Contains(out, "FAIL steps[2] expect failover") || !strings.Contains(out, "(≤ 100ms)") {
		t.Errorf("impossible: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1 naming steps[2]", code, out, errs)
	}

	typo := filepath.Join(t.TempDir(), "typo.yaml")
	os.WriteFile(typo, []byte("name: typo\nsteps:\n  - wait: served\n  - kill: coreap-1\n"), 0o644)
	code, _, errs = mcsimCmd(ctx, t, bin, "scenario", "run", typo, "--data", parent)
	if code != exitUsage || !strings.Contains(errs, "typo.yaml:4:11: steps[1].kill: unknown node selector \"coreap-1\"") {
		t.Errorf("typo: exit %d, stderr %q; want exit 2 with file:line:col", code, errs)
	}
	// The same scenario in the simulator: the same verdict, from the
	// same binary.
	if code, out, errs := mcsimCmd(ctx, t, bin, "scenario", "run", "coreapp-crash", "--target", "sim", "--seed", "7"); code != exitOK || !strings.Contains(out, "PASS coreapp-crash run 0 seed 7") {
		t.Errorf("--target sim: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}

	left, _ := filepath.Glob(filepath.Join(parent, "mcsim-scenario-*"))
	if len(left) > 0 {
		t.Errorf("data dirs left behind without --keep: %v", left)
	}
}
