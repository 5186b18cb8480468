package master

import "time"

// leaseClock is rule 3 judged by the master's own clock: the lease is held
// until the send time of the last successful renewal plus the TTL. Measuring
// from the send time (not the answer) errs on the safe side: the store
// started its TTL no earlier than we sent the request. It is pure: time is
// an argument.
type leaseClock struct {
	epoch      uint64
	validUntil time.Time // zero: not held
}

// granted records a successful acquire or renewal sent at sentAt.
func (l *leaseClock) granted(epoch uint64, sentAt time.Time, ttl time.Duration) {
	if until := sentAt.Add(ttl); epoch != l.epoch || until.After(l.validUntil) {
		l.validUntil = until
	}
	l.epoch = epoch
}

// held says whether the master may still act as primary at now.
func (l *leaseClock) held(now time.Time) bool {
	return !l.validUntil.IsZero() && now.Before(l.validUntil)
}

// lost forgets the lease (refused renewal, fenced write, step-down).
func (l *leaseClock) lost() { l.validUntil = time.Time{} }

// remaining is how long the lease lasts from now by our clock.
func (l *leaseClock) remaining(now time.Time) time.Duration {
	if !l.held(now) {
		return 0
	}
	return l.validUntil.Sub(now)
}
