package sim

import (
	"context"
	"testing"
	"time"

	"github.com/mcsim/mcsim/scenarios"
)

// TestAllocationsPerEvent keeps the simulator's allocations in check: the
// issue's cluster under the random nemesis, for three simulated minutes,
// allocates less than once per event (1.4 times before the heartbeat
// call was reused and the stepped events stopped escaping). Allocation
// is most of the garbage collector's work, which on one core is a fifth
// of a run.
func TestAllocationsPerEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three simulated minutes")
	}
	sc, err := scenarios.LoadFile("testdata/soak-33.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range sc.Steps {
		if sc.Steps[i].Action == "nemesis" {
			sc.Steps[i].For = 3 * time.Minute
		}
	}
	var events uint64
	allocs := testing.AllocsPerRun(1, func() {
		tg := New(Config{Seed: 1})
		if _, err := scenarios.Run(context.Background(), tg, sc, scenarios.Options{Seed: 1, Epsilon: DefaultEpsilon}); err != nil {
			t.Fatal(err)
		}
		events = tg.World().events
	})
	perEvent := allocs / float64(events)
	t.Logf("%.0f allocations, %d events: %.2f per event", allocs, events, perEvent)
	if perEvent >= 1 {
		t.Errorf("%.2f allocations per event, want fewer than 1", perEvent)
	}
}
