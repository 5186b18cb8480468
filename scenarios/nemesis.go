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
		netBefore := r.netSeq
		if err := r.nemesisDo(ctx, f, at); err != nil {
			return fmt.Errorf("nemesis: %s %s: %w", f.kind, f.node, err)
		}
		r.progress("nemesis: %s %s", f.kind, f.node)
		if f.undo == 0 {
			r.endFault(f.node, "")
			continue
		}
		if err := r.sleep(ctx, f.undo); err != nil {
			return err
		}
		if err := r.nemesisUndo(ctx, f, netBefore); err != nil {
			return fmt.Errorf("nemesis: undoing %s %s: %w", f.kind, f.node, err)
		}
		r.endFault(f.node, "")
		r.progress("nemesis: %s %s undone", f.kind, f.node)
	}
	return r.sleep(ctx, start.Add(total).Sub(r.t.Now()))
}

// nemesisDo applies one drawn fault.
func (r *runner) nemesisDo(ctx context.Context, f nemesisFault, at time.Time) error {
	hb, _ := r.intervals()
	switch f.kind {
	case "kill":
		return r.recordProcess(f, at, r.t.Kill(ctx, f.node))
	case "stop":
		return r.recordProcess(f, at, r.t.Stop(ctx, f.node))
	case "pause":
		return r.recordProcess(f, at, r.t.Pause(ctx, f.node))
	case "restart":
		return r.recordProcess(f, at, r.t.Restart(ctx, f.node))
	case "clock":
		return r.setClock(ctx, f.node, 0.5, time.Time{})
	}
	everyone, err := r.everyone(ctx)
	if err != nil {
		return err
	}
	others := slices.DeleteFunc(everyone, func(o string) bool { return o == f.node })
	// The victim is the node the fault names: its links to the others
	// are faulted, not the others themselves.
	nf := netFault{kind: f.kind, touches: []string{f.node}}
	switch f.kind {
	case "partition":
		side := []string{"settings"}
		for _, o := range others {
			if strings.HasPrefix(o, "master-") {
				side = append(side, o)
			}
		}
		nf.links = cut([][]string{{f.node}, side})
	case "isolate":
		nf.links = cut([][]string{{f.node}, others})
	case "delay", "loss":
		for _, o := range others {
			l := NetLink{From: f.node, To: o}
			if f.kind == "delay" {
				l.Latency, l.Jitter = hb/2, hb/4
			} else {
				l.LossPercent = 30
			}
			nf.links = append(nf.links, l)
		}
	}
	return r.addNet(ctx, nf, at)
}

func (r *runner) recordProcess(f nemesisFault, at time.Time, err error) error {
	if err == nil {
		r.faults = append(r.faults, fault{node: f.node, kind: f.kind, start: at})
	}
	return err
}

// nemesisUndo undoes one drawn fault: resume, restart, heal (only the
// network faults it made: those numbered after netBefore) or real time.
func (r *runner) nemesisUndo(ctx context.Context, f nemesisFault, netBefore int) error {
	switch f.kind {
	case "pause":
		return r.t.Resume(ctx, f.node)
	case "kill", "stop":
		return r.t.Restart(ctx, f.node)
	case "clock":
		return r.setClock(ctx, f.node, 1, time.Time{})
	}
	return r.healNet(ctx, func(nf netFault) bool { return nf.id > netBefore })
}
