package service

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/coreapp"
	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// startGossip runs the service with membership on a free port.
func startGossip(t *testing.T) (*running, string) {
	t.Helper()
	cfg := testConfig(t.TempDir())
	cfg.GossipAddr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, func(a Addrs) { ready <- a }) }()
	select {
	case a := <-ready:
		t.Cleanup(func() { cancel(); <-done })
		if a.Gossip == "" || strings.HasSuffix(a.Gossip, ":0") {
			t.Fatalf("ready reported gossip address %q, want the actual one", a.Gossip)
		}
		return &running{httpAddr: a.HTTP, grpcAddr: a.GRPC, stop: func() error { cancel(); return <-done }}, a.Gossip
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
		return nil, ""
	}
}

// startCoreapp runs a coreapp.Node on a loopback gRPC port and joins it to
// the gossip cluster at seed, as `mcsim coreapp` does.
func startCoreapp(t *testing.T, id, seed string) {
	t.Helper()
	gw, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	node, err := coreapp.New(coreapp.Config{ID: id, GatewayClient: mcsimv1.NewGatewayServiceClient(gw), Logger: zerolog.Nop(), PID: 4242})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	node.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	m, err := membership.Start(membership.Config{
		Node:     membership.Node{ID: id, Role: membership.RoleCoreapp, GRPCAddr: lis.Addr().String(), MetricsAddr: "127.0.0.1:9999"},
		BindAddr: "127.0.0.1:0", Join: []string{seed}, Tuning: membership.TuningLocal, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatalf("coreapp joining %s: %v", seed, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
}

type healthEntry struct {
	Role          string `json:"role"`
	GatewayStatus string `json:"gateway_status"`
	Shards        []int  `json:"shards"`
	PID           int    `json:"pid"`
	Metrics       string `json:"metrics"`
	Error         string `json:"error"`
}

// health GETs /v1/health.
func (a *api) health(t *testing.T) map[string]healthEntry {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.base+"/v1/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Health map[string]healthEntry `json:"health"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET /v1/health = %d %s", resp.StatusCode, b)
	}
	return out.Health
}

// The service is the gossip seed: a coreapp that joined it shows in
// /v1/health with the state it reports over gRPC.
func TestHealthListsJoinedCoreapp(t *testing.T) {
	r, seed := startGossip(t)
	a := newAPI(r.httpAddr)
	defer a.close()
	a.login(t, DefaultAdminPassword)
	if got := a.health(t); len(got) != 0 {
		t.Fatalf("health before any node joined = %v, want empty (the service does not list itself)", got)
	}

	startCoreapp(t, "coreapp-1", seed)
	// The seed merges the joiner's state just after the join returns; poll
	// until it has (bounded by the test's own timeout, not a wall clock).
	var got map[string]healthEntry
	for {
		got = a.health(t)
		if _, ok := got["127.0.0.1:coreapp-1"]; ok {
			break
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal("coreapp-1 never appeared in /v1/health")
		}
	}
	e := got["127.0.0.1:coreapp-1"]
	if e.Role != "coreapp" || e.GatewayStatus != "uninitialized" || e.PID != 4242 || e.Shards == nil || len(e.Shards) != 0 ||
		e.Metrics != "http://127.0.0.1:9999/metrics" || e.Error != "" {
		t.Errorf("coreapp-1 = %+v, want a fresh coreapp (uninitialized, no shards, pid 4242, metrics URL)", e)
	}
	if len(got) != 1 {
		t.Errorf("health = %v, want only coreapp-1", got)
	}
}

func TestGossipConfigValidation(t *testing.T) {
	c := testConfig(t.TempDir())
	c.GossipAddr, c.ClusterKey = "nope", []byte("short")
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "gossip_addr: must be host:port") || !strings.Contains(err.Error(), "cluster_key: must be 16, 24 or 32 bytes") {
		t.Fatalf("Validate = %v, want gossip_addr and cluster_key errors", err)
	}
	c = testConfig(t.TempDir())
	c.HTTPAddr, c.GossipAddr = "127.0.0.1:9090", "127.0.0.1:9090"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "gossip_addr: must differ") {
		t.Fatalf("Validate = %v, want the clash reported", err)
	}
}

// The service's /metrics counts open Watch streams and shows the store's
// revision, from the service's own registry.
func TestServiceMetrics(t *testing.T) {
	r, err := start(t, testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w, err := mcsimv1.NewSettingsServiceClient(conn).Watch(t.Context(), &mcsimv1.WatchRequest{NodeId: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil { // the stream is open on the server
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + r.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"mcsim_settings_watch_streams_open 1", "mcsim_settings_revision 0", "mcsim_settings_lease_epoch 0"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, b)
		}
	}
}
