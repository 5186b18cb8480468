package faultnet

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// grpcNode is node b serving gRPC (health and the fault control API) on an
// in-memory listener wrapped by its layer.
type grpcNode struct {
	layer *Layer
	lis   *bufconn.Listener
}

func serveB(t *testing.T, setClock func(float64) error) *grpcNode {
	t.Helper()
	n := &grpcNode{layer: New("b"), lis: bufconn.Listen(1 << 20)}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	mcsimv1.RegisterFaultServiceServer(gs, NewServer(n.layer, setClock))
	go func() { _ = gs.Serve(n.layer.Listen(n.lis)) }()
	t.Cleanup(gs.Stop)
	return n
}

// client connects to b's address through dial (a layer's, or none).
func (n *grpcNode) client(t *testing.T, layer *Layer) *grpc.ClientConn {
	t.Helper()
	dial := func(ctx context.Context, _ string) (net.Conn, error) { return n.lis.DialContext(ctx) }
	if layer != nil {
		wrapped := layer.WrapDial(func(ctx context.Context, _, _ string) (net.Conn, error) { return n.lis.DialContext(ctx) })
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return wrapped(ctx, "tcp", addr) }
	}
	cc, err := grpc.NewClient("passthrough:///"+addrB,
		grpc.WithContextDialer(dial), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func checkTakes(t *testing.T, cc *grpc.ClientConn) time.Duration {
	t.Helper()
	start := time.Now()
	r, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check: %v, %v", r.GetStatus(), err)
	}
	return time.Since(start)
}

// A gRPC call between two nodes through their layers takes the delay of
// both directions, on the connection already open; after heal it is fast
// again. The runner's control client, which sends no preamble, sets the
// table and is never slowed by it.
func TestGRPCRoundTripThroughTheLayer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lingerAtEnd(t)
		b := serveB(t, nil)
		la := New("a")
		cc := b.client(t, la)
		if d := checkTakes(t, cc); d != 0 {
			t.Fatalf("a call with no fault took %v", d)
		}

		control := mcsimv1.NewFaultServiceClient(b.client(t, nil))
		req := &mcsimv1.SetFaultsRequest{
			Links: []*mcsimv1.FaultLink{
				{From: "a", To: "b", LatencyUs: 300_000},
				{From: "b", To: "a", LatencyUs: 200_000},
				{From: "b", To: "runner", Cut: true},
			},
			Book: map[string]*mcsimv1.NodeAddresses{"a": {Addresses: []string{addrA}}, "b": {Addresses: []string{addrB}}},
		}
		start := time.Now()
		// a serves no control API here: its table is set directly.
		tb, err := FromProto(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := la.Set(tb); err != nil {
			t.Fatal(err)
		}
		if _, err := control.SetFaults(t.Context(), req); err != nil {
			t.Fatalf("SetFaults: %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("the control call took %v: it was faulted", d)
		}
		if d := checkTakes(t, cc); d < 500*time.Millisecond || d > 600*time.Millisecond {
			t.Fatalf("a call over a 300ms+200ms round trip took %v", d)
		}

		if err := la.Set(Table{}); err != nil {
			t.Fatal(err)
		}
		if _, err := control.SetFaults(t.Context(), &mcsimv1.SetFaultsRequest{}); err != nil {
			t.Fatalf("heal: %v", err)
		}
		if d := checkTakes(t, cc); d != 0 {
			t.Fatalf("after heal a call took %v", d)
		}
	})
}

// The control API refuses a bad request with InvalidArgument naming the
// field and changes nothing; the clock rate goes to the clock, and a node
// without one takes only real time.
func TestServerSetFaults(t *testing.T) {
	ctx := context.Background()
	l := New("b")
	noClock := NewServer(l, nil)
	good := &mcsimv1.SetFaultsRequest{Links: []*mcsimv1.FaultLink{{From: "b", To: "a", Cut: true}}, Seed: 9}
	if _, err := noClock.SetFaults(ctx, good); err != nil {
		t.Fatal(err)
	}
	inForce := l.Table()
	for _, tc := range []struct {
		name string
		req  *mcsimv1.SetFaultsRequest
		want string
	}{
		{"loss", &mcsimv1.SetFaultsRequest{Links: []*mcsimv1.FaultLink{{From: "a", To: "b"}, {}, {From: "b", To: "c", LossPercent: 140}}},
			"links[2].loss_percent: 140 outside 0..100"},
		{"latency", &mcsimv1.SetFaultsRequest{Links: []*mcsimv1.FaultLink{{From: "a", To: "b", LatencyUs: -5}}}, "links[0].latency_us: -5µs is negative"},
		{"overflow", &mcsimv1.SetFaultsRequest{Links: []*mcsimv1.FaultLink{{From: "a", To: "b", JitterUs: 1 << 62}}}, "links[0].jitter_us: 4611686018427387904 is too large"},
		{"book", &mcsimv1.SetFaultsRequest{Book: map[string]*mcsimv1.NodeAddresses{"a": {Addresses: []string{"nope"}}}}, `book["a"].addresses[0]`},
		{"clock", &mcsimv1.SetFaultsRequest{ClockRate: 0.5}, "clock_rate: 0.5"},
		{"negative clock", &mcsimv1.SetFaultsRequest{ClockRate: -1}, "clock_rate: -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := noClock.SetFaults(ctx, tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want InvalidArgument saying %q", err, tc.want)
			}
			if got := l.Table(); len(got.Links) != 1 || got.Seed != 9 {
				t.Fatalf("a refused request changed the table: %+v, was %+v", got, inForce)
			}
		})
	}
	for _, rate := range []float64{0, 1} {
		if _, err := noClock.SetFaults(ctx, &mcsimv1.SetFaultsRequest{ClockRate: rate}); err != nil {
			t.Errorf("clock_rate %v without a clock: %v", rate, err)
		}
	}

	var rates []float64
	withClock := NewServer(l, func(r float64) error {
		if r > 10 {
			return errors.New("at most 10")
		}
		rates = append(rates, r)
		return nil
	})
	if _, err := withClock.SetFaults(ctx, &mcsimv1.SetFaultsRequest{ClockRate: 0.5}); err != nil {
		t.Fatal(err)
	}
	if err := l.Set(Table{Seed: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := withClock.SetFaults(ctx, &mcsimv1.SetFaultsRequest{ClockRate: 20, Seed: 5}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "clock_rate: at most 10") {
		t.Fatalf("a rate the clock refuses: %v", err)
	}
	if l.Table().Seed != 4 {
		t.Error("a rate the clock refused still changed the table")
	}
	if len(rates) != 1 || rates[0] != 0.5 {
		t.Errorf("the clock was handed %v, want [0.5]", rates)
	}
}
