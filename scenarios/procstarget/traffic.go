package procstarget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/settings/client"
	"github.com/mcsim/mcsim/settings/service"
	"github.com/mcsim/mcsim/traffic/load"
	"github.com/mcsim/mcsim/webhook"
)

// The procs target runs a scenario's workload in this process: the load
// engine of `mcsim load` against the cluster's front door, and a
// webhook.Sink on a loopback port that webhooks.url points to. Both stamp
// their records with this machine's clock, as the gateway and the store
// do, so the runner compares their times directly.

var _ scenarios.TrafficTarget = (*Target)(nil)

// frontDoorTimeout bounds one POST /v1/messages: above the front door's
// own 5 s deadline on the Send to the owner, so the client sees the front
// door's answer rather than giving up first.
const frontDoorTimeout = 10 * time.Second

// traffic is a running workload.
type traffic struct {
	sink    *webhook.Sink
	srv     *http.Server
	stop    chan struct{}
	stopped bool
	done    chan struct{} // closed when the load engine returns
	cancel  context.CancelFunc
	start   time.Time

	mu   sync.Mutex
	seen scenarios.TrafficSeen
	// read is how many sink records are folded into seen.Callbacks.
	read int
	err  error
}

// StartWorkload implements scenarios.TrafficTarget.
func (t *Target) StartWorkload(ctx context.Context, w scenarios.Workload, seed uint64) error {
	if t.c == nil {
		return errors.New("the cluster is not started")
	}
	sink := webhook.New(webhook.Config{FailPercent: w.Webhook.FailPercent, Latency: w.Webhook.Latency, Seed: seed}, nil)
	sink.SetDown(w.Webhook.Down)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("the webhook receiver: %w", err)
	}
	tr := &traffic{sink: sink, srv: &http.Server{Handler: sink, ReadHeaderTimeout: 10 * time.Second},
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() { _ = tr.srv.Serve(ln) }()
	// The query string shows the shared secret passes through as given.
	url := fmt.Sprintf("http://%s/callbacks?auth=mcsim-scenario", ln.Addr())
	body, _ := json.Marshal(map[string]any{"webhooks": map[string]any{"url": url}})
	if _, err := t.c.API().Patch(ctx, body); err != nil {
		_ = tr.srv.Close()
		return fmt.Errorf("pointing webhooks.url at the receiver: %w", err)
	}
	api := client.New(t.c.Addrs().HTTP, service.DefaultAdminPassword, &http.Client{Timeout: frontDoorTimeout})
	lctx, cancel := context.WithCancel(context.Background())
	tr.cancel, tr.start = cancel, time.Now()
	cfg := load.Config{Client: api, Rate: w.Rate, Recipients: w.Recipients, Seed: seed, Stop: tr.stop, OnAnswer: tr.answer}
	go func() {
		defer close(tr.done)
		_, err := load.Run(lctx, cfg, tr.second)
		if err != nil && lctx.Err() == nil {
			tr.mu.Lock()
			tr.err = err
			tr.mu.Unlock()
		}
	}()
	t.mu.Lock()
	t.traffic = tr
	t.mu.Unlock()
	return nil
}

func (tr *traffic) answer(a load.Answer) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if a.Code == "" {
		tr.seen.Acked = append(tr.seen.Acked, scenarios.AckedMessage{ID: a.ID, Recipient: a.To, At: a.At})
	} else {
		tr.seen.Refused = append(tr.seen.Refused, scenarios.ClientError{At: a.At, Code: a.Code})
	}
}

func (tr *traffic) second(s load.Second) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.seen.Seconds = append(tr.seen.Seconds, scenarios.TrafficSecond{End: tr.start.Add(time.Duration(s.T) * time.Second),
		Sent: s.Sent, OK: s.OK, Errors: s.Errors, P50: ms(s.P50), P99: ms(s.P99)})
}

// StopLoad implements scenarios.TrafficTarget: no new messages; those in
// progress run to their final answer.
func (t *Target) StopLoad(context.Context) error {
	t.mu.Lock()
	tr := t.traffic
	t.mu.Unlock()
	if tr == nil {
		return nil
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !tr.stopped {
		close(tr.stop)
		tr.stopped = true
	}
	return tr.err
}

// SetWebhook implements scenarios.TrafficTarget.
func (t *Target) SetWebhook(_ context.Context, w scenarios.Webhook) error {
	t.mu.Lock()
	tr := t.traffic
	t.mu.Unlock()
	if tr == nil {
		return errors.New("no workload runs")
	}
	tr.sink.SetDown(w.Down)
	return errors.Join(tr.sink.SetFail(w.FailPercent), tr.sink.SetLatency(w.Latency))
}

// Traffic implements scenarios.TrafficTarget. The clients' records and the
// receiver's grow as they come; the gateway's are the witness's.
func (t *Target) Traffic() *scenarios.TrafficSeen {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.traffic
	if tr == nil {
		return &scenarios.TrafficSeen{}
	}
	t.refreshLocked()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, r := range tr.sink.RecordsFrom(tr.read) {
		tr.read++
		tr.seen.Callbacks = append(tr.seen.Callbacks, scenarios.CallbackSeen{At: r.At, Answered: r.Answered,
			ID: r.ID + "/" + r.Status, Status: r.Status, Attempt: r.CoreappAttempt, Coreapp: r.Coreapp, Code: r.Code})
	}
	out := tr.seen // a copy of the slice headers: later appends do not reach the caller's
	out.Accepted, out.Taken = t.witness.Accepted(), t.witness.Taken()
	return &out
}

// closeTraffic ends the workload: the load engine is cancelled and the
// receiver closed.
func (t *Target) closeTraffic() {
	t.mu.Lock()
	tr := t.traffic
	t.mu.Unlock()
	if tr == nil {
		return
	}
	tr.cancel()
	<-tr.done
	_ = tr.srv.Close()
}
