package grpcapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings"
	"github.com/mcsim/mcsim/settings/store"
)

const testWAID = "16315551019"

// env is one settings service over bufconn, built inside a synctest bubble
// so that every goroutine, timer and channel of the server, the client and
// the store belongs to the bubble.
type env struct {
	st       *store.Store
	services *Services
	settings mcsimv1.SettingsServiceClient
	coord    mcsimv1.CoordinationServiceClient
	health   healthpb.HealthClient
	// activeStreams counts server-side stream handlers still running.
	activeStreams *atomic.Int32
	// leases is what OnLease was told, in order.
	leases *leaseLog
}

type leaseLog struct {
	mu  sync.Mutex
	evs []LeaseEvent
}

func (l *leaseLog) add(ev LeaseEvent) { l.mu.Lock(); l.evs = append(l.evs, ev); l.mu.Unlock() }

// String is the log as "m1:1:grant m1:1:renew …".
func (l *leaseLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, ev := range l.evs {
		kind := "grant"
		switch {
		case ev.Renewal:
			kind = "renew"
		case ev.Released:
			kind = "release"
		}
		parts = append(parts, fmt.Sprintf("%s:%d:%s", ev.Master, ev.Epoch, kind))
	}
	return strings.Join(parts, " ")
}

// newEnv starts the server; the returned func stops everything and must be
// called before the bubble returns.
func newEnv(t *testing.T) (*env, func()) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	active := new(atomic.Int32)
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		active.Add(1)
		defer active.Add(-1)
		return h(srv, ss)
	}))
	leases := &leaseLog{}
	services := Register(srv, Config{Store: st, WAID: testWAID, Logger: zerolog.Nop(), OnLease: leases.add})
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The smallest flow-control windows (and no BDP growth): a client
		// that does not read blocks the server's Send after 64 KiB, so a
		// slow watcher is really slow.
		grpc.WithInitialWindowSize(64<<10-1), grpc.WithInitialConnWindowSize(64<<10-1))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	e := &env{
		st: st, services: services,
		settings:      mcsimv1.NewSettingsServiceClient(conn),
		coord:         mcsimv1.NewCoordinationServiceClient(conn),
		health:        healthpb.NewHealthClient(conn),
		activeStreams: active,
		leases:        leases,
	}
	return e, func() {
		_ = conn.Close()
		srv.Stop()
		<-served
		_ = lis.Close()
		if err := st.Close(); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	}
}

// setMax stores max_callback_backoff_delay_ms = v through the settings
// package, as the HTTP API would, so each revision carries a value that
// identifies it.
func setMax(tb testing.TB, st store.Backend, v int) store.State {
	tb.Helper()
	return patch(tb, st, fmt.Appendf(nil, `{"max_callback_backoff_delay_ms": %d}`, v))
}

// patch applies a PATCH body through the settings package.
func patch(tb testing.TB, st store.Backend, body []byte) store.State {
	tb.Helper()
	next, err := st.UpdateApplication(func(cur []byte) ([]byte, error) {
		return settings.PatchStored(cur, testWAID, body)
	})
	if err != nil {
		tb.Fatalf("UpdateApplication(%s): %v", body, err)
	}
	return next
}

// setURL stores webhooks.url = u.
func setURL(tb testing.TB, st store.Backend, u string) {
	tb.Helper()
	patch(tb, st, fmt.Appendf(nil, `{"webhooks": {"url": %q}}`, u))
}

// maxOf reads max_callback_backoff_delay_ms from a snapshot's JSON.
func maxOf(tb testing.TB, s *mcsimv1.Snapshot) int {
	tb.Helper()
	var app struct {
		Max *int `json:"max_callback_backoff_delay_ms"`
	}
	if err := json.Unmarshal([]byte(s.GetApplicationJson()), &app); err != nil {
		tb.Fatalf("snapshot %d: application_json: %v\n%s", s.GetRevision(), err, s.GetApplicationJson())
	}
	if app.Max == nil {
		tb.Fatalf("snapshot %d: application_json has no max_callback_backoff_delay_ms:\n%s", s.GetRevision(), s.GetApplicationJson())
	}
	return *app.Max
}
