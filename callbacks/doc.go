// Package callbacks is a coreapp's webhook outbox as a pure state
// machine: which status callbacks are posted, when a failed one is tried
// again, and how many are in flight at once, exactly as the seed's
// settings describe them (callback_backoff_delay_ms,
// max_callback_backoff_delay_ms, webhooks.url, webhooks.message.*,
// webhooks.max_concurrent_requests; ../shared/TRAFFIC.md).
//
// It has the shape of master/failover: Step(now, Event) returns Actions,
// NextWake says when it wants a Tick. No goroutines, clock, I/O or
// logging, so the coreapp's HTTP poster and the simulator decide the same
// way, and a transcript pins the backoff rule down to the millisecond.
//
// # Driving it
//
//   - Step Configure with the webhook settings, at start and on every
//     change of them.
//   - Step Queue for every status a message reaches on this coreapp.
//   - Carry out Post by POSTing the status to the URL (cancelled after
//     Config.Timeout) and Step Answered with its attempt and whether the
//     receiver answered 200. An answer to an attempt that already timed
//     out is ignored.
//   - Set a timer at NextWake (zero: none) and Step a Tick when it fires.
//
// # Decisions
//
// A status of a kind the settings do not enable, or with no webhooks.url,
// is dropped and reported (Dropped), never posted. A callback not answered
// 200 (any other answer, or none within the timeout) is tried again after
// callback_backoff_delay_ms × n after its n-th failure, each delay capped
// at max_callback_backoff_delay_ms, forever: the seed's worked example is
// 3 s, 6 s, 9 s, … up to 15 minutes, then every 15 minutes. At most
// max_concurrent_requests posts are in flight; what is due waits its turn
// in the order it was queued. A change of the settings applies from the
// next decision on (a retry already scheduled keeps its time), except
// max_concurrent_requests, which is restart-required: the outbox keeps the
// value it started with. A failed status is posted whenever there is a
// URL (webhooks.message has no switch for it). Callbacks queued while
// there was a URL wait if it is cleared, and go out when one is set.
//
// Not decided here: where the statuses come from (the gateway's session),
// durability (callback_persist keeps pending callbacks in the shared
// store) and the HTTP requests; package callbacks/poster, the coreapp's
// driver, does those.
package callbacks
