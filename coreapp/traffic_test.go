package coreapp

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/mcsim/mcsim/gateway"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Recipients: 15550000100 is in shard 0 of 4, 15550000101 in shard 3 of 4.
const (
	rcpt0 = "15550000100"
	rcpt3 = "15550000101"
)

// recorder is a StatusHandler that records what it took and fails while
// fail says so for a status id.
type recorder struct {
	mu    sync.Mutex
	took  []string // "shard/shards status-id", in order
	calls map[string]int
	fail  func(id string, call int) bool
}

func (r *recorder) TakeStatuses(_ context.Context, shard, shards int32, us []*mcsimv1.StatusUpdate) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	errs := make([]error, len(us))
	for i, u := range us {
		r.calls[u.GetId()]++
		if r.fail != nil && r.fail(u.GetId(), r.calls[u.GetId()]) {
			errs[i] = errors.New("webhook outbox full")
			continue
		}
		r.took = append(r.took, fmt.Sprintf("%d/%d %s", shard, shards, u.GetId()))
	}
	return errs
}

// gated is a StatusHandler that records each batch it is handed and
// returns only when the test lets it (or the session ends).
type gated struct {
	mu      sync.Mutex
	batches [][]string
	release chan struct{}
}

func (g *gated) TakeStatuses(ctx context.Context, _, _ int32, us []*mcsimv1.StatusUpdate) []error {
	var ids []string
	for _, u := range us {
		ids = append(ids, u.GetId())
	}
	g.mu.Lock()
	g.batches = append(g.batches, ids)
	g.mu.Unlock()
	select {
	case <-g.release:
		return make([]error, len(us))
	case <-ctx.Done():
		errs := make([]error, len(us))
		for i := range errs {
			errs[i] = ctx.Err()
		}
		return errs
	}
}

func (g *gated) seen() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.batches)
}

// countingGateway counts the status_acks the coreapp sends.
type countingGateway struct {
	mcsimv1.GatewayServiceClient
	acks *atomic.Int32
}

func (g countingGateway) Session(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse], error) {
	st, err := g.GatewayServiceClient.Session(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return countingStream{st, g.acks}, nil
}

type countingStream struct {
	grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse]
	acks *atomic.Int32
}

func (s countingStream) Send(req *mcsimv1.SessionRequest) error {
	if len(req.GetStatusAck()) > 0 {
		s.acks.Add(1)
	}
	return s.BidiStreamingClient.Send(req)
}

// TestQueuedStatusesAreOneBatch: the statuses offered while the handler
// is busy are handed to it as one batch when it returns, and acknowledged
// together, in one status_ack, only once it returned with the batch.
func TestQueuedStatusesAreOneBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := &gated{release: make(chan struct{})}
		acks := &atomic.Int32{}
		_, a, _ := h.coreapp("a", func(cfg *Config) {
			cfg.Statuses = g
			cfg.GatewayClient = countingGateway{h.gc, acks}
		})
		if _, err := a.Assign(t.Context(), assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := a.Send(t.Context(), send("m1", rcpt0)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // m1/sent, due at 50ms, is with the handler
		synctest.Wait()
		for _, m := range []string{"m2", "m3", "m4"} {
			if _, err := a.Send(t.Context(), send(m, rcpt0)); err != nil {
				t.Fatal(err)
			}
		}
		// Their sent statuses are offered at 150ms and wait on the session;
		// m1/delivered is not due before 300ms.
		time.Sleep(start.Add(200 * time.Millisecond).Sub(time.Now()))
		synctest.Wait()
		msgs := []string{kMessage + " a m1", kMessage + " a m2", kMessage + " a m3", kMessage + " a m4"}
		wantTraffic(t, h.gw, msgs...)

		g.release <- struct{}{}
		synctest.Wait()
		if got, want := g.seen(), [][]string{{"m1/sent"}, {"m2/sent", "m3/sent", "m4/sent"}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("batches %q, want %q", got, want)
		}
		// The second batch is with the handler: not acknowledged yet.
		wantTraffic(t, h.gw, append(msgs, "STATUS a m1/sent")...)

		g.release <- struct{}{}
		synctest.Wait()
		wantTraffic(t, h.gw, append(msgs, "STATUS a m1/sent", "STATUS a m2/sent", "STATUS a m3/sent", "STATUS a m4/sent")...)
		if got := acks.Load(); got != 2 {
			t.Fatalf("%d status_acks for two batches, want 2", got)
		}
	})
}

func (r *recorder) taken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.took)
}

func send(id, to string) *mcsimv1.SendRequest {
	return &mcsimv1.SendRequest{MessageId: id, To: to, Body: "hi", Shards: 4}
}

// traffic renders the gateway's MESSAGE, MESSAGE_REJECTED and STATUS
// events as "KIND coreapp message[/status]".
func traffic(gw *gateway.Server) []string {
	var out []string
	for _, e := range gw.Log(0) {
		switch e.GetKind() {
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE_REJECTED:
			out = append(out, fmt.Sprintf("%s %s %s", e.GetKind(), e.GetCoreappId(), e.GetMessageId()))
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_STATUS:
			out = append(out, fmt.Sprintf("STATUS %s %s/%s", e.GetCoreappId(), e.GetMessageId(), e.GetStatus()))
		}
	}
	return out
}

func wantTraffic(t *testing.T, gw *gateway.Server, want ...string) {
	t.Helper()
	if got := traffic(gw); !slices.Equal(got, want) {
		t.Fatalf("gateway traffic:\n got %q\nwant %q", got, want)
	}
}

const kMessage = "GATEWAY_EVENT_KIND_MESSAGE"

// TestSendAndStatusesAcrossAFailover: a Send on the owner is accepted and
// logged once; after the shard moves, the old owner refuses before the
// gateway sees anything, and the statuses still due reach the new owner.
func TestSendAndStatusesAcrossAFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		ra, rb := &recorder{}, &recorder{}
		_, a, _ := h.coreapp("a", func(cfg *Config) { cfg.Statuses = ra })
		_, b, _ := h.coreapp("b", func(cfg *Config) { cfg.Statuses = rb })
		if _, err := a.Assign(t.Context(), assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()

		resp, err := a.Send(t.Context(), send("m1", rcpt0))
		if err != nil || resp.GetShard() != 0 || resp.GetEpoch() != 1 {
			t.Fatalf("Send = %v, %v; want shard 0 epoch 1", resp, err)
		}
		wantTraffic(t, h.gw, kMessage+" a m1")
		// Not a's shard: refused at the coreapp, the gateway sees nothing.
		_, err = a.Send(t.Context(), send("m2", rcpt3))
		wantCode(t, err, codes.FailedPrecondition, `not primary coreapp: recipient "15550000101" is in shard 3 of 4`)

		time.Sleep(100 * time.Millisecond) // sent is due at 50ms
		synctest.Wait()
		if got := ra.taken(); !slices.Equal(got, []string{"0/4 m1/sent"}) {
			t.Fatalf("a took %v", got)
		}

		// Failover: b takes shard 0 with a newer epoch.
		if _, err := b.Assign(t.Context(), assign(1, 0, 2)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		_, err = a.Send(t.Context(), send("m3", rcpt0))
		wantCode(t, err, codes.FailedPrecondition, `not primary coreapp: recipient "15550000100" is in shard 0 of 4, which coreapp "a" does not hold`)

		time.Sleep(start.Add(2 * time.Second).Sub(time.Now()))
		synctest.Wait()
		if got := rb.taken(); !slices.Equal(got, []string{"0/4 m1/delivered", "0/4 m1/read"}) {
			t.Fatalf("b took %v", got)
		}
		if got := ra.taken(); len(got) != 1 {
			t.Fatalf("a took %v after losing the shard", got)
		}
		if _, err := b.Send(t.Context(), send("m3", rcpt0)); err != nil {
			t.Fatal(err)
		}
		wantTraffic(t, h.gw, kMessage+" a m1", "STATUS a m1/sent", "STATUS b m1/delivered", "STATUS b m1/read", kMessage+" b m3")
	})
}

// TestStatusAckedOnlyAfterTheHandler: a status the handler fails to take
// is not acknowledged (no STATUS event) and the gateway offers it again;
// it is logged once the handler takes it.
func TestStatusAckedOnlyAfterTheHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		r := &recorder{fail: func(id string, call int) bool { return id == "m1/sent" && call == 1 }}
		reg := prometheus.NewRegistry()
		_, a, _ := h.coreapp("a", func(cfg *Config) { cfg.Statuses = r; cfg.Registry = reg })
		if _, err := a.Assign(t.Context(), assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := a.Send(t.Context(), send("m1", rcpt0)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // sent (failed) and delivered offered
		synctest.Wait()
		wantTraffic(t, h.gw, kMessage+" a m1", "STATUS a m1/delivered")

		// The gateway offers sent again a second after it first did (at
		// 1.05s), after read (due at 1s).
		time.Sleep(start.Add(1100 * time.Millisecond).Sub(time.Now()))
		synctest.Wait()
		wantTraffic(t, h.gw, kMessage+" a m1", "STATUS a m1/delivered", "STATUS a m1/read", "STATUS a m1/sent")
		if got := r.taken(); !slices.Equal(got, []string{"0/4 m1/delivered", "0/4 m1/read", "0/4 m1/sent"}) {
			t.Fatalf("took %v", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := gauge(t, reg); got["mcsim_coreapp_statuses_received_total"] != 4 || got["mcsim_coreapp_statuses_failed_total"] != 1 ||
			got["mcsim_coreapp_messages_sent_total"] != 1 {
			t.Errorf("metrics %v", got)
		}
	})
}

// TestStatusesWithoutAHandler are taken and dropped, and counted.
func TestStatusesWithoutAHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		reg := prometheus.NewRegistry()
		_, a, _ := h.coreapp("a", func(cfg *Config) { cfg.Registry = reg })
		if _, err := a.Assign(t.Context(), assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Send(t.Context(), send("m1", rcpt0)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		wantTraffic(t, h.gw, kMessage+" a m1", "STATUS a m1/sent", "STATUS a m1/delivered", "STATUS a m1/read")
		if got := gauge(t, reg); got["mcsim_coreapp_statuses_dropped_total"] != 3 {
			t.Errorf("metrics %v", got)
		}
	})
}

// TestSendRefusedByTheGateway: a message the gateway refuses is answered
// FAILED_PRECONDITION (not sent), and its refusal is logged at the
// gateway. The gateway here sees another recipient than the books routed
// (a stream that rewrites it), as a session superseded between the
// books' check and the gateway would.
func TestSendRefusedByTheGateway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, a, _ := h.coreapp("a", func(cfg *Config) { cfg.GatewayClient = rewritingGateway{h.gc} })
		if _, err := a.Assign(t.Context(), assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		_, err := a.Send(t.Context(), send("m1", rcpt0))
		wantCode(t, err, codes.FailedPrecondition, "not primary coreapp: the gateway refused the message: recipient \"15550000101\" is in key bucket 7")
		wantTraffic(t, h.gw, "GATEWAY_EVENT_KIND_MESSAGE_REJECTED a m1")
	})
}

// TestConcurrentSendsOnOneSession: many Sends at once on one session each
// get their own answer, and the gateway logs each once.
func TestConcurrentSendsOnOneSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, a, _ := h.coreapp("a", nil)
		if _, err := a.Assign(t.Context(), assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := range 50 {
			wg.Go(func() {
				if _, err := a.Send(t.Context(), send(fmt.Sprintf("m%d", i), rcpt0)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		accepted := map[string]int{}
		for _, e := range h.gw.Log(0) {
			if e.GetKind() == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE {
				accepted[e.GetMessageId()]++
			}
		}
		dups := 0
		for _, n := range accepted {
			if n > 1 {
				dups++
			}
		}
		if len(accepted) != 50 || dups != 0 {
			t.Fatalf("accepted %d ids, %d of them more than once", len(accepted), dups)
		}
	})
}

func gauge(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		m := f.GetMetric()[0]
		got[f.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return got
}

// TestStoppingCoreappLeavesStatusesToItsSuccessor: while a stopping
// coreapp waits for its successor (rule 5), the statuses offered on its
// sessions are not taken (with callbacks in memory they would die with the
// process); the successor takes them once its session replaces the old.
func TestStoppingCoreappLeavesStatusesToItsSuccessor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		ra, rb := &recorder{}, &recorder{}
		reg := prometheus.NewRegistry()
		var b mcsimv1.CoreAppServiceClient
		an, a, _ := h.coreapp("a", func(cfg *Config) {
			cfg.Statuses, cfg.Registry = ra, reg
			// The handover: the successor is assigned 1.5 s after the goodbye.
			cfg.OnLeave = func(ctx context.Context, _ []*mcsimv1.ServedShard) {
				time.Sleep(1500 * time.Millisecond)
				if _, err := b.Assign(ctx, assign(1, 0, 2)); err != nil {
					t.Error(err)
				}
			}
		})
		_, b, _ = h.coreapp("b", func(cfg *Config) { cfg.Statuses = rb })
		if _, err := a.Assign(t.Context(), assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Send(t.Context(), send("m1", rcpt0)); err != nil {
			t.Fatal(err)
		}
		if err := an.Stop(t.Context()); err != nil { // before the first status is due (50 ms)
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := ra.taken(); len(got) != 0 {
			t.Errorf("the stopping coreapp took %v", got)
		}
		if got := rb.taken(); len(got) != 3 {
			t.Errorf("the successor took %v, want m1's three statuses", got)
		}
		if got := gauge(t, reg); got["mcsim_coreapp_statuses_declined_total"] < 3 {
			t.Errorf("metrics %v: want the statuses offered during the handover declined", got)
		}
		wantTraffic(t, h.gw, kMessage+" a m1", "STATUS b m1/sent", "STATUS b m1/delivered", "STATUS b m1/read")
	})
}
