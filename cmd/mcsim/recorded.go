package main

import (
	"context"
	"strings"

	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/scenarios/procstarget"
	"github.com/mcsim/mcsim/sim"
	"github.com/mcsim/mcsim/sweep"
)

// newTarget is a run's cluster on the target named by --target: "procs"
// (real processes, as cfg says) or the simulator, seeded with cfg.Seed.
func newTarget(name string, cfg procstarget.Config) (scenarios.Target, error) {
	if name == "procs" {
		return procstarget.New(cfg)
	}
	return sim.New(sim.Config{Seed: cfg.Seed}), nil
}

// recordedTarget is a Target that keeps the spans in which each node was
// down, cut off or clock-skewed (sweep tells false failovers from
// explained ones by them; bench times from the first), and what the
// witnesses saw when the run closes it (procs reads declarations from the
// nodes' logs, which Close removes).
type recordedTarget struct {
	scenarios.Target
	faults       []sweep.Fault
	open         map[string]int // node → its open span in faults
	declarations []scenarios.Declaration
	failovers    []scenarios.FailoverSeen
	grants       []scenarios.LeaseGrant
	closed       bool
}

func newRecordedTarget(t scenarios.Target) *recordedTarget {
	return &recordedTarget{Target: t, open: map[string]int{}}
}

func (t *recordedTarget) begin(id string) {
	if _, ok := t.open[id]; ok {
		return
	}
	t.open[id] = len(t.faults)
	t.faults = append(t.faults, sweep.Fault{Node: id, Start: t.Target.Now()})
}

func (t *recordedTarget) end(id string) {
	if i, ok := t.open[id]; ok {
		t.faults[i].End = t.Target.Now()
		delete(t.open, id)
	}
}

func (t *recordedTarget) Kill(ctx context.Context, id string) error {
	t.begin(id)
	return t.Target.Kill(ctx, id)
}

func (t *recordedTarget) Stop(ctx context.Context, id string) error {
	t.begin(id)
	return t.Target.Stop(ctx, id)
}

func (t *recordedTarget) Pause(ctx context.Context, id string) error {
	t.begin(id)
	return t.Target.Pause(ctx, id)
}

func (t *recordedTarget) Resume(ctx context.Context, id string) error {
	t.end(id)
	return t.Target.Resume(ctx, id)
}

// Restart takes a running node down for a moment, or ends a kill or stop.
func (t *recordedTarget) Restart(ctx context.Context, id string) error {
	t.begin(id)
	t.end(id)
	return t.Target.Restart(ctx, id)
}

// Network holds every link in force: a node on either side of a cut is
// faulted while the cut lasts; delay and loss are no fault (see FalseFailovers).
func (t *recordedTarget) Network(ctx context.Context, links []scenarios.NetLink) error {
	cut := map[string]bool{}
	for _, l := range links {
		if l.Cut {
			cut[l.From], cut[l.To] = true, true
		}
	}
	for id := range t.open {
		if strings.HasPrefix(id, "net:") && !cut[strings.TrimPrefix(id, "net:")] {
			t.endNet(id)
		}
	}
	for id := range cut {
		t.beginNet(id)
	}
	return t.Target.Network(ctx, links)
}

// A node's cut is kept apart from its process faults (key "net:"+id) so
// that healing a link does not end a kill.
func (t *recordedTarget) beginNet(id string) {
	key := "net:" + id
	if _, ok := t.open[key]; ok {
		return
	}
	t.open[key] = len(t.faults)
	t.faults = append(t.faults, sweep.Fault{Node: id, Start: t.Target.Now()})
}

func (t *recordedTarget) endNet(key string) {
	t.faults[t.open[key]].End = t.Target.Now()
	delete(t.open, key)
}

func (t *recordedTarget) Clock(ctx context.Context, id string, rate float64) error {
	key := "clock:" + id
	if _, ok := t.open[key]; rate != 1 && !ok {
		t.open[key] = len(t.faults)
		t.faults = append(t.faults, sweep.Fault{Node: id, Start: t.Target.Now()})
	} else if rate == 1 && ok {
		t.faults[t.open[key]].End = t.Target.Now()
		delete(t.open, key)
	}
	return t.Target.Clock(ctx, id, rate)
}

func (t *recordedTarget) Close() error {
	if !t.closed {
		t.closed = true
		t.declarations = t.Target.Declarations()
		t.failovers = t.Target.Failovers()
		t.grants = t.Target.Grants()
	}
	return t.Target.Close()
}
