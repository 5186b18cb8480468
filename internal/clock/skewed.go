package clock

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Skewed is a clock that runs at a rate of another (its base): at rate 0.5
// a second of it takes two of the base. Its time is anchored, so a change
// of rate never makes it jump: from the last change on, it reads
// anchor + (base elapsed since the anchor) × rate. Its times keep the base
// time's monotonic reading, so Sub between them stays monotonic. Timers
// fire when the skewed clock reaches their deadline, also across rate
// changes. Safe for concurrent use.
type Skewed struct {
	base Clock

	mu           sync.Mutex
	rate         float64
	anchorBase   time.Time // base time of the last rate change
	anchorSkewed time.Time // our time then
	pending      map[*skewedTimer]struct{}
}

// NewSkewed returns a clock at rate 1 over base, reading what base reads
// until its rate is changed.
func NewSkewed(base Clock) *Skewed {
	now := base.Now()
	return &Skewed{base: base, rate: 1, anchorBase: now, anchorSkewed: now, pending: map[*skewedTimer]struct{}{}}
}

// Rate returns the current rate.
func (s *Skewed) Rate() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rate
}

// SetRate makes the clock run at r times its base from now on: r < 1 is
// slow, r > 1 fast. Pending timers are re-armed so each still fires when
// this clock reaches its deadline. A rate that is not a finite number > 0
// is refused and the old one kept: time must keep moving forward.
func (s *Skewed) SetRate(r float64) error {
	if !(r > 0) || math.IsInf(r, 0) {
		return fmt.Errorf("clock: rate: must be a finite number > 0, got %v", r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.base.Now()
	now := s.at(b)
	s.anchorBase, s.anchorSkewed, s.rate = b, now, r
	for t := range s.pending {
		t.armLocked(now)
	}
	return nil
}

// Now returns the skewed time.
func (s *Skewed) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Skewed) nowLocked() time.Time { return s.at(s.base.Now()) }

// at is our time at base time b. Rounding (not truncating) keeps a timer
// armed for ceil(d/rate) of the base from reading a nanosecond short of
// its deadline.
func (s *Skewed) at(b time.Time) time.Time {
	return s.anchorSkewed.Add(time.Duration(math.Round(float64(b.Sub(s.anchorBase)) * s.rate)))
}

// baseDuration is how long d of ours lasts on the base at the current
// rate, rounded up so a timer never fires early by our clock.
func (s *Skewed) baseDuration(d time.Duration) time.Duration {
	f := math.Ceil(float64(d) / s.rate)
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(f)
}

func (s *Skewed) realDuration(d time.Duration) time.Duration {
	s.mu.Lock()
	b := s.baseDuration(d)
	s.mu.Unlock()
	return RealDuration(s.base, b)
}

// NewTimer returns a timer that delivers this clock's time on C once it
// has advanced by d.
func (s *Skewed) NewTimer(d time.Duration) Timer {
	t := &skewedTimer{s: s, c: make(chan time.Time, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.startLocked(d)
	return t
}

// AfterFunc calls f in its own goroutine once this clock has advanced by d.
func (s *Skewed) AfterFunc(d time.Duration, f func()) Timer {
	t := &skewedTimer{s: s, f: f}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.startLocked(d)
	return t
}

// skewedTimer is a deadline on a Skewed clock carried out by one timer of
// the base at a time; a rate change replaces that base timer. Its fields
// are guarded by s.mu.
type skewedTimer struct {
	s        *Skewed
	c        chan time.Time // nil for AfterFunc; buffered, drained by Stop and Reset
	f        func()
	deadline time.Time // on s
	base     Timer     // the armed base timer; nil when not pending
	// gen names the current arming: a base timer that fires after it was
	// replaced or stopped (its callback already running) does nothing.
	gen uint64
}

func (t *skewedTimer) startLocked(d time.Duration) {
	now := t.s.nowLocked()
	t.deadline = now.Add(d)
	t.s.pending[t] = struct{}{}
	t.armLocked(now)
}

// armLocked (re)arms the base timer for the time left until the deadline
// at the current rate.
func (t *skewedTimer) armLocked(now time.Time) {
	if t.base != nil {
		t.base.Stop()
	}
	t.gen++
	gen := t.gen
	t.base = t.s.base.AfterFunc(max(t.s.baseDuration(t.deadline.Sub(now)), 0), func() { t.fire(gen) })
}

func (t *skewedTimer) fire(gen uint64) {
	s := t.s
	s.mu.Lock()
	if gen != t.gen || t.base == nil {
		s.mu.Unlock()
		return
	}
	now := s.nowLocked()
	if now.Before(t.deadline) {
		// Float rounding: not there yet by our clock.
		t.armLocked(now)
		s.mu.Unlock()
		return
	}
	t.base = nil
	delete(s.pending, t)
	if t.c != nil {
		// Sent under the lock, so Stop and Reset (which drain C under it)
		// leave no stale value behind.
		select {
		case t.c <- now:
		default:
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	t.f()
}

func (t *skewedTimer) C() <-chan time.Time { return t.c }

func (t *skewedTimer) Stop() bool {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.stopLocked()
}

func (t *skewedTimer) Reset(d time.Duration) bool {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	was := t.stopLocked()
	t.startLocked(d)
	return was
}

// stopLocked disarms t and drains C. A value delivered but not received
// counts as pending, as with time.Timer since Go 1.23, whose channel holds
// nothing until it is received from.
func (t *skewedTimer) stopLocked() bool {
	pending := t.base != nil
	if pending {
		t.base.Stop()
		t.base = nil
		t.gen++
		delete(t.s.pending, t)
	}
	if t.c != nil {
		select {
		case <-t.c:
			pending = true
		default:
		}
	}
	return pending
}
