package service

import (
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/mcsim/mcsim/health"
	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// startMembership joins the gossip cluster as its seed: the node everybody
// else joins, after joining the other settings services of cfg.Join if
// the store is shared. Loopback clusters (one machine, mcsim up) get
// memberlist's fast local timings.
func startMembership(cfg Config, grpcAddr string, log zerolog.Logger) (*membership.Member, error) {
	var faults membership.Faults
	if cfg.Faults != nil {
		faults = cfg.Faults
	}
	if cfg.Advertise != "" {
		if _, port, err := net.SplitHostPort(grpcAddr); err == nil {
			grpcAddr = net.JoinHostPort(cfg.Advertise, port)
		}
	}
	return membership.Start(membership.Config{
		Faults:        faults,
		Node:          membership.Node{ID: cfg.ID(), Role: membership.RoleSettings, GRPCAddr: grpcAddr},
		Join:          cfg.Join,
		BindAddr:      cfg.GossipAddr,
		AdvertiseHost: cfg.Advertise,
		ClusterKey:    cfg.ClusterKey,
		Tuning:        membership.TuningFor(cfg.GossipAddr),
		Logger:        log,
	})
}

// newHealth is the /v1/health source over the gossip members, or nil
// without membership (then the endpoint answers an empty object).
func newHealth(m *membership.Member, log zerolog.Logger) (*health.Aggregator, error) {
	if m == nil {
		return nil, nil
	}
	return health.New(health.Config{Members: m, Logger: log, Events: m.Events()})
}

// watchMethod is the full gRPC name of the settings Watch stream.
const watchMethod = mcsimv1.SettingsService_Watch_FullMethodName

// watchGauge counts open settings Watch streams: one per master and coreapp
// that follows the settings, so a drop shows nodes that lost the service.
// It is a stream interceptor rather than code in grpcapi so the count
// covers every way a stream ends.
func watchGauge(reg prometheus.Registerer) (grpc.StreamServerInterceptor, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mcsim_settings_watch_streams_open",
		Help: "Settings Watch streams open now (about one per master and coreapp).",
	})
	if err := reg.Register(g); err != nil {
		return nil, err
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if info.FullMethod != watchMethod {
			return handler(srv, ss)
		}
		g.Inc()
		defer g.Dec()
		return handler(srv, ss)
	}, nil
}
