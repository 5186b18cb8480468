package master

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Rule 6 for the lease, in the driver: a live change of the intervals
// renews the lease at once with the new TTL and reschedules renewals, also
// when a renewal with the old TTL is in flight at the change. Each case is
// the transcript of the lease requests the master sends (virtual time from
// the first snapshot, and the TTL asked for).

// leaseRecorder is a CoordinationService that grants every request and
// records it; while hold is set, a request waits for it to close.
type leaseRecorder struct {
	mcsimv1.CoordinationServiceClient
	t0   time.Time
	mu   sync.Mutex
	sent []string
	hold chan struct{}
}

func (f *leaseRecorder) AcquireLease(ctx context.Context, r *mcsimv1.AcquireLeaseRequest, _ ...grpc.CallOption) (*mcsimv1.AcquireLeaseResponse, error) {
	f.mu.Lock()
	f.sent = append(f.sent, fmt.Sprintf("+%v ttl=%v", time.Since(f.t0), time.Duration(r.GetTtlMs())*time.Millisecond))
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &mcsimv1.AcquireLeaseResponse{Granted: true, LeaseEpoch: 1, Holder: r.GetMasterId(), RemainingMs: r.GetTtlMs()}, nil
}

func (f *leaseRecorder) GetShardMap(context.Context, *mcsimv1.GetShardMapRequest, ...grpc.CallOption) (*mcsimv1.GetShardMapResponse, error) {
	return &mcsimv1.GetShardMapResponse{ShardMap: &mcsimv1.ShardMap{Shards: 1}}, nil
}

func (f *leaseRecorder) WriteShardMap(context.Context, *mcsimv1.WriteShardMapRequest, ...grpc.CallOption) (*mcsimv1.WriteShardMapResponse, error) {
	return &mcsimv1.WriteShardMapResponse{}, nil
}

func (f *leaseRecorder) ReleaseLease(context.Context, *mcsimv1.ReleaseLeaseRequest, ...grpc.CallOption) (*mcsimv1.ReleaseLeaseResponse, error) {
	return &mcsimv1.ReleaseLeaseResponse{Released: true}, nil
}

// pushedSettings is a SettingsService whose Watch stream sends what the
// test pushes.
type pushedSettings struct {
	mcsimv1.SettingsServiceClient
	ch chan *mcsimv1.Snapshot
}

func (p *pushedSettings) Watch(ctx context.Context, _ *mcsimv1.WatchRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[mcsimv1.WatchResponse], error) {
	return &pushedStream{ctx: ctx, ch: p.ch}, nil
}

type pushedStream struct {
	grpc.ServerStreamingClient[mcsimv1.WatchResponse]
	ctx context.Context
	ch  chan *mcsimv1.Snapshot
}

func (s *pushedStream) Recv() (*mcsimv1.WatchResponse, error) {
	select {
	case snap := <-s.ch:
		return &mcsimv1.WatchResponse{Snapshot: snap}, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

func TestLeaseRenewedAtOnceOnLiveIntervalChange(t *testing.T) {
	tests := []struct {
		name string
		// At change the master gets the new heartbeat / unhealthy
		// intervals (whole seconds; it starts on 5 s / 30 s). From hold
		// to release the store answers nothing: a renewal hangs.
		change        time.Duration
		hb, ui        int64
		hold, release time.Duration
		want          []string
	}{
		{
			name:   "idle: renewed at the change, then every new heartbeat_interval",
			change: 2 * time.Second, hb: 1, ui: 3,
			want: []string{"+0s ttl=30s", "+2s ttl=3s", "+3s ttl=3s", "+4s ttl=3s", "+5s ttl=3s", "+6s ttl=3s"},
		},
		{
			name:   "a renewal with the old TTL in flight: the new TTL goes out as soon as it returns",
			change: 5200 * time.Millisecond, hb: 1, ui: 3, hold: 4900 * time.Millisecond, release: 5500 * time.Millisecond,
			want: []string{"+0s ttl=30s", "+5s ttl=30s", "+5.5s ttl=3s", "+6.5s ttl=3s"},
		},
		{
			name:   "only heartbeat_interval changes: same TTL, renewed and rescheduled",
			change: 1500 * time.Millisecond, hb: 2, ui: 30,
			want: []string{"+0s ttl=30s", "+1.5s ttl=30s", "+3.5s ttl=30s", "+5.5s ttl=30s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const end = 6600 * time.Millisecond
				coord := &leaseRecorder{t0: time.Now()}
				push := make(chan *mcsimv1.Snapshot, 2)
				n, err := New(Config{ID: "m1", Settings: &pushedSettings{ch: push}, Coordination: coord, Logger: zerolog.Nop()})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- n.Run(ctx) }()
				push <- &mcsimv1.Snapshot{Revision: 1, HeartbeatIntervalSeconds: 5, UnhealthyIntervalSeconds: 30, Shards: 1}

				type step struct {
					at time.Duration
					do func()
				}
				steps := []step{{tt.change, func() {
					push <- &mcsimv1.Snapshot{Revision: 2, HeartbeatIntervalSeconds: tt.hb, UnhealthyIntervalSeconds: tt.ui, Shards: 1}
				}}}
				if tt.release > 0 {
					hold := make(chan struct{})
					steps = append(steps,
						step{tt.hold, func() { coord.mu.Lock(); coord.hold = hold; coord.mu.Unlock() }},
						step{tt.release, func() { coord.mu.Lock(); coord.hold = nil; coord.mu.Unlock(); close(hold) }})
				}
				slices.SortFunc(steps, func(a, b step) int { return cmp.Compare(a.at, b.at) })
				for _, s := range steps {
					time.Sleep(time.Until(coord.t0.Add(s.at)))
					s.do()
				}
				time.Sleep(time.Until(coord.t0.Add(end)))
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				coord.mu.Lock()
				got := strings.Join(coord.sent, "\n")
				coord.mu.Unlock()
				if want := strings.Join(tt.want, "\n"); got != want {
					t.Errorf("lease requests:\n%s\nwant:\n%s", got, want)
				}
			})
		})
	}
}
