package lease

import "time"

// leaseClock is rule 3 judged by the master's own clock: the lease is held
// until the send time of the last successful renewal plus the TTL.
// Measuring from the send time (not the answer) errs on the safe side: the
// store started its TTL no earlier than we sent the request.
type leaseClock struct {
	epoch      uint64
	validUntil time.Time // zero: not held
	sentAt     time.Time // send time of the grant validUntil comes from
	// unchecked: a lease once granted is held until lost, whatever the
	// own clock says (Term.DisableOwnClockCheck).
	unchecked bool
}

// granted records a successful acquire or renewal sent at sentAt. The
// latest grant is the truth, also when its TTL is shorter (a live change
// of the intervals): the store then moved the expiry earlier, and a master
// that kept its longer end could act after another took the lease. Only an
// answer to an earlier request (sent before the grant we hold) is ignored.
func (l *leaseClock) granted(epoch uint64, sentAt time.Time, ttl time.Duration) {
	if epoch != l.epoch || !sentAt.Before(l.sentAt) {
		l.validUntil = sentAt.Add(ttl)
		l.sentAt = sentAt
	}
	l.epoch = epoch
}

// sending records a renewal about to be sent at now with ttl. The store,
// if the request reaches it, sets the expiry to its receipt time plus ttl,
// no earlier than now + ttl; with a shorter TTL (a live change) that may be
// before the end we hold, and the answer may never come back to tell us.
// So the end we act by moves to now + ttl at once if that is earlier: a
// request lost on the way only makes us step down sooner than needed.
func (l *leaseClock) sending(now time.Time, ttl time.Duration) {
	if end := now.Add(ttl); !l.validUntil.IsZero() && end.Before(l.validUntil) {
		l.validUntil = end
	}
}

// held says whether the master may still act as primary at now.
func (l *leaseClock) held(now time.Time) bool {
	return !l.validUntil.IsZero() && (now.Before(l.validUntil) || l.unchecked)
}

// lost forgets the lease (refused renewal, fenced write, step-down).
func (l *leaseClock) lost() { l.validUntil = time.Time{} }

// remaining is how long the lease lasts from now by our clock.
func (l *leaseClock) remaining(now time.Time) time.Duration {
	if !l.held(now) {
		return 0
	}
	if l.unchecked && !now.Before(l.validUntil) {
		return l.validUntil.Sub(l.sentAt) // a TTL's worth, for the timeouts it bounds
	}
	return l.validUntil.Sub(now)
}

// expiryMargin is added to the store's "remaining" (whole milliseconds,
// rounded down) so that a retry lands after the lease has lapsed rather
// than a fraction of a millisecond before it.
const expiryMargin = time.Millisecond

// nextAttempt is when a secondary refused at now tries again: at its
// regular renewal time, or as soon as the holder's lease lapses by the
// store's clock (now + remaining), whichever is first. Retrying at the
// lapse rather than at the next poll cuts takeover after a crash from up
// to TTL + renew interval to about TTL; the store still decides, so the
// hint can only make a try early (refused, and retried), never unsafe.
func nextAttempt(now, scheduled time.Time, remaining time.Duration) time.Time {
	if remaining < 0 {
		remaining = 0
	}
	if at := now.Add(remaining + expiryMargin); scheduled.IsZero() || at.Before(scheduled) {
		return at
	}
	return scheduled
}

// Timing is the lease's TTL and renew interval: the overrides when set
// (> 0), else unhealthy_interval and heartbeat_interval, which are live
// (rule 6). A renewal that is not shorter than the TTL would let the lease
// lapse between renewals and the master flap; the settings keep
// heartbeat_interval below unhealthy_interval and the CLI refuses such
// overrides, but one override against a live setting can still cross, and
// then the lease is renewed at a third of the TTL.
func Timing(ttlOverride, renewOverride, heartbeat, unhealthy time.Duration) (ttl, renewEvery time.Duration) {
	ttl, renewEvery = unhealthy, heartbeat
	if ttlOverride > 0 {
		ttl = ttlOverride
	}
	if renewOverride > 0 {
		renewEvery = renewOverride
	}
	if renewEvery >= ttl {
		renewEvery = ttl / 3
	}
	return ttl, renewEvery
}
