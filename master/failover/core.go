package failover

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/mcsim/mcsim/internal/batch"
	"github.com/mcsim/mcsim/shard"
)

// Core is the failure detector and shard assigner of one primary master.
// It is not safe for concurrent use: one driver goroutine owns it.
type Core struct {
	cfg       Config
	sm        ShardMap
	shards    []shardState
	coreapps  map[string]*coreapp
	sortedIDs []string   // ids of coreapps, sorted; nil when stale
	sortedCAs []*coreapp // the same coreapps in the same order
	found     *coreapp   // the coreapp find found last (nil after a leave)
	resumedAt time.Time  // last stall resume (rule 4); zero if none
	now       time.Time  // now of the last Step (or New)
	wantWake  time.Time  // NextWake after the last Step, for stall detection
	// stallAt is stallFrom (wantWake) + stallTh, the threshold in force
	// when it was computed: a Step after it is a stall (IsStall).
	stallFrom, stallAt time.Time
	stallTh            time.Duration
	// startupUntil ends the start-up wait of a fresh cluster (see
	// awaitingCoreapps); zero when there is none or it is over.
	startupUntil    time.Time
	startupReported bool
	// wakeValid: no Apply since the last Step, so NextWake is wantWake.
	// The driver asks for NextWake several times per wake-up, and with
	// 1,000 coreapps each computation is a scan of all of them.
	wakeValid bool
	// noDeadline: rule 1 never fires (DisableDeadline).
	noDeadline bool
	// due is the index of coreapps by when each is next due (due.go): a
	// Step visits only those due by its now, and NextWake and the stall
	// check read its top. dueScratch and dueStack are its lookups' reused
	// slices.
	due        []*coreapp
	dueScratch []*coreapp
	dueStack   []int
	// noDueCache walks every coreapp on every Step and ignores the index
	// (tests compare the two).
	noDueCache bool

	// The batch being built; New may leave one for the first Step.
	reports []Action // reports and heartbeats, in the order they happened (from outs)
	outs    batch.Slices[Action]
	rpcs    []Action // Assign/Release, executed after the persist
	dirty   bool     // the map changed: a PersistShardMap goes first
	// unassigned counts the map's shards without an owner: every Step
	// looks for them, and mostly there are none.
	unassigned int
}

type coreapp struct {
	id          string
	healthy     bool
	lastSeq     uint64
	lastSentAt  time.Time
	nextHB      time.Time
	outstanding []sentHB // ascending seq; answered ones are dropped
	troubleAt   time.Time
	// benched: it refused (or failed) an assignment and is no standby
	// until it answers a heartbeat with seq > benchedAfterSeq. This bounds
	// reassignment retries to one per heartbeat interval per coreapp.
	benched         bool
	benchedAfterSeq uint64
	// owns counts the shards whose owner it is (shardState.owner).
	owns int
	// due is dueOf as of the last touch; hi is 1 + its place in Core.due
	// (0: not there).
	due time.Time
	hi  int
}

type sentHB struct {
	seq    uint64
	sentAt time.Time
}

type shardState struct {
	// owner is the coreapp the map names as the shard's owner (nil: none).
	// Every owner is a known coreapp (a leaving one loses its shards
	// first), and every answer looks for the shards of its coreapp: a
	// pointer compares cheaper than the ids.
	owner *coreapp
	// confirmed: the owner confirmed serving the current assignment (or it
	// came from the persisted map); heartbeats it answers with seq >
	// confirmedAfterSeq must then list the shard.
	confirmed         bool
	confirmedAfterSeq uint64
	lostFrom          string // previous owner while unassigned after a loss
	lostAt            time.Time
	stuck             bool // ShardUnassigned already reported
}

// New builds the core of a master that just became primary, from the
// persisted shard map (empty if none yet). Every owner in the map becomes a
// known healthy coreapp with a fresh unhealthy clock, so taking over causes
// no failover by itself; its shards count as confirmed. If the map's shard
// count differs from cfg.Shards, it is re-mapped as in ShardCountChanged.
// Nothing is output here: the driver must call Step(now, Tick{}) next
// (NextWake returns now), which sends the first heartbeats.
func New(cfg Config, m ShardMap, now time.Time) (*Core, error) {
	if err := errors.Join(cfg.Validate(), m.validate()); err != nil {
		return nil, err
	}
	c := &Core{cfg: cfg, coreapps: map[string]*coreapp{}, now: now, wantWake: now}
	c.reports = c.outs.Start()
	if len(m.Assignments) == 0 {
		c.sm = ShardMap{MaxEpoch: m.MaxEpoch, Assignments: make([]Assignment, cfg.Shards)}
		for i := range c.sm.Assignments {
			c.sm.Assignments[i].Shard = i
		}
	} else {
		c.sm = m.Clone()
	}
	c.shards = make([]shardState, len(c.sm.Assignments))
	fresh := true
	for _, a := range c.sm.Assignments {
		fresh = fresh && a.Coreapp == ""
	}
	if fresh {
		c.startupUntil = now.Add(cfg.HeartbeatInterval)
	}
	for i, a := range c.sm.Assignments {
		if a.Coreapp == "" {
			c.sm.Assignments[i].Epoch = 0
			continue
		}
		c.shards[i].confirmed = true
		if c.coreapps[a.Coreapp] == nil {
			c.coreapps[a.Coreapp] = &coreapp{id: a.Coreapp, healthy: true, nextHB: now}
			c.sortedIDs = nil
		}
		c.shards[i].owner = c.coreapps[a.Coreapp]
		c.shards[i].owner.owns++
	}
	c.unassigned = c.countUnassigned()
	if len(c.sm.Assignments) != cfg.Shards {
		c.remap(cfg.Shards)
	}
	c.retrack()
	return c, nil
}

// Step feeds one event at time now and returns the actions, in the order
// the driver must execute them: reports and SendHeartbeat first, then at
// most one PersistShardMap, then Assign/Release (which must wait for the
// persist). now must not go backwards. Bad input returns an error naming
// the field and changes nothing.
//
// Within a Step: stall detection first (rule 4), then the event, then
// deadlines due at or before now (so an answer stepped at exactly the
// deadline still counts), then due heartbeats, then assignment of
// unassigned shards to healthy standbys.
func (c *Core) Step(now time.Time, ev Event) ([]Action, error) {
	if err := c.begin(now, ev); err != nil {
		return nil, err
	}
	if c.noDueCache {
		c.expire(now, c.all())
		c.sendHeartbeats(now, c.all())
	} else if dueAtOrBefore(c.dueFirst(), now) {
		due := c.dueBy(now)
		c.expire(now, due)
		c.sendHeartbeats(now, due)
	}
	c.assignUnassigned(now)

	out := c.reports
	if c.dirty {
		out = append(out, PersistShardMap{Map: c.sm.Clone()})
	}
	out = c.outs.Finish(append(out, c.rpcs...))
	c.reports, c.rpcs, c.dirty = c.outs.Start(), nil, false
	c.now = now
	c.wantWake = c.nextWake()
	c.wakeValid = true
	return out, nil
}

// Apply feeds one event at time now like Step, but leaves deadlines, due
// heartbeats and assignment to the next Step; the actions it causes come
// out of that Step. A driver that wakes to find several events queued
// applies them all and then Steps a Tick at the same now, so that an
// answer that arrived before a deadline counts even when another event
// queued ahead of it (Step would fire the deadline while stepping that
// first event). Errors are those of Step and change nothing.
func (c *Core) Apply(now time.Time, ev Event) error {
	if err := c.begin(now, ev); err != nil {
		return err
	}
	c.now = now
	c.wakeValid = false
	return nil
}

// begin is what Step and Apply share: check now and the event (an error
// changes nothing), detect a stall (rule 4), apply the event.
func (c *Core) begin(now time.Time, ev Event) error {
	if now.Before(c.now) {
		return fmt.Errorf("failover: now: must not go backwards, got %s after %s", now.Format(time.RFC3339Nano), c.now.Format(time.RFC3339Nano))
	}
	if err := c.validate(ev); err != nil {
		return err
	}
	// IsStall, as a comparison with the latest Step that is not a stall
	// (kept while the wake-up and the threshold stay): every event a
	// core is stepped with asks, and Sub costs several times what a
	// comparison does.
	if th := c.cfg.stallThreshold(); c.stallFrom != c.wantWake || c.stallTh != th {
		c.stallFrom, c.stallTh, c.stallAt = c.wantWake, th, c.wantWake.Add(th)
	}
	if !c.wantWake.IsZero() && now.After(c.stallAt) {
		c.stall(now, now.Sub(c.wantWake), "late-step")
	}
	c.apply(now, ev)
	return nil
}

// NextWake is the exact time the driver must Step again (a Tick, unless
// another event comes first): the earliest heartbeat due or rule-1
// deadline. Zero when nothing is pending (no coreapps).
func (c *Core) NextWake() time.Time {
	if c.wakeValid {
		return c.wantWake
	}
	return c.nextWake()
}

func (c *Core) nextWake() time.Time {
	if len(c.reports) > 0 || len(c.rpcs) > 0 || c.dirty {
		return c.now
	}
	w := c.dueFirst()
	if c.noDueCache {
		w = c.earliestDue()
	}
	if t := c.startupUntil; !t.IsZero() && (w.IsZero() || t.Before(w)) {
		w = t
	}
	return w
}

// earliestDue is the earliest heartbeat due or rule-1 deadline of any
// coreapp (zero: none), by walking them all (the index's dueFirst is the
// same).
func (c *Core) earliestDue() time.Time {
	var w time.Time
	for _, ca := range c.all() {
		w = earlier(w, c.dueOf(ca))
	}
	return w
}

// dueOf is ca's next heartbeat or its rule-1 deadline, whichever is first.
func (c *Core) dueOf(ca *coreapp) time.Time {
	w := ca.nextHB
	if !c.noDeadline {
		w = earlier(w, c.deadline(ca))
	}
	return w
}

// earlier is the earlier of two times, zero meaning none.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// ShardMap returns a copy of the current map (what the last
// PersistShardMap carried, or the map given to New).
func (c *Core) ShardMap() ShardMap { return c.sm.Clone() }

// Unassigned counts the shards without an owner, without copying the map.
func (c *Core) Unassigned() int { return c.unassigned }

// countUnassigned counts the shards without an owner in the map.
func (c *Core) countUnassigned() int {
	n := 0
	for _, a := range c.sm.Assignments {
		if a.Coreapp == "" {
			n++
		}
	}
	return n
}

// Healthy reports whether id is a known coreapp the core considers
// healthy (answering within rule 1's bound).
func (c *Core) Healthy(id string) bool {
	ca := c.coreapps[id]
	return ca != nil && ca.healthy
}

// Config returns the config in force (live settings applied).
func (c *Core) Config() Config { return c.cfg }

// CoreappStatus is one coreapp as the core sees it, for status pages.
type CoreappStatus struct {
	ID          string
	Healthy     bool
	Shards      []int     // shards it owns in the map
	LastSeq     uint64    // last heartbeat seq sent
	Outstanding int       // heartbeats sent and not cleared by an answer
	Deadline    time.Time // rule-1 deadline; zero if none or unhealthy
}

// Coreapps returns every known coreapp, sorted by ID.
func (c *Core) Coreapps() []CoreappStatus {
	var out []CoreappStatus
	for _, id := range c.ids() {
		ca := c.coreapps[id]
		st := CoreappStatus{ID: id, Healthy: ca.healthy, LastSeq: ca.lastSeq, Outstanding: len(ca.outstanding), Deadline: c.deadline(ca)}
		for s, a := range c.sm.Assignments {
			if a.Coreapp == id {
				st.Shards = append(st.Shards, s)
			}
		}
		out = append(out, st)
	}
	return out
}

func (c *Core) ids() []string {
	// Sorted once per membership change, not per Step: with 1,000
	// coreapps the Step rate is ~1,000/s and sorting each time cost most of
	// a core. Callers only read the slice.
	if c.sortedIDs == nil {
		c.sortedIDs = make([]string, 0, len(c.coreapps))
		for id := range c.coreapps {
			c.sortedIDs = append(c.sortedIDs, id)
		}
		sort.Strings(c.sortedIDs)
		c.sortedCAs = make([]*coreapp, len(c.sortedIDs))
		for i, id := range c.sortedIDs {
			c.sortedCAs[i] = c.coreapps[id]
		}
	}
	return c.sortedIDs
}

// find is c.coreapps[id], remembering the last one found: checking and
// applying one heartbeat answer looks its coreapp up five times.
func (c *Core) find(id string) *coreapp {
	if ca := c.found; ca != nil && ca.id == id {
		return ca
	}
	ca := c.coreapps[id]
	if ca != nil {
		c.found = ca
	}
	return ca
}

// sortedInsert puts a new coreapp into the sorted lists, if they are
// built: a thousand coreapps joining one by one were a thousand sorts.
func (c *Core) sortedInsert(ca *coreapp) {
	if c.sortedIDs == nil {
		return
	}
	i, _ := slices.BinarySearch(c.sortedIDs, ca.id)
	c.sortedIDs = slices.Insert(c.sortedIDs, i, ca.id)
	c.sortedCAs = slices.Insert(c.sortedCAs, i, ca)
}

// sortedDelete takes a coreapp that left out of the sorted lists.
func (c *Core) sortedDelete(id string) {
	if i, ok := slices.BinarySearch(c.sortedIDs, id); ok {
		c.sortedIDs = slices.Delete(c.sortedIDs, i, i+1)
		c.sortedCAs = slices.Delete(c.sortedCAs, i, i+1)
	}
}

// all is every coreapp in id order: the loops that run on every Step
// (deadlines, heartbeats due) walk it instead of looking each id up, which
// on a thousand coreapps was most of a master's time.
func (c *Core) all() []*coreapp {
	c.ids()
	return c.sortedCAs
}

// clockFrom is rule 1's t for a coreapp with outstanding heartbeats.
func (c *Core) clockFrom(ca *coreapp) (earliest, from time.Time, ok bool) {
	if len(ca.outstanding) == 0 {
		return time.Time{}, time.Time{}, false
	}
	earliest = ca.outstanding[0].sentAt
	return earliest, ClockFrom(earliest, c.resumedAt), true
}

// deadline is the rule-1 deadline of a healthy coreapp; zero if none.
func (c *Core) deadline(ca *coreapp) time.Time {
	if !ca.healthy {
		return time.Time{}
	}
	_, from, ok := c.clockFrom(ca)
	if !ok {
		return time.Time{}
	}
	return UnhealthyAt(from, c.cfg.UnhealthyInterval)
}

// ErrUnknownCoreapp is wrapped by Step's error for an event about a
// coreapp the core does not know, typically a reply that raced with its
// CoreappLeft. Drivers may ignore it (nothing changed).
var ErrUnknownCoreapp = errors.New("unknown coreapp")

func (c *Core) validate(ev Event) error {
	known := func(field, id string) error {
		if id == "" {
			return fmt.Errorf("failover: %s: must be a coreapp id, got \"\"", field)
		}
		if c.find(id) == nil {
			return fmt.Errorf("failover: %s: %w %q", field, ErrUnknownCoreapp, id)
		}
		return nil
	}
	seq := func(field, id string, seq uint64) error {
		if last := c.find(id).lastSeq; seq < 1 || seq > last {
			return fmt.Errorf("failover: %s: must be a sent heartbeat seq in 1..%d for %q, got %d", field, last, id, seq)
		}
		return nil
	}
	switch ev := ev.(type) {
	case Tick:
	case CoreappJoined:
		if ev.ID == "" {
			return errors.New("failover: CoreappJoined.ID: must be a coreapp id, got \"\"")
		}
	case CoreappLeft:
		return known("CoreappLeft.ID", ev.ID)
	case HeartbeatAnswered:
		if err := known("HeartbeatAnswered.ID", ev.ID); err != nil {
			return err
		}
		if err := seq("HeartbeatAnswered.Seq", ev.ID, ev.Seq); err != nil {
			return err
		}
		for i, s := range ev.Shards {
			if s.Shard < 0 {
				return fmt.Errorf("failover: HeartbeatAnswered.Shards[%d].Shard: must be >= 0, got %d", i, s.Shard)
			}
		}
	case HeartbeatFailed:
		if err := known("HeartbeatFailed.ID", ev.ID); err != nil {
			return err
		}
		return seq("HeartbeatFailed.Seq", ev.ID, ev.Seq)
	case AssignDone:
		if ev.Coreapp == "" {
			return errors.New("failover: AssignDone.Coreapp: must be a coreapp id, got \"\"")
		}
		if ev.Shard < 0 {
			return fmt.Errorf("failover: AssignDone.Shard: must be >= 0, got %d", ev.Shard)
		}
		if ev.Epoch == 0 {
			return errors.New("failover: AssignDone.Epoch: must be >= 1, got 0")
		}
	case SettingsChanged:
		if ev.HeartbeatInterval <= 0 {
			return fmt.Errorf("failover: SettingsChanged.HeartbeatInterval: must be > 0, got %v", ev.HeartbeatInterval)
		}
		if ev.UnhealthyInterval <= 0 {
			return fmt.Errorf("failover: SettingsChanged.UnhealthyInterval: must be > 0, got %v", ev.UnhealthyInterval)
		}
	case ShardCountChanged:
		if err := shard.CountError(ev.N); err != nil {
			return fmt.Errorf("failover: ShardCountChanged.N: %w", err)
		}
	case Stalled:
		if ev.Gap < 0 {
			return fmt.Errorf("failover: Stalled.Gap: must be >= 0, got %v", ev.Gap)
		}
	case nil:
		return errors.New("failover: event: must not be nil")
	default:
		// The type's name by reflect, not %T: %T would let ev escape,
		// and so box every event a driver steps on the heap.
		return fmt.Errorf("failover: event: unknown type %s", reflect.TypeOf(ev))
	}
	return nil
}

func (c *Core) apply(now time.Time, ev Event) {
	switch ev := ev.(type) {
	case CoreappJoined:
		ca := c.coreapps[ev.ID]
		switch {
		case ca == nil:
			ca = &coreapp{id: ev.ID, healthy: true, nextHB: now}
			c.coreapps[ev.ID] = ca
			c.sortedInsert(ca)
			c.touch(ca)
		case !ca.healthy:
			ca.outstanding = nil
			ca.nextHB = now
			ca.benched = false
			c.recover(now, ca)
		}
	case CoreappLeft:
		for s, a := range c.sm.Assignments {
			if a.Coreapp == ev.ID {
				c.loseShard(now, s, LostLeft)
			}
		}
		c.untrack(c.coreapps[ev.ID])
		delete(c.coreapps, ev.ID)
		c.found = nil
		c.sortedDelete(ev.ID)
	case HeartbeatAnswered:
		c.answered(now, ev)
		c.touch(c.find(ev.ID))
	case AssignDone:
		if ev.Shard >= len(c.sm.Assignments) {
			return
		}
		a := c.sm.Assignments[ev.Shard]
		if a.Coreapp != ev.Coreapp || a.Epoch != ev.Epoch {
			return // stale: the map moved on
		}
		if ev.OK {
			c.shards[ev.Shard].confirmed = true
			c.shards[ev.Shard].confirmedAfterSeq = c.coreapps[ev.Coreapp].lastSeq
			return
		}
		ca := c.coreapps[ev.Coreapp]
		ca.troubleAt = now
		ca.benched, ca.benchedAfterSeq = true, ca.lastSeq
		c.loseShard(now, ev.Shard, LostRefused)
	case SettingsChanged:
		c.cfg.HeartbeatInterval = ev.HeartbeatInterval
		c.cfg.UnhealthyInterval = ev.UnhealthyInterval
		for _, id := range c.ids() {
			ca := c.coreapps[id]
			if ca.lastSeq > 0 {
				ca.nextHB = NextHeartbeatAt(ca.lastSentAt, ev.HeartbeatInterval, now)
			}
		}
		// Deadlines derive from UnhealthyInterval, so they move with it;
		// any now past fire in expire, at now (the formula is PendingDeadline).
		c.retrack()
	case ShardCountChanged:
		c.remap(ev.N)
	case Stalled:
		c.stall(now, ev.Gap, "driver")
	}
}

// adopt takes a reported shard as the truth when the map is older than
// what was handed out: a coreapp (another one, or the owner itself) owns
// it in the map at a lower epoch, and the reported epoch is one that was reserved (<= MaxEpoch) but is
// missing from the map. That happens only across masters: a primary that
// wrote the map in the background (see lease.EpochBlock) died before
// the write landed. The gateway holds the newest epoch, so the reporter is
// the one serving it; releasing it would leave the shard unserved until
// the stale owner's deadline.
func (c *Core) adopt(now time.Time, id string, s ServedShard) bool {
	if s.Shard < 0 || s.Shard >= len(c.sm.Assignments) || !c.find(id).healthy {
		return false
	}
	a := c.sm.Assignments[s.Shard]
	if a.Coreapp == "" || s.Epoch <= a.Epoch || s.Epoch > c.sm.MaxEpoch {
		return false
	}
	c.reports = append(c.reports, ShardAdopted{Shard: s.Shard, Coreapp: id, Epoch: s.Epoch, From: a.Coreapp, FromEpoch: a.Epoch, At: now})
	c.sm.Assignments[s.Shard] = Assignment{Shard: s.Shard, Coreapp: id, Epoch: s.Epoch}
	c.setShard(s.Shard, shardState{owner: c.find(id), confirmed: true, confirmedAfterSeq: c.find(id).lastSeq})
	c.dirty = true
	return true
}

// answered applies rule 1's clearing, recovery, and reconciles what the
// coreapp says it serves with the map.
func (c *Core) answered(now time.Time, ev HeartbeatAnswered) {
	ca := c.find(ev.ID)
	i := 0
	for i < len(ca.outstanding) && ca.outstanding[i].seq <= ev.Seq {
		i++
	}
	// Shifted down rather than resliced, so that the next append reuses
	// the array.
	n := copy(ca.outstanding, ca.outstanding[i:])
	ca.outstanding = ca.outstanding[:n]
	if ca.benched && ev.Seq > ca.benchedAfterSeq {
		ca.benched = false
	}
	if !ca.healthy {
		if _, from, ok := c.clockFrom(ca); !ok || UnhealthyAt(from, c.cfg.UnhealthyInterval).After(now) {
			c.recover(now, ca)
		}
	}
	for _, s := range ev.Shards {
		if c.sm.Owner(s.Shard) == ev.ID {
			// The owner at a newer reserved epoch than the map's: lost
			// writes moved the shard away and back. Same shard, still
			// served; failing it over would be a needless gap.
			c.adopt(now, ev.ID, s)
			continue
		}
		if c.adopt(now, ev.ID, s) {
			continue
		}
		// It serves a shard that is no longer its own: fencing already
		// stops it at the gateway; tell it to let go.
		c.rpcs = append(c.rpcs, Release{Shard: s.Shard, Coreapp: ev.ID, Epoch: s.Epoch})
	}
	if c.reportsAllOwned(ca, ev.Shards) {
		return // every shard it owns is reported at its epoch: none is lost
	}
	// Otherwise every shard is walked: by pointer, cheapest test first.
	for s := range c.shards {
		st := &c.shards[s]
		if st.owner != ca || !st.confirmed || ev.Seq <= st.confirmedAfterSeq {
			continue
		}
		if e, ok := reportedEpoch(ev.Shards, s); !ok || e != c.sm.Assignments[s].Epoch {
			ca.troubleAt = now
			c.loseShard(now, s, LostNotServed)
		}
	}
}

// reportsAllOwned says whether served lists exactly the shards ca owns,
// each once (in increasing order, as a coreapp lists them) and at the
// map's epoch: then the walk of every shard would lose none. It is what
// almost every answer says.
func (c *Core) reportsAllOwned(ca *coreapp, served []ServedShard) bool {
	if len(served) != ca.owns {
		return false
	}
	for i, s := range served {
		if s.Shard < 0 || s.Shard >= len(c.shards) || i > 0 && s.Shard <= served[i-1].Shard ||
			c.shards[s.Shard].owner != ca || c.sm.Assignments[s.Shard].Epoch != s.Epoch {
			return false
		}
	}
	return true
}

// setShard replaces shard s's state, keeping the owners' counts.
func (c *Core) setShard(s int, st shardState) {
	if old := c.shards[s].owner; old != nil {
		old.owns--
	}
	if st.owner != nil {
		st.owner.owns++
	}
	c.shards[s] = st
}

// reportedEpoch is the epoch an answer reports for shard s (the last
// entry for it, should it name it twice). An answer lists the few shards
// its coreapp serves: a scan is cheaper than building a map per answer.
func reportedEpoch(served []ServedShard, s int) (uint64, bool) {
	for i := len(served) - 1; i >= 0; i-- {
		if served[i].Shard == s {
			return served[i].Epoch, true
		}
	}
	return 0, false
}

func (c *Core) recover(now time.Time, ca *coreapp) {
	ca.healthy = true
	c.touch(ca)
	c.reports = append(c.reports, Recovered{Coreapp: ca.id, At: now})
}

// stall is rule 4: the clock of every coreapp restarts at now and every
// coreapp is heartbeated at once.
func (c *Core) stall(now time.Time, gap time.Duration, source string) {
	if c.resumedAt.Equal(now) {
		return // already applied in this Step
	}
	c.resumedAt = now
	for _, ca := range c.coreapps {
		ca.nextHB = now
	}
	c.retrack()
	c.reports = append(c.reports, StallDetected{At: now, Gap: gap, Source: source})
}

// expire declares every healthy coreapp of cas (in id order) whose
// deadline is at or before now.
func (c *Core) expire(now time.Time, cas []*coreapp) {
	if c.noDeadline {
		return
	}
	for _, ca := range cas {
		id := ca.id
		d := c.deadline(ca)
		if d.IsZero() || d.After(now) {
			continue
		}
		earliest, from, _ := c.clockFrom(ca)
		ca.healthy = false
		ca.troubleAt = now
		c.touch(ca)
		c.reports = append(c.reports, DeclaredUnhealthy{Coreapp: id, At: now, Deadline: d, EarliestUnansweredSentAt: earliest, ClockFrom: from})
		for s, a := range c.sm.Assignments {
			if a.Coreapp == id {
				c.loseShard(now, s, LostUnhealthy)
			}
		}
	}
}

// DisableDeadline makes the core never declare a coreapp unhealthy, as if
// rule 1 had no deadline. It exists for the simulator's selftest
// (sim.Sabotage), which must show that the checkers catch what this lets
// through; a test keeps every other package from calling it.
func (c *Core) DisableDeadline() {
	c.noDeadline = true
	c.retrack()
}

// sendHeartbeats sends every heartbeat due, healthy or not (an unhealthy
// coreapp must be able to prove it recovered). One per interval, whether
// or not earlier ones are outstanding: an answer to a later seq proves
// liveness. cas are the coreapps to look at, in id order.
func (c *Core) sendHeartbeats(now time.Time, cas []*coreapp) {
	for _, ca := range cas {
		id := ca.id
		if ca.nextHB.After(now) {
			continue
		}
		ca.lastSeq++
		ca.lastSentAt = now
		ca.nextHB = now.Add(c.cfg.HeartbeatInterval)
		ca.outstanding = append(ca.outstanding, sentHB{seq: ca.lastSeq, sentAt: now})
		c.touch(ca)
		c.reports = append(c.reports, SendHeartbeat{Coreapp: id, Seq: ca.lastSeq})
	}
}
