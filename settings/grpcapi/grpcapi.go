// Package grpcapi serves the settings service over gRPC: SettingsService
// (Get and Watch, the snapshots every master and coreapp configures itself
// from), CoordinationService (the master lease and the fenced shard map) and
// the standard grpc.health.v1 service, all backed by one settings store.
//
// The handlers hold no state of their own beyond a snapshot cache: the
// store is the source of truth, so any number of servers (or restarts) see
// the same lease, map and revision.
package grpcapi

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store"
)

// Config is what the gRPC services need.
type Config struct {
	// Store is the open settings store. Required.
	Store store.Backend
	// WAID is the account's wa_id, shown in the application settings (it is
	// not stored: it comes from the service's configuration).
	WAID string
	// Logger carries the service's fields (node_id, role).
	Logger zerolog.Logger
	// Now is the clock given to the store to judge leases by; nil means
	// time.Now. Inside a synctest bubble time.Now is virtual, so tests
	// need not set it. A store shared by several processes may judge by a
	// clock of its own instead (pgstore: the database's); the answers then
	// measure the time left on that clock (LeaseResult.Now).
	Now func() time.Time
	// OnLease, if set, is told of every lease the store grants (a new
	// holder or a renewal) and releases, on the store's clock, in the
	// order the store decided them: the impartial record a scenario judges
	// single_primary and times a takeover by. It must not block.
	OnLease func(LeaseEvent)
}

// LeaseEvent is one decision of the store about the master lease.
type LeaseEvent struct {
	At     time.Time
	Master string
	Epoch  uint64
	// Expires is the grant's end (zero for a release).
	Expires time.Time
	// Renewal: the holder renewed its own lease; Released: it gave it up.
	Renewal, Released bool
}

// Services is the set of services Register installed. Its only use is
// Shutdown; callers that never stop the server may ignore it.
type Services struct {
	health   *health.Server
	settings *settingsServer

	stopOnce sync.Once
}

// Register installs SettingsService, CoordinationService and the health
// service (SERVING for "" and both service names) on s. A nil Store is a
// programming error and panics here rather than on the first request.
func Register(s *grpc.Server, cfg Config) *Services {
	if cfg.Store == nil {
		panic("grpcapi.Register: Config.Store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	set := newSettingsServer(cfg)
	mcsimv1.RegisterSettingsServiceServer(s, set)
	mcsimv1.RegisterCoordinationServiceServer(s, &coordinationServer{cfg: cfg})

	h := health.NewServer()
	for _, name := range serviceNames() {
		h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(s, h)
	return &Services{health: h, settings: set}
}

// serviceNames are the names health answers for: "" (the whole server) and
// each mcsim service.
func serviceNames() []string {
	return []string{
		"",
		mcsimv1.SettingsService_ServiceDesc.ServiceName,
		mcsimv1.CoordinationService_ServiceDesc.ServiceName,
	}
}

// Shutdown prepares a graceful stop: health turns NOT_SERVING (so probes
// and balancers move away) and every Watch stream ends with UNAVAILABLE.
// Watch streams never end on their own, so without this grpc.Server's
// GracefulStop would wait for them forever. Safe to call more than once.
func (s *Services) Shutdown() {
	s.stopOnce.Do(func() {
		s.health.Shutdown()
		close(s.settings.stopping)
	})
}
