package sim

import (
	"fmt"
	"github.com/mcsim/mcsim/scenarios"
	"math/rand/v2"
	"time"
)

// epoch is virtual time zero of every run: a fixed instant, so that the
// times a run prints do not depend on when it ran.
func epoch() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// event is one thing to happen at at; seq breaks ties in the order they
// were scheduled, so that the heap's order is total and the run is the
// same every time.
//
// The heap holds no pointers (the task is in a slot of World.tasks): its
// entries move on every push and pop, and moving pointers costs a write
// barrier whenever the collector runs, which in a run that allocates as
// a simulation does is often.
type event struct {
	at   int64 // nanoseconds since epoch: cheaper to order than time.Time
	seq  uint64
	slot int // in World.tasks
}

// task is something to run later: an event, a message on the network, a
// delivery a paused process holds. A closure is one (fn); a call's steps
// are its own types over one struct (net.go), so that a call allocates
// once instead of once per step.
type task interface{ run() }

// fn is a closure as a task (a func is pointer-shaped: no allocation).
type fn func()

func (f fn) run() { f() }

// World is one simulated run: the event loop, the seeded random source and
// the nodes.
type World struct {
	now    time.Time
	nowNs  int64     // now as nanoseconds since zero
	zero   time.Time // epoch: event times count from it
	zeroNs int64     // zero.UnixNano()
	seq    uint64
	heap   []event
	tasks  []task // the events' tasks, by slot; nil: a free slot
	pos    []int  // where each slot's event is in the heap
	free   []int  // the free slots
	rng    *rand.Rand
	events uint64 // events run so far, for the benchmarks

	net      *network
	store    *store
	gw       *gatewayNode
	masters  []*masterNode // by id order: master-1, master-2, …
	coreapps []*coreappNode
	// coreappIndex finds a coreapp by id (the cluster may have 1,000).
	coreappIndex map[string]*coreappNode
	sabotage     Sabotage

	// records the runner reads (Target)
	grants       []scenarios.LeaseGrant
	declarations []scenarios.Declaration
	commands     []scenarios.Command
	truth        *truth
	// traffic is the scenario's workload (traffic.go); nil without one.
	traffic *traffic
	// hbFree are heartbeat calls done with, for the next ones: the
	// heartbeat is the most frequent call, and its allocation was a third
	// of what a run allocates.
	hbFree      []*hbCall
	noCallReuse bool // Config.noCallReuse
}

func newWorld(seed uint64, sab Sabotage) *World {
	w := &World{now: epoch(), zero: epoch(), zeroNs: epoch().UnixNano(), rng: rand.New(rand.NewPCG(seed, seed^0x73696d75)), sabotage: sab}
	w.net = newNetwork(w)
	w.truth = newTruth(w)
	return w
}

// at schedules f at t (not before now).
func (w *World) at(t time.Time, f func()) { w.atTask(t, fn(f)) }

// atTask schedules tk at t (not before now).
func (w *World) atTask(t time.Time, tk task) {
	if t.Before(w.now) {
		t = w.now // and a zero t (now), whose UnixNano is undefined
	}
	w.atNs(w.sinceZero(t), tk)
}

// timeAt is the time ns nanoseconds after zero: w.zero.Add(ns), built
// from Unix nanoseconds, which costs half as much (TestTimeAt: the very
// same time.Time); the clock moves on nearly every event.
func (w *World) timeAt(ns int64) time.Time { return time.Unix(0, w.zeroNs+ns).UTC() }

// sinceZero is t.Sub(w.zero) for any t of a run (centuries away from
// where UnixNano overflows), by integer arithmetic.
func (w *World) sinceZero(t time.Time) int64 { return t.UnixNano() - w.zeroNs }

// atNs schedules tk at ns nanoseconds since zero (not before now), and
// says in which slot (for cancel).
func (w *World) atNs(ns int64, tk task) int {
	ns = max(ns, w.nowNs)
	var slot int
	if n := len(w.free); n > 0 {
		slot, w.free = w.free[n-1], w.free[:n-1]
		w.tasks[slot] = tk
	} else {
		slot = len(w.tasks)
		w.tasks = append(w.tasks, tk)
		w.pos = append(w.pos, 0)
	}
	w.seq++
	w.push(event{at: ns, seq: w.seq, slot: slot})
	return slot
}

// after schedules f d from now.
func (w *World) after(d time.Duration, f func()) { w.afterTask(d, fn(f)) }

// afterTask schedules tk d from now (now if d < 0), and says in which
// slot.
func (w *World) afterTask(d time.Duration, tk task) int {
	return w.atNs(w.nowNs+int64(max(d, 0)), tk)
}

// runUntil runs every event due up to t, then sets the time to t.
func (w *World) runUntil(t time.Time) { w.runUntilNs(w.sinceZero(t)) }

// runUntilNs runs every event due up to until (nanoseconds since zero),
// then sets the time to it: the runner's looks come every 20 ms of
// virtual time, and a time.Time's Sub costs more than the look.
func (w *World) runUntilNs(until int64) {
	same := 0
	for len(w.heap) > 0 && w.heap[0].at <= until {
		ev := w.pop()
		if ev.at == w.nowNs {
			same++
			if same > livelock {
				panic(fmt.Sprintf("sim: %d events at virtual time %v without time passing: a machine keeps asking to be woken now", same, w.now.Sub(epoch())))
			}
		} else {
			same = 0
			w.now, w.nowNs = w.timeAt(ev.at), ev.at
		}
		tk := w.tasks[ev.slot]
		w.tasks[ev.slot] = nil
		w.free = append(w.free, ev.slot)
		w.events++
		tk.run()
	}
	if until > w.nowNs {
		w.now, w.nowNs = w.timeAt(until), until
	}
}

// livelock is how many events may run at one instant before the world
// gives up: far more than any real burst (a 1,000-coreapp cluster's
// heartbeats), far fewer than a loop that never lets time pass.
const livelock = 1_000_000

// uniform draws a duration in [lo, hi].
func (w *World) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

// chance is true with probability p (0..1).
func (w *World) chance(p float64) bool { return p > 0 && w.rng.Float64() < p }

// The heap is written out rather than container/heap's: no interface
// boxing per event, which is most of the simulator's cost.

func less(a, b event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (w *World) push(ev event) {
	w.heap = append(w.heap, ev)
	w.up(len(w.heap) - 1)
}

func (w *World) pop() event {
	top := w.heap[0]
	w.removeAt(0)
	return top
}

// removeAt takes entry i out of the heap.
func (w *World) removeAt(i int) {
	h := w.heap
	n := len(h) - 1
	h[i] = h[n]
	w.pos[h[i].slot] = i
	h[n] = event{}
	w.heap = h[:n]
	if i < n && !w.up(i) {
		w.down(i)
	}
}

// up moves entry i up to its place, keeping pos; it reports whether it
// moved. The entry is held aside and its parents shifted down into the
// hole, each written once.
func (w *World) up(i int) bool {
	h := w.heap
	ev, start := h[i], i
	for i > 0 {
		p := (i - 1) / 2
		if !less(ev, h[p]) {
			break
		}
		h[i] = h[p]
		w.pos[h[i].slot] = i
		i = p
	}
	h[i] = ev
	w.pos[ev.slot] = i
	return i != start
}

// down moves entry i down to its place, keeping pos, the same way.
func (w *World) down(i int) {
	h := w.heap
	n := len(h)
	ev := h[i]
	for {
		m := 2*i + 1
		if m >= n {
			break
		}
		if r := m + 1; r < n && less(h[r], h[m]) {
			m = r
		}
		if !less(h[m], ev) {
			break
		}
		h[i] = h[m]
		w.pos[h[i].slot] = i
		i = m
	}
	h[i] = ev
	w.pos[ev.slot] = i
}

// cancel takes the pending event in slot out of the heap, if tk is still
// its task: an event that would do nothing when it came (a call's timeout
// once the answer is in) need not come. The events left keep their times
// and sequence numbers, so their order is the same.
func (w *World) cancel(slot int, tk task) {
	if slot < 0 || slot >= len(w.tasks) || w.tasks[slot] != tk {
		return
	}
	w.removeAt(w.pos[slot])
	w.tasks[slot] = nil
	w.free = append(w.free, slot)
}
