package callbacks

import (
	"fmt"
	"time"
)

// Kind is a status of a message, as the callback names it.
type Kind string

// The kinds of status callback.
const (
	Sent      Kind = "sent"
	Delivered Kind = "delivered"
	Read      Kind = "read"
	Failed    Kind = "failed"
)

// Status is one status callback to post.
type Status struct {
	// ID names the callback (unique per outbox): the message id and kind.
	ID        string
	MessageID string
	Recipient string
	Kind      Kind
	At        time.Time
}

// Config is the webhook settings the outbox decides with.
type Config struct {
	// URL is webhooks.url; "" drops every callback.
	URL string
	// Enabled says which kinds webhooks.message enables (failed is always
	// posted when there is a URL).
	Enabled map[Kind]bool
	// MaxConcurrent is webhooks.max_concurrent_requests (≥ 1). It is
	// restart-required: the outbox keeps the first Configure's.
	MaxConcurrent int
	// Backoff and MaxBackoff are callback_backoff_delay_ms and
	// max_callback_backoff_delay_ms (> 0; MaxBackoff ≥ Backoff).
	Backoff, MaxBackoff time.Duration
	// Timeout is how long a post may go unanswered before it counts as a
	// failure (0: DefaultTimeout).
	Timeout time.Duration
}

// DefaultTimeout is a post's timeout when Config.Timeout is 0
// (TRAFFIC.md: decided, 10 s).
const DefaultTimeout = 10 * time.Second

// Event is an input to Step. The set is closed: the types below.
type Event interface{ isEvent() }

// Configure: the webhook settings, at start and on every change.
type Configure struct{ Config Config }

// Queue: a status to call back.
type Queue struct{ Status Status }

// Answered: the post of callback ID's attempt Attempt was answered; OK
// when the receiver answered 200.
type Answered struct {
	ID      string
	Attempt int
	OK      bool
}

// Tick: the timer set at NextWake fired.
type Tick struct{}

func (Configure) isEvent() {}
func (Queue) isEvent()     {}
func (Answered) isEvent()  {}
func (Tick) isEvent()      {}

// Action is an output of Step.
type Action interface{ isAction() }

// Post: POST Status to URL now, as attempt Attempt (1 for the first), and
// Step its Answered; give up after Timeout (a Tick then reports it).
type Post struct {
	Status  Status
	Attempt int
	URL     string
	Timeout time.Duration
}

// Dropped reports a callback that will never be posted.
type Dropped struct {
	ID     string
	Reason string
}

// Done reports a callback the receiver took (answered 200), after
// Attempts attempts.
type Done struct {
	ID       string
	Attempts int
}

// Retry reports a failed attempt (TimedOut: not answered in time) and
// when the next one is due.
type Retry struct {
	ID       string
	Attempt  int
	TimedOut bool
	Delay    time.Duration
	At       time.Time
}

func (Post) isAction()    {}
func (Dropped) isAction() {}
func (Done) isAction()    {}
func (Retry) isAction()   {}

// FormatAction renders an action on one line, times as offsets from base.
func FormatAction(a Action, base time.Time) string {
	switch a := a.(type) {
	case Post:
		return fmt.Sprintf("post %s attempt=%d", a.Status.ID, a.Attempt)
	case Dropped:
		return fmt.Sprintf("dropped %s: %s", a.ID, a.Reason)
	case Done:
		return fmt.Sprintf("done %s attempts=%d", a.ID, a.Attempts)
	case Retry:
		why := "failed"
		if a.TimedOut {
			why = "timed out"
		}
		return fmt.Sprintf("retry %s attempt=%d %s: next in %s at=%s", a.ID, a.Attempt, why, a.Delay, a.At.Sub(base))
	}
	return fmt.Sprintf("unknown action %T", a)
}
