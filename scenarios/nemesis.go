package scenarios

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A nemesis is a seeded schedule of random faults (SCENARIOS.md): one
// fault at a time, each undone before the next, the whole schedule drawn
// from the run's seed and printed before it starts, so a failing run is
// replayed with the same --seed. The faults, each on one victim:
//
//   - kill: SIGKILL, restarted every/2 later;
//   - stop: SIGTERM, restarted every/2 later;
//   - pause: SIGSTOP, resumed every/2 later;
//   - restart: restart a running node at once;
//   - partition: the victim cut from every other master and from the
//     settings service (both ways), healed every/2 later;
//   - isolate: the victim cut from every other node, healed every/2 later;
//   - delay: everything the victim sends is slowed by heartbeat/2 ± heartbeat/4
//     (below the unhealthy threshold: no failover should follow);
//   - loss: 30% of what the victim sends is lost;
//   - clock: the victim's clock runs at half speed.
//
// The victims are coreapps and masters; max_down bounds how many coreapps
// may be down at once (default: the spare count, coreapps − shards; with
// one fault at a time it only matters when it is 0: then only masters are
// faulted). The gap between faults is drawn uniformly in [every/2,
// 3·every/2]. When the step's `for` ends, the last fault is undone.
//
// The schedule a run drew is in its Outcome (Schedule): ExplicitScenario
// writes it out as plain steps, Shrink makes a failing one smaller, and
// Render writes the result as a file that replays it without the seed.

// What the nemesis's network and clock faults do, shared with
// ExplicitScenario so that a replay does exactly the same.
const (
	nemesisLossPercent = 30
	nemesisClockRate   = 0.5
)

// nemesisDelay is the added latency and jitter of a nemesis delay under
// heartbeat interval hb: below the unhealthy threshold, so no failover
// should follow.
func nemesisDelay(hb time.Duration) (latency, jitter time.Duration) { return hb / 2, hb / 4 }

// ScheduledFault is one fault a nemesis step drew (Outcome.Schedule), or
// one a shrinker proposes instead (Shrink, ExplicitScenario).
type ScheduledFault struct {
	// Step is the index of the nemesis step that drew it: a scenario may
	// have several, each with its own schedule.
	Step int
	// At is the offset from the nemesis step's start, not the run's: the
	// nemesis times its faults from there, so a schedule stays valid when
	// the steps before it take a different time (a wait).
	At time.Duration
	// Kind is one of the nemesis faults: kill, stop, pause, restart,
	// partition, isolate, delay, loss, clock.
	Kind string
	// Node is the victim's id (master-N, coreapp-N).
	Node string
	// Undo is how long after At the fault is undone; 0 for restart, the
	// one fault with nothing to undo.
	Undo time.Duration
}

func (f ScheduledFault) String() string {
	s := fmt.Sprintf("steps[%d] +%v %s %s", f.Step, f.At, f.Kind, f.Node)
	if f.Undo > 0 {
		s += fmt.Sprintf(" for %v", f.Undo)
	}
	return s
}

// schedule draws a nemesis schedule for a run of length total.
func (r *runner) schedule(step int, n *Nemesis, total time.Duration, masters, coreapps, shards int) []ScheduledFault {
	maxDown := n.MaxDown
	if maxDown < 0 {
		maxDown = coreapps - shards
	}
	var victims []string
	for i := 1; i <= masters; i++ {
		victims = append(victims, fmt.Sprintf("master-%d", i))
	}
	if maxDown > 0 {
		for i := 1; i <= coreapps; i++ {
			victims = append(victims, fmt.Sprintf("coreapp-%d", i))
		}
	}
	var out []ScheduledFault
	at := time.Duration(0)
	for {
		at += n.Every/2 + time.Duration(r.rng.Int64N(int64(n.Every)+1))
		if at >= total {
			return out
		}
		f := ScheduledFault{Step: step, At: at, Kind: n.Faults[r.rng.IntN(len(n.Faults))], Node: victims[r.rng.IntN(len(victims))]}
		if f.Kind != "restart" {
			f.Undo = min(n.Every/2, total-at)
		}
		out = append(out, f)
		at += f.Undo
	}
}

func (r *runner) nemesis(ctx context.Context, st Step) error {
	total := st.For
	if total == 0 {
		total = time.Minute
	}
	masters, coreapps := r.sc.Cluster.Masters, r.sc.Cluster.Coreapps
	sched := r.schedule(st.Index, st.Nemesis, total, masters, coreapps, r.shards)
	r.drawn = append(r.drawn, sched...)
	var plan []string
	for _, f := range sched {
		plan = append(plan, fmt.Sprintf("+%v %s %s", f.At.Round(time.Millisecond), f.Kind, f.Node))
	}
	r.progress("nemesis schedule (seed %d): %s", r.opt.Seed, strings.Join(plan, ", "))
	start := r.t.Now()
	for _, f := range sched {
		if err := r.sleep(ctx, start.Add(f.At).Sub(r.t.Now())); err != nil {
			return err
		}
		at := r.t.Now()
		netBefore := r.netSeq
		if err := r.nemesisDo(ctx, f, at); err != nil {
			return fmt.Errorf("nemesis: %s %s: %w", f.Kind, f.Node, err)
		}
		r.progress("nemesis: %s %s", f.Kind, f.Node)
		if f.Undo == 0 {
			r.endFault(f.Node, "")
			continue
		}
		if err := r.sleep(ctx, f.Undo); err != nil {
			return err
		}
		if err := r.nemesisUndo(ctx, f, netBefore); err != nil {
			return fmt.Errorf("nemesis: undoing %s %s: %w", f.Kind, f.Node, err)
		}
		r.endFault(f.Node, "")
		r.progress("nemesis: %s %s undone", f.Kind, f.Node)
	}
	return r.sleep(ctx, start.Add(total).Sub(r.t.Now()))
}

// nemesisDo applies one drawn fault.
func (r *runner) nemesisDo(ctx context.Context, f ScheduledFault, at time.Time) error {
	hb, _ := r.intervals()
	switch f.Kind {
	case "kill":
		return r.recordProcess(f, at, r.t.Kill(ctx, f.Node))
	case "stop":
		return r.recordProcess(f, at, r.t.Stop(ctx, f.Node))
	case "pause":
		return r.recordProcess(f, at, r.t.Pause(ctx, f.Node))
	case "restart":
		return r.recordProcess(f, at, r.t.Restart(ctx, f.Node))
	case "clock":
		return r.setClock(ctx, f.Node, nemesisClockRate, time.Time{})
	}
	everyone, err := r.everyone(ctx)
	if err != nil {
		return err
	}
	others := slices.DeleteFunc(everyone, func(o string) bool { return o == f.Node })
	// The victim is the node the fault names: its links to the others
	// are faulted, not the others themselves.
	nf := netFault{kind: f.Kind, touches: []string{f.Node}}
	switch f.Kind {
	case "partition":
		side := []string{"settings"}
		for _, o := range others {
			if strings.HasPrefix(o, "master-") {
				side = append(side, o)
			}
		}
		nf.links = cut([][]string{{f.Node}, side})
	case "isolate":
		nf.links = cut([][]string{{f.Node}, others})
	case "delay", "loss":
		for _, o := range others {
			l := NetLink{From: f.Node, To: o}
			if f.Kind == "delay" {
				l.Latency, l.Jitter = nemesisDelay(hb)
			} else {
				l.LossPercent = nemesisLossPercent
			}
			nf.links = append(nf.links, l)
		}
	}
	return r.addNet(ctx, nf, at)
}

func (r *runner) recordProcess(f ScheduledFault, at time.Time, err error) error {
	if err == nil {
		r.faults = append(r.faults, fault{node: f.Node, kind: f.Kind, start: at})
	}
	return err
}

// nemesisUndo undoes one drawn fault: resume, restart, heal (only the
// network faults it made: those numbered after netBefore) or real time.
func (r *runner) nemesisUndo(ctx context.Context, f ScheduledFault, netBefore int) error {
	switch f.Kind {
	case "pause":
		return r.t.Resume(ctx, f.Node)
	case "kill", "stop":
		return r.t.Restart(ctx, f.Node)
	case "clock":
		return r.setClock(ctx, f.Node, 1, time.Time{})
	}
	return r.healNet(ctx, func(nf netFault) bool { return nf.id > netBefore })
}
