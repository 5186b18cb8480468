package scenarios

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func faults(t *testing.T, lines ...string) []ScheduledFault {
	t.Helper()
	out := make([]ScheduledFault, len(lines))
	for i, l := range lines {
		out[i] = parseFault(t, "test", l)
	}
	return out
}

// soakSchedule is a schedule as nemesis-soak draws one: a minute, a fault
// every ~6 s, each undone 3 s later.
func soakSchedule(t *testing.T) []ScheduledFault {
	return faults(t,
		"steps[1] +4.2s pause master-1 for 3s",
		"steps[1] +12s partition coreapp-3 for 3s",
		"steps[1] +19.5s kill coreapp-2 for 10s",
		"steps[1] +33s restart master-2",
		"steps[1] +38s clock coreapp-1 for 3s",
		"steps[1] +45s delay master-2 for 3s",
		"steps[1] +52s loss coreapp-4 for 3s",
	)
}

// judge wraps a predicate, counting its calls and remembering every
// schedule it passed.
type judge struct {
	fails  func([]ScheduledFault) bool
	calls  int
	passed map[string]bool
	asked  []string
}

func newJudge(fails func([]ScheduledFault) bool) *judge {
	return &judge{fails: fails, passed: map[string]bool{}}
}

func (j *judge) call(s []ScheduledFault) bool {
	j.calls++
	j.asked = append(j.asked, fmt.Sprint(s))
	v := j.fails(s)
	if !v {
		j.passed[fmt.Sprint(s)] = true
	}
	return v
}

// checkShrunk fails the test when got is not a schedule Shrink may
// return for in: in itself or one judged failing, its faults a
// subsequence of in's (the same kinds on the same nodes, in order), one
// at a time, none past the end of in's faults of its step.
func checkShrunk(t *testing.T, in, got []ScheduledFault, j *judge) {
	t.Helper()
	if j.passed[fmt.Sprint(got)] {
		t.Errorf("returned %v, which passed", got)
	}
	if fmt.Sprint(got) != fmt.Sprint(in) && !slices.Contains(j.asked, fmt.Sprint(got)) {
		t.Errorf("returned %v, never judged", got)
	}
	ends := map[int]time.Duration{}
	for _, f := range in {
		ends[f.Step] = max(ends[f.Step], f.At+f.Undo)
	}
	k := 0
	for i, f := range got {
		for k < len(in) && (in[k].Step != f.Step || in[k].Kind != f.Kind || in[k].Node != f.Node) {
			k++
		}
		if k == len(in) {
			t.Errorf("returned %v: fault %d is not in order among %v", got, i, in)
			return
		}
		if f.At < in[k].At || (f.Kind == "restart") != (f.Undo == 0) || f.Undo > in[k].Undo || f.At+f.Undo > ends[f.Step] {
			t.Errorf("returned %v: fault %d moved earlier, grew, or outlasts its step (was %v)", got, i, in[k])
		}
		if i > 0 && got[i-1].Step == f.Step && got[i-1].At+got[i-1].Undo > f.At {
			t.Errorf("returned %v: fault %d starts before the one before it is undone", got, i)
		}
		k++
	}
}

// The contract's case: only a kill of coreapp-2 longer than 3 s matters.
// Shrink keeps that fault alone, as short as still fails (to its
// resolution), as late as its step allows.
func TestShrinkKeepsTheOneFaultThatMatters(t *testing.T) {
	in := soakSchedule(t)
	j := newJudge(func(s []ScheduledFault) bool {
		return slices.ContainsFunc(s, func(f ScheduledFault) bool {
			return f.Kind == "kill" && f.Node == "coreapp-2" && f.Undo > 3*time.Second
		})
	})
	got := Shrink(in, j.call, 100)
	checkShrunk(t, in, got, j)
	if len(got) != 1 || got[0].Kind != "kill" || got[0].Node != "coreapp-2" {
		t.Fatalf("shrunk to %v", got)
	}
	if u := got[0].Undo; u <= 3*time.Second || u > 3*time.Second+ShrinkResolution {
		t.Errorf("undo %v: want the shortest above 3s, to %v", u, ShrinkResolution)
	}
	if want := 55*time.Second - got[0].Undo; got[0].At != want {
		t.Errorf("at +%v: want +%v, undone when the input's last fault was", got[0].At, want)
	}
	if j.calls > 40 {
		t.Errorf("%d calls for 7 faults", j.calls)
	}
	// The same input, the same questions, the same answer.
	j2 := newJudge(j.fails)
	if again := Shrink(in, j2.call, 100); fmt.Sprint(again) != fmt.Sprint(got) || strings.Join(j2.asked, "\n") != strings.Join(j.asked, "\n") {
		t.Errorf("a second shrink asked\n%s\nand gave %v", strings.Join(j2.asked, "\n"), again)
	}
}

// A violation that needs two faults keeps both, in their order; each is
// shortened to the resolution and moved as late as the other allows.
func TestShrinkKeepsEveryFaultANeededPairNeeds(t *testing.T) {
	in := soakSchedule(t)
	has := func(s []ScheduledFault, kind, node string) bool {
		return slices.ContainsFunc(s, func(f ScheduledFault) bool { return f.Kind == kind && f.Node == node })
	}
	j := newJudge(func(s []ScheduledFault) bool { return has(s, "pause", "master-1") && has(s, "loss", "coreapp-4") })
	got := Shrink(in, j.call, 200)
	checkShrunk(t, in, got, j)
	want := "[steps[1] +54.8s pause master-1 for 100ms steps[1] +54.9s loss coreapp-4 for 100ms]"
	if fmt.Sprint(got) != want {
		t.Errorf("shrunk to %v\nwant        %s", got, want)
	}
}

// A fault that must come before a moment is moved up to it, not past.
func TestShrinkMovesAFaultAsLateAsStillFails(t *testing.T) {
	in := soakSchedule(t)
	j := newJudge(func(s []ScheduledFault) bool {
		return slices.ContainsFunc(s, func(f ScheduledFault) bool { return f.Kind == "clock" && f.At < 47*time.Second })
	})
	got := Shrink(in, j.call, 200)
	checkShrunk(t, in, got, j)
	if len(got) != 1 || got[0].Kind != "clock" || got[0].At >= 47*time.Second || got[0].At < 47*time.Second-ShrinkResolution {
		t.Errorf("shrunk to %v: want the clock fault alone just before +47s", got)
	}
}

// A violation that needs no fault at all shrinks to no fault.
func TestShrinkToNothing(t *testing.T) {
	in := soakSchedule(t)
	j := newJudge(func([]ScheduledFault) bool { return true })
	if got := Shrink(in, j.call, 100); len(got) != 0 {
		t.Errorf("shrunk to %v", got)
	}
	if j.calls > 3 {
		t.Errorf("%d calls: a half, the other half's half, nothing", j.calls)
	}
}

// fails is asked at most budget times, and what comes back failed (or is
// the input: budget 0 asks nothing).
func TestShrinkObeysItsBudget(t *testing.T) {
	in := soakSchedule(t)
	for budget := range 30 {
		j := newJudge(func(s []ScheduledFault) bool {
			return slices.ContainsFunc(s, func(f ScheduledFault) bool { return f.Node == "coreapp-2" }) && len(s) < 6
		})
		got := Shrink(in, j.call, budget)
		if j.calls > budget {
			t.Errorf("budget %d: %d calls", budget, j.calls)
		}
		checkShrunk(t, in, got, j)
		if budget == 0 && fmt.Sprint(got) != fmt.Sprint(in) {
			t.Errorf("budget 0: %v", got)
		}
	}
}

// Shrink owns what it asks about: a predicate that scribbles on its
// argument changes nothing.
func TestShrinkHandsOutCopies(t *testing.T) {
	in := soakSchedule(t)
	orig := fmt.Sprint(in)
	got := Shrink(in, func(s []ScheduledFault) bool {
		ok := len(s) <= 3
		for i := range s {
			s[i].Node = "scribbled"
		}
		return ok
	}, 100)
	if fmt.Sprint(in) != orig || strings.Contains(fmt.Sprint(got), "scribbled") {
		t.Errorf("input %v, result %v", in, got)
	}
}

// Over random schedules of two nemesis steps and arbitrary (but
// repeatable) verdicts, Shrink never returns a schedule that passed,
// never breaks the nemesis's rules, and stays within budget.
func TestShrinkNeverReturnsAPassingSchedule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := nemesisFaults
	for trial := range 200 {
		var in []ScheduledFault
		for step := 1; step <= 2; step++ {
			at := time.Duration(0)
			for range rng.IntN(8) {
				at += time.Duration(rng.Int64N(int64(5 * time.Second)))
				f := ScheduledFault{Step: step, At: at, Kind: kinds[rng.IntN(len(kinds))], Node: fmt.Sprintf("coreapp-%d", 1+rng.IntN(4))}
				if f.Kind != "restart" {
					f.Undo = time.Duration(1 + rng.Int64N(int64(4*time.Second)))
				}
				in = append(in, f)
				at += f.Undo
			}
		}
		salt := rng.Uint64()
		verdicts := map[string]bool{}
		j := newJudge(func(s []ScheduledFault) bool {
			k := fmt.Sprint(s)
			if _, ok := verdicts[k]; !ok {
				verdicts[k] = rand.New(rand.NewPCG(salt, uint64(len(verdicts)))).IntN(3) > 0
			}
			return verdicts[k]
		})
		budget := rng.IntN(60)
		got := Shrink(in, j.call, budget)
		if j.calls > budget {
			t.Errorf("trial %d: %d calls, budget %d", trial, j.calls, budget)
		}
		checkShrunk(t, in, got, j)
	}
}

// The schedule Shrink returns is one ExplicitScenario takes.
func TestAShrunkScheduleIsReplayable(t *testing.T) {
	sc, err := LoadLibrary("nemesis-soak")
	if err != nil {
		t.Fatal(err)
	}
	in := soakSchedule(t)
	if _, err := ExplicitScenario(sc, in); err != nil {
		t.Fatal(err)
	}
	var replayErr error
	got := Shrink(in, func(s []ScheduledFault) bool {
		if _, err := ExplicitScenario(sc, s); err != nil {
			replayErr = err
		}
		return len(s) >= 2
	}, 200)
	if replayErr != nil || len(got) != 2 {
		t.Errorf("shrunk to %v; %v", got, replayErr)
	}
}

// Each nemesis step's faults move within their own step: the last of one
// step is bounded by that step's end, not by the next step's first fault.
func TestShrinkMovesFaultsWithinTheirStep(t *testing.T) {
	in := faults(t,
		"steps[1] +2s kill coreapp-1 for 3s",
		"steps[1] +9s pause coreapp-2 for 3s",
		"steps[3] +1s clock master-1 for 3s",
		"steps[3] +8s stop coreapp-3 for 3s",
	)
	j := newJudge(func(s []ScheduledFault) bool { return len(s) == 4 })
	got := Shrink(in, j.call, 200)
	checkShrunk(t, in, got, j)
	want := "[steps[1] +11.8s kill coreapp-1 for 100ms steps[1] +11.9s pause coreapp-2 for 100ms steps[3] +10.8s clock master-1 for 100ms steps[3] +10.9s stop coreapp-3 for 100ms]"
	if fmt.Sprint(got) != want {
		t.Errorf("shrunk to %v\nwant        %s", got, want)
	}
}
