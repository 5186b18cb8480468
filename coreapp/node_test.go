package coreapp

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/gateway"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

const (
	stUninit       = mcsimv1.GatewayStatus_GATEWAY_STATUS_UNINITIALIZED
	stConnecting   = mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING
	stConnected    = mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED
	stDisconnected = mcsimv1.GatewayStatus_GATEWAY_STATUS_DISCONNECTED
)

func assign(lease uint64, shard int32, epoch uint64) *mcsimv1.AssignRequest {
	return &mcsimv1.AssignRequest{MasterId: "m", LeaseEpoch: lease, Shard: shard, Epoch: epoch, Shards: 4}
}

func statusOf(t *testing.T, c mcsimv1.CoreAppServiceClient) *mcsimv1.StatusResponse {
	t.Helper()
	st, err := c.Status(t.Context(), &mcsimv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// served renders shards as "shard/epoch/STATUS" for compact comparisons.
func served(shards []*mcsimv1.ServedShard) []string {
	out := []string{}
	for _, s := range shards {
		out = append(out, fmt.Sprintf("%d/%d/%s", s.GetShard(), s.GetEpoch(),
			strings.TrimPrefix(s.GetGatewayStatus().String(), "GATEWAY_STATUS_")))
	}
	return out
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(err.Error(), contains) {
		t.Fatalf("err = %v, want %v containing %q", err, code, contains)
	}
}

func wantServed(t *testing.T, st *mcsimv1.StatusResponse, overall mcsimv1.GatewayStatus, shards ...string) {
	t.Helper()
	if shards == nil {
		shards = []string{}
	}
	if got := served(st.GetShards()); !reflect.DeepEqual(got, shards) || st.GetGatewayStatus() != overall {
		t.Fatalf("status: shards %v gateway %v, want %v %v", got, st.GetGatewayStatus(), shards, overall)
	}
}

func TestAssignAnswersAfterAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		gate := make(chan struct{})
		_, c, _ := h.coreapp("a", func(cfg *Config) {
			cfg.GatewayClient = gatedGateway{GatewayServiceClient: h.gc, open: gate}
			cfg.PID = 4242
		})
		st := statusOf(t, c)
		wantServed(t, st, stUninit)
		if st.GetCoreappId() != "a" || st.GetPid() != 4242 {
			t.Fatalf("status = %v", st)
		}

		done := make(chan error, 1)
		go func() {
			_, err := c.Assign(t.Context(), assign(1, 0, 1))
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Assign answered before the gateway did: %v", err)
		default:
		}
		wantServed(t, statusOf(t, c), stConnecting, "0/1/CONNECTING")

		close(gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if hold := h.gw.Sessions()[0]; hold.CoreappID != "a" || hold.Epoch != 1 {
			t.Fatalf("gateway holder = %+v", hold)
		}
		st = statusOf(t, c)
		wantServed(t, st, stConnected, "0/1/CONNECTED")
		if st.GetLeaseEpoch() != 1 {
			t.Errorf("lease_epoch = %d", st.GetLeaseEpoch())
		}
		hb, err := c.Heartbeat(t.Context(), &mcsimv1.HeartbeatRequest{MasterId: "m", LeaseEpoch: 1, Seq: 1})
		if err != nil {
			t.Fatal(err)
		}
		if hb.GetCoreappId() != "a" || !reflect.DeepEqual(served(hb.GetShards()), []string{"0/1/CONNECTED"}) {
			t.Fatalf("heartbeat = %v", hb)
		}
	})
}

func TestFencing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, c, _ := h.coreapp("a", nil)
		ctx := t.Context()
		if _, err := c.Assign(ctx, assign(3, 0, 5)); err != nil {
			t.Fatal(err)
		}
		before := statusOf(t, c)

		_, err := c.Assign(ctx, assign(2, 1, 1))
		wantCode(t, err, codes.FailedPrecondition, "lease epoch 2 is older than lease epoch 3")
		_, err = c.Assign(ctx, assign(3, 0, 5))
		wantCode(t, err, codes.FailedPrecondition, "shard 0 epoch 5 is not newer than epoch 5")
		_, err = c.Assign(ctx, assign(3, 0, 4))
		wantCode(t, err, codes.FailedPrecondition, "epoch 4 is not newer")
		_, err = c.Assign(ctx, &mcsimv1.AssignRequest{LeaseEpoch: 3, Shard: -1, Epoch: 9})
		wantCode(t, err, codes.InvalidArgument, "shard: must be ≥ 0")
		_, err = c.Assign(ctx, &mcsimv1.AssignRequest{LeaseEpoch: 3, Shard: 4, Epoch: 9, Shards: 4})
		wantCode(t, err, codes.InvalidArgument, "shard: must be < shards (4)")
		_, err = c.Assign(ctx, &mcsimv1.AssignRequest{LeaseEpoch: 3, Shard: 1, Epoch: 9, Shards: 3})
		wantCode(t, err, codes.InvalidArgument, "shards: must be one of 1, 2, 4, 8, 16, 32")
		_, err = c.Assign(ctx, &mcsimv1.AssignRequest{LeaseEpoch: 3, Shard: 1})
		wantCode(t, err, codes.InvalidArgument, "epoch: must be ≥ 1")

		synctest.Wait()
		if after := statusOf(t, c); !reflect.DeepEqual(served(after.GetShards()), served(before.GetShards())) ||
			after.GetLeaseEpoch() != 3 || after.GetGatewayStatus() != stConnected {
			t.Fatalf("refused requests changed the state: %v → %v", before, after)
		}
		if n := len(h.gw.Log(0)); n != 1 {
			t.Fatalf("refused requests reached the gateway: %v", h.gw.Log(0))
		}
		// The refused shard 1 epoch 1 was not remembered.
		if _, err := c.Assign(ctx, assign(3, 1, 1)); err != nil {
			t.Fatal(err)
		}

		// A heartbeat from a newer master raises the bar for assignments.
		if _, err := c.Heartbeat(ctx, &mcsimv1.HeartbeatRequest{LeaseEpoch: 4}); err != nil {
			t.Fatal(err)
		}
		_, err = c.Assign(ctx, assign(3, 2, 1))
		wantCode(t, err, codes.FailedPrecondition, "lease epoch 3 is older than lease epoch 4")
		if st := statusOf(t, c); st.GetLeaseEpoch() != 4 {
			t.Fatalf("lease_epoch = %d", st.GetLeaseEpoch())
		}
	})
}

// A request meant for another coreapp (the master dialed an address that
// has changed hands) is refused and changes nothing: no heartbeat answer
// that would count for the other coreapp, no shard dropped or taken.
func TestRequestsForAnotherCoreappRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, c, _ := h.coreapp("a", nil)
		ctx := t.Context()
		if _, err := c.Assign(ctx, &mcsimv1.AssignRequest{LeaseEpoch: 2, Shard: 0, Epoch: 3, CoreappId: "a"}); err != nil {
			t.Fatal(err)
		}
		before := statusOf(t, c)

		_, err := c.Heartbeat(ctx, &mcsimv1.HeartbeatRequest{LeaseEpoch: 5, Seq: 1, CoreappId: "b"})
		wantCode(t, err, codes.FailedPrecondition, `this is coreapp "a", not "b"`)
		_, err = c.Release(ctx, &mcsimv1.ReleaseRequest{LeaseEpoch: 5, Shard: 0, Epoch: 3, CoreappId: "b"})
		wantCode(t, err, codes.FailedPrecondition, `this is coreapp "a", not "b"`)
		_, err = c.Assign(ctx, &mcsimv1.AssignRequest{LeaseEpoch: 5, Shard: 1, Epoch: 4, CoreappId: "b"})
		wantCode(t, err, codes.FailedPrecondition, `this is coreapp "a", not "b"`)

		synctest.Wait()
		after := statusOf(t, c)
		if !reflect.DeepEqual(served(after.GetShards()), served(before.GetShards())) || after.GetLeaseEpoch() != 2 {
			t.Fatalf("refused requests changed the state: %v → %v", before, after)
		}
		// Its own id, and no id at all, are served.
		if resp, err := c.Heartbeat(ctx, &mcsimv1.HeartbeatRequest{LeaseEpoch: 2, Seq: 2, CoreappId: "a"}); err != nil || resp.GetCoreappId() != "a" {
			t.Fatalf("heartbeat for a: %v, %v", resp, err)
		}
		if _, err := c.Heartbeat(ctx, &mcsimv1.HeartbeatRequest{LeaseEpoch: 2, Seq: 3}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, c, _ := h.coreapp("a", nil)
		ctx := t.Context()
		if _, err := c.Assign(ctx, assign(2, 1, 3)); err != nil {
			t.Fatal(err)
		}
		_, err := c.Release(ctx, &mcsimv1.ReleaseRequest{LeaseEpoch: 2, Shard: 1, Epoch: 2})
		wantCode(t, err, codes.FailedPrecondition, "held with epoch 3, not 2")
		_, err = c.Release(ctx, &mcsimv1.ReleaseRequest{LeaseEpoch: 1, Shard: 1, Epoch: 3})
		wantCode(t, err, codes.FailedPrecondition, "lease epoch 1 is older")
		wantServed(t, statusOf(t, c), stConnected, "1/3/CONNECTED")

		if _, err := c.Release(ctx, &mcsimv1.ReleaseRequest{LeaseEpoch: 2, Shard: 1, Epoch: 3}); err != nil {
			t.Fatal(err)
		}
		wantServed(t, statusOf(t, c), stDisconnected)
		synctest.Wait()
		if len(h.gw.Sessions()) != 0 {
			t.Fatalf("gateway still holds %v", h.gw.Sessions())
		}
		evs := h.gw.Log(0)
		if len(evs) != 2 || evs[1].GetKind() != mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT {
			t.Fatalf("gateway log = %v", evs)
		}
		// Releasing what is not held is a no-op, not an error.
		if _, err := c.Release(ctx, &mcsimv1.ReleaseRequest{LeaseEpoch: 2, Shard: 1, Epoch: 3}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewerEpochElsewhereReplaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, a, _ := h.coreapp("a", nil)
		_, b, _ := h.coreapp("b", nil)
		ctx := t.Context()
		if _, err := a.Assign(ctx, assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Assign(ctx, assign(2, 0, 2)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		wantServed(t, statusOf(t, a), stDisconnected)
		wantServed(t, statusOf(t, b), stConnected, "0/2/CONNECTED")
		hb, err := a.Heartbeat(ctx, &mcsimv1.HeartbeatRequest{LeaseEpoch: 2})
		if err != nil || len(hb.GetShards()) != 0 {
			t.Fatalf("heartbeat of the replaced coreapp = %v, %v", hb, err)
		}

		// A's old assignment arriving late is turned away by the gateway.
		_, err = a.Assign(ctx, assign(2, 1, 1))
		if err != nil {
			t.Fatal(err)
		}
		_, c, _ := h.coreapp("c", nil)
		_, err = c.Assign(ctx, assign(2, 0, 1))
		wantCode(t, err, codes.FailedPrecondition, "gateway rejected shard 0 epoch 1")
		wantServed(t, statusOf(t, c), stDisconnected)

		evs := h.gw.Log(0)
		if v := gateway.CheckLog(evs); len(v) != 0 {
			t.Fatalf("violations: %v", v)
		}
		if evs[1].GetKind() != mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE || evs[1].GetReplacedCoreappId() != "a" {
			t.Fatalf("log = %v", evs)
		}
	})
}

func TestHeartbeatFaultHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		n, c, _ := h.coreapp("a", nil)
		hb := func(timeout time.Duration) (time.Duration, error) {
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			start := time.Now()
			_, err := c.Heartbeat(ctx, &mcsimv1.HeartbeatRequest{})
			return time.Since(start), err
		}

		if d, err := hb(time.Second); err != nil || d != 0 {
			t.Fatalf("plain heartbeat: %v after %v", err, d)
		}
		n.SetHeartbeatDelay(3 * time.Second)
		if d, err := hb(5 * time.Second); err != nil || d != 3*time.Second {
			t.Fatalf("delayed heartbeat: %v after %v, want answer after 3s", err, d)
		}
		if d, err := hb(time.Second); status.Code(err) != codes.DeadlineExceeded || d != time.Second {
			t.Fatalf("delay past deadline: %v after %v, want DeadlineExceeded after 1s", err, d)
		}
		n.SetHeartbeatDelay(0)

		n.SetUnresponsive(true)
		if d, err := hb(2 * time.Second); status.Code(err) != codes.DeadlineExceeded || d != 2*time.Second {
			t.Fatalf("unresponsive: %v after %v, want DeadlineExceeded after 2s", err, d)
		}
		go func() {
			time.Sleep(time.Second)
			n.SetUnresponsive(false)
		}()
		if d, err := hb(time.Minute); err != nil || d != time.Second {
			t.Fatalf("held heartbeat: %v after %v, want answer after 1s", err, d)
		}
	})
}

func TestGracefulStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		var left []*mcsimv1.ServedShard
		n, c, conn := h.coreapp("a", func(cfg *Config) {
			cfg.OnLeave = func(_ context.Context, served []*mcsimv1.ServedShard) { left = served }
		})
		ctx := t.Context()
		for shard := range int32(2) {
			if _, err := c.Assign(ctx, assign(1, shard, 1)); err != nil {
				t.Fatal(err)
			}
		}
		hc := healthpb.NewHealthClient(conn)
		if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health = %v, %v", r, err)
		}

		if err := n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if got := served(left); !reflect.DeepEqual(got, []string{"0/1/CONNECTED", "1/1/CONNECTED"}) {
			t.Errorf("OnLeave got %v", got)
		}
		wantServed(t, statusOf(t, c), stDisconnected)
		synctest.Wait()
		if len(h.gw.Sessions()) != 0 {
			t.Fatalf("gateway still holds %v", h.gw.Sessions())
		}
		disconnects := 0
		for _, e := range h.gw.Log(0) {
			if e.GetKind() == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT {
				disconnects++
			}
		}
		if disconnects != 2 {
			t.Fatalf("gateway log = %v, want 2 disconnects", h.gw.Log(0))
		}
		_, err := c.Assign(ctx, assign(1, 2, 1))
		wantCode(t, err, codes.Unavailable, "stopping")
		if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("health after stop = %v, %v", r, err)
		}
	})
}

func TestPendingRestartFromSettingsWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		fs := &fakeSettings{snaps: make(chan *mcsimv1.Snapshot), watches: make(chan string, 4)}
		sconn := serve(t, func(s *grpc.Server) { mcsimv1.RegisterSettingsServiceServer(s, fs) })
		started := map[string]string{"log_level": `"info"`, "db.port": `3306`}
		n, c, _ := h.coreapp("a", func(cfg *Config) {
			cfg.Settings = mcsimv1.NewSettingsServiceClient(sconn)
			cfg.RestartRequired = started
		})
		ctx, cancel := context.WithCancel(t.Context())
		runDone := make(chan error)
		go func() { runDone <- n.Run(ctx) }()
		if id := <-fs.watches; id != "a" {
			t.Fatalf("watch opened by %q", id)
		}
		pending := func(want ...string) {
			t.Helper()
			synctest.Wait()
			if want == nil {
				want = []string{}
			}
			got := statusOf(t, c).GetPendingRestart()
			if got == nil {
				got = []string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("pending_restart = %v, want %v", got, want)
			}
		}
		pending()
		fs.snaps <- &mcsimv1.Snapshot{Revision: 1, RestartRequired: started}
		pending()
		fs.snaps <- &mcsimv1.Snapshot{Revision: 2, RestartRequired: map[string]string{
			"log_level": `"debug"`, "db.port": `3306`, "media.path": `"/m"`}}
		pending("log_level", "media.path")
		fs.snaps <- &mcsimv1.Snapshot{Revision: 1, RestartRequired: started} // older: ignored
		pending("log_level", "media.path")

		// A broken watch is re-opened after SettingsRetry (1s, virtual).
		fs.snaps <- nil
		start := time.Now()
		<-fs.watches
		if d := time.Since(start); d != time.Second {
			t.Fatalf("watch re-opened after %v, want 1s", d)
		}
		fs.snaps <- &mcsimv1.Snapshot{Revision: 3, RestartRequired: started}
		pending()

		cancel()
		if err := <-runDone; err != nil {
			t.Fatal(err)
		}
	})
}

func TestBaselineFromFirstSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		n, c, _ := h.coreapp("a", nil)
		n.applySnapshot(&mcsimv1.Snapshot{Revision: 5, RestartRequired: map[string]string{"k": "1"}})
		n.applySnapshot(&mcsimv1.Snapshot{Revision: 6, RestartRequired: map[string]string{"k": "2"}})
		if got := statusOf(t, c).GetPendingRestart(); !reflect.DeepEqual(got, []string{"k"}) {
			t.Fatalf("pending_restart = %v", got)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	_, err := New(Config{SettingsRetry: -1})
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, want := range []string{"ID: must not be empty", "GatewayClient: must not be nil", "SettingsRetry: must be ≥ 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestNewerEpochSameNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, c, _ := h.coreapp("a", nil)
		ctx := t.Context()
		if _, err := c.Assign(ctx, assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Assign(ctx, assign(1, 0, 2)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// The old session's end must not drop the new one.
		wantServed(t, statusOf(t, c), stConnected, "0/2/CONNECTED")
		if hold := h.gw.Sessions()[0]; hold.CoreappID != "a" || hold.Epoch != 2 {
			t.Fatalf("gateway holder = %+v", hold)
		}
	})
}

func TestGatewayBreakDropsShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, c, _ := h.coreapp("a", nil)
		ctx := t.Context()
		if _, err := c.Assign(ctx, assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		h.gsv.Stop() // the connection to the gateway breaks
		synctest.Wait()
		wantServed(t, statusOf(t, c), stDisconnected)

		// With the gateway gone, a new assignment fails and leaves nothing
		// behind; the master retries with a newer epoch.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := c.Assign(actx, assign(1, 1, 1))
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Fatalf("assign with the gateway down: %v", err)
		}
		synctest.Wait()
		wantServed(t, statusOf(t, c), stDisconnected)
	})
}

// A fresh coreapp is uninitialized; once a master heartbeats it, it is a
// standby, which /v1/health shows as disconnected.
func TestStandbyIsDisconnectedOnceHeartbeated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, c, _ := h.coreapp("a", nil)
		wantServed(t, statusOf(t, c), stUninit)
		if _, err := c.Heartbeat(t.Context(), &mcsimv1.HeartbeatRequest{MasterId: "m", LeaseEpoch: 1, Seq: 1}); err != nil {
			t.Fatal(err)
		}
		wantServed(t, statusOf(t, c), mcsimv1.GatewayStatus_GATEWAY_STATUS_DISCONNECTED)
	})
}
