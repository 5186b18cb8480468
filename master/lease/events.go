package lease

import (
	"fmt"
	"time"
)

// Event is an input to Step. The set is closed: the types below.
type Event interface{ isEvent() }

// Settings: the live intervals, on the first snapshot and on every change.
type Settings struct {
	HeartbeatInterval time.Duration
	UnhealthyInterval time.Duration
}

// Tick: the timer set at NextWake fired.
type Tick struct{}

// Check: the driver is about to act on another input at now (rule 3
// only: a lease that ran out by the own clock ends the term first).
type Check struct{}

// Answered: the answer to a SendAcquire sent at SentAt (by the own clock)
// asking for TTL. Err is set when the request failed; otherwise Granted,
// Epoch, Holder and Remaining (the holder's time left by the store's clock)
// are the store's answer.
type Answered struct {
	SentAt    time.Time
	TTL       time.Duration
	Err       error
	Granted   bool
	Epoch     uint64
	Holder    string
	Remaining time.Duration
}

// ShardMapLoaded: the LoadShardMap is done; MaxEpoch is the stored map's,
// Err is set when it could not be loaded.
type ShardMapLoaded struct {
	MaxEpoch uint64
	Err      error
}

// PrimaryAborted: the driver could not carry out BecomePrimary (no core):
// the master stays secondary.
type PrimaryAborted struct{}

// PersistMap: the core asks for a map with MaxEpoch to be made durable
// before the assignments after it go out.
type PersistMap struct{ MaxEpoch uint64 }

// MapPersisted: the WriteMap is done: queued (background) or written
// (waited for), with the MaxEpoch the WriteMap named.
type MapPersisted struct {
	MaxEpoch uint64
	// Waited: the loop blocked on the write (a lease that ran out meanwhile
	// ran out "while the shard map was being written"); otherwise it was
	// only queued, and a lease that ran out is just over by our clock.
	Waited bool
}

// MapWriteFailed: a shard-map write failed. Background: a write the loop
// did not wait for. Fenced: the store refused it (lease not held); Err is
// then the store's message, else the error's text.
type MapWriteFailed struct {
	Background bool
	Fenced     bool
	Err        string
}

// MasterLeft: master ID left the cluster gracefully.
type MasterLeft struct{ ID string }

// Shutdown: the master stops; Crashed when it stops abruptly (no goodbye).
type Shutdown struct{ Crashed bool }

func (Settings) isEvent()       {}
func (Tick) isEvent()           {}
func (Check) isEvent()          {}
func (Answered) isEvent()       {}
func (ShardMapLoaded) isEvent() {}
func (PrimaryAborted) isEvent() {}
func (PersistMap) isEvent()     {}
func (MapPersisted) isEvent()   {}
func (MapWriteFailed) isEvent() {}
func (MasterLeft) isEvent()     {}
func (Shutdown) isEvent()       {}

// Action is an output of Step, to carry out in order.
type Action interface{ isAction() }

// SendAcquire: send an acquire/renew request asking for TTL, in the
// background, giving up after Timeout (one renew interval: it hangs no
// longer than the next is due), and Step its Answered.
type SendAcquire struct {
	TTL     time.Duration
	Timeout time.Duration
}

// LoadShardMap: the lease was granted to a secondary; load the stored
// shard map within Timeout (what is left of the lease) and Step
// ShardMapLoaded.
type LoadShardMap struct{ Timeout time.Duration }

// BecomePrimary: act as primary from now on at lease epoch Epoch: build the
// failover core from the loaded map (MaxEpoch) and start the term's map
// writer.
type BecomePrimary struct {
	Epoch    uint64
	MaxEpoch uint64
}

// StaySecondary: the lease ran out while the map was loading.
type StaySecondary struct{}

// StepDown: stop acting as primary at once. Epoch is the lease epoch of
// the term that ends.
type StepDown struct {
	Reason string
	Epoch  uint64
}

// WriteMap: write the map with MaxEpoch set to MaxEpoch; Wait: wait for it
// within Timeout, else queue it in the background.
type WriteMap struct {
	MaxEpoch uint64
	Wait     bool
	Timeout  time.Duration
}

// ReleaseLease: a graceful stop of a primary: flush the last map, then
// release the lease at Epoch.
type ReleaseLease struct{ Epoch uint64 }

// RenewFailed: an acquire/renew request failed (not fatal by itself: the
// lease runs out by the own clock if the store stays unreachable).
type RenewFailed struct{ Err error }

// TimingChanged: the lease's TTL or renew interval changed (rule 6);
// InFlight: a renewal with the old TTL is in flight, the new one goes out
// when it returns.
type TimingChanged struct {
	TTL, Every time.Duration
	InFlight   bool
}

// TryNow: a master left gracefully; a secondary tries for the lease now.
type TryNow struct{ Master string }

func (SendAcquire) isAction()   {}
func (LoadShardMap) isAction()  {}
func (BecomePrimary) isAction() {}
func (StaySecondary) isAction() {}
func (StepDown) isAction()      {}
func (WriteMap) isAction()      {}
func (ReleaseLease) isAction()  {}
func (RenewFailed) isAction()   {}
func (TimingChanged) isAction() {}
func (TryNow) isAction()        {}

// FormatAction renders an action on one line; the transcripts use it.
func FormatAction(a Action) string {
	switch a := a.(type) {
	case SendAcquire:
		return fmt.Sprintf("send-acquire ttl=%s timeout=%s", a.TTL, a.Timeout)
	case LoadShardMap:
		return fmt.Sprintf("load-shard-map timeout=%s", a.Timeout)
	case BecomePrimary:
		return fmt.Sprintf("become-primary epoch=%d max_epoch=%d", a.Epoch, a.MaxEpoch)
	case StaySecondary:
		return "stay-secondary"
	case StepDown:
		return fmt.Sprintf("step-down epoch=%d: %s", a.Epoch, a.Reason)
	case WriteMap:
		if a.Wait {
			return fmt.Sprintf("write-map max_epoch=%d wait timeout=%s", a.MaxEpoch, a.Timeout)
		}
		return fmt.Sprintf("write-map max_epoch=%d background", a.MaxEpoch)
	case ReleaseLease:
		return fmt.Sprintf("release-lease epoch=%d", a.Epoch)
	case RenewFailed:
		return fmt.Sprintf("renew-failed: %v", a.Err)
	case TimingChanged:
		return fmt.Sprintf("timing-changed ttl=%s every=%s in_flight=%v", a.TTL, a.Every, a.InFlight)
	case TryNow:
		return fmt.Sprintf("try-now master=%s", a.Master)
	}
	return fmt.Sprintf("unknown action %T", a)
}
