package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// A nemesis is a seeded schedule of random faults (SCENARIOS.md): one
// fault at a time, each undone before the next, the whole schedule drawn
// from the run's seed and printed before it starts, so a failing run is
// replayed with the same --seed. With process faults only (what a target
// without the fault layer runs) the faults are:
//
//   - kill: SIGKILL a node, restarted every/2 later;
//   - stop: SIGTERM a node, restarted every/2 later;
//   - pause: SIGSTOP a node, resumed every/2 later;
//   - restart: restart a running node at once.
//
// The victims are coreapps and masters; max_down bounds how many coreapps
// may be down at once (default: the spare count, coreapps − shards; with
// one fault at a time it only matters when it is 0: then only masters are
// faulted). The gap between faults is drawn uniformly in [every/2,
// 3·every/2]. When the step's `for` ends, the last fault is undone.

type nemesisFault struct {
	at   time.Duration // from the step's start
	kind string
	node string
	undo time.Duration // after at; 0: nothing to undo
}

// schedule draws a nemesis schedule for a run of length total.
func (r *runner) schedule(n *Nemesis, total time.Duration, masters, coreapps, shards int) []nemesisFault {
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
	var out []nemesisFault
	at := time.Duration(0)
	for {
		at += n.Every/2 + time.Duration(r.rng.Int64N(int64(n.Every)+1))
		if at >= total {
			return out
		}
		f := nemesisFault{at: at, kind: n.Faults[r.rng.IntN(len(n.Faults))], node: victims[r.rng.IntN(len(victims))]}
		if f.kind != "restart" {
			f.undo = min(n.Every/2, total-at)
		}
		out = append(out, f)
		at += f.undo
	}
}

func (r *runner) nemesis(ctx context.Context, st Step) error {
	total := st.For
	if total == 0 {
		total = time.Minute
	}
	masters, coreapps := r.sc.Cluster.Masters, r.sc.Cluster.Coreapps
	sched := r.schedule(st.Nemesis, total, masters, coreapps, r.shards)
	var plan []string
	for _, f := range sched {
		plan = append(plan, fmt.Sprintf("+%v %s %s", f.at.Round(time.Millisecond), f.kind, f.node))
	}
	r.progress("nemesis schedule (seed %d): %s", r.opt.Seed, strings.Join(plan, ", "))
	start := r.t.Now()
	for _, f := range sched {
		if err := r.sleep(ctx, start.Add(f.at).Sub(r.t.Now())); err != nil {
			return err
		}
		at := r.t.Now()
		var err error
		switch f.kind {
		case "kill":
			err = r.t.Kill(ctx, f.node)
		case "stop":
			err = r.t.Stop(ctx, f.node)
		case "pause":
			err = r.t.Pause(ctx, f.node)
		case "restart":
			err = r.t.Restart(ctx, f.node)
		}
		if err != nil {
			return fmt.Errorf("nemesis: %s %s: %w", f.kind, f.node, err)
		}
		r.faults = append(r.faults, fault{node: f.node, kind: f.kind, start: at})
		r.progress("nemesis: %s %s", f.kind, f.node)
		if f.undo == 0 {
			r.endFault(f.node, "")
			continue
		}
		if err := r.sleep(ctx, f.undo); err != nil {
			return err
		}
		if f.kind == "pause" {
			err = r.t.Resume(ctx, f.node)
		} else {
			err = r.t.Restart(ctx, f.node)
		}
		if err != nil {
			return fmt.Errorf("nemesis: undoing %s %s: %w", f.kind, f.node, err)
		}
		r.endFault(f.node, "")
		r.progress("nemesis: %s %s undone", f.kind, f.node)
	}
	return r.sleep(ctx, start.Add(total).Sub(r.t.Now()))
}
