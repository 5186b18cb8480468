package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/mcsim/mcsim/coreapp/books"
	"github.com/mcsim/mcsim/master/failover"
	"github.com/mcsim/mcsim/master/primary"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/scenarios"
)

// masterNode is a master: primary.Machine decides its lease, its term
// and, while primary, its failovers. The adapter carries out the actions
// as the real driver does (master/exec.go): acquire and map writes to the
// store, heartbeats, assigns and releases to the coreapps, each outcome
// stepped back at the own clock's now; a map write that must be waited for
// blocks the master's loop.
type masterNode struct {
	w        *World
	p        *proc
	mc       *primary.Machine
	snap     settingsSnap
	haveSnap bool
	// peers are the coreapps known by gossip or the stored map, each with
	// its node (looked up once: every heartbeat asks).
	peers  map[string]*coreappNode
	expect int // StartupCoreapps: the cluster's coreapp count

	loaded *mcsimv1.ShardMap // the map being stepped as MapLoaded

	// The term's map writer (see queueWrite).
	writing   bool       // a write is in flight
	queue     []mapWrite // what waits for it
	writerGen int        // bumped when a term ends: its writer's answers are void
	// blocked says what the loop is blocked on ("write", "load", or "");
	// blockGen counts the blocks a stop cut short, whose late answers are
	// then dropped.
	blocked  string
	blockGen int
	// results are heartbeat outcomes queued while the loop was blocked,
	// stepped as one HeartbeatsDone once the backlog is worked off.
	results   []primary.HeartbeatResult
	releasing bool // a ReleaseLease is being carried out: it exits
	tickFn    func()
	// hbDone is a HeartbeatsDone of one result, boxed once: the result
	// is written into hbResult before each step (the machine keeps
	// neither the event nor its slice).
	hbDone   primary.Event
	hbResult [1]primary.HeartbeatResult
	// recs are the ground truth's records of the heartbeats of term
	// recsTerm in run recsRun, by coreapp (records).
	recs     map[*coreappNode]*hbRecords
	recsTerm uint64
	recsRun  int
}

func newMaster(w *World, id string, expect int) *masterNode {
	m := &masterNode{w: w, p: newProc(w, id), expect: expect}
	m.p.rewake, m.tickFn = m.rewake, m.tick
	m.hbDone = primary.HeartbeatsDone{Results: m.hbResult[:]}
	m.p.afterDrain = func() {
		if len(m.results) > 0 {
			rs := m.results
			m.results = nil
			m.step(primary.HeartbeatsDone{Results: rs})
		}
	}
	return m
}

func (m *masterNode) incarnation() string { return fmt.Sprintf("%s/%d", m.p.id, m.p.run) }

// start runs a new process: it reads and watches its settings (retrying
// while the store is out of reach), joins the gossip cluster and competes
// for the lease.
func (m *masterNode) start() {
	m.p.start()
	cfg := primary.Config{ID: m.p.id, StartupCoreapps: m.expect}
	if m.w.sabotage.NoStallGuard {
		cfg.StallThreshold = 1000 * time.Hour
	}
	if m.w.sabotage.NoDeadline {
		cfg.NewCore = func(c failover.Config, sm failover.ShardMap, now time.Time) (*failover.Core, error) {
			core, err := failover.New(c, sm, now)
			if err == nil {
				core.DisableDeadline()
			}
			return core, err
		}
	}
	m.mc = primary.New(cfg)
	if m.w.sabotage.NoOwnClockLease {
		m.mc.Lease().DisableOwnClockCheck()
	}
	m.haveSnap, m.blocked, m.results, m.releasing = false, "", nil, false
	m.endWriter()
	m.peers = map[string]*coreappNode{}
	m.readSettings()
}

func (m *masterNode) settingsEvent() primary.Settings {
	return primary.Settings{HeartbeatInterval: m.snap.hb, UnhealthyInterval: m.snap.ui, Shards: m.snap.shards}
}

func (m *masterNode) readSettings() {
	st := m.w.store
	m.w.call(m.p, st.p, time.Second, func() (any, error) { return st.watch(m.p, m.settingsChanged), nil }, func(v any, err error) {
		if err != nil {
			m.w.after(time.Second, func() { m.p.deliver(m.p.run, m.readSettings) })
			return
		}
		m.snap, m.haveSnap = v.(settingsSnap), true
		m.w.joined(m.p)
		m.step(m.settingsEvent())
	})
}

func (m *masterNode) settingsChanged(s settingsSnap) {
	m.snap = s
	m.step(m.settingsEvent())
}

func (m *masterNode) rewake() { m.p.wake(m.mc.NextWake(), m.tickFn) }

func (m *masterNode) tick() { m.step(primary.Tick{}) }

// primary says whether the master acts as primary (for the target's
// report of roles).
func (m *masterNode) primary() bool { return m.p.up && m.mc != nil && m.mc.Primary() }

// step steps the machine at the own clock's now and carries out what it
// decides.
func (m *masterNode) step(ev primary.Event) {
	acts, err := m.mc.Step(m.p.local(), ev)
	if err == nil {
		m.carry(acts)
	}
	m.rewake()
}

func (m *masterNode) carry(acts []primary.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case primary.SendAcquire:
			m.acquire(a)
		case primary.LoadShardMap:
			m.loadMap(a)
		case primary.BecomePrimary:
			m.startTerm()
		case primary.StepDown:
			m.endWriter()
		case primary.ReleaseLease:
			m.releaseLease(a)
		case primary.SendHeartbeat:
			m.heartbeat(a)
		case primary.Assign:
			m.assign(a)
		case primary.Release:
			m.release(a)
		case primary.WriteMap:
			m.writeMap(a)
		case primary.Report:
			if d, ok := a.A.(failover.DeclaredUnhealthy); ok {
				m.w.declarations = append(m.w.declarations, scenarios.Declaration{At: m.w.now, Master: m.p.id, Coreapp: d.Coreapp})
				m.w.truth.declared(m.hbKey(m.mc.Term(), d.Coreapp), d.EarliestUnansweredSentAt, m.p.local(), m.mc.Core().Config().UnhealthyInterval)
			}
		}
	}
}

func (m *masterNode) acquire(a primary.SendAcquire) {
	st := m.w.store
	sentAt, inc := m.p.local(), m.incarnation()
	m.w.callAt(m.p, st.p, a.Timeout, func() (any, time.Time, error) {
		v, err := st.acquire(m.p.id, inc, a.TTL)
		if err != nil || !v.granted {
			return v, time.Time{}, err // a refusal writes nothing
		}
		return v, st.commit(), nil
	}, func(v any, err error) {
		ev := primary.Answered{SentAt: sentAt, TTL: a.TTL, Err: err}
		if err == nil {
			r := v.(acquireAnswer)
			ev.Granted, ev.Epoch, ev.Holder, ev.Remaining = r.granted, r.epoch, r.holder, r.remaining
			if r.granted {
				m.w.truth.granted(proofKey{m.p.id, m.p.run, r.epoch}, sentAt, a.TTL)
			}
		}
		m.step(ev)
	})
}

// loadMap carries out LoadShardMap: the loop blocks on the load, as the
// real one does.
func (m *masterNode) loadMap(a primary.LoadShardMap) {
	st := m.w.store
	m.blocked = "load"
	gen := m.blockGen
	m.w.callBlocking(m.p, st.p, a.Timeout, func() (any, time.Time, error) { return st.smap, time.Time{}, nil }, func(v any, err error) {
		if m.blockGen != gen {
			return // a stop cut the load short
		}
		m.blocked = ""
		var sm *mcsimv1.ShardMap
		if err == nil {
			sm = v.(*mcsimv1.ShardMap)
		}
		m.loaded = sm
		m.step(primary.MapLoaded{Map: fromProto(sm), Err: err})
		m.loaded = nil
	})
}

func fromProto(p *mcsimv1.ShardMap) failover.ShardMap {
	sm := failover.ShardMap{MaxEpoch: p.GetMaxEpoch()}
	for _, a := range p.GetAssignments() {
		sm.Assignments = append(sm.Assignments, failover.Assignment{Shard: int(a.GetShard()), Coreapp: a.GetCoreappId(), Epoch: a.GetEpoch()})
	}
	return sm
}

func toProto(sm failover.ShardMap) *mcsimv1.ShardMap {
	p := &mcsimv1.ShardMap{MaxEpoch: sm.MaxEpoch, Shards: int32(len(sm.Assignments))}
	for _, a := range sm.Assignments {
		p.Assignments = append(p.Assignments, &mcsimv1.ShardAssignment{Shard: int32(a.Shard), CoreappId: a.Coreapp, Epoch: a.Epoch})
	}
	return p
}

// startTerm carries out BecomePrimary: the stored owners are known at once
// (their addresses are in the map); the map writer starts idle.
func (m *masterNode) startTerm() {
	m.endWriter()
	for _, a := range m.loaded.GetAssignments() {
		if id := a.GetCoreappId(); id != "" {
			m.peers[id] = m.w.coreappByID(id)
		}
	}
}

func (m *masterNode) coreapp(id string) *coreappNode {
	c, ok := m.peers[id]
	if !ok {
		return nil
	}
	if c == nil {
		c = m.w.coreappByID(id) // unknown when it was named
	}
	return c
}

// later posts fn to the loop after what is running now.
func (m *masterNode) later(fn func()) {
	run := m.p.run
	m.w.after(0, func() { m.p.deliver(run, fn) })
}

func (m *masterNode) hbKey(term uint64, coreapp string) hbKey {
	return hbKey{master: m.p.id, run: m.p.run, term: int(term), coreapp: coreapp}
}

func (m *masterNode) heartbeat(a primary.SendHeartbeat) {
	c := m.coreapp(a.Coreapp)
	if c == nil {
		failed := primary.HeartbeatsDone{Results: []primary.HeartbeatResult{{Term: a.Term, Coreapp: a.Coreapp, Seq: a.Seq, Failed: true}}}
		m.later(func() { m.step(failed) })
		return
	}
	var h *hbCall
	if n := len(m.w.hbFree); n > 0 {
		h, m.w.hbFree = m.w.hbFree[n-1], m.w.hbFree[:n-1]
	} else {
		h = new(hbCall)
	}
	*h = hbCall{m: m, c: c, term: a.Term, seq: a.Seq, leaseEpoch: a.LeaseEpoch}
	h.recs = m.records(a.Term, c)
	h.recs.sent(a.Seq, m.p.localNs())
	m.w.callWith(&h.call, m.p, c.p, h, replyToLoop, m.snap.ui)
}

// records are the ground truth's heartbeat records of c in term, kept
// per coreapp node for the term: the truth's own map is keyed by two
// strings, and every heartbeat asks.
func (m *masterNode) records(term uint64, c *coreappNode) *hbRecords {
	if m.recs == nil || m.recsTerm != term || m.recsRun != m.p.run {
		m.recs, m.recsTerm, m.recsRun = map[*coreappNode]*hbRecords{}, term, m.p.run
	}
	r := m.recs[c]
	if r == nil {
		r = m.w.truth.records(m.hbKey(term, c.p.id))
		m.recs[c] = r
	}
	return r
}

// hbCall is one heartbeat call: the coreapp answers with the shards it
// holds; the answer's arrival is noted for the ground truth (rule 4), and
// the master steps the result.
//
// It is the most frequent allocation of a run, so it keeps no more than
// it needs of the SendHeartbeat (the coreapp's id is c's), and once its
// reply has run it is reused (World.hbFree) if nothing can reach it any
// more (reusable).
type hbCall struct {
	call                  rpc
	m                     *masterNode
	c                     *coreappNode
	term, seq, leaseEpoch uint64
	recs                  *hbRecords // where the ground truth notes its arrival
}

func (h *hbCall) serve(c *rpc) { c.respond(h.c.heartbeat(h.m.p.id, h.leaseEpoch)) }

func (h *hbCall) arrived(_ any, err error) {
	if err == nil {
		h.recs.arrived(h.seq, h.m.p.localNs())
	}
}

func (h *hbCall) reply(v any, err error) {
	m := h.m
	r := primary.HeartbeatResult{Term: h.term, Coreapp: h.c.p.id, Seq: h.seq, Failed: true}
	if err == nil {
		r.Failed, r.Shards = false, v.([]failover.ServedShard)
	}
	if h.reusable(err) && !m.w.noCallReuse {
		m.w.hbFree = append(m.w.hbFree, h)
	}
	if m.p.draining {
		// Queued while the loop was blocked: stepped together with the
		// rest of the backlog (master/node.go handleQueued).
		m.results = append(m.results, r)
		return
	}
	m.hbResult[0] = r
	m.step(m.hbDone)
}

// reusable says whether nothing but the reply running now refers to the
// call: its outcome came back (after a timeout, the answer may still be
// on its way), so its request, handler and timeout are done with, and the
// callee's resets list has let go of it.
func (h *hbCall) reusable(err error) bool {
	return err != errTimeout && !h.call.registered
}

func (m *masterNode) assign(a primary.Assign) {
	c := m.coreapp(a.Coreapp)
	done := func(ok bool) {
		m.step(primary.AssignDone{Term: a.Term, Shard: a.Shard, Coreapp: a.Coreapp, Epoch: a.Epoch, OK: ok})
	}
	if c == nil {
		m.later(func() { done(false) })
		return
	}
	leaseEpoch, id := a.LeaseEpoch, m.p.id
	m.w.truth.commandSent(proofKey{id, m.p.run, leaseEpoch}, "assign", a.Shard, m.p.local())
	ev := books.AssignAsked{Coreapp: a.Coreapp, LeaseEpoch: leaseEpoch, Shard: int32(a.Shard), Shards: int32(a.Shards), Epoch: a.Epoch}
	m.w.callAsync(m.p, c.p, m.snap.ui, func(respond func(any, error)) { c.assign(id, ev, respond) }, func(_ any, err error) {
		done(err == nil)
	})
}

func (m *masterNode) release(a primary.Release) {
	c := m.coreapp(a.Coreapp)
	if c == nil {
		return // best effort: fencing makes a missed release harmless
	}
	leaseEpoch, id := a.LeaseEpoch, m.p.id
	ev := books.ReleaseAsked{Coreapp: a.Coreapp, LeaseEpoch: leaseEpoch, Shard: int32(a.Shard), Epoch: a.Epoch}
	// Rule 3: a release must not arrive after the lease's end by our clock.
	timeout := min(m.snap.ui, m.mc.Lease().Remaining(m.p.local()))
	if timeout <= 0 && !m.w.sabotage.NoOwnClockLease {
		return
	}
	if timeout <= 0 {
		timeout = m.snap.ui
	}
	m.w.truth.commandSent(proofKey{id, m.p.run, leaseEpoch}, "release", a.Shard, m.p.local())
	m.w.call(m.p, c.p, timeout, func() (any, error) { return c.command(id, "release", ev, leaseEpoch) }, func(any, error) {})
}

// writeMap carries out WriteMap: queued on the term's writer, or queued
// and waited for while the loop blocks on it.
func (m *masterNode) writeMap(a primary.WriteMap) {
	p := toProto(a.Map)
	p.MaxEpoch = a.MaxEpoch
	if !a.Wait {
		m.queueWrite(p, a.Term, a.LeaseEpoch, nil)
		return
	}
	m.p.busy = true
	m.blocked = "write"
	run, gen, settled := m.p.run, m.blockGen, false
	settle := func(err error) {
		if settled || m.blockGen != gen {
			return // answered already, or a stop cut the wait short
		}
		settled = true
		m.p.answerBlocked(run, func() {
			m.blocked = ""
			ev := primary.MapWritten{Term: a.Term}
			if err != nil {
				ev.Fenced, ev.Err = errors.Is(err, errFenced), err.Error()
			}
			m.step(ev)
		})
	}
	m.queueWrite(p, a.Term, a.LeaseEpoch, settle)
	m.w.after(m.p.globalDur(a.Timeout), func() { settle(errTimeout) })
}

// The map writer, as master/mapwriter.go: one per term, on its own
// goroutine (its answers do not wait for the loop), one write at a time;
// what queued meanwhile is written as one, the newest map, so the store
// never sees an older map after a newer one. Each write checks the lease
// by the master's own clock as it starts (rule 3) and gives up at its end.

type mapWrite struct {
	m    *mcsimv1.ShardMap
	done func(error) // nil: a background write, whose failure the loop hears
}

// endWriter stops the term's writer: what it has in flight or queued is
// void.
func (m *masterNode) endWriter() {
	m.writing, m.queue = false, nil
	m.writerGen++
}

func (m *masterNode) queueWrite(p *mcsimv1.ShardMap, term, leaseEpoch uint64, done func(error)) {
	m.queue = append(m.queue, mapWrite{m: p, done: done})
	if !m.writing {
		m.writeNext(term, leaseEpoch)
	}
}

func (m *masterNode) writeNext(term, leaseEpoch uint64) {
	if len(m.queue) == 0 {
		m.writing = false
		return
	}
	batch := m.queue
	m.queue = nil
	m.writing = true
	st, id, run, gen := m.w.store, m.p.id, m.p.run, m.writerGen
	finish := func(err error) {
		if m.writerGen != gen {
			return // the term ended: its writer was stopped
		}
		background := false
		for _, w := range batch {
			if w.done != nil {
				w.done(err)
			} else {
				background = true
			}
		}
		if err != nil && background {
			f := primary.MapWriteFailed{Term: term, Fenced: errors.Is(err, errFenced), Err: err.Error()}
			m.p.deliver(run, func() { m.step(f) })
		}
		if m.writerGen == gen {
			m.writeNext(term, leaseEpoch)
		}
	}
	remaining := m.mc.Lease().Remaining(m.p.local())
	if remaining <= 0 && !m.w.sabotage.NoOwnClockLease {
		m.w.after(0, func() {
			m.p.deliverOther(run, func() { finish(errors.New("lease ended by the master's own clock; shard map not written")) })
		})
		return
	}
	timeout := m.snap.ui
	if !m.w.sabotage.NoOwnClockLease {
		timeout = min(timeout, remaining)
	}
	newest := batch[len(batch)-1].m
	m.w.callFromOther(m.p, st.p, timeout, func() (any, time.Time, error) {
		err := st.writeMap(id, leaseEpoch, newest)
		return nil, st.commit(), err
	}, func(_ any, err error) { finish(err) })
}

// releaseLease carries out ReleaseLease (a graceful stop of a primary):
// the last map through the term's writer (after what is queued), then the
// release, then the process leaves; each bounded, as the real stop is.
func (m *masterNode) releaseLease(a primary.ReleaseLease) {
	m.releasing = true
	st, id := m.w.store, m.p.id
	release := func() {
		m.w.callAt(m.p, st.p, time.Second, func() (any, time.Time, error) {
			return nil, st.release(id, a.Epoch), nil
		}, func(any, error) { m.exit() })
	}
	if a.Map == nil {
		release()
		return
	}
	p := toProto(*a.Map)
	p.MaxEpoch = a.MaxEpoch
	run, released := m.p.run, false
	once := func() {
		if !released {
			released = true
			m.p.deliver(run, release)
		}
	}
	m.queueWrite(p, m.mc.Term(), a.Epoch, func(error) { once() })
	m.w.after(time.Second, once)
}

// stop is SIGTERM. A loop blocked on a call sees its context cancelled
// first (the call fails: a waited map write ends the term, a map load
// leaves it secondary); then Shutdown, and a primary releases its lease
// (releaseLease exits); any other master leaves at once.
func (m *masterNode) stop() {
	if m.p.busy {
		what := m.blocked
		m.p.busy, m.blocked, m.p.unblock = false, "", nil
		m.blockGen++
		switch what {
		case "write":
			m.step(primary.MapWritten{Term: m.mc.Term(), Err: "context canceled"})
		case "load":
			m.step(primary.MapLoaded{Err: errors.New("context canceled")})
		}
	}
	m.step(primary.Shutdown{})
	if !m.releasing {
		m.exit()
	}
}

// exit leaves the gossip cluster and ends the process.
func (m *masterNode) exit() {
	m.w.left(m.p)
	m.crash()
}

func (m *masterNode) crash() { m.p.crash() }

// Gossip, as master/gossip.go decides it.
func (m *masterNode) coreappJoined(id string) {
	m.peers[id] = m.w.coreappByID(id)
	m.step(primary.CoreappJoined{ID: id})
}

// coreappLeft forgets the coreapp, on a secondary too (master/node.go): a
// later term must not heartbeat a coreapp that said goodbye.
func (m *masterNode) coreappLeft(id string) {
	delete(m.peers, id)
	m.step(primary.CoreappLeft{ID: id})
}

func (m *masterNode) masterLeft(id string) { m.step(primary.MasterLeft{ID: id}) }
