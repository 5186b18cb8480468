package procstarget_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/scenarios/procstarget"
)

// A Go test of your own can run a library scenario (or a file) against a
// real cluster and get the verdicts mcsim scenario run prints.
func ExampleRun() {
	out, err := procstarget.Run(context.Background(), "/tmp/mcsim", "coreapp-crash", scenarios.Options{Seed: 42})
	if err != nil {
		fmt.Println("could not run:", err)
		return
	}
	for _, e := range out.Expectations {
		fmt.Printf("steps[%d] %s: %v (%s) ok=%v\n", e.Index, e.What, e.Measured, e.Bound, e.OK)
	}
}

// In a test, Test fails the test with every failed expectation and
// violation, and the seed that replays it.
func ExampleTest() {
	var t *testing.T // your test's
	procstarget.Test(t, procstarget.BinaryFromEnv(t), "primary-killed", 1)
}

// The library's process-fault scenarios pass on real processes. This is
// the package's own use of Test: two short library scenarios.
func TestLibraryScenariosOnRealProcesses(t *testing.T) {
	bin := buildBinary(t)
	for _, name := range []string{"primary-killed", "coreapp-graceful-stop"} {
		t.Run(name, func(t *testing.T) {
			out := procstarget.Test(t, bin, name, 1)
			if !out.OK || len(out.Expectations) == 0 {
				t.Errorf("%s: %+v", name, out)
			}
		})
	}
}

// buildBinary builds the mcsim binary the nodes run into the test's temp
// dir, or skips a -short run: every test here starts real processes.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real processes")
	}
	bin := filepath.Join(t.TempDir(), "mcsim")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/mcsim").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
