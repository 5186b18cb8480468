package sim

import (
	"bytes"
	"context"
	"testing"

	"github.com/mcsim/mcsim/scenarios"
)

// TestCallReuseChangesNothing: reusing heartbeat calls (World.hbFree) only
// saves allocations. Runs full of pauses, kills, cuts, slow and lossy
// links (where an answer can come after its timeout, or a call wait in a
// paused callee) print the same bytes with reuse and without.
func TestCallReuseChangesNothing(t *testing.T) {
	soak, err := scenarios.LoadFile("testdata/soak-33.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nemesis, err := scenarios.LoadLibrary("nemesis-soak")
	if err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		sc    *scenarios.Scenario
		seeds int
	}{{nemesis, 10}, {soak, 2}}
	for _, r := range runs {
		for seed := uint64(1); seed <= uint64(r.seeds); seed++ {
			a := reuseRun(t, r.sc, seed, false)
			b := reuseRun(t, r.sc, seed, true)
			if !bytes.Equal(a, b) {
				t.Fatalf("%s seed %d: reusing calls changed the output:\n%s", r.sc.Name, seed, firstDiff(b, a))
			}
		}
	}
}

func reuseRun(t *testing.T, sc *scenarios.Scenario, seed uint64, noReuse bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := scenarios.Run(context.Background(), New(Config{Seed: seed, noCallReuse: noReuse}), sc,
		scenarios.Options{Seed: seed, Epsilon: DefaultEpsilon, Events: &buf}); err != nil {
		t.Fatalf("%s seed %d: %v", sc.Name, seed, err)
	}
	return buf.Bytes()
}
