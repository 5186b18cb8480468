package sim

import (
	"time"

	"github.com/mcsim/mcsim/coreapp/books"

	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/scenarios"
)

// gatewayNode is the gateway: gateway.Log decides every session, as in the
// real server; the adapter carries its pings (every PingInterval, all
// sessions at the same instants since the gateway started, as the real
// server aligns them) and wakes the log when the next session is due to
// turn silent.
type gatewayNode struct {
	w   *World
	p   *proc
	log *gateway.Log
	// open are the sessions open now, in the order they opened (which is
	// their SessionID order).
	open   []*gwSession
	tickAt time.Time // the pending silence check (zero: none)
	// offerAt is the pending status offer (messages.go; zero: none).
	offerAt time.Time
	delays  gateway.StatusDelays // the log's
	// spare is a fast-path round's list, done with, for the next round.
	spare *pongRound
}

// pongRound is one round's fast-path pongs, heard together.
type pongRound struct {
	g   *gatewayNode
	ids []gateway.SessionID
}

func (r *pongRound) run() {
	for _, id := range r.ids {
		r.g.heard(id)
	}
	r.ids = r.ids[:0]
	r.g.spare = r
}

type gwSession struct {
	id      gateway.SessionID
	coreapp *coreappNode
	run     int
	shard   int32
	epoch   uint64
	// pinged is the books' event for a ping of this session, boxed once
	// (a cluster's pings are most of what its coreapps step).
	pinged books.Event
}

func newGateway(w *World) *gatewayNode {
	g := &gatewayNode{w: w, p: newProc(w, "gateway"), log: gateway.NewLog(w.now), delays: gateway.DefaultStatusDelays()}
	g.p.up = true
	if w.sabotage.NoGatewayFencing {
		g.log.DisableEpochFencing()
	}
	w.after(gateway.PingInterval, g.pingRound)
	return g
}

// openSession is a coreapp's session request arriving: the log decides;
// the replaced sessions' coreapps are told; the answer goes back.
func (g *gatewayNode) openSession(c *coreappNode, run int, shard, shards int32, epoch uint64) {
	d := g.log.Open(g.w.now, c.p.id, shard, shards, epoch)
	if !d.Accepted {
		g.w.net.stream(g.p.id, c.p.id, func() { c.p.deliver(run, func() { c.sessionAnswer(shard, epoch, 0, false) }) })
		return
	}
	for _, r := range d.Replaced {
		if i := g.index(r.ID); i >= 0 {
			old := g.open[i]
			g.open = append(g.open[:i], g.open[i+1:]...)
			g.w.net.stream(g.p.id, old.coreapp.p.id, func() {
				old.coreapp.p.deliver(old.run, func() { old.coreapp.sessionReplaced(old.shard, old.epoch) })
			})
		}
	}
	s := &gwSession{id: d.Session.ID, coreapp: c, run: run, shard: shard, epoch: epoch,
		pinged: books.GatewayPinged{Shard: shard, Epoch: epoch}}
	g.open = append(g.open, s)
	g.w.net.stream(g.p.id, c.p.id, func() { c.p.deliver(run, func() { c.sessionAnswer(shard, epoch, s.id, true) }) })
	g.scheduleTick()
	g.offerStatuses()
}

func (g *gatewayNode) index(id gateway.SessionID) int {
	for i, s := range g.open {
		if s.id == id {
			return i
		}
	}
	return -1
}

// closeSession is a session's stream ending (closed by its coreapp, or
// broken by its process's death).
func (g *gatewayNode) closeSession(id gateway.SessionID) {
	if i := g.index(id); i >= 0 {
		g.open = append(g.open[:i], g.open[i+1:]...)
		g.log.Close(g.w.now, id)
	}
}

// closeAll ends every session of a coreapp run whose process died: its
// kernel closes the connections.
func (g *gatewayNode) closeAll(c *coreappNode, run int) {
	var ids []gateway.SessionID
	for _, s := range g.open {
		if s.coreapp == c && s.run == run {
			ids = append(ids, s.id)
		}
	}
	for _, id := range ids {
		g.w.after(g.w.net.latency(scenarios.NetLink{}), func() { g.closeSession(id) })
	}
}

// pingRound pings every open session. A session whose links both ways
// are clear and whose coreapp runs takes the fast path: the ping is taken
// now and every such pong of the round is heard in one event a round trip
// later (the gateway's pings are all sent at the same instant, and a
// tenth of a millisecond is nothing to a 750 ms silence). Every other
// session's ping and pong cross the network model one by one, faults and
// all. Most of a healthy cluster's events are these pings, so the fast
// path is most of the simulator's speed.
func (g *gatewayNode) pingRound() {
	g.w.after(gateway.PingInterval, g.pingRound)
	fast := g.spare
	if fast == nil {
		fast = &pongRound{g: g}
	}
	g.spare = nil
	calm := g.w.net.calm()
	for _, s := range g.open {
		c := s.coreapp
		if c.p.up && c.p.run == s.run && !c.p.paused && !c.p.busy &&
			(calm || g.w.net.clear(g.p.id, c.p.id) && g.w.net.clear(c.p.id, g.p.id)) {
			if c.pinged(s.shard, s.epoch, s.pinged) {
				fast.ids = append(fast.ids, s.id)
			}
			continue
		}
		s := s
		g.w.net.stream(g.p.id, c.p.id, func() {
			c.p.deliver(s.run, func() {
				if c.pinged(s.shard, s.epoch, s.pinged) {
					g.w.net.stream(c.p.id, g.p.id, func() { g.heard(s.id) })
				}
			})
		})
	}
	if len(fast.ids) > 0 {
		g.w.afterTask(2*baseLatency, fast) // the round trip
	} else {
		g.spare = fast
	}
}

func (g *gatewayNode) heard(id gateway.SessionID) {
	if _, again := g.log.Heard(g.w.now, id); again {
		g.scheduleTick()
	}
	// Otherwise the deadline only moved later: the pending check finds
	// the new one when it fires.
}

// scheduleTick wakes the log when the first open session is due to turn
// silent.
func (g *gatewayNode) scheduleTick() {
	// The earliest deadline is the earliest last hearing plus
	// SilentAfter: one Add, not one per session (log.Deadline).
	var last time.Time
	found := false
	for _, s := range g.open {
		if l, silent, open := g.log.LastHeard(s.id); open && !silent && (!found || l.Before(last)) {
			last, found = l, true
		}
	}
	if !found {
		return
	}
	next := last.Add(gateway.SilentAfter)
	if !g.tickAt.IsZero() && !next.Before(g.tickAt) {
		return
	}
	g.tickAt = next
	g.w.at(next, func() {
		if !g.tickAt.Equal(next) {
			return
		}
		g.tickAt = time.Time{}
		g.log.Tick(g.w.now)
		g.scheduleTick()
	})
}
