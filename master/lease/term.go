package lease

import (
	"fmt"
	"time"
)

// EpochBlock is how many shard epochs a primary reserves in the store at a
// time. Fencing needs an epoch to be durable before any coreapp sees it, so
// that no later master hands it out again; it does not need the owner to
// be durable first. With a reserved block, a failover's Assign goes out at
// once and the map write (an fsync of about a millisecond, the largest part
// of the failover overhead ε) follows in the background. Only when the
// block is used up does a write sit on the failover's path again, once per
// EpochBlock assignments. A takeover continues above the whole block.
const EpochBlock = 64

// Config configures a Term.
type Config struct {
	// ID is the master's own id: a MasterLeft naming it is ignored.
	ID string
	// TTL overrides the lease TTL; 0 means unhealthy_interval (live).
	TTL time.Duration
	// RenewInterval overrides the renew interval; 0 means
	// heartbeat_interval (live). See Timing.
	RenewInterval time.Duration
}

// Term is one master's lease and term. Not safe for concurrent use: the
// master's loop owns it.
type Term struct {
	cfg       Config
	started   bool // the first Settings came: competing for the lease
	hb, ui    time.Duration
	renewing  bool      // a SendAcquire is in flight
	nextRenew time.Time // when the next one is due (zero: at once)
	clock     leaseClock
	loading   bool   // a LoadShardMap is being carried out
	primary   bool   // between BecomePrimary and StepDown (or Shutdown)
	stopped   bool   // Shutdown came: nothing more is decided
	reserved  uint64 // shard epochs durably reserved in the store
}

// New returns the Term of a master that has not seen its settings yet.
func New(cfg Config) *Term { return &Term{cfg: cfg} }

// Step applies ev at now and returns what to do (see the package doc).
// Rule 3 comes first: a primary whose lease ran out by now steps down
// before the event is looked at, except where the event's own check names
// a more precise reason (a map write).
func (t *Term) Step(now time.Time, ev Event) ([]Action, error) {
	if t.stopped {
		return nil, nil
	}
	switch ev := ev.(type) {
	case PersistMap:
		return t.persist(now, ev), nil
	case MapPersisted:
		if !t.primary {
			return nil, nil
		}
		t.reserved = max(t.reserved, ev.MaxEpoch)
		// The write may have blocked: the assignments after it may go out
		// only if the lease still holds now.
		if !t.clock.held(now) {
			if !ev.Waited {
				return t.stepDown("lease expired by the master's own clock"), nil
			}
			return t.stepDown("lease ran out while the shard map was being written"), nil
		}
		return nil, nil
	case MapWriteFailed:
		if !ev.Background {
			return t.writeFailed(ev), nil
		}
	}
	out := t.check(now)
	switch ev := ev.(type) {
	case Check:
	case Settings:
		out = append(out, t.settings(now, ev)...)
	case Tick:
		if t.started && !t.renewing && !now.Before(t.nextRenew) {
			out = append(out, t.send(now))
		}
	case Answered:
		out = append(out, t.answered(now, ev)...)
	case ShardMapLoaded:
		t.loading = false
		switch {
		case ev.Err != nil:
		case !t.clock.held(now):
			// The load outlasted the lease: acting now would be acting
			// after its end (rule 3).
			out = append(out, StaySecondary{})
		default:
			t.primary, t.reserved = true, ev.MaxEpoch
			out = append(out, BecomePrimary{Epoch: t.clock.epoch, MaxEpoch: ev.MaxEpoch})
		}
	case PrimaryAborted:
		t.primary = false
	case MapWriteFailed:
		out = append(out, t.writeFailed(ev)...)
	case MasterLeft:
		if t.primary || !t.started || ev.ID == t.cfg.ID {
			return out, nil
		}
		out = append(out, TryNow{Master: ev.ID})
		if t.renewing {
			t.nextRenew = now // the answer in flight may predate the release
		} else {
			out = append(out, t.send(now))
		}
	case Shutdown:
		if t.primary && !ev.Crashed {
			out = append(out, ReleaseLease{Epoch: t.clock.epoch})
		}
		t.primary, t.stopped = false, true
	default:
		return out, fmt.Errorf("lease: unknown event %T", ev)
	}
	return out, nil
}

// check is rule 3: a primary whose lease ran out by its own clock stops
// acting at once.
func (t *Term) check(now time.Time) []Action {
	if t.primary && !t.clock.held(now) {
		return t.stepDown("lease expired by the master's own clock")
	}
	return nil
}

// stepDown ends the term (if primary) and forgets the lease.
func (t *Term) stepDown(reason string) []Action {
	if !t.primary {
		return nil
	}
	a := StepDown{Reason: reason, Epoch: t.clock.epoch}
	t.primary = false
	t.clock.lost()
	return []Action{a}
}

// send starts a renewal (or a secondary's attempt) and schedules the next.
func (t *Term) send(now time.Time) Action {
	ttl, every := t.Timing()
	t.renewing = true
	t.nextRenew = now.Add(every)
	t.clock.sending(now, ttl)
	return SendAcquire{TTL: ttl, Timeout: every}
}

// settings starts competing on the first snapshot; afterwards a change of
// the lease's timing renews at once (rule 6), so the store's expiry, what
// a secondary waits for after a crash, follows the change now rather than
// at the next renewal on the old schedule; a secondary polls at once and
// learns the store's remaining time. A renewal in flight carries the old
// TTL: the next one is due as soon as it returns.
func (t *Term) settings(now time.Time, ev Settings) []Action {
	if !t.started {
		t.started, t.hb, t.ui = true, ev.HeartbeatInterval, ev.UnhealthyInterval
		return []Action{t.send(now)}
	}
	oldTTL, oldEvery := t.Timing()
	t.hb, t.ui = ev.HeartbeatInterval, ev.UnhealthyInterval
	ttl, every := t.Timing()
	if ttl == oldTTL && every == oldEvery {
		return nil
	}
	out := []Action{TimingChanged{TTL: ttl, Every: every, InFlight: t.renewing}}
	if t.renewing {
		t.nextRenew = now
		return out
	}
	return append(out, t.send(now))
}

// answered judges an acquire/renew answer.
func (t *Term) answered(now time.Time, ev Answered) []Action {
	t.renewing = false
	if ev.Err != nil {
		return []Action{RenewFailed{Err: ev.Err}}
	}
	if !ev.Granted {
		out := t.stepDown("lease held by " + ev.Holder)
		t.clock.lost()
		t.clock.epoch = ev.Epoch
		t.nextRenew = nextAttempt(now, t.nextRenew, ev.Remaining)
		return out
	}
	var out []Action
	if t.primary && ev.Epoch != t.clock.epoch {
		// The store let our lease lapse and granted it again at a new
		// epoch: in the gap another master may have acted, so this term's
		// view is stale. Start a new term from the stored map.
		out = t.stepDown(fmt.Sprintf("lease re-granted at epoch %d after it lapsed in the store", ev.Epoch))
	}
	t.clock.granted(ev.Epoch, ev.SentAt, ev.TTL)
	if !t.clock.held(now) {
		// The answer came back after the lease it granted had run out. A
		// shorter TTL (a live change) can end the lease before the end of
		// the grant it replaces: a primary stops here, in this Step, not
		// at the timer the end in the past would fire.
		return append(out, t.check(now)...)
	}
	if t.primary || t.loading {
		return out
	}
	t.loading = true
	return append(out, LoadShardMap{Timeout: t.clock.remaining(now)})
}

// persist is the batching rule: within the reserved block the map goes out
// in the background; past it, the write that reserves the next block is
// waited for, as long as the lease lasts by the own clock.
func (t *Term) persist(now time.Time, ev PersistMap) []Action {
	if !t.primary {
		return nil
	}
	if !t.clock.held(now) {
		return t.stepDown("lease expired before the shard map could be written")
	}
	if ev.MaxEpoch <= t.reserved {
		return []Action{WriteMap{MaxEpoch: t.reserved}}
	}
	return []Action{WriteMap{MaxEpoch: ev.MaxEpoch + EpochBlock, Wait: true, Timeout: t.clock.remaining(now)}}
}

// writeFailed ends the term: the map is fenced or the store unreachable,
// and no epoch may be used before it is durable.
func (t *Term) writeFailed(ev MapWriteFailed) []Action {
	switch {
	case ev.Background:
		return t.stepDown("background shard map write failed: " + ev.Err)
	case ev.Fenced:
		return t.stepDown("shard map write fenced: " + ev.Err)
	default:
		return t.stepDown("shard map write failed: " + ev.Err)
	}
}

// NextWake is the earliest of the next renewal (unless one is in flight:
// its answer wakes the driver, and a renewal due meanwhile would otherwise
// set a timer in the past that fires again and again) and, while primary,
// the lease's end by the own clock. Zero: no timer.
func (t *Term) NextWake() time.Time {
	var w time.Time
	if t.stopped {
		return w
	}
	if t.started && !t.renewing {
		w = t.nextRenew
	}
	if t.primary && !t.clock.unchecked && !t.clock.validUntil.IsZero() && (w.IsZero() || t.clock.validUntil.Before(w)) {
		w = t.clock.validUntil
	}
	return w
}

// DisableOwnClockCheck makes the term hold a granted lease until it is
// lost (refused, fenced, stepped down for another reason), whatever the
// master's own clock says: rule 3 switched off. It exists for the
// simulator's selftest (sim.Sabotage), which must show that the checkers
// catch what this lets through; a test keeps every other package from
// calling it.
func (t *Term) DisableOwnClockCheck() { t.clock.unchecked = true }

// Timing is the current TTL and renew interval (see Timing).
func (t *Term) Timing() (ttl, renewEvery time.Duration) {
	return Timing(t.cfg.TTL, t.cfg.RenewInterval, t.hb, t.ui)
}

// Epoch is the lease epoch last granted or reported by the store.
func (t *Term) Epoch() uint64 { return t.clock.epoch }

// ValidUntil is the lease's end by the own clock; zero when not held.
func (t *Term) ValidUntil() time.Time { return t.clock.validUntil }

// Held says whether the lease holds at now by the own clock.
func (t *Term) Held(now time.Time) bool { return t.clock.held(now) }

// Remaining is how long the lease lasts from now by the own clock.
func (t *Term) Remaining(now time.Time) time.Duration { return t.clock.remaining(now) }

// Primary says whether the master acts as primary (between BecomePrimary
// and StepDown).
func (t *Term) Primary() bool { return t.primary }

// Renewing says whether an acquire/renew request is in flight.
func (t *Term) Renewing() bool { return t.renewing }

// Reserved is the max_epoch durably reserved in the store this term.
func (t *Term) Reserved() uint64 { return t.reserved }
