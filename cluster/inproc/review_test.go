package inproc_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/mcsim/mcsim/cluster/inproc"
	"github.com/mcsim/mcsim/master/failover"
)

// Review tests: failures found in an adversarial review of failover,
// fencing and the lease.

// partitionNet is an in-memory network whose nodes can be cut off: a cut
// closes every connection to the node and refuses new ones until healed.
// Its clients reconnect every second exactly (no jitter), the cap of
// master.FastReconnect, so the test is deterministic.
type partitionNet struct {
	mu        sync.Mutex
	listeners map[string]*bufconn.Listener
	cut       map[string]bool
	conns     map[string][]net.Conn
}

func newPartitionNet() *partitionNet {
	return &partitionNet{listeners: map[string]*bufconn.Listener{}, cut: map[string]bool{}, conns: map[string][]net.Conn{}}
}

func (p *partitionNet) Listen(name string) (net.Listener, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := bufconn.Listen(1 << 20)
	p.listeners[name] = l
	return l, name, nil
}

func (p *partitionNet) Dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			p.mu.Lock()
			l, cut := p.listeners[addr], p.cut[addr]
			p.mu.Unlock()
			if l == nil || cut {
				return nil, errors.New("partitioned")
			}
			c, err := l.DialContext(ctx)
			if err != nil {
				return nil, err
			}
			p.mu.Lock()
			p.conns[addr] = append(p.conns[addr], c)
			p.mu.Unlock()
			return c, nil
		}))
}

func (p *partitionNet) partition(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut[addr] = true
	for _, c := range p.conns[addr] {
		c.Close()
	}
	p.conns[addr] = nil
}

func (p *partitionNet) heal(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut[addr] = false
}

// Rule 4: a partition shorter than unhealthy_interval must not fail the
// coreapp over just because gRPC is still in reconnect backoff when the
// partition heals: a heartbeat sent during the backoff must wait for the
// connection (up to its deadline) instead of failing at once, so the
// coreapp is heartbeated as soon as it is reachable again.
func TestPartitionShorterThanUnhealthyIntervalNoFailover(t *testing.T) {
	for _, phase := range []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 900 * time.Millisecond} {
		t.Run(phase.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := &actionLog{}
				pn := newPartitionNet()
				c := startCluster(t, inproc.Options{Masters: 1, Coreapps: 2, Shards: 1, Network: pn,
					HeartbeatInterval: time.Second, UnhealthyInterval: 3 * time.Second, Observe: log.observe})
				waitUntil(t, 10*time.Second, "the shard served", allServed(c, 1))
				time.Sleep(3 * time.Second)
				// Cut the holder off for 2 s (< unhealthy_interval 3 s),
				// phase after its last heartbeat.
				h := holder(c, 0)
				var last time.Time
				log.mu.Lock()
				for _, e := range log.entries {
					if hb, ok := e.action.(failover.SendHeartbeat); ok && hb.Coreapp == h {
						last = e.at
					}
				}
				log.mu.Unlock()
				time.Sleep(time.Until(last.Add(phase)))
				pn.partition(h)
				time.Sleep(2 * time.Second)
				pn.heal(h)
				time.Sleep(5 * time.Second)
				if n := log.count(isUnhealthy); n != 0 {
					t.Errorf("a 2 s partition with unhealthy_interval 3 s declared %d coreapp(s) unhealthy", n)
				}
				if got := holder(c, 0); got != h {
					t.Errorf("shard 0 moved from %s to %s", h, got)
				}
				assertWitnessClean(t, c)
			})
		})
	}
}

// A coreapp that stopped gracefully is gone for good: a master that takes
// over later must not bring it back as a member (heartbeat it, declare it
// unhealthy, or offer it shards).
func TestGracefullyStoppedCoreappNotResurrectedByTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, ids, old := haCluster(t, 2, &log)
		gone := "coreapp-3"
		for s := 0; s < 2; s++ {
			if holder(c, s) == gone {
				gone = "coreapp-2" // pick a standby
			}
		}
		if holder(c, 0) == gone || holder(c, 1) == gone {
			t.Fatalf("no standby to stop")
		}
		if err := c.StopCoreapp(t.Context(), gone); err != nil {
			t.Fatal(err)
		}
		time.Sleep(haHeartbeat)
		t0 := time.Now()
		if err := c.KillMaster(old); err != nil {
			t.Fatal(err)
		}
		next, _ := takeover(t, c, &log, ids, old, t0, haTTL+haRenew+time.Second)
		time.Sleep(2*haUnhealthy + haHeartbeat)
		for _, e := range log.after(next, t0) {
			switch a := e.action.(type) {
			case failover.SendHeartbeat:
				if a.Coreapp == gone {
					t.Fatalf("%s heartbeated %s, which stopped gracefully before the takeover", next, gone)
				}
			case failover.DeclaredUnhealthy:
				t.Errorf("%s declared %s unhealthy after the takeover", next, a.Coreapp)
			}
		}
		assertWitnessClean(t, c)
	})
}
