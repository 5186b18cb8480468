package service

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/settings/store/pgstore"
)

// testConfig is a loopback service on free ports with its store in dir (a
// bbolt data dir, or a postgres:// URL).
func testConfig(dir string) Config {
	c := DefaultConfig()
	c.HTTPAddr, c.GRPCAddr, c.GossipAddr, c.DataDir = "127.0.0.1:0", "127.0.0.1:0", "", dir
	if pgstore.IsURL(dir) {
		c.DataDir, c.Store = "", dir
	}
	return c
}

type running struct {
	httpAddr, grpcAddr, gossipAddr string
	stop                           func() error // cancels Run and returns its error
}

// start runs the service in a goroutine and waits until it is ready, or
// returns the error Run failed with before that.
func start(t *testing.T, cfg Config) (*running, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, func(a Addrs) { ready <- a }) }()
	select {
	case a := <-ready:
		r := &running{httpAddr: a.HTTP, grpcAddr: a.GRPC, gossipAddr: a.Gossip, stop: func() error { cancel(); return <-done }}
		t.Cleanup(func() { cancel() })
		return r, nil
	case err := <-done:
		cancel()
		if err == nil {
			t.Fatal("Run returned nil before it was ready")
		}
		return nil, err
	}
}

func TestRunServesHTTPAndGRPC(t *testing.T) {
	dir := t.TempDir()
	r, err := start(t, testConfig(dir))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.HasSuffix(r.httpAddr, ":0") || strings.HasSuffix(r.grpcAddr, ":0") {
		t.Fatalf("ready got %s and %s, want the actual ports", r.httpAddr, r.grpcAddr)
	}

	a := newAPI(r.httpAddr)
	defer a.close()
	a.login(t, DefaultAdminPassword)
	if got := a.maxBackoff(t); got != 900000 {
		t.Fatalf("GET max_callback_backoff_delay_ms = %d, want the default 900000", got)
	}
	if code, body, err := a.setMaxBackoff(424242); err != nil || code != 200 {
		t.Fatalf("PATCH: %d %s %v", code, body, err)
	}

	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := mcsimv1.NewSettingsServiceClient(conn).Get(t.Context(), &mcsimv1.GetRequest{})
	if err != nil {
		t.Fatalf("gRPC Get: %v", err)
	}
	if s := resp.GetSnapshot(); s.GetRevision() != 1 || !strings.Contains(s.GetApplicationJson(), `"max_callback_backoff_delay_ms":424242`) {
		t.Fatalf("gRPC Get = revision %d %s, want revision 1 with the PATCHed value", s.GetRevision(), s.GetApplicationJson())
	}
	h, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", h, err)
	}

	// An open Watch stream must not hold up the stop.
	w, err := mcsimv1.NewSettingsServiceClient(conn).Watch(t.Context(), &mcsimv1.WatchRequest{NodeId: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if _, err := w.Recv(); err == nil {
		t.Fatal("watch stream still open after the service stopped")
	}
	// The store was closed: the data dir is free again.
	st, err := store.Open(dir)
	if err != nil {
		t.Fatalf("store.Open after Run returned: %v", err)
	}
	if got := st.State().Revision; got != 1 {
		t.Errorf("revision on disk = %d, want 1", got)
	}
	_ = st.Close()
}

func TestSecondRunOnSameDataDirFails(t *testing.T) {
	dir := t.TempDir()
	first, err := start(t, testConfig(dir))
	if err != nil {
		t.Fatalf("first Run: %v", err)
	}
	_, err = start(t, testConfig(dir))
	if err == nil {
		t.Fatal("second Run on the same data dir started, want it refused")
	}
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "is in use by another") || !strings.Contains(err.Error(), "--data dir") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Run = %v\nwant an ErrLocked error naming %s and saying it is in use", err, dir)
	}
	t.Logf("second Run: %v", err)
	// The first one is unaffected.
	a := newAPI(first.httpAddr)
	defer a.close()
	a.login(t, DefaultAdminPassword)
	_ = a.maxBackoff(t)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRunRefusesInvalidConfig(t *testing.T) {
	c := testConfig(t.TempDir())
	c.HTTPAddr = "0.0.0.0:0"
	err := Run(t.Context(), c, func(Addrs) { t.Error("ready called for an invalid config") })
	if err == nil || !strings.Contains(err.Error(), "MCSIM_ADMIN_PASSWORD") {
		t.Fatalf("Run = %v, want the loopback-password error", err)
	}
}
