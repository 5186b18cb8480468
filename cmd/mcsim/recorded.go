package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

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

	// For reports: the run's start (the runner's t = 0 is the first Now
	// after Start), the nodes in order, live changes, and what the
	// gateway and the targets saw at Close.
	start    time.Time
	cluster  scenarios.Cluster
	started  []string
	changes  []recordedChange
	sessions []scenarios.SessionSeen
	slow     []sweep.Fault  // delay and loss, by the node sending
	slowOpen map[string]int // node → its open span in slow

	// For sweep's false-failover window: the intervals the run started
	// with and each live change of them.
	intervals scenarios.Intervals

	// forReport: also record slow and sessions (newRecordedTarget).
	forReport bool
}

// recordedChange is a live change through the settings service.
type recordedChange struct {
	at   time.Time
	what string
}

// newRecordedTarget records what bench and sweep judge by; forReport
// records what only a report draws too (delay and loss spans, every
// gateway session), which costs a scan of the gateway's log per run.
func newRecordedTarget(t scenarios.Target, forReport bool) *recordedTarget {
	return &recordedTarget{Target: t, open: map[string]int{}, forReport: forReport}
}

// asTarget is the recorder as the runner should see it: a TrafficTarget
// when the recorded target is one, so a scenario with a workload runs as
// it would on the bare target.
func (t *recordedTarget) asTarget() scenarios.Target {
	if tt, ok := t.Target.(scenarios.TrafficTarget); ok {
		return recordedTraffic{t, tt}
	}
	return t
}

// recordedTraffic is a recordedTarget of a TrafficTarget.
type recordedTraffic struct {
	*recordedTarget
	traffic scenarios.TrafficTarget
}

func (r recordedTraffic) StartWorkload(ctx context.Context, w scenarios.Workload, seed uint64) error {
	return r.traffic.StartWorkload(ctx, w, seed)
}
func (r recordedTraffic) StopLoad(ctx context.Context) error { return r.traffic.StopLoad(ctx) }
func (r recordedTraffic) SetWebhook(ctx context.Context, w scenarios.Webhook) error {
	return r.traffic.SetWebhook(ctx, w)
}
func (r recordedTraffic) Traffic() *scenarios.TrafficSeen { return r.traffic.Traffic() }

// AllServed answers as the recorded target would (the runner asks it on
// every look when the target has it), else from Served.
func (t *recordedTarget) AllServed(n int) bool {
	if a, ok := t.Target.(interface{ AllServed(int) bool }); ok {
		return a.AllServed(n)
	}
	served := t.Target.Served()
	for s := range n {
		if served[s] == "" {
			return false
		}
	}
	return true
}

func (t *recordedTarget) Start(ctx context.Context, c scenarios.Cluster, settings json.RawMessage) error {
	t.cluster = c
	err := t.Target.Start(ctx, c, settings)
	t.start = t.Target.Now()
	hb, ui := sweepIntervals(settings)
	t.intervals = scenarios.Intervals{{At: t.start, Heartbeat: hb, Unhealthy: ui}}
	return err
}

func (t *recordedTarget) StartNode(ctx context.Context, role string) (string, error) {
	id, err := t.Target.StartNode(ctx, role)
	if err == nil {
		t.started = append(t.started, id)
	}
	return id, err
}

func (t *recordedTarget) Patch(ctx context.Context, body json.RawMessage) error {
	at := t.Target.Now()
	t.changes = append(t.changes, recordedChange{at: at, what: "settings PATCH " + string(body)})
	err := t.Target.Patch(ctx, body)
	if n := len(t.intervals); err == nil && n > 0 {
		last := t.intervals[n-1]
		hb, ui := scenarios.IntervalsIn(body, last.Heartbeat, last.Unhealthy)
		t.intervals = append(t.intervals, scenarios.IntervalsFrom{At: at, Heartbeat: hb, Unhealthy: ui})
	}
	return err
}

func (t *recordedTarget) SetShards(ctx context.Context, n int) error {
	t.changes = append(t.changes, recordedChange{at: t.Target.Now(), what: fmt.Sprintf("shard count set to %d", n)})
	return t.Target.SetShards(ctx, n)
}

func (t *recordedTarget) begin(id, kind string) {
	if _, ok := t.open[id]; ok {
		return
	}
	t.open[id] = len(t.faults)
	t.faults = append(t.faults, sweep.Fault{Node: id, Start: t.Target.Now(), Kind: kind})
}

func (t *recordedTarget) end(id string) {
	if i, ok := t.open[id]; ok {
		t.faults[i].End = t.Target.Now()
		delete(t.open, id)
	}
}

func (t *recordedTarget) Kill(ctx context.Context, id string) error {
	t.begin(id, "kill")
	return t.Target.Kill(ctx, id)
}

func (t *recordedTarget) Stop(ctx context.Context, id string) error {
	t.begin(id, "stop")
	return t.Target.Stop(ctx, id)
}

func (t *recordedTarget) Pause(ctx context.Context, id string) error {
	t.begin(id, "pause")
	return t.Target.Pause(ctx, id)
}

func (t *recordedTarget) Resume(ctx context.Context, id string) error {
	t.end(id)
	return t.Target.Resume(ctx, id)
}

// Restart takes a running node down for a moment, or ends a kill or stop.
func (t *recordedTarget) Restart(ctx context.Context, id string) error {
	t.begin(id, "restart")
	t.end(id)
	return t.Target.Restart(ctx, id)
}

// Network holds every link in force: a node on either side of a cut is
// faulted while the cut lasts; delay and loss are no fault (see FalseFailovers).
func (t *recordedTarget) Network(ctx context.Context, links []scenarios.NetLink) error {
	cut := map[string]bool{}
	slow := map[string]string{} // node → delay or loss on a link from it
	for _, l := range links {
		switch {
		case l.Cut:
			cut[l.From], cut[l.To] = true, true
		case l.Latency > 0 || l.Jitter > 0:
			slow[l.From] = "delay"
		case l.LossPercent > 0 && slow[l.From] == "":
			slow[l.From] = "loss"
		}
	}
	if t.forReport {
		t.recordSlow(slow)
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

// recordSlow keeps, for reports only, the spans in which a node's
// messages were delayed or lost: no fault to FalseFailovers (a slow
// coreapp is a healthy one), but what a reader wants to see next to a
// false failover.
func (t *recordedTarget) recordSlow(slow map[string]string) {
	if t.slowOpen == nil {
		t.slowOpen = map[string]int{}
	}
	now := t.Target.Now()
	for id, i := range t.slowOpen {
		if slow[id] != t.slow[i].Kind {
			t.slow[i].End = now
			delete(t.slowOpen, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(slow)) {
		if _, ok := t.slowOpen[id]; !ok {
			t.slowOpen[id] = len(t.slow)
			t.slow = append(t.slow, sweep.Fault{Node: id, Start: now, Kind: slow[id]})
		}
	}
}

// A node's cut is kept apart from its process faults (key "net:"+id) so
// that healing a link does not end a kill.
func (t *recordedTarget) beginNet(id string) {
	key := "net:" + id
	if _, ok := t.open[key]; ok {
		return
	}
	t.open[key] = len(t.faults)
	t.faults = append(t.faults, sweep.Fault{Node: id, Start: t.Target.Now(), Kind: "cut"})
}

func (t *recordedTarget) endNet(key string) {
	t.faults[t.open[key]].End = t.Target.Now()
	delete(t.open, key)
}

func (t *recordedTarget) Clock(ctx context.Context, id string, rate float64) error {
	key := "clock:" + id
	if _, ok := t.open[key]; rate != 1 && !ok {
		t.open[key] = len(t.faults)
		t.faults = append(t.faults, sweep.Fault{Node: id, Start: t.Target.Now(), Kind: "clock"})
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
		if sw, ok := t.Target.(scenarios.SessionWitness); ok && t.forReport {
			t.sessions = sw.Sessions()
		}
	}
	return t.Target.Close()
}
