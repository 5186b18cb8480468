package failover

import (
	"fmt"
	"time"
)

// Event is an input to Step. The set is closed: the types below.
type Event interface{ isEvent() }

// Tick says only that time is now. The driver steps a Tick when the timer
// it set at NextWake fires.
type Tick struct{}

// CoreappJoined: a coreapp is (again) a member. A new coreapp starts as a
// healthy standby and is heartbeated at once. For an unhealthy coreapp it
// is a recovery (it restarted): it is healthy again, as a standby, with a
// fresh unhealthy clock. For a healthy coreapp it changes nothing (so a
// membership flap cannot hide missing heartbeat answers).
type CoreappJoined struct{ ID string }

// CoreappLeft: the coreapp stopped gracefully (rule 5). Its shards are
// handed over in this very Step and the core forgets it. Send it only for
// a graceful stop, never for a failure: failures are rule 1's business.
type CoreappLeft struct{ ID string }

// ServedShard is one shard a coreapp says it serves, with its epoch.
type ServedShard struct {
	Shard int
	Epoch uint64
}

// HeartbeatAnswered: the coreapp answered heartbeat Seq successfully.
// Shards must be exactly what the answer reports (HeartbeatResponse.shards),
// also when empty: the core releases stale shards it reports and treats a
// confirmed shard it no longer reports as lost (it restarted as standby).
type HeartbeatAnswered struct {
	ID     string
	Seq    uint64
	Shards []ServedShard
}

// HeartbeatFailed: the heartbeat RPC failed (error or deadline exceeded).
// It declares nothing by itself; only the deadline of rule 1 does. It is
// accepted (and validated) so a driver can post every outcome.
type HeartbeatFailed struct {
	ID  string
	Seq uint64
}

// AssignDone is the outcome of an Assign action. OK=false covers both a
// refusal and an RPC error. Outcomes for assignments that are no longer
// current (the map moved on) are ignored.
type AssignDone struct {
	Shard   int
	Coreapp string
	Epoch   uint64
	OK      bool
}

// SettingsChanged carries both live intervals (pass the current value of
// the one that did not change). Both must be > 0.
type SettingsChanged struct {
	HeartbeatInterval time.Duration
	UnhealthyInterval time.Duration
}

// ShardCountChanged: the shard count is now N (rule 6).
type ShardCountChanged struct{ N int }

// Stalled: the driver knows the master itself was stalled for Gap (for
// example it measured a jump between its monotonic clock readings). The
// core also detects stalls itself from late Steps; either way rule 4
// applies at the Step's now.
type Stalled struct{ Gap time.Duration }

func (Tick) isEvent()              {}
func (CoreappJoined) isEvent()     {}
func (CoreappLeft) isEvent()       {}
func (HeartbeatAnswered) isEvent() {}
func (HeartbeatFailed) isEvent()   {}
func (AssignDone) isEvent()        {}
func (SettingsChanged) isEvent()   {}
func (ShardCountChanged) isEvent() {}
func (Stalled) isEvent()           {}

// Action is an output of Step. Commands (SendHeartbeat, PersistShardMap,
// Assign, Release) are for the driver to execute, in order; the rest are
// reports to log and count.
type Action interface{ isAction() }

// SendHeartbeat: send heartbeat Seq to Coreapp now (the Step's now is its
// send time, which rule 1 measures from). Post the outcome as
// HeartbeatAnswered or HeartbeatFailed with the same Seq.
type SendHeartbeat struct {
	Coreapp string
	Seq     uint64
}

// PersistShardMap: write Map to the store (fenced by the lease). It comes
// before every Assign/Release of the same batch; the driver must not
// execute those until the epochs they use (up to Map.MaxEpoch) are durable
// — by waiting for this write, or because it reserved them earlier (see
// the package doc). If a write fails, the driver must not execute them and
// must stop acting as primary (drop this Core; a new one is built from the
// stored map on the next takeover).
type PersistShardMap struct{ Map ShardMap }

// Assign: tell Coreapp to serve Shard at Epoch (Shards is the total shard
// count for AssignRequest.shards). Post the outcome as AssignDone.
type Assign struct {
	Shard   int
	Coreapp string
	Epoch   uint64
	Shards  int
}

// Release: tell Coreapp to stop serving Shard, which it holds at Epoch.
// Best effort: its outcome is not posted back (fencing makes a missed
// release harmless).
type Release struct {
	Shard   int
	Coreapp string
	Epoch   uint64
}

// DeclaredUnhealthy reports rule 1 firing at At (the Step's now).
// Deadline = ClockFrom + unhealthy interval; At is later only if the Step
// came late (within the stall threshold) or the interval was shortened.
// EarliestUnansweredSentAt is the send time of the earliest heartbeat
// without an answer after which none succeeded; ClockFrom is the later of
// it and the last stall's resume time (rule 4).
type DeclaredUnhealthy struct {
	Coreapp                  string
	At                       time.Time
	Deadline                 time.Time
	EarliestUnansweredSentAt time.Time
	ClockFrom                time.Time
}

// Recovered reports that an unhealthy coreapp is healthy again (it
// answered in time or re-joined). It is a standby now: no failback.
type Recovered struct {
	Coreapp string
	At      time.Time
}

// LostReason says why a shard lost its owner.
type LostReason string

// Reasons a shard loses its owner.
const (
	LostUnhealthy LostReason = "unhealthy"  // rule 1 fired for the owner
	LostLeft      LostReason = "left"       // graceful leave (rule 5)
	LostRefused   LostReason = "refused"    // AssignDone OK=false
	LostNotServed LostReason = "not-served" // owner's heartbeat answer no longer lists a confirmed shard
)

// ShardLost reports that Shard lost its owner Coreapp (held at Epoch).
type ShardLost struct {
	Shard   int
	Coreapp string
	Epoch   uint64
	Reason  LostReason
	At      time.Time
}

// ShardUnassigned reports that Shard has no owner and no healthy standby
// can take it. It is reported once per time it becomes stuck; the shard is
// assigned as soon as a standby appears.
type ShardUnassigned struct {
	Shard int
	At    time.Time
}

// FirstAssignmentWait reports that a fresh cluster's first assignment
// waits for coreapps to join: Joined of Want are known at At; it waits
// until Want have joined or Until, whichever is first. Reported once.
type FirstAssignmentWait struct {
	Joined, Want int
	Until        time.Time
	At           time.Time
}

// Failover reports a shard that lost its owner (From, at LostAt) given to
// To at Epoch. Now minus LostAt is the core's share of the failover time
// (zero unless the shard waited for a standby).
type Failover struct {
	Shard  int
	From   string
	To     string
	Epoch  uint64
	LostAt time.Time
}

// ShardAdopted reports that the stored map was older than what had been
// handed out (a primary died before its background map write landed):
// Coreapp answered serving Shard at Epoch, newer than From's FromEpoch in
// the map, so the map now names Coreapp. No RPC follows; the map is
// persisted.
type ShardAdopted struct {
	Shard     int
	Coreapp   string
	Epoch     uint64
	From      string
	FromEpoch uint64
	At        time.Time
}

// StallDetected reports rule 4: the master was stalled; Gap is how late
// the Step was beyond the wanted wake-up (or the driver's Stalled gap).
// Every coreapp's unhealthy clock restarts at At and each is heartbeated.
type StallDetected struct {
	At     time.Time
	Gap    time.Duration
	Source string // "driver" (Stalled event) or "late-step"
}

func (SendHeartbeat) isAction()       {}
func (PersistShardMap) isAction()     {}
func (Assign) isAction()              {}
func (Release) isAction()             {}
func (DeclaredUnhealthy) isAction()   {}
func (Recovered) isAction()           {}
func (ShardLost) isAction()           {}
func (ShardUnassigned) isAction()     {}
func (Failover) isAction()            {}
func (StallDetected) isAction()       {}
func (ShardAdopted) isAction()        {}
func (FirstAssignmentWait) isAction() {}

// FormatAction renders an action on one line, times as offsets from base;
// the transcripts use it and drivers may log it.
func FormatAction(a Action, base time.Time) string {
	rel := func(t time.Time) string { return t.Sub(base).String() }
	switch a := a.(type) {
	case SendHeartbeat:
		return fmt.Sprintf("send-heartbeat %s seq=%d", a.Coreapp, a.Seq)
	case PersistShardMap:
		s := fmt.Sprintf("persist max_epoch=%d", a.Map.MaxEpoch)
		for _, as := range a.Map.Assignments {
			if as.Coreapp == "" {
				s += fmt.Sprintf(" %d:-", as.Shard)
			} else {
				s += fmt.Sprintf(" %d:%s@%d", as.Shard, as.Coreapp, as.Epoch)
			}
		}
		return s
	case Assign:
		return fmt.Sprintf("assign shard=%d to=%s epoch=%d shards=%d", a.Shard, a.Coreapp, a.Epoch, a.Shards)
	case Release:
		return fmt.Sprintf("release shard=%d from=%s epoch=%d", a.Shard, a.Coreapp, a.Epoch)
	case DeclaredUnhealthy:
		return fmt.Sprintf("unhealthy %s at=%s deadline=%s earliest_unanswered=%s clock_from=%s",
			a.Coreapp, rel(a.At), rel(a.Deadline), rel(a.EarliestUnansweredSentAt), rel(a.ClockFrom))
	case Recovered:
		return fmt.Sprintf("recovered %s at=%s", a.Coreapp, rel(a.At))
	case ShardLost:
		return fmt.Sprintf("shard-lost shard=%d from=%s epoch=%d reason=%s", a.Shard, a.Coreapp, a.Epoch, a.Reason)
	case ShardUnassigned:
		return fmt.Sprintf("shard-unassigned shard=%d (no healthy standby)", a.Shard)
	case FirstAssignmentWait:
		return fmt.Sprintf("first-assignment-wait joined=%d want=%d until=%s", a.Joined, a.Want, rel(a.Until))
	case Failover:
		return fmt.Sprintf("failover shard=%d from=%s to=%s epoch=%d lost_at=%s", a.Shard, a.From, a.To, a.Epoch, rel(a.LostAt))
	case ShardAdopted:
		return fmt.Sprintf("shard-adopted shard=%d by=%s epoch=%d (map had %s@%d)", a.Shard, a.Coreapp, a.Epoch, a.From, a.FromEpoch)
	case StallDetected:
		return fmt.Sprintf("stall-detected gap=%s source=%s", a.Gap, a.Source)
	}
	return fmt.Sprintf("unknown action %T", a)
}
