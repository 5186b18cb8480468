package coreapp

import (
	"context"
	"net"
	"testing"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/mcsim/mcsim/gateway"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// serve runs a gRPC server over bufconn and returns a client connection to
// it. Call it inside a synctest bubble; t.Cleanup (run inside the bubble)
// closes everything.
func serve(t *testing.T, register func(*grpc.Server)) *grpc.ClientConn {
	conn, _ := serveWithServer(t, register)
	return conn
}

// serveWithServer is serve that also returns the server, to break it.
func serveWithServer(t *testing.T, register func(*grpc.Server)) (*grpc.ClientConn, *grpc.Server) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	register(gs)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		_ = lis.Close()
	})
	return conn, gs
}

// harness is a gateway plus the coreapps under test.
type harness struct {
	t   *testing.T
	gw  *gateway.Server
	gc  mcsimv1.GatewayServiceClient
	gsv *grpc.Server
}

func newHarness(t *testing.T) *harness {
	gw := gateway.New(zerolog.Nop())
	conn, gsv := serveWithServer(t, gw.Register)
	return &harness{t: t, gw: gw, gc: mcsimv1.NewGatewayServiceClient(conn), gsv: gsv}
}

// coreapp starts a node; edit may change its config first. The node is
// stopped at cleanup, before the gateway (cleanups run last-in first-out).
func (h *harness) coreapp(id string, edit func(*Config)) (*Node, mcsimv1.CoreAppServiceClient, *grpc.ClientConn) {
	h.t.Helper()
	cfg := Config{ID: id, GatewayClient: h.gc, Logger: zerolog.Nop()}
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	conn := serve(h.t, n.Register)
	h.t.Cleanup(func() { _ = n.Stop(context.Background()) })
	return n, mcsimv1.NewCoreAppServiceClient(conn), conn
}

// gatedGateway holds every session's first answer until open is closed, to
// observe a coreapp while its session is being opened.
type gatedGateway struct {
	mcsimv1.GatewayServiceClient
	open chan struct{}
}

func (g gatedGateway) Session(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse], error) {
	st, err := g.GatewayServiceClient.Session(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &gatedStream{BidiStreamingClient: st, open: g.open}, nil
}

type gatedStream struct {
	grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse]
	open   chan struct{}
	opened bool
}

func (s *gatedStream) Recv() (*mcsimv1.SessionResponse, error) {
	if !s.opened {
		<-s.open
		s.opened = true
	}
	return s.BidiStreamingClient.Recv()
}

// fakeSettings serves Watch from a channel of snapshots; a nil snapshot
// ends the stream with an error (a broken watch).
type fakeSettings struct {
	mcsimv1.UnimplementedSettingsServiceServer
	snaps   chan *mcsimv1.Snapshot
	watches chan string // node ids, one per Watch call
}

func (f *fakeSettings) Watch(req *mcsimv1.WatchRequest, st grpc.ServerStreamingServer[mcsimv1.WatchResponse]) error {
	f.watches <- req.GetNodeId()
	for {
		select {
		case s := <-f.snaps:
			if s == nil {
				return context.Canceled
			}
			if err := st.Send(&mcsimv1.WatchResponse{Snapshot: s}); err != nil {
				return err
			}
		case <-st.Context().Done():
			return nil
		}
	}
}

// rewritingGateway sends every message to rcpt3 instead of its recipient,
// so the gateway refuses what the books routed to shard 0.
type rewritingGateway struct{ mcsimv1.GatewayServiceClient }

func (g rewritingGateway) Session(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse], error) {
	st, err := g.GatewayServiceClient.Session(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return rewritingStream{st}, nil
}

type rewritingStream struct {
	grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse]
}

func (s rewritingStream) Send(req *mcsimv1.SessionRequest) error {
	if m := req.GetMessage(); m != nil {
		req = &mcsimv1.SessionRequest{Message: &mcsimv1.OutboundMessage{Id: m.GetId(), To: rcpt3, Body: m.GetBody()}}
	}
	return s.BidiStreamingClient.Send(req)
}
