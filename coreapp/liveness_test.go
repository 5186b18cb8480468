package coreapp

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/mcsim/mcsim/gateway"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// cutGateway loses every message between the node and the gateway while
// cut is set, both ways, as a partition would (the stream stays open).
type cutGateway struct {
	mcsimv1.GatewayServiceClient
	cut *atomic.Bool
}

func (g cutGateway) Session(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse], error) {
	st, err := g.GatewayServiceClient.Session(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return cutStream{st, g.cut}, nil
}

type cutStream struct {
	grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse]
	cut *atomic.Bool
}

func (s cutStream) Recv() (*mcsimv1.SessionResponse, error) {
	for {
		m, err := s.BidiStreamingClient.Recv()
		if err != nil || !s.cut.Load() {
			return m, err
		}
	}
}

func (s cutStream) Send(m *mcsimv1.SessionRequest) error {
	if s.cut.Load() {
		return nil
	}
	return s.BidiStreamingClient.Send(m)
}

func shardsServed(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "mcsim_coreapp_shards_served" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no mcsim_coreapp_shards_served")
	return 0
}

// A coreapp cut off from the gateway stops claiming service once the
// gateway's pings stop for SilentAfter (rule 7): gateway_status connecting,
// the shard's status connecting, shards_served 0. It keeps the assignment
// (heartbeats still list the shard: the master decides failover) and
// serves again with the first ping after the cut heals. Meanwhile the
// gateway, which hears no pong, logs the session SILENT and then HEARD.
func TestCutFromGatewayIsNotServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		reg := prometheus.NewRegistry()
		var cut atomic.Bool
		_, c, _ := h.coreapp("a", func(cfg *Config) {
			cfg.Registry = reg
			cfg.GatewayClient = cutGateway{h.gc, &cut}
		})
		if _, err := c.Assign(t.Context(), assign(1, 2, 1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		wantServed(t, statusOf(t, c), stConnected, "2/1/CONNECTED")
		if v := shardsServed(t, reg); v != 1 {
			t.Fatalf("shards_served = %v before the cut, want 1", v)
		}

		synctest.Wait()
		cut.Store(true)
		cutAt := time.Now()
		time.Sleep(gateway.SilentAfter - time.Millisecond)
		wantServed(t, statusOf(t, c), stConnected, "2/1/CONNECTED") // not yet
		time.Sleep(time.Millisecond)
		synctest.Wait()
		wantServed(t, statusOf(t, c), stConnecting, "2/1/CONNECTING")
		if v := shardsServed(t, reg); v != 0 {
			t.Errorf("shards_served = %v while cut off, want 0", v)
		}
		hb, err := c.Heartbeat(t.Context(), &mcsimv1.HeartbeatRequest{LeaseEpoch: 1})
		if err != nil || len(hb.GetShards()) != 1 || hb.GetShards()[0].GetShard() != 2 {
			t.Errorf("heartbeat while cut off = %v %v: the assignment must stay", hb, err)
		}

		time.Sleep(10 * time.Second)
		cut.Store(false)
		time.Sleep(gateway.PingInterval)
		synctest.Wait()
		wantServed(t, statusOf(t, c), stConnected, "2/1/CONNECTED")
		if v := shardsServed(t, reg); v != 1 {
			t.Errorf("shards_served = %v after the cut healed, want 1", v)
		}

		var kinds []string
		for _, e := range h.gw.Log(0) {
			kinds = append(kinds, e.GetKind().String())
		}
		want := []string{"GATEWAY_EVENT_KIND_CONNECT", "GATEWAY_EVENT_KIND_SILENT", "GATEWAY_EVENT_KIND_HEARD"}
		if len(kinds) != 3 || kinds[0] != want[0] || kinds[1] != want[1] || kinds[2] != want[2] {
			t.Fatalf("gateway log = %v, want %v", kinds, want)
		}
		silent := h.gw.Log(2)[0]
		if last := time.Unix(0, silent.GetLastHeardUnixNs()); last.After(cutAt) || cutAt.Sub(last) > gateway.PingInterval {
			t.Errorf("gateway last heard a at cut%+v, want within one ping before the cut", last.Sub(cutAt))
		}
	})
}

// A coreapp stopping gracefully keeps its sessions while it waits for
// successors (rule 5), and keeps judging the gateway's silence meanwhile:
// cut off during that wait, it stops claiming service like any coreapp.
func TestSilenceIsJudgedDuringAGracefulStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		var cut atomic.Bool
		leaving := make(chan struct{})
		node, c, _ := h.coreapp("a", func(cfg *Config) {
			cfg.GatewayClient = cutGateway{h.gc, &cut}
			cfg.OnLeave = func(context.Context, []*mcsimv1.ServedShard) {
				close(leaving)
				time.Sleep(2 * time.Second) // successors that never come
			}
		})
		if _, err := c.Assign(t.Context(), assign(1, 2, 1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		wantServed(t, statusOf(t, c), stConnected, "2/1/CONNECTED")
		stopped := make(chan error, 1)
		go func() { stopped <- node.Stop(context.Background()) }()
		<-leaving
		cut.Store(true)
		time.Sleep(gateway.SilentAfter + time.Millisecond)
		synctest.Wait()
		wantServed(t, statusOf(t, c), stConnecting, "2/1/CONNECTING")
		if err := <-stopped; err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}
