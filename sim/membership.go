package sim

import "time"

// Membership, with the delays measured on real processes (README,
// "graceful leave and join, as both masters see them"): a join and a
// graceful leave are pushed to the masters directly (membership's direct
// push), arriving within tens of milliseconds of the process's start or
// its SIGTERM; a master that joins learns every member at once by
// push-pull with its seed. What cannot cross a cut link directly goes
// through another member a gossip round (500 ms, membership/config.go)
// later, or waits until some member can relay it. Failure detection is
// not modelled: to a master, gossip's "failed" means nothing (the
// heartbeat rule decides, master/gossip.go).
const (
	gossipInterval = 500 * time.Millisecond
	joinMin        = 5 * time.Millisecond
	joinMax        = 40 * time.Millisecond
	leaveMin       = time.Millisecond
	leaveMax       = 8 * time.Millisecond
)

// gossip tells to (its current run) fn, as news about the current run of
// from (which link it crosses), lo..hi after now. News of a run that is
// over is dropped, as memberlist drops a message of an older incarnation:
// a join once that run crashed, a goodbye once the node runs again.
func (w *World) gossip(src *proc, to *proc, lo, hi time.Duration, leave bool, fn func()) {
	run, from, srcRun := to.run, src.id, src.run
	stale := func() bool {
		if leave {
			return src.up && src.run != srcRun // it runs again: a newer incarnation
		}
		return src.run != srcRun
	}
	var try func()
	try = func() {
		if !to.up || to.run != run || stale() {
			return
		}
		d := w.uniform(lo, hi)
		if w.net.cut(from, to.id) {
			// Cut: another member may relay it, a gossip round later;
			// with nobody to relay, try again next round.
			if !w.relay(from, to.id) {
				w.after(gossipInterval, try)
				return
			}
			d += w.uniform(0, gossipInterval)
		}
		w.after(d, func() {
			if !stale() {
				to.deliver(run, fn)
			}
		})
	}
	try()
}

// relay says whether some running member other than from and to hears
// from and is heard by to: gossip then reaches to through it.
func (w *World) relay(from, to string) bool {
	ok := func(p *proc) bool {
		return p.id != from && p.id != to && p.up && !p.paused && !w.net.cut(from, p.id) && !w.net.cut(p.id, to)
	}
	if ok(w.store.p) {
		return true
	}
	for _, m := range w.masters {
		if ok(m.p) {
			return true
		}
	}
	for _, c := range w.coreapps {
		if ok(c.p) {
			return true
		}
	}
	return false
}

// joined: p is a gossip member now. The masters hear of a coreapp; a
// master hears of every coreapp that is a member.
func (w *World) joined(p *proc) {
	if c := w.coreappByID(p.id); c != nil {
		for _, m := range w.masters {
			if m.p.up && m.haveSnap {
				w.gossip(p, m.p, joinMin, joinMax, false, func() { m.coreappJoined(c.p.id) })
			}
		}
		return
	}
	// A joining master learns the whole membership in one push-pull with
	// its seed: every coreapp at the same moment.
	m := w.masterByID(p.id)
	d := w.uniform(time.Millisecond, 5*time.Millisecond)
	for _, c := range w.coreapps {
		if c.p.up && c.ready {
			w.gossip(c.p, m.p, d, d, false, func() { m.coreappJoined(c.p.id) })
		}
	}
}

// left: p left gracefully; every master hears it at once.
func (w *World) left(p *proc) {
	c := w.coreappByID(p.id)
	for _, m := range w.masters {
		if m.p == p || !m.p.up {
			continue
		}
		if c != nil {
			w.gossip(p, m.p, leaveMin, leaveMax, true, func() { m.coreappLeft(p.id) })
		} else {
			w.gossip(p, m.p, leaveMin, leaveMax, true, func() { m.masterLeft(p.id) })
		}
	}
}

// masterAlive: some master is a member (a stopping coreapp waits for a
// handover only if one is).
func (w *World) masterAlive() bool {
	for _, m := range w.masters {
		if m.p.up {
			return true
		}
	}
	return false
}

func (w *World) coreappByID(id string) *coreappNode { return w.coreappIndex[id] }

// addCoreapp adds a coreapp to the world (not started).
func (w *World) addCoreapp(c *coreappNode) {
	w.coreapps = append(w.coreapps, c)
	if w.coreappIndex == nil {
		w.coreappIndex = map[string]*coreappNode{}
	}
	w.coreappIndex[c.p.id] = c
}

func (w *World) masterByID(id string) *masterNode {
	for _, m := range w.masters {
		if m.p.id == id {
			return m
		}
	}
	return nil
}
