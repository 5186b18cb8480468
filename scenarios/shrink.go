package scenarios

import (
	"fmt"
	"slices"
	"time"
)

// ShrinkResolution is the finest step Shrink takes on a duration: a
// shorter undo or a later start by less is not worth another run, and
// the offsets it proposes stay whole milliseconds, readable in the file.
const ShrinkResolution = 100 * time.Millisecond

// Shrink makes a failing nemesis schedule smaller while fails still says
// it fails, deterministically and greedily, in three passes:
//
//  1. drop faults: ddmin over the list (each half alone, then the
//     complement of each of ever smaller chunks, down to dropping each
//     fault alone), then the last fault too when one is left;
//  2. shorten each remaining fault's undo: halve it while it still
//     fails, then bisect between the last failing and the first passing
//     length, to ShrinkResolution (never below it: a fault is undone);
//  3. move each fault later, the last first: as late as it goes (it must
//     still be undone before the next fault starts, and the last no later
//     than the input's faults of its step ended), else bisect towards it.
//     A later start lengthens the quiet time before the fault, so the
//     cluster is plainly settled when it comes, and a fault that needs no
//     particular moment shows that it does not.
//
// schedule is in the order the nemesis drew it (Outcome.Schedule): each
// step's faults in time order. Every candidate keeps the faults' order
// and the nemesis's rule of one fault at a time. fails is called at most
// budget times, on a copy (a candidate already judged is not judged
// again); when the budget is spent, the smallest schedule found so far is
// returned. schedule itself must be one that fails (the run that drew it
// failed): Shrink does not call fails on it, and returns it (a copy) when
// nothing smaller fails; it never returns a schedule for which fails
// returned false. Call fails on schedule first when it may not reproduce
// (ExplicitScenario says when).
func Shrink(schedule []ScheduledFault, fails func([]ScheduledFault) bool, budget int) []ScheduledFault {
	s := &shrinker{fails: fails, budget: budget, judged: map[string]bool{}}
	ends := map[int]time.Duration{}
	for _, f := range schedule {
		ends[f.Step] = max(ends[f.Step], f.At+f.Undo)
	}
	cur := s.drop(slices.Clone(schedule))
	cur = s.shorten(cur)
	return s.delay(cur, ends)
}

type shrinker struct {
	fails  func([]ScheduledFault) bool
	budget int
	calls  int
	judged map[string]bool // by scheduleKey
}

func (s *shrinker) spent() bool { return s.calls >= s.budget }

// try says whether cand fails; false, without asking, once the budget is
// spent.
func (s *shrinker) try(cand []ScheduledFault) bool {
	key := scheduleKey(cand)
	if v, ok := s.judged[key]; ok {
		return v
	}
	if s.spent() {
		return false
	}
	s.calls++
	v := s.fails(slices.Clone(cand))
	s.judged[key] = v
	return v
}

func scheduleKey(fs []ScheduledFault) string { return fmt.Sprintf("%v", fs) }

func (s *shrinker) drop(cur []ScheduledFault) []ScheduledFault {
	n := 2
	for len(cur) >= 2 && !s.spent() {
		chunks := split(cur, n)
		reduced := false
		for _, c := range chunks {
			if s.try(c) {
				cur, n, reduced = c, 2, true
				break
			}
		}
		// With two chunks each complement is the other chunk: tried.
		for i := 0; !reduced && n > 2 && i < len(chunks); i++ {
			if rest := without(chunks, i); s.try(rest) {
				cur, n, reduced = rest, max(n-1, 2), true
			}
		}
		if !reduced {
			if n >= len(cur) {
				break
			}
			n = min(2*n, len(cur))
		}
	}
	if len(cur) == 1 && s.try(nil) {
		return nil
	}
	return cur
}

// split cuts fs into n runs of nearly equal length, in order.
func split(fs []ScheduledFault, n int) [][]ScheduledFault {
	var out [][]ScheduledFault
	start := 0
	for i := range n {
		end := (i + 1) * len(fs) / n
		if end > start {
			out = append(out, fs[start:end:end])
		}
		start = end
	}
	return out
}

// without is every chunk but the i-th, joined.
func without(chunks [][]ScheduledFault, i int) []ScheduledFault {
	var out []ScheduledFault
	for j, c := range chunks {
		if j != i {
			out = append(out, c...)
		}
	}
	return out
}

func (s *shrinker) shorten(cur []ScheduledFault) []ScheduledFault {
	for i := range cur {
		if cur[i].Undo == 0 {
			continue // a restart: nothing to undo
		}
		withUndo := func(d time.Duration) []ScheduledFault {
			c := slices.Clone(cur)
			c[i].Undo = d
			return c
		}
		good, bad := cur[i].Undo, time.Duration(0)
		for !s.spent() {
			half := max(ShrinkResolution, (good / 2).Round(time.Millisecond))
			if half >= good {
				break
			}
			if !s.try(withUndo(half)) {
				bad = half
				break
			}
			good = half
		}
		if bad > 0 {
			good = s.bisect(good, bad, withUndo)
		}
		cur = withUndo(good)
	}
	return cur
}

func (s *shrinker) delay(cur []ScheduledFault, ends map[int]time.Duration) []ScheduledFault {
	for i := len(cur) - 1; i >= 0 && !s.spent(); i-- {
		limit := ends[cur[i].Step]
		if j := slices.IndexFunc(cur[i+1:], func(f ScheduledFault) bool { return f.Step == cur[i].Step }); j >= 0 {
			limit = cur[i+1+j].At
		}
		latest := limit - cur[i].Undo
		if latest <= cur[i].At {
			continue
		}
		withAt := func(d time.Duration) []ScheduledFault {
			c := slices.Clone(cur)
			c[i].At = d
			return c
		}
		at := latest
		if !s.try(withAt(latest)) {
			at = s.bisect(cur[i].At, latest, withAt)
		}
		cur = withAt(at)
	}
	return cur
}

// bisect narrows [good, bad] (either way round) to ShrinkResolution: good
// fails, bad does not (or was not judged); it returns the failing end
// nearest bad. Midpoints are whole milliseconds.
func (s *shrinker) bisect(good, bad time.Duration, with func(time.Duration) []ScheduledFault) time.Duration {
	for !s.spent() {
		gap := bad - good
		if gap.Abs() <= ShrinkResolution {
			break
		}
		mid := (good + gap/2).Round(time.Millisecond)
		if mid == good || mid == bad {
			break
		}
		if s.try(with(mid)) {
			good = mid
		} else {
			bad = mid
		}
	}
	return good
}
