package master

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/mcsim/mcsim/internal/clock"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// cuttableStore is a CoordinationService that grants every request until
// it is cut off; from then on every request hangs until its caller gives
// up, as behind a partition. It remembers when (real time) it last granted
// the lease.
type cuttableStore struct {
	mcsimv1.CoordinationServiceClient
	mu          sync.Mutex
	cut         bool
	lastGranted time.Time
}

func (s *cuttableStore) wait(ctx context.Context) error {
	s.mu.Lock()
	cut := s.cut
	s.mu.Unlock()
	if !cut {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *cuttableStore) cutOff() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = true
	return s.lastGranted
}

func (s *cuttableStore) AcquireLease(ctx context.Context, r *mcsimv1.AcquireLeaseRequest, _ ...grpc.CallOption) (*mcsimv1.AcquireLeaseResponse, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.lastGranted = time.Now()
	s.mu.Unlock()
	return &mcsimv1.AcquireLeaseResponse{Granted: true, LeaseEpoch: 1, Holder: r.GetMasterId(), RemainingMs: r.GetTtlMs()}, nil
}

func (s *cuttableStore) GetShardMap(ctx context.Context, _ *mcsimv1.GetShardMapRequest, _ ...grpc.CallOption) (*mcsimv1.GetShardMapResponse, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return &mcsimv1.GetShardMapResponse{ShardMap: &mcsimv1.ShardMap{Shards: 1}}, nil
}

func (s *cuttableStore) WriteShardMap(ctx context.Context, _ *mcsimv1.WriteShardMapRequest, _ ...grpc.CallOption) (*mcsimv1.WriteShardMapResponse, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return &mcsimv1.WriteShardMapResponse{}, nil
}

// Rule 3 by the master's own clock: a primary cut off from the store goes
// on believing it holds the lease until the send time of its last
// successful renewal plus the TTL, by its own clock. A slow clock stretches
// that in real time (rate 0.5: twice the TTL, while the store lets the
// lease lapse after the TTL); a fast one shortens it; a rate change while
// the lease runs takes effect from the change. The master runs against a
// store that stops answering; what is measured is the real (virtual) time
// from the last renewal the store granted to the moment the master's
// Status stops saying primary.
func TestSkewedClockStretchesOwnLease(t *testing.T) {
	const ttl = 3 * time.Second // unhealthy_interval; renewed every heartbeat_interval, 1s
	tests := []struct {
		name string
		rate float64
		// later, when set, is the rate from 1s (real) after the last renewal.
		later float64
		want  time.Duration
	}{
		{name: "rate 1: the TTL", rate: 1, want: ttl},
		{name: "rate 0.5: twice the TTL", rate: 0.5, want: 2 * ttl},
		{name: "rate 2: half the TTL", rate: 2, want: ttl / 2},
		{name: "rate 1, then 0.5 for the last 2s of it", rate: 1, later: 0.5, want: time.Second + 2*(ttl-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clock.NewSkewed(clock.Real())
				if err := clk.SetRate(tt.rate); err != nil {
					t.Fatal(err)
				}
				store := &cuttableStore{}
				push := make(chan *mcsimv1.Snapshot, 1)
				n, err := New(Config{ID: "m1", Settings: &pushedSettings{ch: push}, Coordination: store, Clock: clk, Logger: zerolog.Nop()})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- n.Run(ctx) }()
				push <- &mcsimv1.Snapshot{Revision: 1, HeartbeatIntervalSeconds: 1, UnhealthyIntervalSeconds: int64(ttl / time.Second), Shards: 1}

				isPrimary := func() bool {
					st, err := n.Status(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					return st.GetRole() == mcsimv1.MasterRole_MASTER_ROLE_PRIMARY
				}
				// A few renewals in, cut at a point that is not a renewal.
				time.Sleep(4500 * time.Millisecond)
				if !isPrimary() {
					t.Fatal("not primary before the cut")
				}
				last := store.cutOff()
				if tt.later > 0 {
					time.Sleep(time.Until(last.Add(time.Second)))
					if err := clk.SetRate(tt.later); err != nil {
						t.Fatal(err)
					}
				}
				const poll = 10 * time.Millisecond
				for isPrimary() {
					if time.Since(last) > 10*ttl {
						t.Fatalf("still primary %v after the last renewal", time.Since(last))
					}
					time.Sleep(poll)
				}
				believed := time.Since(last)
				t.Logf("rate %v (then %v): believed it held the lease %v (real) after its last renewal; the store's TTL is %v",
					tt.rate, tt.later, believed, ttl)
				if believed < tt.want || believed > tt.want+poll {
					t.Errorf("believed it held the lease %v after its last renewal, want %v (+ up to %v of polling)", believed, tt.want, poll)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
