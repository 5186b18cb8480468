package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcsim/mcsim/coreapp/books"
	"github.com/mcsim/mcsim/master/failover"
	"github.com/mcsim/mcsim/master/lease"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/scenarios"
)

// masterNode is a master: lease.Term decides its term, failover.Core (while
// primary) its failovers. The adapter carries out their actions as the real
// driver does (master/exec.go): acquire and map writes to the store,
// heartbeats, assigns and releases to the coreapps, each answer stepped
// back at the own clock's now; a lease Check before every other input; a
// map write that must be waited for blocks the master's loop.
type masterNode struct {
	w    *World
	p    *proc
	term *lease.Term
	core *failover.Core
	// termNo counts the terms as primary: an answer to a call of an
	// earlier term is dropped, as the real driver drops it.
	termNo   int
	snap     settingsSnap
	haveSnap bool
	peers    map[string]bool // coreapps known by gossip or the stored map
	expect   int             // StartupCoreapps: the cluster's coreapp count

	writing bool       // the term's map writer has a write in flight
	queue   []mapWrite // what waits for it
	// blocked says what the loop is blocked on ("write", "load", or "");
	// blockGen counts the blocks a stop cut short, whose late answers are
	// then dropped.
	blocked  string
	blockGen int
	needTick bool   // answers were applied in a backlog: one Tick after it
	tickFn   func() // m.tick, made once: a method value allocates
}

func newMaster(w *World, id string, expect int) *masterNode {
	m := &masterNode{w: w, p: newProc(w, id), expect: expect}
	m.p.rewake, m.tickFn = m.rewake, m.tick
	m.p.afterDrain = func() {
		if m.needTick {
			m.needTick = false
			m.coreStep(failover.Tick{})
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
	m.term = lease.New(lease.Config{ID: m.p.id})
	if m.w.sabotage.NoOwnClockLease {
		m.term.DisableOwnClockCheck()
	}
	m.core, m.haveSnap, m.writing, m.queue, m.blocked = nil, false, false, nil, ""
	m.peers = map[string]bool{}
	m.readSettings()
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
		m.leaseStep(lease.Settings{HeartbeatInterval: m.snap.hb, UnhealthyInterval: m.snap.ui})
	})
}

func (m *masterNode) settingsChanged(s settingsSnap) {
	old := m.snap
	m.snap = s
	m.leaseStep(lease.Check{})
	if s.hb != old.hb || s.ui != old.ui {
		m.leaseStep(lease.Settings{HeartbeatInterval: s.hb, UnhealthyInterval: s.ui})
		m.coreStep(failover.SettingsChanged{HeartbeatInterval: s.hb, UnhealthyInterval: s.ui})
	}
	if s.shards != old.shards {
		m.coreStep(failover.ShardCountChanged{N: s.shards})
	}
}

func (m *masterNode) rewake() {
	w := m.term.NextWake()
	if m.core != nil {
		if c := m.core.NextWake(); !c.IsZero() && (w.IsZero() || c.Before(w)) {
			w = c
		}
	}
	m.p.wake(w, m.tickFn)
}

func (m *masterNode) tick() {
	m.leaseStep(lease.Tick{})
	m.coreStep(failover.Tick{})
}

// input is an event from outside: the lease is checked first (rule 3).
func (m *masterNode) input(fn func()) {
	m.leaseStep(lease.Check{})
	fn()
}

func (m *masterNode) leaseStep(ev lease.Event) {
	acts, err := m.term.Step(m.p.local(), ev)
	if err == nil {
		m.leaseExecute(acts)
	}
	m.rewake()
}

func (m *masterNode) leaseExecute(acts []lease.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case lease.SendAcquire:
			m.acquire(a)
		case lease.StepDown:
			m.stepDown(a)
		case lease.LoadShardMap:
			m.loadMap(a)
		case lease.ReleaseLease:
			m.releaseLease(a)
		}
	}
}

func (m *masterNode) acquire(a lease.SendAcquire) {
	st := m.w.store
	sentAt, inc := m.p.local(), m.incarnation()
	m.w.callAt(m.p, st.p, a.Timeout, func() (any, error, time.Time) {
		v, err := st.acquire(m.p.id, inc, a.TTL)
		if err != nil || !v.granted {
			return v, err, time.Time{} // a refusal writes nothing
		}
		return v, err, st.commit()
	}, func(v any, err error) {
		ev := lease.Answered{SentAt: sentAt, TTL: a.TTL, Err: err}
		if err == nil {
			r := v.(acquireAnswer)
			ev.Granted, ev.Epoch, ev.Holder, ev.Remaining = r.granted, r.epoch, r.holder, r.remaining
			if r.granted {
				m.w.truth.granted(proofKey{m.p.id, m.p.run, r.epoch}, sentAt, a.TTL)
			}
		}
		m.leaseStep(ev)
	})
}

func (m *masterNode) stepDown(lease.StepDown) {
	m.core = nil
	m.termNo++
	m.writing, m.queue = false, nil
}

// loadMap carries out LoadShardMap: the loop blocks on the load, as the
// real one does.
func (m *masterNode) loadMap(a lease.LoadShardMap) {
	st := m.w.store
	m.blocked = "load"
	gen := m.blockGen
	m.w.callBlocking(m.p, st.p, a.Timeout, func() (any, error, time.Time) { return st.smap, nil, time.Time{} }, func(v any, err error) {
		if m.blockGen != gen {
			return // a stop cut the load short
		}
		m.blocked = ""
		var sm *mcsimv1.ShardMap
		if err == nil {
			sm = v.(*mcsimv1.ShardMap)
		}
		acts, serr := m.term.Step(m.p.local(), lease.ShardMapLoaded{MaxEpoch: sm.GetMaxEpoch(), Err: err})
		if serr == nil {
			for _, act := range acts {
				if _, ok := act.(lease.BecomePrimary); ok {
					m.startTerm(sm)
					continue
				}
				m.leaseExecute([]lease.Action{act})
			}
		}
		m.rewake()
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

// startTerm carries out BecomePrimary: a fresh core from the stored map;
// the stored owners are known at once (their addresses are in the map).
func (m *masterNode) startTerm(sm *mcsimv1.ShardMap) {
	cfg := failover.Config{HeartbeatInterval: m.snap.hb, UnhealthyInterval: m.snap.ui, Shards: m.snap.shards, StartupCoreapps: m.expect}
	if m.w.sabotage.NoStallGuard {
		cfg.StallThreshold = 1000 * time.Hour
	}
	core, err := failover.New(cfg, fromProto(sm), m.p.local())
	if err != nil {
		m.leaseStep(lease.PrimaryAborted{})
		return
	}
	if m.w.sabotage.NoDeadline {
		core.DisableDeadline()
	}
	m.core = core
	m.termNo++
	m.writing, m.queue = false, nil
	for _, a := range sm.GetAssignments() {
		if a.GetCoreappId() != "" {
			m.peers[a.GetCoreappId()] = true
		}
	}
	for _, id := range m.peerIDs() {
		m.coreStep(failover.CoreappJoined{ID: id})
	}
	m.coreStep(failover.Tick{})
}

func (m *masterNode) peerIDs() []string {
	out := make([]string, 0, len(m.peers))
	for id := range m.peers {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (m *masterNode) coreStep(ev failover.Event) {
	if m.core == nil {
		return
	}
	acts, err := m.core.Step(m.p.local(), ev)
	if err == nil {
		m.execute(acts)
	}
	m.rewake()
}

// execute carries out a batch of the core's actions in order; a map write
// that must be waited for suspends the rest of the batch until it is done.
func (m *masterNode) execute(acts []failover.Action) {
	for i, a := range acts {
		if m.core == nil {
			return // stepped down mid-batch: nothing more may be sent
		}
		switch a := a.(type) {
		case failover.SendHeartbeat:
			m.heartbeat(a)
		case failover.PersistShardMap:
			if !m.persist(a.Map, acts[i+1:]) {
				return
			}
		case failover.Assign:
			m.assign(a)
		case failover.Release:
			m.release(a)
		case failover.DeclaredUnhealthy:
			m.w.declarations = append(m.w.declarations, scenarios.Declaration{At: m.w.now, Master: m.p.id, Coreapp: a.Coreapp})
			m.w.truth.declared(m.hbKey(a.Coreapp), a.EarliestUnansweredSentAt, m.p.local(), m.core.Config().UnhealthyInterval)
		}
	}
}

func (m *masterNode) coreapp(id string) *coreappNode {
	if !m.peers[id] {
		return nil
	}
	return m.w.coreappByID(id)
}

// later posts fn to the loop after what is running now, for this term.
func (m *masterNode) later(fn func()) {
	run, term := m.p.run, m.termNo
	m.w.after(0, func() {
		m.p.deliver(run, func() {
			if m.termNo == term {
				fn()
			}
		})
	})
}

func (m *masterNode) hbKey(coreapp string) hbKey {
	return hbKey{master: m.p.id, run: m.p.run, term: m.termNo, coreapp: coreapp}
}

func (m *masterNode) heartbeat(a failover.SendHeartbeat) {
	c := m.coreapp(a.Coreapp)
	if c == nil {
		m.later(func() { m.coreStep(failover.HeartbeatFailed{ID: a.Coreapp, Seq: a.Seq}) })
		return
	}
	term, id := m.termNo, m.p.id
	leaseEpoch := m.term.Epoch()
	k := m.hbKey(a.Coreapp)
	m.w.truth.heartbeatSent(k, a.Seq, m.p.local())
	arrived := func(_ any, err error) {
		if err == nil {
			m.w.truth.heartbeatArrived(k, a.Seq, m.p.local())
		}
	}
	m.w.callObserved(m.p, c.p, m.snap.ui, func() (any, error) { return c.heartbeat(id, leaseEpoch) }, arrived, func(v any, err error) {
		if m.termNo != term || m.core == nil {
			return
		}
		var ev failover.Event = failover.HeartbeatFailed{ID: a.Coreapp, Seq: a.Seq}
		if err == nil {
			ev = failover.HeartbeatAnswered{ID: a.Coreapp, Seq: a.Seq, Shards: v.([]failover.ServedShard)}
		}
		if m.p.draining {
			// Queued while the loop was blocked: applied without a Step,
			// and one Tick after the whole backlog (master/node.go
			// handleQueued), so a deadline that passed meanwhile does not
			// blame a coreapp whose answer is next in the queue.
			m.leaseStep(lease.Check{})
			if m.core != nil && m.core.Apply(m.p.local(), ev) == nil {
				m.needTick = true
			}
			return
		}
		m.input(func() { m.coreStep(ev) })
	})
}

func (m *masterNode) assign(a failover.Assign) {
	c := m.coreapp(a.Coreapp)
	done := func(ok bool) {
		m.coreStep(failover.AssignDone{Shard: a.Shard, Coreapp: a.Coreapp, Epoch: a.Epoch, OK: ok})
	}
	if c == nil {
		m.later(func() { done(false) })
		return
	}
	term, leaseEpoch, id := m.termNo, m.term.Epoch(), m.p.id
	m.w.truth.commandSent(proofKey{id, m.p.run, leaseEpoch}, "assign", a.Shard, m.p.local())
	ev := books.AssignAsked{Coreapp: a.Coreapp, LeaseEpoch: leaseEpoch, Shard: int32(a.Shard), Shards: int32(a.Shards), Epoch: a.Epoch}
	m.w.callAsync(m.p, c.p, m.snap.ui, func(respond func(any, error)) { c.assign(id, ev, respond) }, func(_ any, err error) {
		if m.termNo != term || m.core == nil {
			return
		}
		m.input(func() { done(err == nil) })
	})
}

func (m *masterNode) release(a failover.Release) {
	c := m.coreapp(a.Coreapp)
	if c == nil {
		return // best effort: fencing makes a missed release harmless
	}
	leaseEpoch, id := m.term.Epoch(), m.p.id
	ev := books.ReleaseAsked{Coreapp: a.Coreapp, LeaseEpoch: leaseEpoch, Shard: int32(a.Shard), Epoch: a.Epoch}
	// Rule 3: a release must not arrive after the lease's end by our clock.
	timeout := min(m.snap.ui, m.term.Remaining(m.p.local()))
	if timeout <= 0 && !m.w.sabotage.NoOwnClockLease {
		return
	}
	if timeout <= 0 {
		timeout = m.snap.ui
	}
	m.w.truth.commandSent(proofKey{id, m.p.run, leaseEpoch}, "release", a.Shard, m.p.local())
	m.w.call(m.p, c.p, timeout, func() (any, error) { return c.command(id, "release", ev, leaseEpoch) }, func(any, error) {})
}

// persist makes the batch's epochs durable before its assignments go out
// (see master/exec.go persist); rest are the actions after it. It reports
// whether the batch goes on now.
func (m *masterNode) persist(sm failover.ShardMap, rest []failover.Action) bool {
	acts, err := m.term.Step(m.p.local(), lease.PersistMap{MaxEpoch: sm.MaxEpoch})
	if err != nil {
		return false
	}
	for _, act := range acts {
		w, ok := act.(lease.WriteMap)
		if !ok {
			m.leaseExecute([]lease.Action{act})
			continue
		}
		p := toProto(sm)
		p.MaxEpoch = w.MaxEpoch
		if !w.Wait {
			m.queueWrite(p, nil)
			m.leaseExecute(m.step(lease.MapPersisted{MaxEpoch: w.MaxEpoch}))
			return m.core != nil
		}
		m.waitWrite(p, w.Timeout, func(err error) {
			if err != nil {
				m.leaseStep(lease.MapWriteFailed{Fenced: errors.Is(err, errFenced), Err: err.Error()})
				return
			}
			m.leaseExecute(m.step(lease.MapPersisted{MaxEpoch: w.MaxEpoch, Waited: true}))
			if m.core != nil {
				m.execute(rest)
			}
			m.rewake()
		})
		return false
	}
	return false
}

// step steps the lease machine and returns its actions (for the callers
// that carry them out themselves).
func (m *masterNode) step(ev lease.Event) []lease.Action {
	acts, _ := m.term.Step(m.p.local(), ev)
	return acts
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

// queueWrite queues a write; done (in the writer's goroutine) hears how it
// went, nil for a background write.
func (m *masterNode) queueWrite(p *mcsimv1.ShardMap, done func(error)) {
	m.queue = append(m.queue, mapWrite{m: p, done: done})
	if !m.writing {
		m.writeNext()
	}
}

func (m *masterNode) writeNext() {
	if len(m.queue) == 0 {
		m.writing = false
		return
	}
	batch := m.queue
	m.queue = nil
	m.writing = true
	st, epoch, id, term, run := m.w.store, m.term.Epoch(), m.p.id, m.termNo, m.p.run
	finish := func(err error) {
		if m.termNo != term {
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
			f := lease.MapWriteFailed{Background: true, Fenced: errors.Is(err, errFenced), Err: err.Error()}
			m.p.deliver(run, func() {
				if m.termNo == term {
					m.leaseStep(f)
				}
			})
		}
		if m.termNo == term {
			m.writeNext()
		}
	}
	remaining := m.term.Remaining(m.p.local())
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
	m.w.callFromOther(m.p, st.p, timeout, func() (any, error, time.Time) {
		return nil, st.writeMap(id, epoch, newest), st.commit()
	}, func(_ any, err error) { finish(err) })
}

// waitWrite queues a write and blocks the loop until it is done or
// timeout (of the own clock) has passed; then the loop goes on with
// then(err).
func (m *masterNode) waitWrite(p *mcsimv1.ShardMap, timeout time.Duration, then func(error)) {
	m.p.busy = true
	m.blocked = "write"
	run, settled := m.p.run, false
	settle := func(err error) {
		if settled {
			return
		}
		settled = true
		m.blocked = ""
		m.p.answerBlocked(run, func() { then(err) })
	}
	m.queueWrite(p, settle)
	m.w.after(m.p.globalDur(timeout), func() { settle(errTimeout) })
}

// releaseLease carries out ReleaseLease (a graceful stop of a primary):
// the last map through the term's writer (after what is queued), then the
// release, then the process leaves; each bounded, as the real stop is.
func (m *masterNode) releaseLease(a lease.ReleaseLease) {
	st, id := m.w.store, m.p.id
	release := func() {
		m.w.callAt(m.p, st.p, time.Second, func() (any, error, time.Time) {
			return nil, nil, st.release(id, a.Epoch)
		}, func(any, error) { m.exit() })
	}
	if m.core == nil {
		release()
		return
	}
	p := toProto(m.core.ShardMap())
	p.MaxEpoch = max(p.MaxEpoch, m.term.Reserved())
	m.core = nil
	run, released := m.p.run, false
	once := func() {
		if !released {
			released = true
			m.p.deliver(run, release)
		}
	}
	m.queueWrite(p, func(error) { once() })
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
			m.leaseStep(lease.MapWriteFailed{Err: "context canceled"})
		case "load":
			m.leaseStep(lease.ShardMapLoaded{Err: errors.New("context canceled")})
		}
	}
	acts, _ := m.term.Step(m.p.local(), lease.Shutdown{})
	for _, a := range acts {
		if r, ok := a.(lease.ReleaseLease); ok {
			m.releaseLease(r)
			return
		}
	}
	m.exit()
}

// exit leaves the gossip cluster and ends the process.
func (m *masterNode) exit() {
	m.w.left(m.p)
	m.crash()
}

func (m *masterNode) crash() {
	m.p.crash()
	m.core = nil
	m.termNo++
}

// Gossip, as master/gossip.go decides it.
func (m *masterNode) coreappJoined(id string) {
	m.peers[id] = true
	m.input(func() { m.coreStep(failover.CoreappJoined{ID: id}) })
}

// coreappLeft forgets the coreapp, on a secondary too (master/node.go): a
// later term must not heartbeat a coreapp that said goodbye.
func (m *masterNode) coreappLeft(id string) {
	delete(m.peers, id)
	m.input(func() { m.coreStep(failover.CoreappLeft{ID: id}) })
}

func (m *masterNode) masterLeft(id string) { m.leaseStep(lease.MasterLeft{ID: id}) }
