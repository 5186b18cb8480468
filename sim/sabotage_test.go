package sim

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSabotageOnlyInSim: the switches that disable a safety mechanism
// are called from this package only, never from a real driver (master,
// coreapp, gateway, settings) or a command's flags.
func TestSabotageOnlyInSim(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	calls := regexp.MustCompile(`\.(DisableEpochFencing|DisableLeaseFence|DisableDeadline|DisableOwnClockCheck)\(`)
	found := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "tools") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range calls.FindAllString(string(b), -1) {
			rel, _ := filepath.Rel(root, path)
			if filepath.Dir(rel) != "sim" {
				t.Errorf("%s calls %s: only the simulator may disable a safety mechanism", rel, m)
			}
			found++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The scan must see the simulator's own calls, or it scans nothing.
	if found < 4 {
		t.Fatalf("found %d calls of the switches in the module, want at least the simulator's 4", found)
	}
}
