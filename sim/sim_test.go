package sim

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mcsim/mcsim/scenarios"
)

// runJSON runs one scenario in the simulator and returns its --json bytes.
func runJSON(t *testing.T, sc *scenarios.Scenario, seed uint64, sab Sabotage) ([]byte, scenarios.Outcome) {
	t.Helper()
	var buf bytes.Buffer
	out, err := scenarios.Run(context.Background(), New(Config{Seed: seed, Sabotage: sab}), sc,
		scenarios.Options{Seed: seed, Epsilon: DefaultEpsilon, Events: &buf})
	if err != nil {
		t.Fatalf("%s seed %d: %v", sc.Name, seed, err)
	}
	return buf.Bytes(), out
}

// TestLibrarySameBytesTwice is madsim's check: every library scenario, run
// twice with the same seed, prints the same --json bytes; and it passes.
func TestLibrarySameBytesTwice(t *testing.T) {
	lib, err := scenarios.Library()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lib {
		t.Run(e.Name, func(t *testing.T) {
			sc, err := scenarios.LoadLibrary(e.Name)
			if err != nil {
				t.Fatal(err)
			}
			seeds := []uint64{1, 2, 3}
			if sc.Workload != nil {
				// Traffic runs are thousands of messages each: one seed
				// here, more in traffic_test.go's own checks.
				seeds = seeds[:1]
			}
			for _, seed := range seeds {
				a, out := runJSON(t, sc, seed, Sabotage{})
				b, _ := runJSON(t, sc, seed, Sabotage{})
				if !bytes.Equal(a, b) {
					t.Fatalf("seed %d: two runs printed different bytes:\n%s\n----\n%s", seed, firstDiff(a, b), "")
				}
				if !out.OK {
					t.Errorf("seed %d: the run failed: %+v %+v (%s)", seed, out.Expectations, out.Violations, out.Aborted)
				}
			}
		})
	}
}

// TestSeedsDiffer: another seed is another run (the seed reaches the
// network and the selectors), or the byte check above proves nothing.
func TestSeedsDiffer(t *testing.T) {
	sc, err := scenarios.LoadLibrary("coreapp-crash")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := runJSON(t, sc, 1, Sabotage{})
	b, _ := runJSON(t, sc, 2, Sabotage{})
	if bytes.Equal(a, b) {
		t.Fatal("seeds 1 and 2 printed the same bytes")
	}
}

func firstDiff(a, b []byte) string {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return fmt.Sprintf("line %d:\n%s\n%s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(la), len(lb))
}

// TestFidelity runs scenarios of things the simulator once did unlike the
// real processes (testdata/fidelity/*.yaml, each says what); every one
// must pass for several seeds.
func TestFidelity(t *testing.T) {
	files, err := filepath.Glob("testdata/fidelity/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fidelity scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			sc, err := scenarios.LoadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for seed := uint64(1); seed <= 5; seed++ {
				if _, out := runJSON(t, sc, seed, Sabotage{}); !out.OK {
					t.Errorf("seed %d: %+v %+v", seed, out.Expectations, out.Violations)
				}
			}
		})
	}
}
