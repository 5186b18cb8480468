package primary

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/mcsim/mcsim/internal/batch"
	"github.com/mcsim/mcsim/master/failover"
	"github.com/mcsim/mcsim/master/lease"
)

// Config configures a Machine.
type Config struct {
	// ID is the master's own id.
	ID string
	// LeaseTTL and RenewInterval override the lease's timing (see
	// lease.Config); 0 means the live intervals.
	LeaseTTL, RenewInterval time.Duration
	// StallThreshold is the core's (rule 4); 0 is its default.
	StallThreshold time.Duration
	// StartupCoreapps is the core's (see failover.Config).
	StartupCoreapps int
	// NewCore builds the core of a new term; nil means failover.New. It
	// exists so that the simulator's selftest can switch a mechanism of the
	// core off where only the simulator can reach it.
	NewCore func(failover.Config, failover.ShardMap, time.Time) (*failover.Core, error)
}

// ErrWaiting is Step's answer to an event that comes while a batch waits
// for its map write: the driver's loop is blocked on that write and steps
// nothing else until MapWritten (or Shutdown).
var ErrWaiting = errors.New("primary: a batch waits for its map write")

// Machine is one master's lease, term and, while primary, failover core.
// Not safe for concurrent use: the master's loop owns it.
type Machine struct {
	cfg     Config
	lease   *lease.Term
	core    *failover.Core // while primary
	term    uint64         // the current (or last) term's number
	set     Settings
	started bool            // the first Settings came
	members map[string]bool // coreapps known by membership

	loaded  failover.ShardMap // the map a LoadShardMap brought, while it is stepped
	waiting bool              // a WriteMap{Wait} is being carried out
	waitMax uint64            // and the max_epoch it writes
	rest    []failover.Action // the batch after it
	queue   []failover.Event  // core events that came while a batch waited

	out  []Action // the Step's actions so far (from outs)
	outs batch.Slices[Action]
}

// New returns the Machine of a master that has not seen its settings yet.
func New(cfg Config) *Machine {
	if cfg.NewCore == nil {
		cfg.NewCore = failover.New
	}
	return &Machine{
		cfg:     cfg,
		lease:   lease.New(lease.Config{ID: cfg.ID, TTL: cfg.LeaseTTL, RenewInterval: cfg.RenewInterval}),
		members: map[string]bool{},
	}
}

// Step applies ev at now and returns what to do (see the package doc). An
// error (an event while a batch waits for its write, an unknown event)
// means the event was refused and nothing changed.
func (m *Machine) Step(now time.Time, ev Event) ([]Action, error) {
	if m.waiting {
		switch ev.(type) {
		case MapWritten, Shutdown:
		default:
			return nil, fmt.Errorf("%w: %T", ErrWaiting, ev)
		}
	}
	m.out = m.outs.Start()
	var err error
	switch ev := ev.(type) {
	case Settings:
		err = m.settings(now, ev)
	case Tick:
		err = m.leaseStep(now, lease.Tick{})
		// The core is stepped only when it is due: a Tick stepped early
		// would do nothing but move its idea of when it last ran.
		if m.core != nil {
			if w := m.core.NextWake(); !w.IsZero() && !now.Before(w) {
				m.coreStep(now, failover.Tick{})
			}
		}
	case Check:
		err = m.leaseStep(now, lease.Check{})
	case Answered:
		err = m.leaseStep(now, lease.Answered(ev))
	case MapLoaded:
		m.loaded = ev.Map
		err = m.leaseStep(now, lease.ShardMapLoaded{MaxEpoch: ev.Map.MaxEpoch, Err: ev.Err})
		m.loaded = failover.ShardMap{}
	case HeartbeatsDone:
		err = m.heartbeats(now, ev)
	case AssignDone:
		if err = m.leaseStep(now, lease.Check{}); err != nil || !m.Current(ev.Term) {
			break
		}
		m.emit(ResultTaken{Index: 0})
		m.coreStep(now, failover.AssignDone{Shard: ev.Shard, Coreapp: ev.Coreapp, Epoch: ev.Epoch, OK: ev.OK})
	case MapWritten:
		err = m.written(now, ev)
	case MapWriteFailed:
		if ev.Term != m.term {
			err = m.leaseStep(now, lease.Check{})
			break
		}
		err = m.leaseStep(now, lease.MapWriteFailed{Background: true, Fenced: ev.Fenced, Err: ev.Err})
	case CoreappJoined:
		if err = m.leaseStep(now, lease.Check{}); err != nil {
			break
		}
		m.members[ev.ID] = true
		m.coreStep(now, failover.CoreappJoined{ID: ev.ID})
	case CoreappLeft:
		if err = m.leaseStep(now, lease.Check{}); err != nil {
			break
		}
		m.coreStep(now, failover.CoreappLeft{ID: ev.ID})
		// Also as a secondary: a later term would otherwise bring it back
		// as a member, heartbeat it, declare it unhealthy and offer it
		// shards.
		delete(m.members, ev.ID)
	case MasterLeft:
		err = m.leaseStep(now, lease.MasterLeft{ID: ev.ID})
	case Shutdown:
		m.waiting, m.rest, m.queue = false, nil, nil
		err = m.leaseStep(now, lease.Shutdown{Crashed: ev.Crashed})
		m.core = nil
	default:
		err = fmt.Errorf("primary: unknown event %T", ev)
	}
	out := m.outs.Finish(m.out)
	m.out = nil
	return out, err
}

func (m *Machine) emit(a Action) { m.out = append(m.out, a) }

// settings starts competing on the first snapshot. Later, the lease hears
// of a change of the intervals before the core does: a shorter TTL moves
// the end the master acts by earlier as the renewal goes out, and whatever
// the core then does is judged by that end.
func (m *Machine) settings(now time.Time, s Settings) error {
	old := m.set
	m.set = s
	ls := lease.Settings{HeartbeatInterval: s.HeartbeatInterval, UnhealthyInterval: s.UnhealthyInterval}
	if !m.started {
		m.started = true
		return m.leaseStep(now, ls)
	}
	intervals := s.HeartbeatInterval != old.HeartbeatInterval || s.UnhealthyInterval != old.UnhealthyInterval
	var err error
	if intervals {
		err = m.leaseStep(now, ls)
	} else {
		err = m.leaseStep(now, lease.Check{})
	}
	if err != nil {
		return err
	}
	if intervals {
		m.coreStep(now, failover.SettingsChanged{HeartbeatInterval: s.HeartbeatInterval, UnhealthyInterval: s.UnhealthyInterval})
	}
	if s.Shards != old.Shards {
		m.coreStep(now, failover.ShardCountChanged{N: s.Shards})
	}
	return nil
}

// heartbeats applies this term's outcomes together, then steps the core
// once (see HeartbeatsDone).
func (m *Machine) heartbeats(now time.Time, ev HeartbeatsDone) error {
	if err := m.leaseStep(now, lease.Check{}); err != nil || m.core == nil {
		return err
	}
	applied := false
	for i, r := range ev.Results {
		if !m.Current(r.Term) {
			continue
		}
		var fe failover.Event = failover.HeartbeatAnswered{ID: r.Coreapp, Seq: r.Seq, Shards: r.Shards}
		if r.Failed {
			fe = failover.HeartbeatFailed{ID: r.Coreapp, Seq: r.Seq}
		}
		m.emit(ResultTaken{Index: i})
		if err := m.core.Apply(now, fe); err != nil {
			// Named by reflect, not %T, which would put every event
			// this loop boxes on the heap.
			m.emit(CoreRefused{Event: reflect.TypeOf(fe).String(), Err: err})
			continue
		}
		applied = true
	}
	if applied {
		m.coreStep(now, failover.Tick{})
	}
	return nil
}

// written ends the wait for a map write: the batch goes on if the lease
// still holds now, after the write.
func (m *Machine) written(now time.Time, ev MapWritten) error {
	if !m.waiting || ev.Term != m.term {
		return m.leaseStep(now, lease.Check{})
	}
	m.waiting = false
	if ev.Err != "" {
		return m.leaseStep(now, lease.MapWriteFailed{Fenced: ev.Fenced, Err: ev.Err})
	}
	if err := m.leaseStep(now, lease.MapPersisted{MaxEpoch: m.waitMax, Waited: true}); err != nil {
		return err
	}
	m.drain(now)
	return nil
}

// leaseStep steps the lease and carries its decisions into the machine.
func (m *Machine) leaseStep(now time.Time, ev lease.Event) error {
	acts, err := m.lease.Step(now, ev)
	if err != nil {
		return err
	}
	for _, a := range acts {
		switch a := a.(type) {
		case lease.SendAcquire:
			m.emit(SendAcquire(a))
		case lease.LoadShardMap:
			m.emit(LoadShardMap(a))
		case lease.BecomePrimary:
			m.becomePrimary(now, a)
		case lease.StepDown:
			m.stepDown(a)
		case lease.ReleaseLease:
			r := ReleaseLease{Epoch: a.Epoch}
			if m.core != nil {
				sm := m.core.ShardMap()
				r.Map, r.MaxEpoch = &sm, max(sm.MaxEpoch, m.lease.Reserved())
			}
			m.core = nil
			m.emit(r)
		default:
			m.emit(LeaseReport{A: a})
		}
	}
	return nil
}

// becomePrimary starts a term: a fresh core from the loaded map, every
// known coreapp joined to it in order, then its first Tick.
func (m *Machine) becomePrimary(now time.Time, a lease.BecomePrimary) {
	core, err := m.cfg.NewCore(failover.Config{
		HeartbeatInterval: m.set.HeartbeatInterval,
		UnhealthyInterval: m.set.UnhealthyInterval,
		Shards:            m.set.Shards,
		StallThreshold:    m.cfg.StallThreshold,
		StartupCoreapps:   m.cfg.StartupCoreapps,
	}, m.loaded, now)
	if err != nil {
		m.emit(PrimaryAborted{Err: err})
		// PrimaryAborted only clears the lease's flag: no actions.
		_, _ = m.lease.Step(now, lease.PrimaryAborted{})
		return
	}
	m.core = core
	m.term++
	m.emit(BecomePrimary{Term: m.term, Epoch: a.Epoch, MaxEpoch: a.MaxEpoch})
	// An owner in the stored map may not have been seen by membership yet
	// (gossip lags a takeover); the driver knows its address from the map.
	for _, as := range m.loaded.Assignments {
		if as.Coreapp != "" {
			m.members[as.Coreapp] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(m.members)) {
		m.queue = append(m.queue, failover.CoreappJoined{ID: id})
	}
	m.coreStep(now, failover.Tick{})
}

// stepDown ends the term: the lease has forgotten itself already.
func (m *Machine) stepDown(a lease.StepDown) {
	if m.core == nil {
		return
	}
	m.core = nil
	m.waiting, m.rest, m.queue = false, nil, nil
	m.emit(StepDown{Term: m.term, Epoch: a.Epoch, Reason: a.Reason})
}

// coreStep steps the core with ev after whatever waits before it.
func (m *Machine) coreStep(now time.Time, ev failover.Event) {
	if m.core == nil {
		return
	}
	m.queue = append(m.queue, ev)
	m.drain(now)
}

// drain carries out the rest of a batch and the queued core events, until
// a batch waits for its write or the term ends.
func (m *Machine) drain(now time.Time) {
	for m.core != nil && !m.waiting {
		if len(m.rest) > 0 {
			acts := m.rest
			m.rest = nil
			m.batch(now, acts)
			continue
		}
		if len(m.queue) == 0 {
			return
		}
		// Shifted down rather than resliced, so that the next append
		// reuses the array.
		ev := m.queue[0]
		n := copy(m.queue, m.queue[1:])
		m.queue[n] = nil
		m.queue = m.queue[:n]
		acts, err := m.core.Step(now, ev)
		if err != nil {
			m.emit(CoreRefused{Event: fmt.Sprintf("%T", ev), Err: err})
			continue
		}
		m.batch(now, acts)
	}
}

// batch passes the core's actions on in order; at the PersistShardMap the
// lease decides whether the rest may follow at once.
func (m *Machine) batch(now time.Time, acts []failover.Action) {
	epoch := m.lease.Epoch()
	for i, a := range acts {
		if m.core == nil {
			return
		}
		switch a := a.(type) {
		case failover.SendHeartbeat:
			m.emit(SendHeartbeat{SendHeartbeat: a, Term: m.term, LeaseEpoch: epoch})
		case failover.Assign:
			m.emit(Assign{Assign: a, Term: m.term, LeaseEpoch: epoch})
		case failover.Release:
			m.emit(Release{Release: a, Term: m.term, LeaseEpoch: epoch})
		case failover.PersistShardMap:
			if !m.persist(now, a, acts[i+1:]) {
				return
			}
		default:
			m.emit(Report{A: a})
		}
	}
}

// persist is the batching rule (lease.PersistMap); it reports whether the
// batch goes on now.
func (m *Machine) persist(now time.Time, p failover.PersistShardMap, rest []failover.Action) bool {
	acts, err := m.lease.Step(now, lease.PersistMap{MaxEpoch: p.Map.MaxEpoch})
	if err != nil {
		return false
	}
	for _, a := range acts {
		w, ok := a.(lease.WriteMap)
		if !ok {
			continue
		}
		m.emit(WriteMap{PersistShardMap: p, Term: m.term, LeaseEpoch: m.lease.Epoch(), MaxEpoch: w.MaxEpoch, Wait: w.Wait, Timeout: w.Timeout})
		if w.Wait {
			m.waiting, m.waitMax, m.rest = true, w.MaxEpoch, rest
			return false
		}
		// Queued: the epochs it uses were reserved earlier.
		if err := m.leaseStep(now, lease.MapPersisted{MaxEpoch: w.MaxEpoch}); err != nil {
			return false
		}
		return m.core != nil
	}
	// No write: the lease ended; its StepDown is the only action.
	for _, a := range acts {
		if sd, ok := a.(lease.StepDown); ok {
			m.stepDown(sd)
		}
	}
	return false
}

// NextWake is the earliest of the lease's and, while primary, the core's
// wake-ups; zero: none.
func (m *Machine) NextWake() time.Time {
	w := m.lease.NextWake()
	if m.core != nil {
		if c := m.core.NextWake(); !c.IsZero() && (w.IsZero() || c.Before(w)) {
			w = c
		}
	}
	return w
}

// Current says whether term is this term and the master is primary in it:
// an outcome of any other is ignored.
func (m *Machine) Current(term uint64) bool { return m.core != nil && term == m.term }

// Primary says whether the master acts as primary.
func (m *Machine) Primary() bool { return m.core != nil }

// Term is the number of the current (or last) term.
func (m *Machine) Term() uint64 { return m.term }

// Waiting says whether a batch waits for its map write.
func (m *Machine) Waiting() bool { return m.waiting }

// Lease is the lease machine, for queries (Epoch, ValidUntil, Remaining,
// Reserved) and the simulator's sabotage switch; stepping it directly
// would bypass this Machine's rules.
func (m *Machine) Lease() *lease.Term { return m.lease }

// Core is the failover core while primary (nil otherwise), for queries
// (ShardMap, Coreapps, Healthy); the same caveat as Lease holds.
func (m *Machine) Core() *failover.Core { return m.core }
