package gateway

import (
	"context"
	"net"
	"testing"
	"testing/synctest"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The gateway answers grpc_health_probe like every other node: the whole
// server and its GatewayService are SERVING.
func TestGatewayServesGRPCHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lis := bufconn.Listen(1 << 16)
		gs := grpc.NewServer()
		New(zerolog.Nop()).Register(gs)
		go func() { _ = gs.Serve(lis) }()
		defer gs.Stop()
		conn, err := grpc.NewClient("passthrough:///bufnet",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, service := range []string{"", mcsimv1.GatewayService_ServiceDesc.ServiceName} {
			r, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
			if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health of %q: %v, %v; want SERVING", service, r.GetStatus(), err)
			}
		}
	})
}
