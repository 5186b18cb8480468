package failover

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// base is time zero of every transcript and property run.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// checker verifies, after every Step, the invariants any driver relies on.
type checker struct {
	durable   ShardMap // the last PersistShardMap
	lastEpoch uint64   // the last Assign epoch
	maxEpoch  uint64
}

func (k *checker) check(c *Core, now time.Time, acts []Action) error {
	persisted := false
	for i, a := range acts {
		switch a := a.(type) {
		case PersistShardMap:
			if persisted {
				return fmt.Errorf("action %d: second PersistShardMap in one batch", i)
			}
			persisted = true
			if a.Map.MaxEpoch < k.maxEpoch {
				return fmt.Errorf("action %d: MaxEpoch went down from %d to %d", i, k.maxEpoch, a.Map.MaxEpoch)
			}
			k.maxEpoch = a.Map.MaxEpoch
			k.durable = a.Map.Clone()
		case Assign:
			if !persisted {
				return fmt.Errorf("action %d: %v before the PersistShardMap of its batch", i, a)
			}
			if a.Epoch <= k.lastEpoch {
				return fmt.Errorf("action %d: epoch %d does not grow (last %d)", i, a.Epoch, k.lastEpoch)
			}
			k.lastEpoch = a.Epoch
			if got := k.durable.Assignments[a.Shard]; got.Coreapp != a.Coreapp || got.Epoch != a.Epoch || a.Epoch > k.durable.MaxEpoch {
				return fmt.Errorf("action %d: %v not covered by the persisted map (%v, max %d)", i, a, got, k.durable.MaxEpoch)
			}
		case Release:
			// A Release after a map change must follow the persist too.
		case DeclaredUnhealthy:
			if a.At.Before(a.Deadline) || a.Deadline.Before(a.ClockFrom) {
				return fmt.Errorf("action %d: %v declared before its deadline", i, a)
			}
		}
	}
	m := c.ShardMap()
	if persisted && !equalMaps(m, k.durable) {
		return fmt.Errorf("ShardMap() %v differs from the persisted %v", m, k.durable)
	}
	health := map[string]bool{}
	for _, st := range c.Coreapps() {
		health[st.ID] = st.Healthy
	}
	seenEpoch := map[uint64]int{}
	for s, a := range m.Assignments {
		if a.Shard != s {
			return fmt.Errorf("shard %d has Shard field %d", s, a.Shard)
		}
		if a.Coreapp == "" {
			continue
		}
		if !health[a.Coreapp] {
			return fmt.Errorf("shard %d owned by %q, which is not a healthy known coreapp", s, a.Coreapp)
		}
		if a.Epoch > m.MaxEpoch {
			return fmt.Errorf("shard %d epoch %d > MaxEpoch %d", s, a.Epoch, m.MaxEpoch)
		}
		if o, dup := seenEpoch[a.Epoch]; dup {
			return fmt.Errorf("shards %d and %d share epoch %d", o, s, a.Epoch)
		}
		seenEpoch[a.Epoch] = s
	}
	if w := c.NextWake(); !w.IsZero() && w.Before(now) {
		return fmt.Errorf("NextWake %v is before now %v", w, now)
	}
	return nil
}

func equalMaps(a, b ShardMap) bool {
	if a.MaxEpoch != b.MaxEpoch || len(a.Assignments) != len(b.Assignments) {
		return false
	}
	for i := range a.Assignments {
		if a.Assignments[i] != b.Assignments[i] {
			return false
		}
	}
	return true
}

// behaviour is how a simulated coreapp treats heartbeats and assigns.
type behaviour struct {
	silent  bool          // answers no heartbeat (assigns succeed): answer by hand
	down    bool          // crashed: answers nothing, assigns fail
	crashed bool          // down until it joins again (a restart)
	failing bool          // heartbeats fail after rtt
	rtt     time.Duration // answer delay
}

// pending is an event the harness will step at a time.
type pending struct {
	at  time.Time
	ord int // FIFO among equal times
	ev  Event
}

// harness drives a Core like a tiny simulator: coreapps with behaviours
// answer heartbeats and assigns, and track what they serve.
type harness struct {
	t       testing.TB
	c       *Core
	k       checker
	now     time.Time
	beh     map[string]*behaviour
	serving map[string]map[int]uint64
	queue   []pending
	ord     int
	verbose bool      // show heartbeats and their answers
	batch   bool      // apply simultaneous heartbeat outcomes as one batch (see applyBatch)
	resume  time.Time // the master is paused until then
	onStep  func(at time.Time, ev Event, acts []Action)
}

func newHarness(t testing.TB, cfg Config, m ShardMap, at time.Time) (*harness, error) {
	c, err := New(cfg, m, at)
	if err != nil {
		return nil, err
	}
	h := &harness{t: t, c: c, now: at, beh: map[string]*behaviour{}, serving: map[string]map[int]uint64{}}
	h.k.maxEpoch = m.MaxEpoch
	h.k.lastEpoch = m.MaxEpoch
	for _, a := range m.Assignments {
		if a.Coreapp != "" {
			h.serve(a.Coreapp, a.Shard, a.Epoch)
		}
	}
	return h, nil
}

func (h *harness) behaviourOf(id string) *behaviour {
	b := h.beh[id]
	if b == nil {
		b = &behaviour{rtt: 10 * time.Millisecond}
		h.beh[id] = b
	}
	return b
}

func (h *harness) serve(id string, s int, e uint64) {
	if h.serving[id] == nil {
		h.serving[id] = map[int]uint64{}
	}
	h.serving[id][s] = e
}

func (h *harness) served(id string) []ServedShard {
	var out []ServedShard
	for s, e := range h.serving[id] {
		out = append(out, ServedShard{Shard: s, Epoch: e})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shard < out[j].Shard })
	return out
}

func (h *harness) schedule(at time.Time, ev Event) {
	h.ord++
	h.queue = append(h.queue, pending{at: at, ord: h.ord, ev: ev})
	sort.SliceStable(h.queue, func(i, j int) bool {
		if !h.queue[i].at.Equal(h.queue[j].at) {
			return h.queue[i].at.Before(h.queue[j].at)
		}
		return h.queue[i].ord < h.queue[j].ord
	})
}

// crash makes id answer nothing from now on, drops its in-flight answers
// and forgets what it served (a restart comes back as standby).
func (h *harness) crash(id string) {
	b := h.behaviourOf(id)
	b.down, b.crashed = true, true
	h.serving[id] = nil
	q := h.queue[:0]
	for _, p := range h.queue {
		if eventCoreapp(p.ev) != id {
			q = append(q, p)
		}
	}
	h.queue = q
}

func eventCoreapp(ev Event) string {
	switch ev := ev.(type) {
	case HeartbeatAnswered:
		return ev.ID
	case HeartbeatFailed:
		return ev.ID
	case AssignDone:
		return ev.Coreapp
	}
	return ""
}

// step steps one event, checks invariants, plays the simulated coreapps'
// side of the actions, and returns the transcript lines.
func (h *harness) step(at time.Time, ev Event, quiet bool) ([]string, error) {
	acts, err := h.c.Step(at, ev)
	if err != nil {
		return nil, err
	}
	h.now = at
	if h.onStep != nil {
		h.onStep(at, ev, acts)
	}
	if err := h.k.check(h.c, at, acts); err != nil {
		h.t.Fatalf("t=%s: invariant broken: %v\nactions: %v", at.Sub(base), err, acts)
	}
	var lines []string
	for _, a := range acts {
		switch a := a.(type) {
		case SendHeartbeat:
			b := h.behaviourOf(a.Coreapp)
			switch {
			case b.down || b.silent:
			case b.failing:
				h.schedule(at.Add(b.rtt), HeartbeatFailed{ID: a.Coreapp, Seq: a.Seq})
			default:
				h.schedule(at.Add(b.rtt), HeartbeatAnswered{ID: a.Coreapp, Seq: a.Seq})
			}
			if quiet {
				continue
			}
		case Assign:
			b := h.behaviourOf(a.Coreapp)
			if b.down {
				h.schedule(at.Add(b.rtt), AssignDone{Shard: a.Shard, Coreapp: a.Coreapp, Epoch: a.Epoch, OK: false})
			} else {
				h.serve(a.Coreapp, a.Shard, a.Epoch)
				h.schedule(at.Add(b.rtt), AssignDone{Shard: a.Shard, Coreapp: a.Coreapp, Epoch: a.Epoch, OK: true})
			}
		case Release:
			if e, ok := h.serving[a.Coreapp][a.Shard]; ok && e == a.Epoch {
				delete(h.serving[a.Coreapp], a.Shard)
			}
		}
		lines = append(lines, fmt.Sprintf("t=%s %s", at.Sub(base), FormatAction(a, base)))
	}
	return lines, nil
}

// run steps the queued coreapp replies and the core's wake-ups up to until
// (inclusive, or strictly before it), replies first on equal times (as a
// driver should: an answer that arrived before a deadline counts).
func (h *harness) run(until time.Time, inclusive bool) []string {
	due := func(t time.Time) bool { return t.Before(until) || (inclusive && t.Equal(until)) }
	var lines []string
	for {
		w := h.c.NextWake()
		if !w.IsZero() && w.Before(h.resume) {
			w = h.resume // a paused master wakes late
		}
		if h.batch {
			if l, ok := h.applyBatch(due, w); ok {
				lines = append(lines, l...)
				continue
			}
		}
		if len(h.queue) > 0 && due(h.queue[0].at) && (w.IsZero() || !h.queue[0].at.After(w)) {
			p := h.queue[0]
			h.queue = h.queue[1:]
			if a, ok := p.ev.(HeartbeatAnswered); ok && a.Shards == nil {
				a.Shards = h.served(a.ID) // what it serves when it answers
				p.ev = a
			}
			l, err := h.step(p.at, p.ev, !h.verbose)
			if err != nil {
				h.t.Fatalf("queued %#v: %v", p.ev, err)
			}
			_, hb := p.ev.(HeartbeatAnswered)
			_, hf := p.ev.(HeartbeatFailed)
			if h.verbose || !(hb || hf) {
				lines = append(lines, fmt.Sprintf("t=%s <- %s", p.at.Sub(base), formatEvent(p.ev)))
			}
			lines = append(lines, l...)
			continue
		}
		if w.IsZero() || !due(w) {
			break
		}
		l, err := h.step(w, Tick{}, !h.verbose)
		if err != nil {
			h.t.Fatalf("tick: %v", err)
		}
		lines = append(lines, l...)
	}
	if until.After(h.now) {
		h.now = until
	}
	return lines
}

// applyBatch plays the driver's batching: when two or more heartbeat
// outcomes are due at the same instant (no later than the wake-up w), it
// Applies them all and then Steps one Tick at that instant. It checks after
// every Apply that NextWake still tells the truth (Apply must invalidate
// the cache Step leaves). It reports whether it did anything.
func (h *harness) applyBatch(due func(time.Time) bool, w time.Time) ([]string, bool) {
	isOutcome := func(ev Event) bool {
		_, a := ev.(HeartbeatAnswered)
		_, f := ev.(HeartbeatFailed)
		return a || f
	}
	n := 0
	for n < len(h.queue) && isOutcome(h.queue[n].ev) && h.queue[n].at.Equal(h.queue[0].at) {
		n++
	}
	if n < 2 || !due(h.queue[0].at) || (!w.IsZero() && h.queue[0].at.After(w)) {
		return nil, false
	}
	at := h.queue[0].at
	batch := h.queue[:n:n]
	h.queue = h.queue[n:]
	for _, p := range batch {
		ev := p.ev
		if a, ok := ev.(HeartbeatAnswered); ok && a.Shards == nil {
			a.Shards = h.served(a.ID)
			ev = a
		}
		if err := h.c.Apply(at, ev); err != nil {
			h.t.Fatalf("apply %#v: %v", ev, err)
		}
		h.now = at
		if h.onStep != nil {
			h.onStep(at, ev, nil)
		}
		if cached, fresh := h.c.NextWake(), h.c.nextWake(); !cached.Equal(fresh) {
			h.t.Fatalf("t=%s: after Apply(%s), NextWake() %v but a fresh computation says %v", at.Sub(base), formatEvent(ev), cached, fresh)
		}
	}
	lines, err := h.step(at, Tick{}, !h.verbose)
	if err != nil {
		h.t.Fatalf("tick after a batch: %v", err)
	}
	return lines, true
}

// pause models the master process being stopped until until: nothing is
// stepped, and replies that arrive meanwhile wait in its queue.
func (h *harness) pause(until time.Time) {
	for i := range h.queue {
		if h.queue[i].at.Before(until) {
			h.queue[i].at = until
		}
	}
	h.now = until
	h.resume = until
}

func formatEvent(ev Event) string {
	switch ev := ev.(type) {
	case HeartbeatAnswered:
		var ss []string
		for _, s := range ev.Shards {
			ss = append(ss, fmt.Sprintf("%d@%d", s.Shard, s.Epoch))
		}
		return fmt.Sprintf("answer %s seq=%d serves=(%s)", ev.ID, ev.Seq, strings.Join(ss, ","))
	case HeartbeatFailed:
		return fmt.Sprintf("fail %s seq=%d", ev.ID, ev.Seq)
	case AssignDone:
		ok := "ok"
		if !ev.OK {
			ok = "refused"
		}
		return fmt.Sprintf("assign-done shard=%d %s epoch=%d %s", ev.Shard, ev.Coreapp, ev.Epoch, ok)
	}
	return fmt.Sprintf("%T%+v", ev, ev)
}

func (h *harness) status() string {
	var b strings.Builder
	m := h.c.ShardMap()
	fmt.Fprintf(&b, "map max_epoch=%d", m.MaxEpoch)
	for _, a := range m.Assignments {
		if a.Coreapp == "" {
			fmt.Fprintf(&b, " %d:-", a.Shard)
		} else {
			fmt.Fprintf(&b, " %d:%s@%d", a.Shard, a.Coreapp, a.Epoch)
		}
	}
	b.WriteString("\n")
	for _, st := range h.c.Coreapps() {
		state := "healthy"
		if !st.Healthy {
			state = "unhealthy"
		}
		dl := "-"
		if !st.Deadline.IsZero() {
			dl = st.Deadline.Sub(base).String()
		}
		fmt.Fprintf(&b, "%s %s shards=%v last_seq=%d outstanding=%d deadline=%s\n", st.ID, state, st.Shards, st.LastSeq, st.Outstanding, dl)
	}
	return b.String()
}
