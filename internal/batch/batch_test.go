package batch

import (
	"slices"
	"testing"
)

// TestSlicesDoNotOverlap: slices handed out keep their contents whatever
// later Steps append, whether they fit the array or outgrow it, and
// whatever the caller appends to them.
func TestSlicesDoNotOverlap(t *testing.T) {
	var s Slices[int]
	var kept [][]int
	var want [][]int
	next := 0
	for step := range 2000 {
		out := s.Start()
		for range step % 7 * (1 + step%50/49*40) { // mostly 0..6, now and then 40..240
			out = append(out, next)
			next++
		}
		out = s.Finish(out)
		if len(out) == 0 {
			if out != nil {
				t.Fatalf("step %d: an empty Step returned %v, want nil", step, out)
			}
			continue
		}
		if cap(out) != len(out) {
			t.Fatalf("step %d: cap %d, len %d", step, cap(out), len(out))
		}
		kept = append(kept, out)
		want = append(want, slices.Clone(out))
		if step%3 == 0 {
			_ = append(out, -1) // the caller's append must not reach the next slice
		}
	}
	for i := range kept {
		if !slices.Equal(kept[i], want[i]) {
			t.Fatalf("slice %d changed: %v, was %v", i, kept[i], want[i])
		}
	}
}
