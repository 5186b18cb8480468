// Package load is the engine of `mcsim load`: an open-loop generator of
// POST /v1/messages requests against a cluster's front door, retrying 1018
// like a well-behaved client, with a report per second and a summary. The
// scenario runner drives it from Go with Run.
//
// Decisions (TRAFFIC.md and the issue leave them open):
//   - Open loop: message i starts at start + i/Rate whether or not earlier
//     ones were answered, so a slow cluster sees the offered load, not a
//     politely shrinking one. At most MaxOutstanding messages (default
//     1000) are in progress, retries included; a start that finds the
//     bound reached is skipped and counted (Summary.Skipped), never queued.
//   - Retries: a 1018 answer or a connection error (no HTTP answer) is
//     retried after 100 ms, then doubling up to 2 s, each wait times a
//     factor uniform in [0.8, 1.2) drawn from the message's own seeded
//     source; a retry that would start more than 30 s after the first
//     attempt is not made, and the message ends as a final error with its
//     last code. Any other error answer (4xx, 500) is final at once.
//   - A message's latency is from its first attempt to its final answer;
//     percentiles are over the messages answered 201.
//   - Per second (Second): "sent" is the messages first started in that
//     second (retries are not new messages; they are in "retries"), "ok"
//     those answered 201 in it, "errors" every error answer received in it
//     by code, retried or final, so a failover shows as errors even when
//     every retry succeeds; Second.Final (not in the JSON line) has the
//     messages that ended in an error in it. Codes are the API code ("1018"), "network" for no
//     HTTP answer (as the scenario runner's ClientError names it), "http_<status>" for an answer that is no envelope.
//   - Recipients: message i goes to a recipient drawn uniformly from
//     Recipients fixed wa ids "1631555" + the zero-padded index, from a PCG
//     seeded with Seed; the jitter of message i uses PCG(Seed, i+1), so a
//     run's choices do not depend on how goroutines interleave.
//   - Time is read from package time, so under testing/synctest a run
//     takes virtual time (the tests run minutes of traffic in
//     milliseconds); the simulator models traffic itself.
//   - When Duration ends no message starts, and those in progress run to
//     their final answer (at most the give-up time plus one request); a
//     cancelled ctx ends them at once, counted as Cancelled, not errors.
package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcsim/mcsim/settings/client"
)

// MessagesPath is the front door.
const MessagesPath = "/v1/messages"

// Retry is the client's retry policy for 1018 and connection errors.
type Retry struct {
	// First is the wait before the first retry.
	First time.Duration
	// Max caps each wait; waits double from First up to it.
	Max time.Duration
	// GiveUp: no retry starts later than this after the first attempt.
	GiveUp time.Duration
	// Jitter scales each wait by a factor uniform in [1-Jitter, 1+Jitter).
	Jitter float64
}

// DefaultRetry is the documented policy: 100 ms doubling to 2 s, ±20 %,
// giving up after 30 s.
func DefaultRetry() Retry {
	return Retry{First: 100 * time.Millisecond, Max: 2 * time.Second, GiveUp: 30 * time.Second, Jitter: 0.2}
}

// wait returns the wait before retry n (n = 1 for the first retry) before
// jitter.
func (r Retry) wait(n int) time.Duration {
	d := r.First
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// Config is what Run needs.
type Config struct {
	// Client is the settings API client of the front door: it logs in as
	// admin and logs in again when its token is refused. Required.
	Client *client.Client
	// Rate is messages started per second; > 0.
	Rate float64
	// Recipients is how many distinct recipients messages go to, 1 to
	// MaxRecipients.
	Recipients int
	// Duration is how long messages are started; 0 means until ctx ends.
	Duration time.Duration
	// Seed seeds every random choice.
	Seed uint64
	// MaxOutstanding bounds messages in progress; 0 means 1000.
	MaxOutstanding int
	// Retry is the retry policy; the zero value means DefaultRetry.
	Retry Retry
	// Body is each message's text; "" means "hello".
	Body string
	// RecordAcks keeps every message answered 201 in Summary.Acks (for
	// acked_reached); off, a long run keeps no per-message memory but the
	// latencies.
	RecordAcks bool
	// Stop, when closed, stops new starts as the end of Duration does:
	// messages in progress run to their final answer (the scenario
	// runner's StopLoad). Nil: only Duration and ctx stop the run.
	Stop <-chan struct{}
	// OnAnswer, if set, is told of every answer as it comes (201s and
	// errors, retried or final), from the message's goroutine: many at
	// once, so it must be safe for concurrent use and quick.
	OnAnswer func(Answer)
}

// Answer is one attempt's answer.
type Answer struct {
	// At is when it came; Started when the message's first attempt began.
	At, Started time.Time
	To          string
	// ID is the message id of a 201; Code is "" for a 201, else the error
	// code as in Second.Errors.
	ID, Code string
	// Final: the message ends with this answer (a 201, a final error).
	Final bool
}

// MaxRecipients keeps every recipient id within 15 digits (E.164): the
// 7-digit prefix and at most 8 digits of index.
const MaxRecipients = 100_000_000

// recipientPrefix starts every recipient id: a made-up US 555 number range,
// as the service's default wa_id.
const recipientPrefix = "1631555"

// Recipient returns the wa id of recipient i of n: recipientPrefix and i
// zero-padded to the width of n-1.
func Recipient(i, n int) string {
	w := len(strconv.Itoa(max(n-1, 0)))
	return fmt.Sprintf("%s%0*d", recipientPrefix, w, i)
}

// Validate reports every problem of cfg, naming the field.
func (c Config) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("load: Client is required"))
	}
	if !(c.Rate > 0) || c.Rate > 1e6 {
		errs = append(errs, fmt.Errorf("load: Rate must be more than 0 and at most 1000000 per second, got %v", c.Rate))
	}
	if c.Recipients < 1 || c.Recipients > MaxRecipients {
		errs = append(errs, fmt.Errorf("load: Recipients must be 1 to %d, got %d", MaxRecipients, c.Recipients))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("load: Duration must be 0 (until cancelled) or more, got %v", c.Duration))
	}
	if c.MaxOutstanding < 0 {
		errs = append(errs, fmt.Errorf("load: MaxOutstanding must be 0 (the default) or more, got %d", c.MaxOutstanding))
	}
	if r := c.Retry; r != (Retry{}) && (r.First <= 0 || r.Max < r.First || r.GiveUp < 0 || r.Jitter < 0 || r.Jitter >= 1) {
		errs = append(errs, fmt.Errorf("load: Retry must have 0 < First <= Max, GiveUp >= 0 and 0 <= Jitter < 1, got %+v", r))
	}
	return errors.Join(errs...)
}

// Ack is one message answered 201.
type Ack struct {
	ID string
	To string
	// Started is the first attempt, Acked the 201.
	Started, Acked time.Time
}

// ErrUnreachable is returned when the front door answered nothing at all:
// the first login got no HTTP answer.
var ErrUnreachable = errors.New("the front door could not be reached")

// Run sends messages until cfg.Duration has passed (and the messages in
// progress are answered) or ctx ends, calling onSecond (if not nil) once
// per second of the run from one goroutine, and returns the summary. It
// logs in first: a login that gets no answer returns ErrUnreachable
// (wrapped), one that is refused returns the API error.
func Run(ctx context.Context, cfg Config, onSecond func(Second)) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	if cfg.MaxOutstanding == 0 {
		cfg.MaxOutstanding = 1000
	}
	if cfg.Retry == (Retry{}) {
		cfg.Retry = DefaultRetry()
	}
	if cfg.Body == "" {
		cfg.Body = "hello"
	}
	if err := cfg.Client.Login(ctx); err != nil {
		var apiErr *client.APIError
		if errors.As(err, &apiErr) {
			return Summary{}, fmt.Errorf("load: logging in: %w", err)
		}
		return Summary{}, fmt.Errorf("load: %w: %w", ErrUnreachable, err)
	}
	r := newRun(cfg, time.Now())
	return r.run(ctx, onSecond), nil
}

// run is one Run in progress.
type run struct {
	cfg   Config
	start time.Time
	stats *stats
}

func newRun(cfg Config, start time.Time) *run {
	return &run{cfg: cfg, start: start, stats: newStats(start, cfg.RecordAcks)}
}

func (r *run) run(ctx context.Context, onSecond func(Second)) Summary {
	// Cancelling ctx cancels the requests in progress; Duration ending
	// only stops new starts.
	reqCtx, cancelReqs := context.WithCancel(ctx)
	defer cancelReqs()
	var inProgress sync.WaitGroup
	reportDone := make(chan struct{})
	stopReports := make(chan struct{})
	go func() {
		defer close(reportDone)
		r.report(stopReports, onSecond)
	}()

	picks := rand.New(rand.NewPCG(r.cfg.Seed, 0))
	slots := make(chan struct{}, r.cfg.MaxOutstanding)
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	stopped := false
	for i := uint64(0); !stopped; {
		select {
		case <-ctx.Done():
			stopped = true
			continue
		case <-r.cfg.Stop:
			stopped = true
			continue
		case <-timer.C:
		}
		// Start every message whose time has come: after a late wake-up
		// the rate is kept by starting the missed ones at once. The run
		// stops at the first start time at or past Duration.
		now := time.Now()
		for ; !stopped && r.at(i, interval).Compare(now) <= 0; i++ {
			if r.cfg.Duration > 0 && r.at(i, interval).Sub(r.start) >= r.cfg.Duration {
				stopped = true
				break
			}
			to := Recipient(picks.IntN(r.cfg.Recipients), r.cfg.Recipients)
			select {
			case slots <- struct{}{}:
			default:
				r.stats.skip()
				continue
			}
			r.stats.started(now)
			jitter := rand.New(rand.NewPCG(r.cfg.Seed, i+1))
			inProgress.Go(func() {
				defer func() { <-slots }()
				r.message(reqCtx, to, jitter)
			})
		}
		timer.Reset(r.at(i, interval).Sub(now))
	}
	inProgress.Wait()
	close(stopReports)
	<-reportDone
	return r.stats.summary(time.Now())
}

// at is when message i starts.
func (r *run) at(i uint64, interval time.Duration) time.Time {
	return r.start.Add(time.Duration(i) * interval)
}

// message sends one message to its final answer.
func (r *run) message(ctx context.Context, to string, jitter *rand.Rand) {
	body := fmt.Appendf(nil, `{"recipient_type":"individual","to":%q,"type":"text","text":{"body":%q}}`, to, r.cfg.Body)
	first := time.Now()
	for n := 1; ; n++ {
		ans, err := r.cfg.Client.Do(ctx, http.MethodPost, MessagesPath, body)
		now := time.Now()
		if err == nil {
			id := messageIDOf(ans)
			r.stats.ok(Ack{ID: id, To: to, Started: first, Acked: now})
			r.tell(Answer{At: now, Started: first, To: to, ID: id, Final: true})
			return
		}
		if ctx.Err() != nil {
			r.stats.cancelled()
			return
		}
		code, retryable := classify(err)
		wait := time.Duration(float64(r.cfg.Retry.wait(n)) * (1 - r.cfg.Retry.Jitter + 2*r.cfg.Retry.Jitter*jitter.Float64()))
		final := !retryable || now.Sub(first)+wait > r.cfg.Retry.GiveUp
		r.stats.errorAnswer(now, code, final)
		r.tell(Answer{At: now, Started: first, To: to, Code: code, Final: final})
		if final {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			r.stats.cancelled()
			return
		case <-t.C:
		}
		r.stats.retry(time.Now())
	}
}

func (r *run) tell(a Answer) {
	if r.cfg.OnAnswer != nil {
		r.cfg.OnAnswer(a)
	}
}

// classify names an error answer and says whether it is retried.
func classify(err error) (code string, retryable bool) {
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		return "network", true
	}
	c, ok := envelopeCode(apiErr.Body)
	if !ok {
		return "http_" + strconv.Itoa(apiErr.Status), false
	}
	return strconv.Itoa(c), c == 1018
}

// envelopeCode is the first error code of an error envelope.
func envelopeCode(body []byte) (int, bool) {
	// A small hand-rolled read would be faster; the answers are tiny and
	// rare (errors only), so clarity wins.
	var env struct {
		Errors []struct {
			Code int `json:"code"`
		} `json:"errors"`
	}
	if err := unmarshal(body, &env); err != nil || len(env.Errors) == 0 {
		return 0, false
	}
	return env.Errors[0].Code, true
}

// messageIDOf is the id of a 201 answer ("" if it has none, which the
// front door never sends).
func messageIDOf(body []byte) string {
	var ans struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if unmarshal(body, &ans) != nil || len(ans.Messages) == 0 {
		return ""
	}
	return strings.TrimSpace(ans.Messages[0].ID)
}
