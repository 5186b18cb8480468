package service

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/internal/faultnet"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

type acceptAll struct {
	mcsimv1.UnimplementedCoreAppServiceServer
}

func (acceptAll) Send(context.Context, *mcsimv1.SendRequest) (*mcsimv1.SendResponse, error) {
	return &mcsimv1.SendResponse{}, nil
}

// The front door's Send goes through the service's fault layer: a delay
// the scenario runner puts on the link settings→coreapp delays messages.
func TestFrontDoorLinksGoThroughTheFaultLayer(t *testing.T) {
	// A coreapp behind its own fault layer's listener, as every node's is.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	coreapp := grpc.NewServer()
	mcsimv1.RegisterCoreAppServiceServer(coreapp, acceptAll{})
	go func() { _ = coreapp.Serve(faultnet.New("coreapp-a").Listen(ln)) }()
	defer coreapp.Stop()
	coreappAddr := ln.Addr().String()

	cfg := testConfig(t.TempDir())
	cfg.Faults = faultnet.New(NodeID)
	r, err := start(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.stop() }()

	// A master's shard map naming the coreapp, through the service's API.
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	coord := mcsimv1.NewCoordinationServiceClient(conn)
	ctx := t.Context()
	lease, err := coord.AcquireLease(ctx, &mcsimv1.AcquireLeaseRequest{MasterId: "master-1", TtlMs: 60000, Incarnation: "run-1"})
	if err != nil || !lease.Granted {
		t.Fatalf("AcquireLease: %v %v", lease, err)
	}
	_, err = coord.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{MasterId: "master-1", LeaseEpoch: lease.LeaseEpoch, ShardMap: &mcsimv1.ShardMap{
		Shards: 1, MaxEpoch: 1,
		Assignments: []*mcsimv1.ShardAssignment{{Shard: 0, CoreappId: "coreapp-a", Epoch: 1, CoreappAddress: coreappAddr}},
	}})
	if err != nil {
		t.Fatal(err)
	}

	a := newAPI(r.httpAddr)
	defer a.close()
	a.login(t, cfg.AdminPassword)
	send := func() time.Duration {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, a.base+"/v1/messages", strings.NewReader(`{"to":"16315551234","text":{"body":"hi"}}`))
		start := time.Now()
		code, body, err := a.do(req, nil)
		if err != nil || code != http.StatusCreated {
			t.Fatalf("POST /v1/messages: %d %s %v", code, body, err)
		}
		return time.Since(start)
	}
	send() // the connection is open

	const delay = 400 * time.Millisecond
	if err := cfg.Faults.Set(faultnet.Table{
		Book:  map[string][]string{"coreapp-a": {coreappAddr}, NodeID: {r.grpcAddr}},
		Links: []faultnet.Link{{From: NodeID, To: "coreapp-a", Latency: delay}},
		Seed:  1,
	}); err != nil {
		t.Fatal(err)
	}
	if took := send(); took < delay {
		t.Errorf("a message took %v under a %v delay on settings→coreapp-a: the front door bypasses the fault layer", took, delay)
	}
}
