package master

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/mcsim/mcsim/master/failover"
	"github.com/mcsim/mcsim/master/primary"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// fakeCoordination records shard-map writes; a write blocks until gate
// yields, so a backlog can build up behind it.
type fakeCoordination struct {
	mcsimv1.CoordinationServiceClient
	mu     sync.Mutex
	writes []time.Time // when each WriteShardMap was sent
	gate   chan struct{}
}

func (f *fakeCoordination) GetShardMap(context.Context, *mcsimv1.GetShardMapRequest, ...grpc.CallOption) (*mcsimv1.GetShardMapResponse, error) {
	return &mcsimv1.GetShardMapResponse{ShardMap: &mcsimv1.ShardMap{Shards: 1}}, nil
}

// AcquireLease grants the lease to whoever asks: the tests give the first
// grant themselves, and the renewals the machine's Ticks send keep it.
func (f *fakeCoordination) AcquireLease(_ context.Context, r *mcsimv1.AcquireLeaseRequest, _ ...grpc.CallOption) (*mcsimv1.AcquireLeaseResponse, error) {
	return &mcsimv1.AcquireLeaseResponse{Granted: true, LeaseEpoch: 1, Holder: r.GetMasterId()}, nil
}

// primeSettings gives n its first settings snapshot as the watch would,
// except that the acquire it starts is not sent: the test answers it.
func primeSettings(t *testing.T, n *Node, s *mcsimv1.Snapshot, now time.Time) {
	t.Helper()
	n.snap = s
	hb, ui := n.intervals()
	if _, err := n.mc.Step(now, primary.Settings{HeartbeatInterval: hb, UnhealthyInterval: ui, Shards: int(s.GetShards())}); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeCoordination) WriteShardMap(ctx context.Context, _ *mcsimv1.WriteShardMapRequest, _ ...grpc.CallOption) (*mcsimv1.WriteShardMapResponse, error) {
	f.mu.Lock()
	f.writes = append(f.writes, time.Now())
	f.mu.Unlock()
	select {
	case <-f.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &mcsimv1.WriteShardMapResponse{}, nil
}

// Rule 3: a background shard-map write queued while the lease held must
// not be sent once the lease has ended by the master's own clock, even
// though the loop (blocked, or not yet woken) has not stepped down yet.
func TestBackgroundMapWriteNotSentAfterOwnLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		coord := &fakeCoordination{gate: make(chan struct{})}
		n, err := New(Config{ID: "m1", Settings: mcsimv1.NewSettingsServiceClient(nil), Coordination: coord, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		now := time.Now()
		primeSettings(t, n, &mcsimv1.Snapshot{Revision: 1, HeartbeatIntervalSeconds: 1, UnhealthyIntervalSeconds: 3, Shards: 1}, now)
		n.onLease(ctx, &wg, now, leaseResult{sentAt: now, ttl: time.Second,
			resp: &mcsimv1.AcquireLeaseResponse{Granted: true, LeaseEpoch: 1, Holder: "m1"}})
		if n.mc.Core() == nil || n.writer == nil {
			t.Fatal("did not become primary")
		}
		n.writer.background(&mcsimv1.ShardMap{Shards: 1, Version: 1}) // sent now, blocks on gate
		synctest.Wait()
		n.writer.background(&mcsimv1.ShardMap{Shards: 1, Version: 2}) // queued while the lease holds
		time.Sleep(2 * time.Second)                                   // virtual: the lease ended at 1s
		select {                                                      // the first write completes (if still in flight)
		case coord.gate <- struct{}{}:
		default:
		}
		synctest.Wait()
		coord.mu.Lock()
		for i, w := range coord.writes {
			if !w.Before(now.Add(time.Second)) {
				t.Errorf("write %d sent at +%v, after the lease ended by the master's own clock at +1s", i, w.Sub(now))
			}
		}
		coord.mu.Unlock()
		close(coord.gate)
		n.stopMapWriter()
		cancel()
		wg.Wait()
	})
}

// Rules 1 and 4 in the driver: when the loop wakes at a deadline and finds
// another coreapp's answer queued ahead of the one whose deadline it is,
// both answers arrived in time and neither coreapp may be declared.
func TestQueuedAnswersAtDeadlineCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		coord := &fakeCoordination{gate: make(chan struct{})}
		close(coord.gate)
		var mu sync.Mutex
		var declared []string
		n, err := New(Config{ID: "m1", Settings: mcsimv1.NewSettingsServiceClient(nil), Coordination: coord, Logger: zerolog.Nop(),
			Dial: func(string) (*grpc.ClientConn, error) { return nil, errors.New("unreachable") },
			Observe: func(_ time.Time, a failover.Action) {
				if d, ok := a.(failover.DeclaredUnhealthy); ok {
					mu.Lock()
					declared = append(declared, d.Coreapp)
					mu.Unlock()
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		t0 := time.Now()
		primeSettings(t, n, &mcsimv1.Snapshot{Revision: 1, HeartbeatIntervalSeconds: 1, UnhealthyIntervalSeconds: 3, Shards: 1}, t0)
		n.onLease(ctx, &wg, t0, leaseResult{sentAt: t0, ttl: time.Hour,
			resp: &mcsimv1.AcquireLeaseResponse{Granted: true, LeaseEpoch: 1, Holder: "m1"}})
		n.handle(ctx, &wg, coreappJoined{id: "a", addr: "a"})
		n.handle(ctx, &wg, coreappJoined{id: "b", addr: "b"})
		settle := func() { // the failures the unreachable peers post
			synctest.Wait()
			n.handleQueued(ctx, &wg, n.drain(nil))
		}
		settle()
		for i := 1; i <= 2; i++ {
			time.Sleep(time.Second)
			n.stepMachine(ctx, &wg, time.Now(), primary.Tick{})
			settle()
		}
		time.Sleep(time.Second) // t0+3s: the deadline of both seq-1 heartbeats
		term := n.mc.Term()
		n.events <- heartbeatResult{term: term, id: "b", seq: 3, resp: &mcsimv1.HeartbeatResponse{}}
		n.events <- heartbeatResult{term: term, id: "a", seq: 3, resp: &mcsimv1.HeartbeatResponse{}}
		n.handleQueued(ctx, &wg, n.drain(nil))
		mu.Lock()
		if len(declared) != 0 {
			t.Errorf("declared %v unhealthy although their answers were queued before the deadline", declared)
		}
		mu.Unlock()
		n.stopMapWriter()
		cancel()
		close(n.done)
		wg.Wait()
	})
}

// fakeCoreapp records when each Assign reached it.
type fakeCoreapp struct {
	mcsimv1.UnimplementedCoreAppServiceServer
	mu      sync.Mutex
	assigns []time.Time
}

func (f *fakeCoreapp) Assign(context.Context, *mcsimv1.AssignRequest) (*mcsimv1.AssignResponse, error) {
	f.mu.Lock()
	f.assigns = append(f.assigns, time.Now())
	f.mu.Unlock()
	return &mcsimv1.AssignResponse{}, nil
}

func (f *fakeCoreapp) Heartbeat(context.Context, *mcsimv1.HeartbeatRequest) (*mcsimv1.HeartbeatResponse, error) {
	return &mcsimv1.HeartbeatResponse{}, nil
}

// Rule 3: an Assign issued while the lease held but whose connection is
// still being set up when the lease ends by the master's own clock must
// not go out once the connection is up.
func TestAssignNotSentAfterOwnLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		coord := &fakeCoordination{gate: make(chan struct{})}
		close(coord.gate)
		fc := &fakeCoreapp{}
		lis := bufconn.Listen(1 << 20)
		srv := grpc.NewServer()
		mcsimv1.RegisterCoreAppServiceServer(srv, fc)
		go func() { _ = srv.Serve(lis) }()
		slowDial := make(chan struct{}) // closed when the network lets the dial through
		dial := func(string) (*grpc.ClientConn, error) {
			return grpc.NewClient("passthrough:///a", grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
					select {
					case <-slowDial:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
					return lis.DialContext(ctx)
				}))
		}
		n, err := New(Config{ID: "m1", Settings: mcsimv1.NewSettingsServiceClient(nil), Coordination: coord, Logger: zerolog.Nop(), Dial: dial})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		t0 := time.Now()
		primeSettings(t, n, &mcsimv1.Snapshot{Revision: 1, HeartbeatIntervalSeconds: 1, UnhealthyIntervalSeconds: 3, Shards: 1}, t0)
		n.onLease(ctx, &wg, t0, leaseResult{sentAt: t0, ttl: 2 * time.Second,
			resp: &mcsimv1.AcquireLeaseResponse{Granted: true, LeaseEpoch: 1, Holder: "m1"}})
		n.handle(ctx, &wg, coreappJoined{id: "a", addr: "a"}) // assigns shard 0 to a
		time.Sleep(2500 * time.Millisecond)                   // the dial is still slow (MinConnectTimeout is 20s); the lease ended at 2s
		close(slowDial)
		time.Sleep(3 * time.Second)
		fc.mu.Lock()
		t.Logf("assigns: %d", len(fc.assigns))
		for _, at := range fc.assigns {
			if !at.Before(t0.Add(2 * time.Second)) {
				t.Errorf("an Assign reached the coreapp at +%v, after the lease ended by the master's own clock at +2s", at.Sub(t0))
			}
		}
		fc.mu.Unlock()
		n.stopMapWriter()
		for _, p := range n.peers {
			p.conn.Close()
		}
		cancel()
		close(n.done)
		wg.Wait()
		srv.Stop()
	})
}
