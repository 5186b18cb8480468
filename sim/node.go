package sim

import "time"

// proc is what every simulated process has: its id, which run of it this
// is, whether it is up or paused, and its own clock.
//
// Everything that happens to a process goes through deliver, which drops
// what was meant for an earlier run (a crash forgets everything) and holds
// what arrives while the process is paused or busy (a paused process is
// SIGSTOPped: the kernel takes its messages, the process reads them when
// it runs again, late, which is what rule 4's stall guard must notice).
type proc struct {
	w   *World
	id  string
	run int // 0 for the first process, +1 per restart
	up  bool
	// paused: SIGSTOP; busy: the driver's loop is blocked on a call (a
	// master loading its map or waiting for a write), as the real loop is.
	paused, busy bool
	held         []func()
	// heldTimers are timers that fired while the process could not run:
	// they run first when it can again. A resumed Go process finds its
	// expired timers ready at once, while what arrived on its sockets
	// must still be read and decoded by other goroutines before its loop
	// sees it; so the loop steps the late Tick before the queued answers,
	// which is exactly the stall rule 4 must recognise.
	heldTimers []func()
	// unblock is the answer a busy process waits for, when it came while
	// the process was paused: it runs first at the resume.
	unblock func()

	// The clock: local = localBase + (now − globalBase) × rate.
	rate                  float64
	localBase, globalBase time.Time

	wakeAt time.Time // the pending wake-up, global time (zero: none)
	rewake func()    // schedules the machine's next wake-up again
}

func newProc(w *World, id string) *proc {
	return &proc{w: w, id: id, rate: 1, localBase: w.now, globalBase: w.now}
}

// local is the process's own clock now.
func (p *proc) local() time.Time {
	return p.localBase.Add(time.Duration(float64(p.w.now.Sub(p.globalBase)) * p.rate))
}

// globalAt is when the process's clock shows t (never before now).
func (p *proc) globalAt(t time.Time) time.Time {
	d := t.Sub(p.localBase)
	g := p.globalBase.Add(time.Duration(float64(d)/p.rate) + 1)
	if g.Before(p.w.now) {
		return p.w.now
	}
	return g
}

// globalDur is how long d of the process's clock lasts in real time.
func (p *proc) globalDur(d time.Duration) time.Duration { return time.Duration(float64(d) / p.rate) }

func (p *proc) setRate(r float64) {
	p.localBase, p.globalBase, p.rate = p.local(), p.w.now, r
	// The pending wake-up was for the old rate.
	p.wakeAt = time.Time{}
	if p.up && p.rewake != nil {
		p.rewake()
	}
}

// deliver runs fn in run of the process now, holds it while the process
// is paused or busy, and drops it if that run is over.
func (p *proc) deliver(run int, fn func()) {
	if !p.up || p.run != run {
		return
	}
	if p.paused || p.busy {
		p.held = append(p.held, fn)
		return
	}
	fn()
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
		p.drain()
	}
	if p.paused {
		p.unblock = u
		return
	}
	u()
}

// resume ends a pause: the blocked answer first, then what was held.
func (p *proc) resume() {
	if !p.paused {
		return
	}
	p.paused = false
	if u := p.unblock; u != nil {
		p.unblock = nil
		u()
	}
	p.drain()
}

// drain runs what was held, timers first, each in order, until the
// process pauses or blocks again.
func (p *proc) drain() {
	for p.up && !p.paused && !p.busy {
		var fn func()
		switch {
		case len(p.heldTimers) > 0:
			fn, p.heldTimers = p.heldTimers[0], p.heldTimers[1:]
		case len(p.held) > 0:
			fn, p.held = p.held[0], p.held[1:]
		default:
			return
		}
		fn()
	}
}

// wake asks for fn at local time t (zero: no wake-up). Only the earliest
// wake-up asked for is kept: the machine says again when it wants the next
// one after every step, so a later one is never lost.
func (p *proc) wake(t time.Time, fn func()) {
	if t.IsZero() || !p.up {
		return
	}
	g := p.globalAt(t)
	if !p.wakeAt.IsZero() && !g.Before(p.wakeAt) {
		return
	}
	p.wakeAt = g
	run := p.run
	p.w.at(g, func() {
		if p.run != run || !p.wakeAt.Equal(g) {
			return
		}
		p.wakeAt = time.Time{}
		if p.paused || p.busy {
			p.heldTimers = append(p.heldTimers, fn)
			return
		}
		fn()
	})
}

// crash ends the run at once: nothing it held or scheduled happens.
func (p *proc) crash() {
	p.up, p.paused, p.busy = false, false, false
	p.held, p.heldTimers, p.unblock = nil, nil, nil
	p.wakeAt = time.Time{}
	p.run++
}

// start begins a new run (the first, or after a crash or stop).
func (p *proc) start() {
	if p.up {
		return
	}
	p.up = true
}
