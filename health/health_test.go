package health

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// net is an in-memory network of gRPC servers keyed by address, with a
// Dialer that counts dials per address.
type network struct {
	t     *testing.T
	mu    sync.Mutex
	lis   map[string]*bufconn.Listener
	dials map[string]int
}

func newNetwork(t *testing.T) *network {
	return &network{t: t, lis: map[string]*bufconn.Listener{}, dials: map[string]int{}}
}

// serve starts a server at addr; it is stopped at cleanup.
func (n *network) serve(addr string, register func(*grpc.Server)) {
	lis := bufconn.Listen(1 << 16)
	gs := grpc.NewServer()
	register(gs)
	go func() { _ = gs.Serve(lis) }()
	n.mu.Lock()
	n.lis[addr] = lis
	n.mu.Unlock()
	n.t.Cleanup(func() { gs.Stop(); _ = lis.Close() })
}

func (n *network) dial(addr string) (*grpc.ClientConn, error) {
	n.mu.Lock()
	n.dials[addr]++
	n.mu.Unlock()
	return grpc.NewClient("passthrough:///"+addr,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			n.mu.Lock()
			lis := n.lis[addr]
			n.mu.Unlock()
			if lis == nil {
				return nil, fmt.Errorf("connection refused: nothing listens on %s", addr)
			}
			return lis.DialContext(ctx)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func (n *network) dialsTo(addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials[addr]
}

// fakeMaster and fakeCoreapp answer Status from a settable response, or
// hang until the caller gives up.
type fakeMaster struct {
	mcsimv1.UnimplementedMasterServiceServer
	mu   sync.Mutex
	resp *mcsimv1.MasterServiceStatusResponse
}

func (f *fakeMaster) set(r *mcsimv1.MasterServiceStatusResponse) {
	f.mu.Lock()
	f.resp = r
	f.mu.Unlock()
}
func (f *fakeMaster) Status(context.Context, *mcsimv1.MasterServiceStatusRequest) (*mcsimv1.MasterServiceStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resp, nil
}

type fakeCoreapp struct {
	mcsimv1.UnimplementedCoreAppServiceServer
	hang bool
	mu   sync.Mutex
	resp *mcsimv1.StatusResponse
}

func (f *fakeCoreapp) set(r *mcsimv1.StatusResponse) { f.mu.Lock(); f.resp = r; f.mu.Unlock() }
func (f *fakeCoreapp) Status(ctx context.Context, _ *mcsimv1.StatusRequest) (*mcsimv1.StatusResponse, error) {
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resp, nil
}

// members is a settable member source.
type members struct {
	mu    sync.Mutex
	nodes []membership.Node
}

func (m *members) set(n ...membership.Node) { m.mu.Lock(); m.nodes = n; m.mu.Unlock() }
func (m *members) Members() []membership.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]membership.Node(nil), m.nodes...)
}

func node(id string, role membership.Role, addr string, pid int) membership.Node {
	return membership.Node{ID: id, Role: role, GRPCAddr: addr, GossipAddr: "127.0.0.1:1", PID: pid}
}

func newAggregator(t *testing.T, ms Members, nw *network) *Aggregator {
	a, err := New(Config{Members: ms, Dial: nw.dial, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func TestHealthListsEveryNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNetwork(t)
		m1, m2 := &fakeMaster{}, &fakeMaster{}
		m1.set(&mcsimv1.MasterServiceStatusResponse{Role: mcsimv1.MasterRole_MASTER_ROLE_PRIMARY, Pid: 11})
		m2.set(&mcsimv1.MasterServiceStatusResponse{Role: mcsimv1.MasterRole_MASTER_ROLE_SECONDARY, Pid: 12,
			PendingRestart: []string{"log_level"}})
		c1, c2 := &fakeCoreapp{}, &fakeCoreapp{}
		c1.set(&mcsimv1.StatusResponse{Shards: []*mcsimv1.ServedShard{{Shard: 1}, {Shard: 0}},
			GatewayStatus: mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED, Pid: 21})
		c2.set(&mcsimv1.StatusResponse{GatewayStatus: mcsimv1.GatewayStatus_GATEWAY_STATUS_DISCONNECTED, Pid: 22})
		nw.serve("127.0.0.1:1001", func(s *grpc.Server) { mcsimv1.RegisterMasterServiceServer(s, m1) })
		nw.serve("127.0.0.1:1002", func(s *grpc.Server) { mcsimv1.RegisterMasterServiceServer(s, m2) })
		nw.serve("127.0.0.1:2001", func(s *grpc.Server) { mcsimv1.RegisterCoreAppServiceServer(s, c1) })
		nw.serve("127.0.0.1:2002", func(s *grpc.Server) { mcsimv1.RegisterCoreAppServiceServer(s, c2) })

		ms := &members{}
		ms.set(
			node("settings", membership.RoleSettings, "127.0.0.1:9091", 1),
			node("gateway", membership.RoleGateway, "127.0.0.1:9093", 1),
			node("master-1", membership.RoleMaster, "127.0.0.1:1001", 0),
			node("master-2", membership.RoleMaster, "127.0.0.1:1002", 0),
			node("coreapp-1", membership.RoleCoreapp, "127.0.0.1:2001", 0),
			node("coreapp-2", membership.RoleCoreapp, "127.0.0.1:2002", 0),
			node("coreapp-3", membership.RoleCoreapp, "127.0.0.1:2003", 33), // nothing listens
		)
		a := newAggregator(t, ms, nw)
		got, err := a.Health(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]Entry{
			"127.0.0.1:master-1":  {Role: "primary_master", GatewayStatus: "disconnected", Shards: []int{}, PID: 11, PendingRestart: []string{}, State: "alive"},
			"127.0.0.1:master-2":  {Role: "secondary_master", GatewayStatus: "disconnected", Shards: []int{}, PID: 12, PendingRestart: []string{"log_level"}, State: "alive"},
			"127.0.0.1:coreapp-1": {Role: "coreapp", GatewayStatus: "connected", Shards: []int{0, 1}, PID: 21, PendingRestart: []string{}, State: "alive"},
			"127.0.0.1:coreapp-2": {Role: "coreapp", GatewayStatus: "disconnected", Shards: []int{}, PID: 22, PendingRestart: []string{}, State: "alive"},
		}
		if len(got) != len(want)+1 {
			t.Errorf("got %d entries, want %d: %+v", len(got), len(want)+1, got)
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				t.Errorf("no entry %q", k)
				continue
			}
			if fmt.Sprint(g) != fmt.Sprint(w) {
				t.Errorf("%s = %+v\nwant %+v", k, g, w)
			}
		}
		u := got["127.0.0.1:coreapp-3"]
		if u.Role != "unknown" || u.PID != 33 || !strings.HasPrefix(u.Error, "unreachable: ") {
			t.Errorf("unreachable coreapp-3 = %+v, want role unknown, gossip pid 33, an unreachable error", u)
		}
	})
}

// Two hanging nodes cost one timeout in all, not one each, and a node that
// answers is listed even when it is asked "after" them.
func TestHealthQueriesInParallel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNetwork(t)
		good := &fakeCoreapp{}
		good.set(&mcsimv1.StatusResponse{GatewayStatus: mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED, Shards: []*mcsimv1.ServedShard{{Shard: 0}}})
		nw.serve("h:1", func(s *grpc.Server) { mcsimv1.RegisterCoreAppServiceServer(s, good) })
		nw.serve("h:2", func(s *grpc.Server) { mcsimv1.RegisterCoreAppServiceServer(s, &fakeCoreapp{hang: true}) })
		nw.serve("h:3", func(s *grpc.Server) { mcsimv1.RegisterCoreAppServiceServer(s, &fakeCoreapp{hang: true}) })
		ms := &members{}
		// The answering node comes last: asked one after the other, it
		// would find the deadline already spent by the hanging ones.
		ms.set(node("c2", membership.RoleCoreapp, "h:2", 0), node("c3", membership.RoleCoreapp, "h:3", 0),
			node("c1", membership.RoleCoreapp, "h:1", 0))
		a := newAggregator(t, ms, nw)

		start := time.Now()
		got, err := a.Health(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > DefaultTimeout {
			t.Errorf("Health took %v with two hanging nodes, want at most one timeout (%v)", took, DefaultTimeout)
		}
		if e := got["h:c1"]; e.GatewayStatus != "connected" || len(e.Shards) != 1 {
			t.Errorf("c1 = %+v, want connected with shard 0", e)
		}
		for _, k := range []string{"h:c2", "h:c3"} {
			if e := got[k]; e.Role != "unknown" || !strings.Contains(e.Error, "DeadlineExceeded") {
				t.Errorf("%s = %+v, want unreachable by deadline", k, e)
			}
		}
	})
}

// Answers are never cached (a takeover shows at the next request), while
// connections are: re-dialed only after a failure or a membership change.
func TestHealthIsFreshAndReusesConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNetwork(t)
		m := &fakeMaster{}
		m.set(&mcsimv1.MasterServiceStatusResponse{Role: mcsimv1.MasterRole_MASTER_ROLE_SECONDARY})
		c := &fakeCoreapp{}
		c.set(&mcsimv1.StatusResponse{GatewayStatus: mcsimv1.GatewayStatus_GATEWAY_STATUS_DISCONNECTED})
		nw.serve("h:1", func(s *grpc.Server) { mcsimv1.RegisterMasterServiceServer(s, m) })
		nw.serve("h:2", func(s *grpc.Server) { mcsimv1.RegisterCoreAppServiceServer(s, c) })
		master, coreapp := node("m", membership.RoleMaster, "h:1", 0), node("c", membership.RoleCoreapp, "h:2", 0)
		ms := &members{}
		ms.set(master, coreapp)
		a := newAggregator(t, ms, nw)
		health := func() map[string]Entry {
			t.Helper()
			got, err := a.Health(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return got
		}

		if got := health(); got["h:m"].Role != "secondary_master" || got["h:c"].GatewayStatus != "disconnected" {
			t.Fatalf("before the takeover: %+v", got)
		}
		m.set(&mcsimv1.MasterServiceStatusResponse{Role: mcsimv1.MasterRole_MASTER_ROLE_PRIMARY})
		c.set(&mcsimv1.StatusResponse{GatewayStatus: mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED, Shards: []*mcsimv1.ServedShard{{Shard: 0}}})
		if got := health(); got["h:m"].Role != "primary_master" || got["h:c"].GatewayStatus != "connected" {
			t.Fatalf("right after the takeover: %+v, want it shown at once", got)
		}
		if nw.dialsTo("h:1") != 1 || nw.dialsTo("h:2") != 1 {
			t.Fatalf("dials = %v, want one per address across requests", nw.dials)
		}

		// The coreapp leaves: its connection is dropped; when it is back
		// it gets a fresh one.
		ms.set(master)
		if got := health(); len(got) != 1 {
			t.Fatalf("after the coreapp left: %+v, want only the master", got)
		}
		ms.set(master, coreapp)
		health()
		if nw.dialsTo("h:2") != 2 {
			t.Errorf("dials to the rejoined coreapp = %d, want 2 (the old connection was dropped)", nw.dialsTo("h:2"))
		}

		// A member nobody answers for: its failed connection is dropped,
		// so every request dials afresh.
		ms.set(master, coreapp, node("gone", membership.RoleCoreapp, "h:9", 0))
		health()
		health()
		if nw.dialsTo("h:9") != 2 {
			t.Errorf("dials to an unreachable node over two requests = %d, want 2", nw.dialsTo("h:9"))
		}
		if nw.dialsTo("h:1") != 1 {
			t.Errorf("dials to the master = %d, want still 1", nw.dialsTo("h:1"))
		}
	})
}

func TestHealthAfterClose(t *testing.T) {
	a, err := New(Config{Members: &members{}})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := a.Health(t.Context()); err == nil {
		t.Fatal("Health after Close = nil error, want one")
	}
}

func TestNewRequiresMembers(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Members") {
		t.Fatalf("New(Config{}) = %v, want an error naming Members", err)
	}
	if _, err := New(Config{Members: &members{}, Timeout: -1}); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("New with negative timeout = %v, want an error naming Timeout", err)
	}
}

// mcsim status lists the dead too: a node gossip lost or that left stays
// listed with its state and since when until it joins again, and an
// unreachable node keeps the time of its first failed answer.
func TestHealthListsTheDeadAndTheUnreachableSinceWhen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNetwork(t)
		ok := &fakeCoreapp{}
		ok.set(&mcsimv1.StatusResponse{GatewayStatus: mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED, Pid: 21})
		nw.serve("127.0.0.1:2001", func(s *grpc.Server) { mcsimv1.RegisterCoreAppServiceServer(s, ok) })
		c1 := node("coreapp-1", membership.RoleCoreapp, "127.0.0.1:2001", 21)
		c2 := node("coreapp-2", membership.RoleCoreapp, "127.0.0.1:2002", 22) // nothing listens
		c3 := node("coreapp-3", membership.RoleCoreapp, "127.0.0.1:2003", 23)
		m1 := node("master-1", membership.RoleMaster, "127.0.0.1:1001", 11)
		ms := &members{}
		ms.set(c1, c2)
		events := make(chan membership.Event)
		defer close(events) // as Member.Shutdown does
		a, err := New(Config{Members: ms, Dial: nw.dial, Logger: zerolog.Nop(), Events: events})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		t0 := time.Now()
		stamp := func(d time.Duration) string { return t0.Add(d).UTC().Format(TimeFormat) }

		events <- membership.Event{Kind: membership.Failed, Node: c3}
		time.Sleep(1500 * time.Millisecond)
		events <- membership.Event{Kind: membership.LeftGracefully, Node: m1}
		got, _ := a.Health(t.Context())
		time.Sleep(time.Second)
		got2, _ := a.Health(t.Context())

		for _, tc := range []struct {
			key, state, since, role string
			in                      map[string]Entry
		}{
			{"127.0.0.1:coreapp-1", StateAlive, "", RoleCoreapp, got},
			{"127.0.0.1:coreapp-2", StateUnreachable, stamp(1500 * time.Millisecond), RoleUnknown, got},
			{"127.0.0.1:coreapp-2", StateUnreachable, stamp(1500 * time.Millisecond), RoleUnknown, got2}, // since the first failure
			{"127.0.0.1:coreapp-3", StateFailed, stamp(0), RoleCoreapp, got2},
			{"127.0.0.1:master-1", StateLeft, stamp(1500 * time.Millisecond), RoleUnknown, got2},
		} {
			e, listed := tc.in[tc.key]
			if !listed || e.State != tc.state || e.Since != tc.since || e.Role != tc.role {
				t.Errorf("%s: listed %v, %+v; want state %s since %q role %s", tc.key, listed, e, tc.state, tc.since, tc.role)
			}
		}

		// Back in gossip: listed by what it answers, not as dead.
		events <- membership.Event{Kind: membership.Joined, Node: c3}
		synctest.Wait()
		got3, _ := a.Health(t.Context())
		if e, listed := got3["127.0.0.1:coreapp-3"]; listed {
			t.Errorf("coreapp-3 joined again but is listed as %+v (it is not in Members: it must be gone from the answer)", e)
		}
		if _, listed := got3["127.0.0.1:master-1"]; !listed {
			t.Errorf("master-1 left and was forgotten: %v", got3)
		}
	})
}
