// Package poster is a coreapp's webhook driver: the goroutine shell around
// the pure outbox of package callbacks. It takes the status updates the
// coreapp's gateway sessions hand it (TakeStatus), delivers them and the
// webhook settings to the outbox as events, and carries out what the
// outbox decides: it POSTs each callback to webhooks.url, steps the answer
// back, and sets the outbox's timer. Every decision (kinds, URL, backoff,
// concurrency, timeouts) is the outbox's.
//
// # What it adds around the outbox
//
//   - callback_persist (restart-required: the value the poster was first
//     configured with). When true, TakeStatus keeps the callback durably in
//     the shared store (CoordinationService.PutCallbacks) before it
//     returns, so the gateway's status is acknowledged only once the
//     callback survives this process; a callback the receiver answered 200
//     (or that the settings now drop) is deleted from the store; and when
//     the coreapp is assigned a shard, Adopt lists what the shard's last
//     owner kept and queues it. When false, callbacks live in this
//     process only and a crash loses those still pending.
//   - The request: one status per POST, the On-Premises statuses payload,
//     Content-Type application/json, the URL as given (its query string,
//     such as ?auth=secret, kept), cancelled after the outbox's timeout,
//     and two headers (decided, not in the On-Premises API) so the
//     receiver can judge the backoff per attempt: X-Mcsim-Attempt (1 for
//     the first post of a callback by this coreapp) and X-Mcsim-Coreapp
//     (the coreapp's id). A successor that adopts a callback counts its
//     attempts from 1 again.
//   - Logs and Prometheus counters of what happened to callbacks: queued,
//     posted, delivered, failed attempts, dropped, persisted, adopted.
//
// Delivery is at least once: a callback adopted by a shard's new owner
// while its old owner still retries it (a partition rather than a crash)
// may reach the receiver from both.
package poster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/callbacks"
	"github.com/mcsim/mcsim/internal/clock"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The headers of every callback post (see the package doc; the receiver,
// package webhook, reads them under the same names).
const (
	HeaderAttempt = "X-Mcsim-Attempt"
	HeaderCoreapp = "X-Mcsim-Coreapp"
)

// ErrClosed is returned by TakeStatus after Close.
var ErrClosed = errors.New("webhook poster closed")

// Config configures a poster.
type Config struct {
	// CoreappID names the coreapp in the X-Mcsim-Coreapp header, the kept
	// callbacks and the logs. Required.
	CoreappID string
	// Client posts the callbacks; nil means a client of the poster's own.
	// Each post is cancelled after the outbox's timeout whatever the
	// client's own Timeout.
	Client *http.Client
	// Coord keeps the callbacks when callback_persist is true; without it
	// a poster configured to persist refuses every status (TakeStatus
	// errors), since it could not keep the promise.
	Coord mcsimv1.CoordinationServiceClient
	// Logger is the coreapp's logger.
	Logger zerolog.Logger
	// Registry receives the poster's metrics; nil means a private one.
	Registry prometheus.Registerer
	// Clock times the outbox (backoff and timeouts); nil means clock.Real().
	Clock clock.Clock
	// Timeout is how long a post may go unanswered (0: the outbox's
	// default, 10 s).
	Timeout time.Duration
	// AdoptRetry is how long Adopt waits before asking the store again
	// after a failed ListCallbacks (0: 1 s).
	AdoptRetry time.Duration
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.CoreappID == "" {
		errs = append(errs, errors.New("CoreappID: must not be empty"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout: must be ≥ 0, got %v", c.Timeout))
	}
	if c.AdoptRetry < 0 {
		errs = append(errs, fmt.Errorf("AdoptRetry: must be ≥ 0, got %v", c.AdoptRetry))
	}
	return errors.Join(errs...)
}

// Poster is one coreapp's webhook driver. Its methods are safe for
// concurrent use.
type Poster struct {
	cfg Config
	lg  zerolog.Logger
	m   *metrics

	// ctx lives until Close; posts, deletes and adoptions derive from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// ready is closed by the first Configure: statuses wait for it, since
	// the outbox cannot decide without settings.
	ready chan struct{}

	mu         sync.Mutex
	ob         *callbacks.Outbox
	configured bool
	persist    bool // callback_persist as first configured
	wake       clock.Timer
}

// New builds a poster; it posts nothing until Configure.
func New(cfg Config) (*Poster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook poster config: %w", err)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.AdoptRetry == 0 {
		cfg.AdoptRetry = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Poster{
		cfg: cfg, m: newMetrics(cfg.Registry),
		lg:  cfg.Logger.With().Str("component", "webhooks").Logger(),
		ctx: ctx, cancel: cancel, ready: make(chan struct{}), ob: callbacks.New(),
	}, nil
}

// Configure applies the callback settings, at start and on every change.
// The restart-required ones (callback_persist,
// webhooks.max_concurrent_requests) keep the values of the first call.
func (p *Poster) Configure(s Settings) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.stepLocked(callbacks.Configure{Config: s.outbox(p.cfg.Timeout)}); err != nil {
		return fmt.Errorf("webhook settings: %w", err)
	}
	if !p.configured {
		// callback_persist is restart-required: set here only.
		p.configured, p.persist = true, s.Persist
		close(p.ready)
		p.lg.Info().Bool("callback_persist", s.Persist).Int("max_concurrent_requests", s.MaxConcurrent).
			Msg("webhook poster configured")
	}
	p.lg.Debug().Str("url", s.URL).Bool("sent", s.Sent).Bool("delivered", s.Delivered).Bool("read", s.Read).
		Dur("backoff", s.Backoff).Dur("max_backoff", s.MaxBackoff).Msg("webhook settings")
	return nil
}

// Persist reports callback_persist as the poster runs with it (false until
// configured).
func (p *Poster) Persist() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.persist
}

// Pending is how many callbacks wait or are in flight.
func (p *Poster) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ob.Pending()
}

// TakeStatus takes one status update of a message on shard (of shards)
// and returns once the callback is queued, or kept durably and queued with
// callback_persist; only then may the gateway session acknowledge it. A
// status whose callback is already pending here (the gateway offered it
// again) is taken at once. It waits for the first Configure, and returns
// ctx's error if that does not come in time.
func (p *Poster) TakeStatus(ctx context.Context, sh, shards int32, u *mcsimv1.StatusUpdate) error {
	st, err := statusOf(u)
	if err != nil {
		return err
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		return fmt.Errorf("status %s: webhook settings not known yet: %w", u.GetId(), ctx.Err())
	case <-p.ctx.Done():
		return ErrClosed
	}
	p.mu.Lock()
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.ob.Has(st.ID) {
		p.mu.Unlock()
		return nil
	}
	// Nothing is kept for a callback the outbox would drop.
	persist := p.persist && p.ob.DropReason(st.Kind) == ""
	p.mu.Unlock()

	if persist {
		if p.cfg.Coord == nil {
			return fmt.Errorf("status %s: callback_persist is true and the poster has no coordination client", st.ID)
		}
		cb := &mcsimv1.PendingCallback{Id: st.ID, MessageId: st.MessageID, RecipientId: st.Recipient,
			Status: string(st.Kind), TimestampUnix: st.At.Unix(), CoreappId: p.cfg.CoreappID}
		if _, err := p.cfg.Coord.PutCallbacks(ctx, &mcsimv1.PutCallbacksRequest{Callbacks: []*mcsimv1.PendingCallback{cb}}); err != nil {
			return fmt.Errorf("status %s: keeping its callback (callback_persist): %w", st.ID, err)
		}
		p.m.persisted.Inc()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ob.Has(st.ID) {
		return nil // the same status, taken meanwhile from another session
	}
	if _, err := p.stepLocked(callbacks.Queue{Status: st}); err != nil {
		return err
	}
	p.lg.Debug().Int32("shard", sh).Int32("shards", shards).Str("callback", st.ID).Bool("persisted", persist).Msg("callback queued")
	return nil
}

// Adopt queues the callbacks the last owner of shard (of shards) kept and
// did not deliver, when the poster runs with callback_persist; call it
// when the coreapp is assigned the shard. It asks the store in the
// background, again every AdoptRetry until it answers or Close.
func (p *Poster) Adopt(sh, shards int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return // closed: Close may be waiting on wg already
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		select {
		case <-p.ready:
		case <-p.ctx.Done():
			return
		}
		if !p.Persist() || p.cfg.Coord == nil {
			return
		}
		lg := p.lg.With().Int32("shard", sh).Int32("shards", shards).Logger()
		for {
			resp, err := p.cfg.Coord.ListCallbacks(p.ctx, &mcsimv1.ListCallbacksRequest{Shard: sh, Shards: shards})
			if err == nil {
				p.adopt(lg, resp.GetCallbacks())
				return
			}
			lg.Warn().Err(err).Dur("retry_in", p.cfg.AdoptRetry).Msg("listing the shard's kept callbacks failed")
			t := p.cfg.Clock.NewTimer(p.cfg.AdoptRetry)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
	}()
}

func (p *Poster) adopt(lg zerolog.Logger, kept []*mcsimv1.PendingCallback) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, cb := range kept {
		st := callbacks.Status{ID: cb.GetId(), MessageID: cb.GetMessageId(), Recipient: cb.GetRecipientId(),
			Kind: callbacks.Kind(cb.GetStatus()), At: time.Unix(cb.GetTimestampUnix(), 0)}
		if st.ID == "" || p.ob.Has(st.ID) {
			continue
		}
		if _, err := p.stepLocked(callbacks.Queue{Status: st}); err != nil {
			lg.Error().Err(err).Str("callback", st.ID).Msg("kept callback not queued")
			continue
		}
		n++
	}
	p.m.adopted.Add(float64(n))
	lg.Info().Int("kept", len(kept)).Int("adopted", n).Msg("adopted the shard's kept callbacks")
}

// Close stops posting: posts in flight are cancelled and Close waits for
// them. Callbacks still pending are lost unless they were kept
// (callback_persist), as in a crash.
func (p *Poster) Close() {
	p.mu.Lock()
	p.cancel()
	if p.wake != nil {
		p.wake.Stop()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// stepLocked steps the outbox at the clock's now, carries out its actions
// and sets its timer. Caller holds mu.
func (p *Poster) stepLocked(ev callbacks.Event) ([]callbacks.Action, error) {
	if p.ctx.Err() != nil {
		return nil, ErrClosed
	}
	now := p.cfg.Clock.Now()
	acts, err := p.ob.Step(now, ev)
	if err != nil {
		return nil, err
	}
	if _, ok := ev.(callbacks.Queue); ok && !dropped(acts) {
		p.m.queued.Inc()
	}
	var forget []string
	for _, a := range acts {
		switch a := a.(type) {
		case callbacks.Post:
			p.m.posts.Inc()
			p.wg.Add(1)
			go p.post(a)
		case callbacks.Dropped:
			p.m.dropped.Inc()
			p.lg.Debug().Str("callback", a.ID).Str("reason", a.Reason).Msg("callback dropped")
			forget = append(forget, a.ID)
		case callbacks.Done:
			p.m.delivered.Inc()
			p.lg.Debug().Str("callback", a.ID).Int("attempts", a.Attempts).Msg("callback delivered")
			forget = append(forget, a.ID)
		case callbacks.Retry:
			p.m.failed.Inc()
			// Debug, like every per-callback line: a receiver that is down
			// fails every pending callback, hundreds a second under load.
			p.lg.Debug().Str("callback", a.ID).Int("attempt", a.Attempt).Bool("timed_out", a.TimedOut).
				Dur("next_in", a.Delay).Msg("callback attempt failed")
		}
	}
	if p.persist && len(forget) > 0 {
		p.wg.Add(1)
		go p.forget(forget)
	}
	p.m.pending.Set(float64(p.ob.Pending()))
	p.m.inFlight.Set(float64(p.ob.InFlight()))
	p.armLocked(now)
	return acts, nil
}

func dropped(acts []callbacks.Action) bool {
	for _, a := range acts {
		if _, ok := a.(callbacks.Dropped); ok {
			return true
		}
	}
	return false
}

// armLocked sets the one timer at the outbox's NextWake. Caller holds mu.
func (p *Poster) armLocked(now time.Time) {
	w := p.ob.NextWake()
	if w.IsZero() {
		if p.wake != nil {
			p.wake.Stop()
		}
		return
	}
	if p.wake == nil {
		p.wake = p.cfg.Clock.AfterFunc(w.Sub(now), p.tick)
		return
	}
	p.wake.Reset(w.Sub(now))
}

func (p *Poster) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.stepLocked(callbacks.Tick{})
}

// payload is the On-Premises statuses callback (TRAFFIC.md), one status.
type payload struct {
	Statuses []payloadStatus `json:"statuses"`
}

type payloadStatus struct {
	ID          string `json:"id"`
	RecipientID string `json:"recipient_id"`
	Status      string `json:"status"`
	Timestamp   string `json:"timestamp"`
}

// post carries out one Post and steps its answer: 200 delivers it; any
// other answer, or none (a network error, the timeout), fails it.
func (p *Poster) post(a callbacks.Post) {
	defer p.wg.Done()
	ctx, cancel := clock.WithTimeout(p.ctx, p.cfg.Clock, a.Timeout)
	defer cancel()
	body, _ := json.Marshal(payload{Statuses: []payloadStatus{{ID: a.Status.MessageID, RecipientID: a.Status.Recipient,
		Status: string(a.Status.Kind), Timestamp: strconv.FormatInt(a.Status.At.Unix(), 10)}}})
	lg := p.lg.With().Str("callback", a.Status.ID).Int("attempt", a.Attempt).Logger()
	code := 0
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(HeaderAttempt, strconv.Itoa(a.Attempt))
		req.Header.Set(HeaderCoreapp, p.cfg.CoreappID)
		var resp *http.Response
		if resp, err = p.cfg.Client.Do(req); err == nil {
			code = resp.StatusCode
			// Drained, so the connection is reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
	}
	if p.ctx.Err() != nil {
		return // closing: nobody steps the outbox any more
	}
	if err != nil {
		lg.Debug().Err(err).Msg("callback post got no answer")
	} else {
		lg.Debug().Int("code", code).Msg("callback post answered")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.stepLocked(callbacks.Answered{ID: a.Status.ID, Attempt: a.Attempt, OK: code == http.StatusOK})
}

// forget deletes delivered or dropped callbacks from the store. A failed
// delete leaves the callback kept: the shard's next owner posts it once
// more, which at-least-once delivery allows.
func (p *Poster) forget(ids []string) {
	defer p.wg.Done()
	if p.cfg.Coord == nil {
		return
	}
	if _, err := p.cfg.Coord.DeleteCallbacks(p.ctx, &mcsimv1.DeleteCallbacksRequest{Ids: ids}); err != nil && p.ctx.Err() == nil {
		p.lg.Warn().Err(err).Strs("callbacks", ids).Msg("delivered callbacks not deleted from the store")
	}
}

// statusOf checks a status update and makes it the outbox's Status.
func statusOf(u *mcsimv1.StatusUpdate) (callbacks.Status, error) {
	var errs []error
	if u.GetId() == "" {
		errs = append(errs, errors.New("status update: id: must not be empty"))
	}
	if u.GetMessageId() == "" {
		errs = append(errs, errors.New("status update: message_id: must not be empty"))
	}
	if u.GetRecipientId() == "" {
		errs = append(errs, errors.New("status update: recipient_id: must not be empty"))
	}
	switch k := callbacks.Kind(u.GetStatus()); k {
	case callbacks.Sent, callbacks.Delivered, callbacks.Read, callbacks.Failed:
	default:
		errs = append(errs, fmt.Errorf("status update: status: must be sent, delivered, read or failed, got %q", u.GetStatus()))
	}
	if err := errors.Join(errs...); err != nil {
		return callbacks.Status{}, err
	}
	return callbacks.Status{ID: u.GetId(), MessageID: u.GetMessageId(), Recipient: u.GetRecipientId(),
		Kind: callbacks.Kind(u.GetStatus()), At: time.Unix(u.GetTimestampUnix(), 0)}, nil
}
