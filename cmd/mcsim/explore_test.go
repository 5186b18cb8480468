package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explore and selftest from the command line: exit codes, the minimal
// scenario written and replayable, the --json lines, byte-identical runs.
func TestSimCommands(t *testing.T) {
	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"scenario", "explore", "nemesis-soak", "--target", "procs"},
			{"scenario", "explore", "nemesis-soak", "--seeds", "9..3"},
			{"scenario", "explore", "nemesis-soak", "--seeds", "x"},
			{"scenario", "explore", "nemesis-soak", "--workers", "0"},
			{"scenario", "explore", "nemesis-soak", "--out", "/nonexistent/dir"},
			{"scenario", "explore", "no-such-scenario"},
			{"scenario", "selftest", "--workers", "0"},
			{"scenario", "run", "coreapp-crash", "--target", "nowhere"},
		} {
			if code, out := run(t, args...); code != exitUsage {
				t.Errorf("mcsim %v: exit %d, want 2: %s", args, code, out)
			}
		}
	})
	t.Run("a clean range exits 0", func(t *testing.T) {
		code, out := run(t, "scenario", "explore", "coreapp-crash", "--target", "sim", "--seeds", "1..20", "--json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, out)
		}
		var sum map[string]any
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum["event"] != "explore" || sum["seeds"] != 20.0 || sum["failing"] != 0.0 {
			t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
		}
	})
	t.Run("a failing run is shrunk, written and replays", func(t *testing.T) {
		// slow-answers as it was: 20% loss on a stream fails about one
		// run in 25 (four losses in a row hold the answers past
		// unhealthy_interval).
		dir := t.TempDir()
		b, err := os.ReadFile("../../scenarios/library/slow-answers.yaml")
		if err != nil {
			t.Fatal(err)
		}
		lossy := strings.Replace(strings.Replace(string(b), "percent: 5}", "percent: 40}", 1), "name: slow-answers", "name: lossy", 1)
		file := filepath.Join(dir, "lossy.yaml")
		if err := os.WriteFile(file, []byte(lossy), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := run(t, "scenario", "explore", file, "--target", "sim", "--seeds", "1..200", "--out", dir)
		if code != exitFailure {
			t.Fatalf("exit %d, want 1: %s", code, out)
		}
		i := strings.Index(out, "replay: ")
		if i < 0 {
			t.Fatalf("no replay command in:\n%s", out)
		}
		replay := strings.Fields(strings.SplitN(out[i+len("replay: "):], "\n", 2)[0])
		if replay[0] != "mcsim" {
			t.Fatalf("replay %q", replay)
		}
		if code, out := run(t, replay[1:]...); code != exitFailure {
			t.Fatalf("the minimal scenario passed on replay (exit %d):\n%s", code, out)
		}
	})
	t.Run("sim runs print the same bytes", func(t *testing.T) {
		_, a := run(t, "scenario", "run", "coreapp-crash", "--target", "sim", "--seed", "7", "--json")
		_, b := run(t, "scenario", "run", "coreapp-crash", "--target", "sim", "--seed", "7", "--json")
		if a != b || !strings.Contains(a, `"event":"summary"`) {
			t.Fatalf("two runs differ or printed no summary:\n%s\n---\n%s", a, b)
		}
	})
}

// webhook-sink refuses bad flags before it listens.
func TestWebhookSinkUsage(t *testing.T) {
	for _, args := range [][]string{
		{"webhook-sink", "--fail", "130%"},
		{"webhook-sink", "--fail", "lots"},
		{"webhook-sink", "--listen", "nope"},
		{"webhook-sink", "--latency", "-1s"},
		{"webhook-sink", "--down-for", "-2s"},
	} {
		if code, out := run(t, args...); code != exitUsage {
			t.Errorf("mcsim %v: exit %d, want 2: %s", args, code, out)
		}
	}
}
