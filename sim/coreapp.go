package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcsim/mcsim/coreapp"
	"github.com/mcsim/mcsim/coreapp/books"
	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/master/failover"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/scenarios"
)

// A stopping coreapp keeps its sessions open until successors replaced
// them, or for coreapp.DefaultHandoverWait, looking at its books this
// often (coreapp/handover.go).
const handoverPoll = 10 * time.Millisecond

// coreappNode is a coreapp: books.Books decides every command and
// session; the adapter carries its sessions to the gateway and its
// answers back.
type coreappNode struct {
	w     *World
	p     *proc
	b     *books.Books
	ready bool
	// sessions are the gateway's ids of the sessions it accepted, by
	// shard and epoch; closeOnAnswer those closed before their answer.
	sessions      openSessions
	closeOnAnswer map[sessKey]bool
	tickFn        func() // c.tick, made once: a method value allocates
	// assigns are the Assign calls waiting for their session's first
	// answer (coreapp/sessions.go answers an Assign only then).
	assigns map[sessKey]func(any, error)
	// opened is the session the last step opened, if any.
	opened *sessKey
	// hbAsked is the books' HeartbeatAsked for lease epoch hbAskedEpoch,
	// boxed once per epoch; held is scratch for the books' Served; answer
	// is the last heartbeat answer, given again while the shards held
	// are the same (nobody changes an answer).
	hbAsked      books.Event
	hbAskedEpoch uint64
	held         []books.Served
	answer       []failover.ServedShard
	answerAny    any // answer, boxed once
	// tr is the run's messages and callbacks (messages.go); nil until a
	// workload needs it.
	tr *coreappTraffic
}

type sessKey struct {
	shard int32
	epoch uint64
}

func newCoreapp(w *World, id string) *coreappNode {
	c := &coreappNode{w: w, p: newProc(w, id)}
	c.p.rewake, c.tickFn = c.rewake, c.tick
	return c
}

// start runs a new process: empty books; it reads its settings (retrying
// while the store is out of reach, as a real coreapp cannot start
// without them), then joins the gossip cluster.
func (c *coreappNode) start() {
	c.p.start()
	c.b = books.New(c.p.id)
	if c.w.sabotage.NoLeaseFence {
		c.b.DisableLeaseFence()
	}
	c.ready = false
	c.sessions, c.closeOnAnswer = nil, map[sessKey]bool{}
	c.assigns = map[sessKey]func(any, error){}
	c.tr = nil
	if c.w.traffic != nil {
		c.startHooks()
	}
	c.readSettings()
}

func (c *coreappNode) readSettings() {
	c.w.call(c.p, c.w.store.p, time.Second, func() (any, error) { return c.w.store.snap(), nil }, func(_ any, err error) {
		if err != nil {
			c.w.after(time.Second, func() { c.p.deliver(c.p.run, c.readSettings) })
			return
		}
		c.ready = true
		c.w.joined(c.p)
	})
}

func (c *coreappNode) rewake() { c.p.wake(c.b.NextWake(), c.tickFn) }

// tick is the books' wake-up. Mostly a ping moved the silence deadline
// since it was asked for, and a Tick before the books' NextWake finds
// nothing due and changes nothing: then only the wake-up moves, without
// stepping them (a third of a cluster's events are these).
func (c *coreappNode) tick() {
	if w := c.b.NextWake(); !w.IsZero() && c.p.local().Before(w) {
		c.p.wake(w, c.tickFn)
		return
	}
	c.step(books.Tick{})
}

// step steps the books at the own clock's now, carries out what they
// decide and returns the verdict on a command (Accept or Refuse).
func (c *coreappNode) step(ev books.Event) books.Action {
	acts, _ := c.b.Step(c.p.local(), ev)
	return c.carry(acts)
}

// carry carries out what the books decided, asks for their next wake-up
// and returns the verdict on a command (Accept or Refuse).
func (c *coreappNode) carry(acts []books.Action) books.Action {
	var verdict books.Action
	for _, a := range acts {
		switch a := a.(type) {
		case books.Accept, books.Refuse:
			verdict = a
		case books.OpenSession:
			c.open(a)
		case books.CloseSession:
			c.close(sessKey{a.Shard, a.Epoch})
		case books.Leave:
			c.leave(len(a.Shards) > 0)
		}
	}
	c.rewake()
	return verdict
}

func (c *coreappNode) open(a books.OpenSession) {
	c.opened = &sessKey{a.Shard, a.Epoch}
	run, gw := c.p.run, c.w.gw
	c.w.net.stream(c.p.id, gw.p.id, func() { gw.openSession(c, run, a.Shard, a.Shards, a.Epoch) })
	c.sessionOpening(a)
}

func (c *coreappNode) close(k sessKey) {
	id, ok := c.sessions.get(k)
	if !ok {
		c.closeOnAnswer[k] = true
		return
	}
	c.sessions.del(k)
	c.sessionEnded(k)
	gw := c.w.gw
	c.w.net.stream(c.p.id, gw.p.id, func() { gw.closeSession(id) })
}

// sessionAnswer is the gateway's first answer on a session.
func (c *coreappNode) sessionAnswer(shard int32, epoch uint64, id gateway.SessionID, accepted bool) {
	k := sessKey{shard, epoch}
	if respond, ok := c.assigns[k]; ok {
		delete(c.assigns, k)
		if accepted {
			respond(nil, nil)
		} else {
			respond(nil, fmt.Errorf("gateway rejected the session of shard %d at epoch %d", shard, epoch))
		}
	}
	if !accepted {
		delete(c.closeOnAnswer, k)
		c.step(books.SessionRejected{Shard: shard, Epoch: epoch})
		return
	}
	c.sessions.put(k, id)
	c.sessionAccepted(k)
	if c.closeOnAnswer[k] {
		delete(c.closeOnAnswer, k)
		c.close(k)
	}
	c.step(books.SessionAccepted{Shard: shard, Epoch: epoch, SilentAfter: gateway.SilentAfter})
}

func (c *coreappNode) sessionReplaced(shard int32, epoch uint64) {
	k := sessKey{shard, epoch}
	c.sessions.del(k)
	c.sessionEnded(k)
	c.step(books.SessionReplaced{Shard: shard, Epoch: epoch})
}

// pinged is a gateway ping on the session of shard at epoch (ev is its
// books.GatewayPinged); false if the session is no longer open here (no
// pong).
func (c *coreappNode) pinged(shard int32, epoch uint64, ev books.Event) bool {
	if _, ok := c.sessions.get(sessKey{shard, epoch}); !ok {
		return false
	}
	if acts, _ := c.b.Step(c.p.local(), ev); len(acts) > 0 {
		c.carry(acts)
	}
	// A ping the books answer with nothing changed nothing but its
	// session's silence deadline, later (one that makes them wake earlier
	// says so: SetStatus CONNECTED): the wake-up asked for after the last
	// step stands, and asking again would change nothing. Most of a
	// cluster's steps are these pings.
	return true
}

// refusal turns a Refuse into the error the caller sees.
func refusal(a books.Action) error {
	if r, ok := a.(books.Refuse); ok {
		return errors.New(r.Reason)
	}
	return nil
}

// heartbeat answers a master's heartbeat: the shards held, with epochs.
func (c *coreappNode) heartbeat(master string, leaseEpoch uint64) (any, error) {
	before := c.b.LeaseEpoch()
	if c.hbAsked == nil || c.hbAskedEpoch != leaseEpoch {
		c.hbAsked, c.hbAskedEpoch = books.HeartbeatAsked{Coreapp: c.p.id, LeaseEpoch: leaseEpoch}, leaseEpoch
	}
	// Stepped without carry: a heartbeat's only action is the verdict,
	// and it moves no silence deadline, so the wake-up stands (asking
	// again after every heartbeat would change nothing).
	acts, _ := c.b.Step(c.p.local(), c.hbAsked)
	if err := refusal(verdictOf(acts)); err != nil {
		return nil, err
	}
	if c.b.LeaseEpoch() > before {
		c.w.commands = append(c.w.commands, scenarios.Command{At: c.w.now, Coreapp: c.p.id, Run: c.p.run, Master: master, Kind: "heartbeat", LeaseEpoch: leaseEpoch, Accepted: true})
	}
	c.held = c.b.AppendServed(c.held[:0])
	if !sameShards(c.held, c.answer) {
		c.answer = make([]failover.ServedShard, len(c.held))
		for i, s := range c.held {
			c.answer[i] = failover.ServedShard{Shard: int(s.Shard), Epoch: s.Epoch}
		}
		c.answerAny = c.answer
	}
	return c.answerAny, nil
}

// verdictOf is the Accept or Refuse among acts (nil: none).
func verdictOf(acts []books.Action) books.Action {
	for _, a := range acts {
		switch a.(type) {
		case books.Accept, books.Refuse:
			return a
		}
	}
	return nil
}

// sameShards says whether held lists the shards and epochs of answer.
func sameShards(held []books.Served, answer []failover.ServedShard) bool {
	if answer == nil || len(held) != len(answer) {
		return false
	}
	for i, s := range held {
		if int(s.Shard) != answer[i].Shard || s.Epoch != answer[i].Epoch {
			return false
		}
	}
	return true
}

// assign is an Assign from master: the books' verdict, recorded as the
// real coreapp logs it, and an accepted one is answered once the gateway
// answered its session (refused by the gateway: the Assign fails), as
// coreapp/sessions.go does.
func (c *coreappNode) assign(master string, ev books.AssignAsked, respond func(any, error)) {
	c.opened = nil
	v := c.verdict(master, "assign", ev, ev.LeaseEpoch)
	if _, ok := v.(books.Accept); !ok || c.opened == nil {
		respond(nil, refusal(v))
		return
	}
	c.assigns[*c.opened] = respond
}

// command is a Release from master: the books' verdict, recorded for the
// single_primary check as the real coreapp logs it.
func (c *coreappNode) command(master, kind string, ev books.Event, leaseEpoch uint64) (any, error) {
	return nil, refusal(c.verdict(master, kind, ev, leaseEpoch))
}

// verdict steps a command and records the verdict.
func (c *coreappNode) verdict(master, kind string, ev books.Event, leaseEpoch uint64) books.Action {
	v := c.step(ev)
	if r, ok := v.(books.Refuse); ok && !r.Verdict {
		return v // not a judgement on the master (malformed, misdirected, stopping)
	}
	_, accepted := v.(books.Accept)
	c.w.commands = append(c.w.commands, scenarios.Command{At: c.w.now, Coreapp: c.p.id, Run: c.p.run, Master: master, Kind: kind, LeaseEpoch: leaseEpoch, Accepted: accepted})
	return v
}

// served is what the coreapp's health says it serves: held and heard by
// the gateway.
func (c *coreappNode) served() []int {
	var out []int
	for _, s := range c.b.Served() {
		if s.Status == mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED {
			out = append(out, int(s.Shard))
		}
	}
	return out
}

// stop is SIGTERM (rule 5): the books refuse new assignments and say what
// to hand over.
func (c *coreappNode) stop() { c.step(books.StopAsked{}) }

// leave leaves the gossip cluster and, if it served shards and a master
// is alive to hand them over, waits until successors replaced every
// session (or handoverWait), then closes the rest and exits.
func (c *coreappNode) leave(served bool) {
	c.w.left(c.p)
	deadline := c.w.now.Add(coreapp.DefaultHandoverWait)
	if !served || !c.w.masterAlive() {
		c.exit()
		return
	}
	run := c.p.run
	var poll func()
	poll = func() {
		if c.b.ServedCount() == 0 || !c.w.now.Before(deadline) {
			c.exit()
			return
		}
		c.w.after(handoverPoll, func() { c.p.deliver(run, poll) })
	}
	poll()
}

// exit closes every session and ends the process; the poster's Close
// deletes what waits for its window.
func (c *coreappNode) exit() {
	keys := make([]sessKey, 0, len(c.sessions))
	for _, s := range c.sessions {
		keys = append(keys, s.k)
	}
	for _, k := range keys {
		c.close(k)
	}
	if c.tr != nil && c.tr.hooks != nil {
		c.tr.hooks.flushForgets()
	}
	c.p.crash()
}

// openSessions are a coreapp's accepted sessions and their gateway ids,
// sorted by shard and epoch: a coreapp holds a few, and a slice is
// cheaper than a map to look one up in on every ping.
type openSessions []openSession

type openSession struct {
	k  sessKey
	id gateway.SessionID
}

// find is where k's session is, or would be, in shard and epoch order.
// Written out rather than slices.BinarySearchFunc, whose comparison func
// is called, not inlined: every gateway ping looks its session up.
func (s openSessions) find(k sessKey) (int, bool) {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if o := s[m].k; o.shard < k.shard || o.shard == k.shard && o.epoch < k.epoch {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(s) && s[lo].k == k
}

func (s openSessions) get(k sessKey) (gateway.SessionID, bool) {
	if i, ok := s.find(k); ok {
		return s[i].id, true
	}
	return 0, false
}

func (s *openSessions) put(k sessKey, id gateway.SessionID) {
	if i, ok := s.find(k); ok {
		(*s)[i].id = id
	} else {
		*s = slices.Insert(*s, i, openSession{k, id})
	}
}

func (s *openSessions) del(k sessKey) {
	if i, ok := s.find(k); ok {
		*s = slices.Delete(*s, i, i+1)
	}
}

// crash is SIGKILL: the books are gone and the kernel closes the
// gateway's connections.
func (c *coreappNode) crash() {
	run := c.p.run
	c.p.crash()
	c.w.gw.closeAll(c, run)
}
