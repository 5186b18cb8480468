package failover

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// rule1Model recomputes rule 1 independently of the core: per coreapp, the
// send time of each seq and the highest seq answered.
type rule1Model struct {
	sent     map[string]map[uint64]time.Time
	answered map[string]uint64
	resumed  time.Time
	ui       time.Duration
}

func (m *rule1Model) observe(t *testing.T, c *Core, at time.Time, ev Event, acts []Action) {
	switch ev := ev.(type) {
	case HeartbeatAnswered:
		if ev.Seq > m.answered[ev.ID] {
			m.answered[ev.ID] = ev.Seq
		}
	case CoreappLeft:
		delete(m.sent, ev.ID)
		delete(m.answered, ev.ID)
	case CoreappJoined:
		// A re-joining unhealthy coreapp's outstanding heartbeats are
		// forgiven: as if all sent so far were answered.
		for _, a := range acts {
			if r, ok := a.(Recovered); ok && r.Coreapp == ev.ID {
				for seq := range m.sent[ev.ID] {
					m.answered[ev.ID] = max(m.answered[ev.ID], seq)
				}
			}
		}
	case SettingsChanged:
		m.ui = ev.UnhealthyInterval
	}
	for _, a := range acts {
		switch a := a.(type) {
		case StallDetected:
			m.resumed = a.At
		case SendHeartbeat:
			if m.sent[a.Coreapp] == nil {
				m.sent[a.Coreapp] = map[uint64]time.Time{}
			}
			m.sent[a.Coreapp][a.Seq] = at
		case DeclaredUnhealthy:
			sentAt, ok := m.sent[a.Coreapp][m.answered[a.Coreapp]+1]
			if !ok {
				t.Fatalf("t=%s: %s declared with no unanswered heartbeat", at.Sub(base), a.Coreapp)
			}
			if !a.EarliestUnansweredSentAt.Equal(sentAt) {
				t.Fatalf("t=%s: %s declared with earliest unanswered %s, model says %s", at.Sub(base), a.Coreapp, a.EarliestUnansweredSentAt.Sub(base), sentAt.Sub(base))
			}
			from := ClockFrom(sentAt, m.resumed)
			if at.Before(from.Add(m.ui)) {
				t.Fatalf("t=%s: %s declared before %s + %s", at.Sub(base), a.Coreapp, from.Sub(base), m.ui)
			}
		}
	}
}

// TestRandomRuns drives the core through random seeded runs. The harness
// checks after every Step: one owner per shard with distinct epochs, every
// owner a healthy known coreapp, Assign epochs strictly growing, every
// Assign preceded in its batch by a PersistShardMap that covers it,
// NextWake never in the past; the rule-1 model checks every declaration.
// Each run is done twice and must produce the same transcript.
func TestRandomRuns(t *testing.T) {
	for seed := uint64(1); seed <= 60; seed++ {
		a := randomRun(t, seed)
		b := randomRun(t, seed)
		if a != b {
			t.Fatalf("seed %d: two runs differ", seed)
		}
	}
}

// TestDueCacheChangesNothing: the core's index of when each coreapp is
// due next (due.go) only saves walks; with it and without it (a walk of
// every coreapp on every Step) every random run decides the same, action
// for action. After every step of either, the index must also agree with
// a walk on its own (checkDueIndex).
func TestDueCacheChangesNothing(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		if a, b := randomRunWith(t, seed, false), randomRunWith(t, seed, true); a != b {
			t.Fatalf("seed %d: the run with the due index differs from the one that walks every coreapp on every Step:\n%s", seed, firstDifference(a, b))
		}
	}
}

// checkDueIndex says how the core's due index disagrees with a walk of
// every coreapp at now, if it does: each coreapp is in it once, at its
// place, with its due time as dueOf says; the heap is ordered; its top is
// the earliest due; dueBy lists exactly the coreapps due at or before now,
// in id order; every shard's owner pointer is the coreapp the map names,
// and the count of shards without one is right.
func checkDueIndex(c *Core, now time.Time) error {
	// The sorted lists the walks and the index are built from (kept
	// sorted as coreapps join and leave).
	if ids, want := c.ids(), slices.Sorted(maps.Keys(c.coreapps)); !slices.Equal(ids, want) {
		return fmt.Errorf("sorted ids %v, the core's coreapps %v", ids, want)
	}
	for i, ca := range c.all() {
		if ca != c.coreapps[c.sortedIDs[i]] {
			return fmt.Errorf("all()[%d] is not coreapp %q", i, c.sortedIDs[i])
		}
	}
	if len(c.due) != len(c.coreapps) {
		return fmt.Errorf("index has %d coreapps, the core %d", len(c.due), len(c.coreapps))
	}
	for i, ca := range c.due {
		if c.coreapps[ca.id] != ca {
			return fmt.Errorf("index[%d] is %q, not a coreapp of the core", i, ca.id)
		}
		if ca.hi != i+1 {
			return fmt.Errorf("%s: hi %d at index %d", ca.id, ca.hi, i)
		}
		if want := c.dueOf(ca); !ca.due.Equal(want) {
			return fmt.Errorf("%s: indexed due %v, dueOf says %v", ca.id, ca.due.Sub(base), want.Sub(base))
		}
		if i > 0 && dueLess(ca, c.due[(i-1)/2]) {
			return fmt.Errorf("%s at %d is due before its parent", ca.id, i)
		}
	}
	// Each shard's owner pointer names the coreapp its assignment names,
	// and each coreapp's count of them is right.
	owns := map[*coreapp]int{}
	for _, st := range c.shards {
		if st.owner != nil {
			owns[st.owner]++
		}
	}
	for id, ca := range c.coreapps {
		if ca.owns != owns[ca] {
			return fmt.Errorf("%s: owns %d shards by its count, %d by the owner pointers", id, ca.owns, owns[ca])
		}
	}
	for sh, a := range c.sm.Assignments {
		if want := c.coreapps[a.Coreapp]; c.shards[sh].owner != want || a.Coreapp != "" && want == nil {
			return fmt.Errorf("shard %d: owner pointer disagrees with the map's owner %q", sh, a.Coreapp)
		}
	}
	if got, want := c.unassigned, c.countUnassigned(); got != want {
		return fmt.Errorf("unassigned count %d, the map has %d", got, want)
	}
	if got, want := c.dueFirst(), c.earliestDue(); !got.Equal(want) {
		return fmt.Errorf("dueFirst %v, the walk's earliest %v", got.Sub(base), want.Sub(base))
	}
	var want []string
	for _, ca := range c.all() {
		if dueAtOrBefore(c.dueOf(ca), now) {
			want = append(want, ca.id)
		}
	}
	var got []string
	for _, ca := range c.dueBy(now) {
		got = append(got, ca.id)
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("due by now: index %v, walk %v", got, want)
	}
	return nil
}

func firstDifference(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d:\n  cached: %s\n  scans:  %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("%d lines against %d", len(la), len(lb))
}

func randomRun(t *testing.T, seed uint64) string { return randomRunWith(t, seed, false) }

func randomRunWith(t *testing.T, seed uint64, noDueCache bool) string {
	r := rand.New(rand.NewPCG(seed, 0xfa11))
	cfg := Config{
		HeartbeatInterval: time.Duration(1+r.IntN(5)) * time.Second,
		UnhealthyInterval: time.Duration(5+r.IntN(30)) * time.Second,
		Shards:            []int{1, 2, 4}[r.IntN(3)],
	}
	h, err := newHarness(t, cfg, ShardMap{}, base)
	if err != nil {
		t.Fatal(err)
	}
	h.c.noDueCache = noDueCache
	// Even seeds apply simultaneous replies as one batch, as the driver does.
	h.batch = seed%2 == 0
	model := &rule1Model{sent: map[string]map[uint64]time.Time{}, answered: map[string]uint64{}, ui: cfg.UnhealthyInterval}
	h.onStep = func(at time.Time, ev Event, acts []Action) {
		model.observe(t, h.c, at, ev, acts)
		if err := checkDueIndex(h.c, at); err != nil {
			t.Fatalf("seed %d, after %T at %v: %v", seed, ev, at.Sub(base), err)
		}
	}
	var out []string
	ids := []string{"c1", "c2", "c3", "c4", "c5", "c6"}
	known := map[string]bool{}
	step := func(ev Event) {
		l, err := h.step(h.now, ev, false)
		if err != nil {
			out = append(out, "error: "+err.Error())
			return
		}
		out = append(out, l...)
	}
	for i := 0; i < 300; i++ {
		id := ids[r.IntN(len(ids))]
		switch k := r.IntN(20); {
		case k < 7:
			out = append(out, h.run(h.now.Add(time.Duration(r.IntN(10_000))*time.Millisecond), true)...)
		case k < 9:
			known[id] = true
			if b := h.behaviourOf(id); b.crashed {
				b.down, b.crashed = false, false
			}
			step(CoreappJoined{ID: id})
		case k < 10:
			if known[id] {
				delete(known, id)
				step(CoreappLeft{ID: id})
				h.crash(id)
			}
		case k < 12:
			h.crash(id)
		case k < 14:
			b := h.behaviourOf(id)
			if !b.crashed {
				b.silent, b.failing = r.IntN(3) == 0, r.IntN(3) == 0
				b.rtt = time.Duration(r.IntN(int(2*cfg.UnhealthyInterval/time.Millisecond))) * time.Millisecond
			}
		case k < 15:
			hb := time.Duration(1+r.IntN(5)) * time.Second
			ui := time.Duration(5+r.IntN(30)) * time.Second
			model.ui = ui
			step(SettingsChanged{HeartbeatInterval: hb, UnhealthyInterval: ui})
		case k < 16:
			step(ShardCountChanged{N: []int{1, 2, 4, 8}[r.IntN(4)]})
		case k < 17:
			h.pause(h.now.Add(time.Duration(r.IntN(60_000)) * time.Millisecond))
		case k < 18:
			step(Stalled{Gap: time.Duration(r.IntN(5000)) * time.Millisecond})
		default:
			// A stray or late AssignDone for a random shard and epoch.
			m := h.c.ShardMap()
			s := r.IntN(len(m.Assignments))
			step(AssignDone{Shard: s, Coreapp: id, Epoch: 1 + uint64(r.IntN(int(m.MaxEpoch)+1)), OK: r.IntN(2) == 0})
		}
	}
	return fmt.Sprintf("%+v\n%s", cfg, strings.Join(out, "\n"))
}
