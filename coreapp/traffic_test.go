package coreapp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

func (r *recorder) TakeStatus(_ context.Context, shard, shards int32, u *mcsimv1.StatusUpdate) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	r.calls[u.GetId()]++
	if r.fail != nil && r.fail(u.GetId(), r.calls[u.GetId()]) {
		return errors.New("webhook outbox full")
	}
	r.took = append(r.took, fmt.Sprintf("%d/%d %s", shard, shards, u.GetId()))
	return nil
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
		tr := gateway.TrafficOf(h.gw.Log(0))
		if len(tr.Accepted) != 50 || len(gateway.DuplicateSends(h.gw.Log(0))) != 0 {
			t.Fatalf("accepted %d ids, duplicates %v", len(tr.Accepted), gateway.DuplicateSends(h.gw.Log(0)))
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
