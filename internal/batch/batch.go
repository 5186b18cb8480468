// Package batch hands out the action slices the pure machines return
// (master/failover, master/primary) from a shared array instead of
// allocating one per Step: a machine steps thousands of times a second in
// the simulator, and most steps return one or two actions.
//
// Each slice handed out is the caller's: it is capped at its length, so an
// append by the caller copies it, and the array's later slices never
// overlap it. An array is dropped (and a new one made) once it is nearly
// full; the garbage collector frees it when no slice of it is held.
package batch

// Slices is one machine's source of action slices. The zero value is
// ready to use.
type Slices[T any] struct {
	arr  []T
	used int
}

// size is how many elements each array holds: large enough that most
// Steps share one, small enough that a held slice keeps little alive.
const size = 256

// Start returns an empty slice to append a Step's actions to. Appends
// within its capacity write into the array; beyond it, append copies it
// out, as for any slice.
func (s *Slices[T]) Start() []T {
	if len(s.arr)-s.used < size/8 {
		s.arr, s.used = make([]T, size), 0
	}
	return s.arr[s.used:s.used]
}

// Finish takes out, a slice begun by the last Start, as returned: the
// array's part it fills is the caller's from now on. It returns out capped
// at its length, or nil if it is empty (what a Step with no actions
// returns).
func (s *Slices[T]) Finish(out []T) []T {
	if len(out) == 0 {
		return nil
	}
	if s.used < len(s.arr) && &out[0] == &s.arr[s.used] {
		s.used += len(out)
	}
	return out[:len(out):len(out)]
}
