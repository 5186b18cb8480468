package sim

import (
	"testing"
	"time"
)

// TestTimeAt: timeAt builds the very time.Time zero.Add would (the same
// struct, so == and every printed time agree), at the start, across
// second boundaries and centuries on.
func TestTimeAt(t *testing.T) {
	w := newWorld(1, Sabotage{})
	for _, ns := range []int64{0, 1, 999_999_999, 1_000_000_000, 1_500_000_001, int64(90 * time.Minute), int64(100 * 365 * 24 * time.Hour), -1, -1_000_000_001} {
		if got, want := w.timeAt(ns), w.zero.Add(time.Duration(ns)); got != want {
			t.Errorf("timeAt(%d) = %#v, want %#v", ns, got, want)
		}
	}
}
