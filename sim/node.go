package sim

import (
	"slices"
	"time"
)

// proc is what every simulated process has: its id, which run of it this
// is, whether it is up or paused, and its own clock.
//
// Everything that happens to a process goes through deliver, which drops
// what was meant for an earlier run (a crash forgets everything) and holds
// what arrives while the process is paused or busy (a paused process is
// SIGSTOPped: the kernel takes its messages, the process reads them when
// it runs again, late, which is what rule 4's stall guard must notice).
type proc struct {
	w    *World
	id   string
	node uint32 // its number in the network (network.procNode; 0: not yet)
	run  int    // 0 for the first process, +1 per restart
	up   bool
	// paused: SIGSTOP; busy: the driver's loop is blocked on a call (a
	// master loading its map or waiting for a write), as the real loop is.
	paused, busy bool
	held         []task
	// heldTimers are timers that fired while the process could not run:
	// they run first when it can again. A resumed Go process finds its
	// expired timers ready at once, while what arrived on its sockets
	// must still be read and decoded by other goroutines before its loop
	// sees it; so the loop steps the late Tick before the queued answers,
	// which is exactly the stall rule 4 must recognise.
	heldTimers []task
	// unblock is the answer a busy process waits for, when it came while
	// the process was paused: it runs first at the resume.
	unblock func()
	// heldOther is what the process's other goroutines (its map writer)
	// got while it was paused: they do not wait for the loop.
	heldOther []func()
	// draining: the loop is working off a backlog (after a blocked call),
	// and afterDrain runs once it is done (the master's one Tick after
	// its queued answers, master/node.go handleQueued).
	draining   bool
	afterDrain func()
	// resets are the calls this process got in this run, in the order
	// they came; a SIGKILL resets the connections of those it holds
	// unanswered (net.go). Answered ones are dropped now and then
	// (liveResets counts the others).
	resets     []*rpc
	liveResets int

	// The clock: local = localBase + (now − globalBase) × rate, the bases
	// in nanoseconds since the world's zero (integer arithmetic: a
	// time.Time's Sub and Add cost more, and a process asks its clock on
	// every step).
	rate                  float64
	localBase, globalBase int64

	// wakeAt is the pending wake-up, in global nanoseconds since the
	// world's zero, if waking (a machine asks after every step, so it
	// stays in nanoseconds, as the event heap takes it).
	waking bool
	wakeAt int64
	// wakeLocal is the own-clock time wakeAt was asked for: a later one
	// maps to no earlier global time while the rate stays (setRate
	// clears waking), so wake can say no without converting it.
	wakeLocal time.Time
	rewake    func() // schedules the machine's next wake-up again
	// wakes are wake-up events that fired, for the next wake-ups to
	// reuse: a busy process asks for one after almost every step.
	wakes []*wakeEvent
}

// wakeEvent is one wake-up asked for: at g, for run r of p.
type wakeEvent struct {
	p *proc
	r int
	g int64 // nanoseconds since the world's zero
	f func()
}

func newProc(w *World, id string) *proc {
	return &proc{w: w, id: id, rate: 1, localBase: w.nowNs, globalBase: w.nowNs}
}

// local is the process's own clock now.
func (p *proc) local() time.Time {
	if p.rate == 1 && p.localBase == p.globalBase && p.w.nowNs-p.globalBase < 1<<53 {
		// A clock never skewed shows the world's now: what the formula
		// gives, as float64 holds such a duration exactly.
		return p.w.now
	}
	return p.w.timeAt(p.localNs())
}

// localNs is local in nanoseconds since the world's zero.
func (p *proc) localNs() int64 {
	return p.localBase + int64(time.Duration(float64(time.Duration(p.w.nowNs-p.globalBase))*p.rate))
}

// globalAt is when the process's clock shows t (never before now).
func (p *proc) globalAt(t time.Time) time.Time {
	g := p.globalAtNs(t)
	if g == p.w.nowNs {
		return p.w.now
	}
	return p.w.timeAt(g)
}

// globalAtNs is globalAt in nanoseconds since the world's zero.
func (p *proc) globalAtNs(t time.Time) int64 {
	d := time.Duration(p.w.sinceZero(t) - p.localBase)
	g := p.globalBase + int64(time.Duration(float64(d)/p.rate)+1)
	return max(g, p.w.nowNs)
}

// globalDur is how long d of the process's clock lasts in real time.
func (p *proc) globalDur(d time.Duration) time.Duration { return time.Duration(float64(d) / p.rate) }

func (p *proc) setRate(r float64) {
	p.localBase, p.globalBase, p.rate = p.localNs(), p.w.nowNs, r
	// The pending wake-up was for the old rate.
	p.waking = false
	if p.up && p.rewake != nil {
		p.rewake()
	}
}

// deliver runs fn in run of the process now, holds it while the process
// is paused or busy, and drops it if that run is over.
func (p *proc) deliver(run int, f func()) { p.deliverTask(run, fn(f)) }

// deliverTask is deliver for a task.
func (p *proc) deliverTask(run int, t task) {
	if !p.up || p.run != run {
		return
	}
	if p.paused || p.busy {
		p.held = append(p.held, t)
		return
	}
	t.run()
}

// answerBlocked delivers the answer the busy process waits for: it ends
// the block, then what was held meanwhile runs.
func (p *proc) answerBlocked(run int, fn func()) {
	if !p.up || p.run != run {
		return
	}
	u := func() {
		p.busy = false
		fn()
		p.drainAfterBlock()
	}
	if p.paused {
		p.unblock = u
		return
	}
	u()
}

// deliverOther runs fn on another goroutine of the process (not its
// loop): held only while the process is paused.
func (p *proc) deliverOther(run int, fn func()) {
	if !p.up || p.run != run {
		return
	}
	if p.paused {
		p.heldOther = append(p.heldOther, fn)
		return
	}
	fn()
}

// resume ends a pause: the other goroutines' work and the blocked answer
// first, then what the loop had held, timers first.
func (p *proc) resume() {
	if !p.paused {
		return
	}
	p.paused = false
	for len(p.heldOther) > 0 && p.up && !p.paused {
		fn := p.heldOther[0]
		p.heldOther = p.heldOther[1:]
		fn()
	}
	if u := p.unblock; u != nil && p.up && !p.paused {
		p.unblock = nil
		u()
	}
	p.drain()
}

// drainAfterBlock works off what queued while the loop was blocked on a
// call. Unlike after a pause, the answers are already in the loop's
// queue when it unblocks (other goroutines read them meanwhile), so they
// come before the timers, and afterDrain runs once at the end.
func (p *proc) drainAfterBlock() {
	if p.paused || !p.up {
		return
	}
	p.draining = true
	for len(p.held) > 0 && p.up && !p.paused && !p.busy {
		t := p.held[0]
		p.held = p.held[1:]
		t.run()
	}
	p.draining = false
	if p.afterDrain != nil && p.up && !p.busy {
		p.afterDrain()
	}
	p.drain()
}

// onCrash registers a call this process holds: a SIGKILL resets its
// connection until it is answered (forgetReset).
func (p *proc) onCrash(c *rpc) {
	if len(p.resets) >= 2*p.liveResets+16 {
		// Drop the answered ones, keeping the order.
		p.resets = slices.DeleteFunc(p.resets, func(c *rpc) bool {
			if c.answered {
				c.registered = false
				return true
			}
			return false
		})
	}
	p.resets = append(p.resets, c)
	c.registered = true
	p.liveResets++
}

// forgetReset is told that call c, which onCrash registered, was
// answered. The last one registered (a call answered as it came, as a
// heartbeat is) is dropped at once, so that it can be reused (hbCall);
// others wait for the next clean-up.
func (p *proc) forgetReset(c *rpc) {
	p.liveResets--
	if n := len(p.resets) - 1; n >= 0 && p.resets[n] == c {
		p.resets[n] = nil
		p.resets = p.resets[:n]
		c.registered = false
	}
}

// drain runs what was held, timers first, each in order, until the
// process pauses or blocks again.
func (p *proc) drain() {
	for p.up && !p.paused && !p.busy {
		var t task
		switch {
		case len(p.heldTimers) > 0:
			t, p.heldTimers = p.heldTimers[0], p.heldTimers[1:]
		case len(p.held) > 0:
			t, p.held = p.held[0], p.held[1:]
		default:
			return
		}
		t.run()
	}
}

// wake asks for fn at local time t (zero: no wake-up). Only the earliest
// wake-up asked for is kept: the machine says again when it wants the next
// one after every step, so a later one is never lost.
func (p *proc) wake(t time.Time, f func()) {
	if t.IsZero() || !p.up {
		return
	}
	if p.waking && !t.Before(p.wakeLocal) {
		return // most steps ask again for the wake-up already pending
	}
	g := p.globalAtNs(t)
	if p.waking && g >= p.wakeAt {
		return
	}
	p.waking, p.wakeAt, p.wakeLocal = true, g, t
	var e *wakeEvent
	if n := len(p.wakes); n > 0 {
		e, p.wakes = p.wakes[n-1], p.wakes[:n-1]
	} else {
		e = &wakeEvent{p: p}
	}
	e.r, e.g, e.f = p.run, g, f
	p.w.atNs(g, e)
}

func (e *wakeEvent) run() {
	p, run, g, f := e.p, e.r, e.g, e.f
	e.f = nil
	p.wakes = append(p.wakes, e)
	if p.run != run || !p.waking || p.wakeAt != g {
		return // a later run's, or an earlier wake-up replaced it
	}
	p.waking = false
	if p.paused || p.busy {
		p.heldTimers = append(p.heldTimers, fn(f))
		return
	}
	f()
}

// crash ends the run at once: nothing it held or scheduled happens, and
// the callers of what it held unanswered see their connections reset.
func (p *proc) crash() {
	resets := p.resets
	p.resets, p.liveResets = nil, 0
	for _, c := range resets {
		c.registered = false
		if !c.answered {
			c.reset()
		}
	}
	p.up, p.paused, p.busy = false, false, false
	p.held, p.heldTimers, p.heldOther, p.unblock = nil, nil, nil, nil
	p.waking = false
	p.run++
}

// start begins a new run (the first, or after a crash or stop).
func (p *proc) start() {
	if p.up {
		return
	}
	p.up = true
}
