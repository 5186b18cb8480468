package scenarios

import (
	"context"
	"time"
)

// The invariants a workload adds (SCENARIOS.md "Traffic and callbacks"),
// in the order they are judged, after Invariants.
var TrafficInvariants = []string{"no_duplicate_send", "acked_reached", "callbacks_delivered", "backoff", "concurrency"}

// Workload is a scenario's traffic: messages POSTed to the front door at
// Rate per second to Recipients recipients, retried on 1018 like a
// well-behaved client, and the built-in webhook receiver that
// webhooks.url points to.
type Workload struct {
	Rate       float64 // messages per second
	Recipients int
	Webhook    Webhook
}

// Webhook is how the built-in receiver answers: Down refuses everything
// (503), otherwise FailPercent of callbacks are answered 500, each after
// Latency.
type Webhook struct {
	FailPercent float64
	Latency     time.Duration
	Down        bool
}

// WebhookPatch is a webhook step: the fields it sets (nil: unchanged).
type WebhookPatch struct {
	FailPercent *float64
	Latency     *time.Duration
	Down        *bool
}

// apply returns w with p's fields set.
func (p WebhookPatch) apply(w Webhook) Webhook {
	if p.FailPercent != nil {
		w.FailPercent = *p.FailPercent
	}
	if p.Latency != nil {
		w.Latency = *p.Latency
	}
	if p.Down != nil {
		w.Down = *p.Down
	}
	return w
}

// TrafficTarget is a Target that can run a workload. Both targets are;
// the interface is separate so that a target is judged on the cluster
// alone until a scenario asks for traffic.
type TrafficTarget interface {
	Target
	// StartWorkload starts the receiver, points webhooks.url at it, and
	// starts the load. The load is seeded by Options.Seed through seed.
	StartWorkload(ctx context.Context, w Workload, seed uint64) error
	// StopLoad stops sending new messages (messages in flight finish);
	// the receiver stays up.
	StopLoad(ctx context.Context) error
	// SetWebhook changes how the receiver answers, from now on.
	SetWebhook(ctx context.Context, w Webhook) error
	// Traffic is what the clients, the gateway and the receiver saw so
	// far. The caller must not change it.
	Traffic() *TrafficSeen
}

// TrafficSeen is a workload's record: the clients' side (every answer they
// got), the gateway's (the witness: messages accepted, status updates a
// coreapp took charge of), and the receiver's (every callback request).
type TrafficSeen struct {
	// Seconds are the load's complete seconds so far, in order.
	Seconds []TrafficSecond
	// Acked are the messages answered 201, in the order answered.
	Acked []AckedMessage
	// Refused are the client-visible errors: every attempt answered with
	// an error or not answered, retried or not.
	Refused []ClientError
	// Accepted counts, per message id, how many times the gateway accepted
	// it (from the witness).
	Accepted map[string]int
	// Taken are the status updates coreapps took charge of (the gateway's
	// STATUS events), in order.
	Taken []StatusTaken
	// Callbacks are the requests the receiver got, in order of arrival.
	Callbacks []CallbackSeen
}

// TrafficSecond is one second of the load (SCENARIOS.md's traffic event):
// messages first started in it (Sent, not retries), answered 201 (OK),
// every error answer in it by code (retried or final: with final errors
// only, a failover shorter than the clients' 30 s patience would show no
// errors at all), and the latency percentiles of the messages answered
// 201 in it, from their first attempt.
type TrafficSecond struct {
	End      time.Time // the end of the second
	Sent, OK int
	Errors   map[string]int
	P50, P99 time.Duration
}

// AckedMessage is a message the front door answered 201.
type AckedMessage struct {
	ID, Recipient string
	At            time.Time
}

// ClientError is one attempt a client saw fail: code is the API error
// code ("1018") or "network" when no answer came.
type ClientError struct {
	At   time.Time
	Code string
}

// StatusTaken is a status update a coreapp acknowledged to the gateway:
// from then on its callback is that coreapp's to deliver.
type StatusTaken struct {
	At        time.Time
	ID        string // "<message id>/<status>"
	MessageID string
	Recipient string
	Status    string
	Coreapp   string
}

// CallbackSeen is one callback request at the receiver: when it arrived,
// when it was answered and with what (0: it was not answered before the
// poster gave up, e.g. the receiver was slower than the timeout), and the
// attempt number and coreapp the request said (X-Mcsim-Attempt,
// X-Mcsim-Coreapp).
type CallbackSeen struct {
	At, Answered time.Time
	ID           string // "<message id>/<status>"
	Status       string
	Attempt      int
	Coreapp      string
	Code         int
}
