package storetest

import "testing"

// TestBackends runs the suite against every backend.
func TestBackends(t *testing.T) {
	for _, b := range Backends {
		t.Run(b.Name, func(t *testing.T) { Run(t, b) })
	}
}
