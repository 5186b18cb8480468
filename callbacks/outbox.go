package callbacks

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Outbox is one coreapp's callbacks. Not safe for concurrent use: one
// goroutine (or the simulator) owns it.
type Outbox struct {
	cfg        Config
	configured bool
	seq        uint64
	// waiting are the callbacks not in flight, in the order they were
	// queued; flying the ones posted and not yet answered.
	waiting []*callback
	flying  []*callback
	known   map[string]bool
}

type callback struct {
	st       Status
	seq      uint64
	attempts int       // posts made so far
	failures int       // of them, failed
	due      time.Time // when it may be posted again
	deadline time.Time // in flight: when it counts as failed
}

// New returns an empty outbox; Step Configure first.
func New() *Outbox { return &Outbox{known: map[string]bool{}} }

// Step applies ev at now and returns what to do (see the package doc).
// Bad input returns an error naming the field and changes nothing.
func (o *Outbox) Step(now time.Time, ev Event) ([]Action, error) {
	var out []Action
	switch ev := ev.(type) {
	case Configure:
		if err := ev.Config.validate(); err != nil {
			return nil, err
		}
		cfg := ev.Config
		if o.configured {
			// webhooks.max_concurrent_requests is restart-required: a
			// running coreapp keeps the value it started with.
			cfg.MaxConcurrent = o.cfg.MaxConcurrent
		}
		o.cfg, o.configured = cfg, true
	case Queue:
		if !o.configured {
			return nil, errors.New("callbacks: Queue before the first Configure")
		}
		if ev.Status.ID == "" {
			return nil, errors.New("callbacks: Status.ID: must not be empty")
		}
		if o.known[ev.Status.ID] {
			return nil, fmt.Errorf("callbacks: Status.ID: %q is queued already", ev.Status.ID)
		}
		if why := o.DropReason(ev.Status.Kind); why != "" {
			out = append(out, Dropped{ID: ev.Status.ID, Reason: why})
		} else {
			o.seq++
			o.known[ev.Status.ID] = true
			o.waiting = append(o.waiting, &callback{st: ev.Status, seq: o.seq, due: now})
		}
	case Answered:
		i := slices.IndexFunc(o.flying, func(c *callback) bool { return c.st.ID == ev.ID && c.attempts == ev.Attempt })
		if i < 0 {
			break // an attempt that timed out already, or unknown
		}
		c := o.flying[i]
		if ev.OK {
			o.flying = slices.Delete(o.flying, i, i+1)
			delete(o.known, c.st.ID)
			out = append(out, Done{ID: c.st.ID, Attempts: c.attempts})
		} else {
			out = append(out, o.fail(now, i, false))
		}
	case Tick:
		for i := 0; i < len(o.flying); {
			if !now.Before(o.flying[i].deadline) {
				out = append(out, o.fail(now, i, true))
				continue
			}
			i++
		}
	default:
		return nil, fmt.Errorf("callbacks: unknown event %T", ev)
	}
	return append(out, o.dispatch(now)...), nil
}

// fail moves flying[i] back to waiting with its next attempt due after
// the backoff: Backoff × failures, capped at MaxBackoff.
func (o *Outbox) fail(now time.Time, i int, timedOut bool) Action {
	c := o.flying[i]
	o.flying = slices.Delete(o.flying, i, i+1)
	c.failures++
	delay := min(o.cfg.Backoff*time.Duration(c.failures), o.cfg.MaxBackoff)
	c.due = now.Add(delay)
	at, _ := slices.BinarySearchFunc(o.waiting, c.seq, func(w *callback, seq uint64) int {
		return cmp.Compare(w.seq, seq)
	})
	o.waiting = slices.Insert(o.waiting, at, c)
	return Retry{ID: c.st.ID, Attempt: c.attempts, TimedOut: timedOut, Delay: delay, At: c.due}
}

// dispatch posts what is due, in queue order, while there is room.
func (o *Outbox) dispatch(now time.Time) []Action {
	if o.cfg.URL == "" {
		return nil // queued callbacks wait for a URL
	}
	var out []Action
	timeout := o.cfg.timeout()
	for i := 0; i < len(o.waiting) && len(o.flying) < o.cfg.MaxConcurrent; {
		c := o.waiting[i]
		if c.due.After(now) {
			i++
			continue
		}
		o.waiting = slices.Delete(o.waiting, i, i+1)
		c.attempts++
		c.deadline = now.Add(timeout)
		o.flying = append(o.flying, c)
		out = append(out, Post{Status: c.st, Attempt: c.attempts, URL: o.cfg.URL, Timeout: timeout})
	}
	return out
}

// NextWake is the earliest of an in-flight post's timeout and, when there
// is room to post, a waiting callback's next attempt. Zero: none.
func (o *Outbox) NextWake() time.Time {
	var w time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (w.IsZero() || t.Before(w)) {
			w = t
		}
	}
	for _, c := range o.flying {
		earlier(c.deadline)
	}
	if len(o.flying) < o.cfg.MaxConcurrent && o.cfg.URL != "" {
		for _, c := range o.waiting {
			earlier(c.due)
		}
	}
	return w
}

// DropReason says why a status of kind k queued now would be dropped ("":
// it would be kept). A driver that must do work before Queue (keep the
// callback durably) asks first, so that it does none for a dropped one.
func (o *Outbox) DropReason(k Kind) string {
	switch {
	case o.cfg.URL == "":
		return "no webhooks.url"
	case k != Failed && !o.cfg.Enabled[k]:
		return fmt.Sprintf("webhooks.message.%s is off", k)
	}
	return ""
}

// Has reports whether callback id is queued (waiting or in flight).
func (o *Outbox) Has(id string) bool { return o.known[id] }

// Pending is how many callbacks are waiting or in flight.
func (o *Outbox) Pending() int { return len(o.waiting) + len(o.flying) }

// InFlight is how many posts are in flight.
func (o *Outbox) InFlight() int { return len(o.flying) }

func (c Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c Config) validate() error {
	var errs []error
	if c.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("callbacks: MaxConcurrent (webhooks.max_concurrent_requests): must be ≥ 1, got %d", c.MaxConcurrent))
	}
	if c.Backoff <= 0 {
		errs = append(errs, fmt.Errorf("callbacks: Backoff (callback_backoff_delay_ms): must be > 0, got %v", c.Backoff))
	}
	if c.MaxBackoff < c.Backoff {
		errs = append(errs, fmt.Errorf("callbacks: MaxBackoff (max_callback_backoff_delay_ms): must be ≥ Backoff (%v), got %v", c.Backoff, c.MaxBackoff))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("callbacks: Timeout: must be ≥ 0, got %v", c.Timeout))
	}
	return errors.Join(errs...)
}
