package primary

import (
	"fmt"
	"time"

	"github.com/mcsim/mcsim/master/failover"
	"github.com/mcsim/mcsim/master/lease"
)

// Event is an input to Step. The set is closed: the types below.
type Event interface{ isEvent() }

// Settings: the live settings, on the first snapshot and on every later
// one (the Machine sees itself what changed).
type Settings struct {
	HeartbeatInterval time.Duration
	UnhealthyInterval time.Duration
	Shards            int
}

// Tick: the timer set at NextWake fired.
type Tick struct{}

// Check: the driver is about to act on an input that is not an Event; a
// lease that ran out by the own clock ends the term first.
type Check struct{}

// Answered: the answer to a SendAcquire (see lease.Answered).
type Answered lease.Answered

// MapLoaded: the LoadShardMap is done; Err is set when it failed.
type MapLoaded struct {
	Map failover.ShardMap
	Err error
}

// HeartbeatResult is the outcome of one SendHeartbeat of term Term.
// Shards is exactly what the answer lists (see failover.HeartbeatAnswered).
type HeartbeatResult struct {
	Term    uint64
	Coreapp string
	Seq     uint64
	Failed  bool
	Shards  []failover.ServedShard
}

// HeartbeatsDone: heartbeat outcomes that were all queued when the loop
// woke. They are applied together before the core's deadlines are looked
// at, so an answer that arrived in time counts even when it is queued
// behind another (rules 1 and 4).
type HeartbeatsDone struct{ Results []HeartbeatResult }

// AssignDone: the outcome of an Assign of term Term.
type AssignDone struct {
	Term    uint64
	Shard   int
	Coreapp string
	Epoch   uint64
	OK      bool
}

// MapWritten: the WriteMap that was waited for is done. Err is empty when
// the map is durable; Fenced when the store refused it (lease not held).
type MapWritten struct {
	Term   uint64
	Fenced bool
	Err    string
}

// MapWriteFailed: a background map write of term Term failed.
type MapWriteFailed struct {
	Term   uint64
	Fenced bool
	Err    string
}

// CoreappJoined: a coreapp is (again) a member.
type CoreappJoined struct{ ID string }

// CoreappLeft: a coreapp stopped gracefully (rule 5).
type CoreappLeft struct{ ID string }

// MasterLeft: master ID left the cluster gracefully.
type MasterLeft struct{ ID string }

// Shutdown: the master stops; Crashed when it stops abruptly (no goodbye).
type Shutdown struct{ Crashed bool }

func (Settings) isEvent()       {}
func (Tick) isEvent()           {}
func (Check) isEvent()          {}
func (Answered) isEvent()       {}
func (MapLoaded) isEvent()      {}
func (HeartbeatsDone) isEvent() {}
func (AssignDone) isEvent()     {}
func (MapWritten) isEvent()     {}
func (MapWriteFailed) isEvent() {}
func (CoreappJoined) isEvent()  {}
func (CoreappLeft) isEvent()    {}
func (MasterLeft) isEvent()     {}
func (Shutdown) isEvent()       {}

// Action is an output of Step, to carry out in order.
type Action interface{ isAction() }

// SendAcquire: send an acquire/renew request (see lease.SendAcquire).
type SendAcquire lease.SendAcquire

// LoadShardMap: load the stored map within Timeout and Step MapLoaded.
type LoadShardMap lease.LoadShardMap

// BecomePrimary: term Term began at lease epoch Epoch from a stored map
// with MaxEpoch: start the term's map writer. The core's first actions
// follow in the same batch.
type BecomePrimary struct {
	Term     uint64
	Epoch    uint64
	MaxEpoch uint64
}

// PrimaryAborted: the lease was granted and the map loaded, but no core
// could be built from it: the master stays secondary.
type PrimaryAborted struct{ Err error }

// StepDown: term Term (at lease epoch Epoch) ended: stop acting at once.
type StepDown struct {
	Term   uint64
	Epoch  uint64
	Reason string
}

// SendHeartbeat: the core's SendHeartbeat, sent at lease epoch LeaseEpoch
// in term Term.
type SendHeartbeat struct {
	failover.SendHeartbeat
	Term       uint64
	LeaseEpoch uint64
}

// Assign: the core's Assign, sent at lease epoch LeaseEpoch in term Term;
// its epoch is durable.
type Assign struct {
	failover.Assign
	Term       uint64
	LeaseEpoch uint64
}

// Release: the core's Release, sent at lease epoch LeaseEpoch.
type Release struct {
	failover.Release
	Term       uint64
	LeaseEpoch uint64
}

// WriteMap: write the core's map (PersistShardMap) with max_epoch set to
// MaxEpoch, fenced by LeaseEpoch. Wait: write it and wait, within Timeout,
// and Step MapWritten; else queue it behind the writes in flight.
type WriteMap struct {
	failover.PersistShardMap
	Term       uint64
	LeaseEpoch uint64
	MaxEpoch   uint64
	Wait       bool
	Timeout    time.Duration
}

// ReleaseLease: a graceful stop of a primary: write Map (when not nil)
// with max_epoch MaxEpoch, so the next primary starts from it, then
// release the lease at Epoch.
type ReleaseLease struct {
	Epoch    uint64
	Map      *failover.ShardMap
	MaxEpoch uint64
}

// Report is one of the core's reports (DeclaredUnhealthy, Failover, …).
type Report struct{ A failover.Action }

// LeaseReport is one of the lease's reports (StaySecondary, RenewFailed,
// TimingChanged, TryNow).
type LeaseReport struct{ A lease.Action }

// ResultTaken: result Index of the HeartbeatsDone (0 for an AssignDone)
// belongs to this term and went to the core: the driver logs and counts
// it now, before the actions it causes.
type ResultTaken struct{ Index int }

// CoreRefused: the core refused an event as bad input (a result racing a
// CoreappLeft); nothing changed.
type CoreRefused struct {
	Event string
	Err   error
}

func (SendAcquire) isAction()    {}
func (LoadShardMap) isAction()   {}
func (BecomePrimary) isAction()  {}
func (PrimaryAborted) isAction() {}
func (StepDown) isAction()       {}
func (SendHeartbeat) isAction()  {}
func (Assign) isAction()         {}
func (Release) isAction()        {}
func (WriteMap) isAction()       {}
func (ReleaseLease) isAction()   {}
func (Report) isAction()         {}
func (LeaseReport) isAction()    {}
func (ResultTaken) isAction()    {}
func (CoreRefused) isAction()    {}

// CoreAction is the failover action an action carries out or reports, for
// drivers that observe the core's actions; nil for the others.
func CoreAction(a Action) failover.Action {
	switch a := a.(type) {
	case SendHeartbeat:
		return a.SendHeartbeat
	case Assign:
		return a.Assign
	case Release:
		return a.Release
	case WriteMap:
		return a.PersistShardMap
	case Report:
		return a.A
	}
	return nil
}

// FormatAction renders an action on one line, times as offsets from base;
// the transcripts use it.
func FormatAction(a Action, base time.Time) string {
	switch a := a.(type) {
	case SendAcquire:
		return lease.FormatAction(lease.SendAcquire(a))
	case LoadShardMap:
		return lease.FormatAction(lease.LoadShardMap(a))
	case BecomePrimary:
		return fmt.Sprintf("become-primary term=%d epoch=%d max_epoch=%d", a.Term, a.Epoch, a.MaxEpoch)
	case PrimaryAborted:
		return fmt.Sprintf("primary-aborted: %v", a.Err)
	case StepDown:
		return fmt.Sprintf("step-down term=%d epoch=%d: %s", a.Term, a.Epoch, a.Reason)
	case SendHeartbeat:
		return fmt.Sprintf("%s term=%d lease_epoch=%d", failover.FormatAction(a.SendHeartbeat, base), a.Term, a.LeaseEpoch)
	case Assign:
		return fmt.Sprintf("%s term=%d lease_epoch=%d", failover.FormatAction(a.Assign, base), a.Term, a.LeaseEpoch)
	case Release:
		return fmt.Sprintf("%s term=%d lease_epoch=%d", failover.FormatAction(a.Release, base), a.Term, a.LeaseEpoch)
	case WriteMap:
		how := "background"
		if a.Wait {
			how = fmt.Sprintf("wait timeout=%s", a.Timeout)
		}
		return fmt.Sprintf("write-map max_epoch=%d %s term=%d lease_epoch=%d (%s)", a.MaxEpoch, how, a.Term, a.LeaseEpoch,
			failover.FormatAction(a.PersistShardMap, base))
	case ReleaseLease:
		if a.Map == nil {
			return fmt.Sprintf("release-lease epoch=%d", a.Epoch)
		}
		return fmt.Sprintf("release-lease epoch=%d after write-map max_epoch=%d", a.Epoch, a.MaxEpoch)
	case Report:
		return "report " + failover.FormatAction(a.A, base)
	case LeaseReport:
		return "lease " + lease.FormatAction(a.A)
	case ResultTaken:
		return fmt.Sprintf("result-taken %d", a.Index)
	case CoreRefused:
		return fmt.Sprintf("core-refused %s: %v", a.Event, a.Err)
	}
	return fmt.Sprintf("unknown action %T", a)
}
