package sim

import (
	"context"
	"testing"
)

// TestSelftest is `mcsim scenario selftest` as a test: every mechanism,
// switched off alone, is caught by the invariant it exists for within
// SelftestSeeds seeds and shrunk to a schedule that still shows it, while
// the same scenario with every mechanism on is clean for every seed.
func TestSelftest(t *testing.T) {
	cases, err := SelftestCases()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != len(Mechanisms()) {
		t.Fatalf("%d cases for %d mechanisms", len(cases), len(Mechanisms()))
	}
	for _, c := range cases {
		t.Run(c.Mechanism.Name, func(t *testing.T) {
			r, err := Selftest(context.Background(), c, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Dirty != 0 {
				t.Fatalf("seed %d fails with every mechanism on", r.Dirty)
			}
			if r.Caught == nil {
				t.Fatalf("not caught: %s", r.Found)
			}
			if !r.Shrunk.Reproduced || len(r.Shrunk.Minimal) > len(r.Shrunk.Original) {
				t.Fatalf("shrink: reproduced %v, %d → %d faults", r.Shrunk.Reproduced, len(r.Shrunk.Original), len(r.Shrunk.Minimal))
			}
			t.Logf("caught at seed %d by %s; %d nemesis faults shrunk to %d in %d runs", r.Caught.Seed, c.Want, len(r.Shrunk.Original), len(r.Shrunk.Minimal), r.Shrunk.Runs)
		})
	}
}
