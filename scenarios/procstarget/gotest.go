package procstarget

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/mcsim/mcsim/scenarios"
)

// Run runs a scenario (a library NAME or a FILE path, as `mcsim scenario
// run` takes it) against a real cluster of binary (an mcsim executable) and
// returns its verdicts: the same Outcome the command prints.
func Run(ctx context.Context, binary, scenario string, opt scenarios.Options) (scenarios.Outcome, error) {
	sc, err := scenarios.Load(scenario)
	if err != nil {
		return scenarios.Outcome{}, err
	}
	t, err := New(Config{Binary: binary, Seed: opt.Seed})
	if err != nil {
		return scenarios.Outcome{}, err
	}
	return scenarios.Run(ctx, t, sc, opt)
}

// Test runs a scenario from a Go test and fails tb with every failed
// expectation and violation, each with the seed that replays it. binary
// is an mcsim executable (build it with `go build ./cmd/mcsim` first, or
// point MCSIM_BINARY at one).
func Test(tb testing.TB, binary, scenario string, seed uint64) scenarios.Outcome {
	tb.Helper()
	var progress strings.Builder
	out, err := Run(tb.Context(), binary, scenario, scenarios.Options{Seed: seed, Progress: &progress})
	if err != nil {
		tb.Fatalf("scenario %s: %v", scenario, err)
	}
	tb.Logf("scenario %s, seed %d:\n%s", scenario, seed, progress.String())
	for _, e := range out.Expectations {
		if !e.OK {
			measured := "not measured"
			if e.Measured != nil {
				measured = e.Measured.String()
			}
			tb.Errorf("scenario %s (seed %d): steps[%d] expect %s: %s, bound %s: %s", scenario, seed, e.Index, e.What, measured, e.Bound, e.Detail)
		}
	}
	for _, v := range out.Violations {
		tb.Errorf("scenario %s (seed %d): invariant %s: %s", scenario, seed, v.Invariant, v.Details)
	}
	return out
}

// BinaryFromEnv is $MCSIM_BINARY, or "mcsim" on the PATH; it fails tb
// when neither is there.
func BinaryFromEnv(tb testing.TB) string {
	tb.Helper()
	if b := os.Getenv("MCSIM_BINARY"); b != "" {
		return b
	}
	tb.Skip("set MCSIM_BINARY to an mcsim binary (go build -o /tmp/mcsim ./cmd/mcsim) to run scenarios from Go tests")
	return ""
}
