// Package clock is how a node's driver reads time. A scenario can skew one
// node's clock (run it fast or slow, as a drifting oscillator or a starved
// VM would) to test what must survive it, above all the master lease (rule
// 3): a master whose clock runs slow believes its lease longer than the
// store does. Many nodes share one process (cluster/inproc, tests), so there
// is no package-level clock: each node is given its own.
//
// Real reads the time package, so inside a testing/synctest bubble it is
// the bubble's virtual clock. Skewed runs at a settable rate over another
// clock.
package clock

import (
	"context"
	"time"
)

// Clock is a source of time and timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that delivers the clock's time on C once the
	// clock has advanced by d.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine once the clock has advanced by
	// d. The Timer's C is nil.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer of a Clock, with the semantics of time.Timer since Go
// 1.23: after Stop or Reset returns, no value from before is received on C.
type Timer interface {
	// C is the channel the time is delivered on; nil for AfterFunc timers.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether it did: false
	// if the timer had already fired (and, for a channel timer, its value
	// was received) or been stopped.
	Stop() bool
	// Reset makes the timer fire once the clock has advanced by d from now.
	// It reports whether the timer was still pending.
	Reset(d time.Duration) bool
}

// Since is the time elapsed on c since t (a time c gave).
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }

// Until is the time on c until t (a time of c).
func Until(c Clock, t time.Time) time.Duration { return t.Sub(c.Now()) }

// realDurationer is a clock that knows how long its durations last in the
// time package's time.
type realDurationer interface {
	realDuration(d time.Duration) time.Duration
}

// RealDuration is how long d on c lasts by the time package (which gRPC
// and the context package use): d itself on Real, d/rate on a Skewed.
func RealDuration(c Clock, d time.Duration) time.Duration {
	if r, ok := c.(realDurationer); ok {
		return r.realDuration(d)
	}
	return d
}

// WithTimeout is context.WithTimeout for a duration on c. The deadline is
// fixed when it is made, in real time, as a gRPC deadline must be (gRPC
// sends it to the server as a timeout): a later change of c's rate does
// not move it. Calls are short next to how often a scenario changes a
// rate, so the error is at most the call's own length times the change.
func WithTimeout(ctx context.Context, c Clock, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, RealDuration(c, d))
}

// WithDeadline is context.WithDeadline for a time t of c (see WithTimeout):
// the context passing a deadline of c must end when c reaches it, not when
// the time package does.
func WithDeadline(ctx context.Context, c Clock, t time.Time) (context.Context, context.CancelFunc) {
	return WithTimeout(ctx, c, Until(c, t))
}

// Real returns the clock of the time package.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
