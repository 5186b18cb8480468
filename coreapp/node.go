// Package coreapp is the coreapp node of an mcsim cluster: it answers the
// primary master's heartbeats, serves the shards it is assigned by holding
// one gateway session per shard, fences stale masters and stale shard
// epochs, reports restart-required settings that changed since it started,
// and carries fault hooks (slow or silent heartbeats) for chaos scenarios.
//
// # Gateway status
//
// The node's overall gateway_status is decided in one place, gatewayStatusLocked:
//   - UNINITIALIZED: the node has just started: no master has heartbeated
//     it and no shard has been assigned to it yet.
//   - CONNECTING: at least one assigned shard is not served: its session
//     is still opening, or it was accepted but the gateway has not pinged
//     it for the silent_after_ms the gateway announced (the node is cut off
//     from the gateway, or the gateway is paused; rule 7). It keeps the
//     assignment and the session, and is CONNECTED again with the next
//     ping, unless the gateway replaced it meanwhile.
//   - CONNECTED: it serves shards and the gateway hears every one.
//   - DISCONNECTED: it serves no shard but is part of the cluster (a master
//     heartbeats it): a standby, as the issue's /v1/health describes it.
//
// # Sessions that end
//
// When the gateway replaces a session (a newer epoch took the shard) or the
// stream breaks for any reason, the node drops the shard and does not
// reconnect by itself, not even with the same epoch: the master's view
// comes from heartbeat answers, which stop listing the shard at once, and
// the master decides who serves it next. Reconnecting on its own would race
// the master's failover for no gain, since the gateway would reject the old
// epoch as soon as a newer one was accepted.
package coreapp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/internal/clock"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings"
)

// Config configures a coreapp node.
type Config struct {
	// ID names the node (node_id in logs, coreapp_id on the wire). Required.
	ID string
	// GatewayClient opens the shard sessions. Required.
	GatewayClient mcsimv1.GatewayServiceClient
	// Settings, when not nil, is watched by Run to report pending restarts.
	Settings mcsimv1.SettingsServiceClient
	// Logger is the node's logger; New adds node_id and role.
	Logger zerolog.Logger
	// PID is reported in Status (the OS process id; 0 in tests).
	PID int
	// RestartRequired holds the restart-required settings the node started
	// with (Snapshot.restart_required). When nil, the first snapshot the
	// settings watch delivers becomes the baseline.
	RestartRequired map[string]string
	// OnLeave, when not nil, is called by Stop with the shards the node
	// served, before it closes their sessions, so the cluster layer can start
	// the handover at once (rule 5). Fencing makes the overlap safe: the
	// successor's newer epoch replaces our sessions.
	OnLeave func(ctx context.Context, served []*mcsimv1.ServedShard)
	// SettingsRetry is how long Run waits before re-opening a broken
	// settings watch. Default 1s.
	SettingsRetry time.Duration
	// Registry receives the node's metrics (see metrics.go); nil means a
	// private registry nobody reads.
	Registry prometheus.Registerer
	// Clock is the node's own clock: the gateway's silence (rule 7), the
	// heartbeat delay hook and the settings retry are timed by it. nil
	// means clock.Real(); a *clock.Skewed lets a scenario run this node's
	// time fast or slow.
	Clock clock.Clock
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("ID: must not be empty"))
	}
	if c.GatewayClient == nil {
		errs = append(errs, errors.New("GatewayClient: must not be nil"))
	}
	if c.SettingsRetry < 0 {
		errs = append(errs, fmt.Errorf("SettingsRetry: must be ≥ 0, got %v", c.SettingsRetry))
	}
	return errors.Join(errs...)
}

// session is one shard's gateway session, owned by its goroutine; the
// fields are guarded by Node.mu.
type session struct {
	shard  int32
	shards int32 // the assignment's shard count, sent to the gateway
	epoch  uint64
	state  mcsimv1.GatewayStatus // CONNECTING (opening, or the gateway not heard) or CONNECTED
	// lastPing is when the gateway last pinged the session (its acceptance
	// before the first ping).
	lastPing time.Time
	cancel   context.CancelFunc
	// prev is the older session of the same shard on this node that this
	// one took the place of; only this session's goroutine reads it.
	prev *session
}

// Node is a coreapp. Its state is guarded by one mutex; gRPC handlers never
// hold it while waiting on the network.
type Node struct {
	mcsimv1.UnimplementedCoreAppServiceServer

	cfg    Config
	logger zerolog.Logger
	health *health.Server
	m      *metrics

	// ctx lives as long as the node; sessions derive from it so that they
	// outlive the Assign call that opened them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	stopped      bool
	leaseEpoch   uint64
	shardEpochs  map[int32]uint64 // newest epoch seen per shard (passed fencing)
	sessions     map[int32]*session
	everAssigned bool
	heartbeated  bool              // a master has heartbeated it: it is part of the cluster
	baseline     map[string]string // restart-required values at start
	latest       map[string]string // from the newest settings snapshot
	latestRev    uint64
	hbDelay      time.Duration
	unresponsive bool
	// unblock is closed (and replaced) when SetUnresponsive(false) is
	// called, releasing heartbeats held by the hook.
	unblock chan struct{}
}

// New builds a node. It opens nothing until Assign.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("coreapp config: %w", err)
	}
	if cfg.SettingsRetry == 0 {
		cfg.SettingsRetry = time.Second
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:         cfg,
		m:           newMetrics(cfg.Registry),
		logger:      cfg.Logger.With().Str("node_id", cfg.ID).Str("role", "coreapp").Logger(),
		health:      health.NewServer(),
		ctx:         ctx,
		cancel:      cancel,
		shardEpochs: make(map[int32]uint64),
		sessions:    make(map[int32]*session),
		unblock:     make(chan struct{}),
	}
	if cfg.RestartRequired != nil {
		n.baseline = maps.Clone(cfg.RestartRequired)
		n.latest = maps.Clone(cfg.RestartRequired)
	}
	n.health.SetServingStatus(mcsimv1.CoreAppService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return n, nil
}

// Register adds the coreapp service and the standard health service to s.
func (n *Node) Register(s *grpc.Server) {
	mcsimv1.RegisterCoreAppServiceServer(s, n)
	healthpb.RegisterHealthServer(s, n.health)
}

// SetHeartbeatDelay makes every heartbeat answer wait d first (0: none).
// The caller's deadline still wins.
func (n *Node) SetHeartbeatDelay(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hbDelay = d
}

// SetUnresponsive makes heartbeats block until their caller gives up (true)
// or answer again (false; held heartbeats are then answered).
func (n *Node) SetUnresponsive(v bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.unresponsive && !v {
		close(n.unblock)
		n.unblock = make(chan struct{})
	}
	n.unresponsive = v
}

// Heartbeat implements mcsimv1.CoreAppServiceServer. Heartbeats are never
// refused for a stale lease epoch: answering is harmless (it changes
// nothing), while refusing would only make a deposed master blame a live
// coreapp. The lease epoch is still remembered for fencing Assign/Release.
func (n *Node) Heartbeat(ctx context.Context, req *mcsimv1.HeartbeatRequest) (*mcsimv1.HeartbeatResponse, error) {
	if err := n.checkTarget(req.GetCoreappId()); err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.leaseEpoch = max(n.leaseEpoch, req.GetLeaseEpoch())
	n.heartbeated = true
	delay, unresponsive, unblock := n.hbDelay, n.unresponsive, n.unblock
	n.mu.Unlock()

	if unresponsive {
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-n.ctx.Done():
			return nil, status.Error(codes.Unavailable, "coreapp stopped")
		case <-unblock:
		}
	}
	if delay > 0 {
		t := n.cfg.Clock.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-t.C():
		}
	}
	n.m.heartbeats.Inc()
	n.mu.Lock()
	defer n.mu.Unlock()
	return &mcsimv1.HeartbeatResponse{CoreappId: n.cfg.ID, Shards: n.servedLocked()}, nil
}

// Status implements mcsimv1.CoreAppServiceServer.
func (n *Node) Status(context.Context, *mcsimv1.StatusRequest) (*mcsimv1.StatusResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	resp := &mcsimv1.StatusResponse{
		CoreappId:     n.cfg.ID,
		Shards:        n.servedLocked(),
		GatewayStatus: n.gatewayStatusLocked(),
		Pid:           int64(n.cfg.PID),
		LeaseEpoch:    n.leaseEpoch,
	}
	if n.baseline != nil && n.latest != nil {
		resp.PendingRestart = settings.PendingRestart(n.baseline, n.latest)
	}
	return resp, nil
}

// servedLocked lists the shards the node holds, sorted, including those
// still connecting (their gateway_status says so).
func (n *Node) servedLocked() []*mcsimv1.ServedShard {
	out := make([]*mcsimv1.ServedShard, 0, len(n.sessions))
	for _, shard := range slices.Sorted(maps.Keys(n.sessions)) {
		s := n.sessions[shard]
		out = append(out, &mcsimv1.ServedShard{Shard: s.shard, Epoch: s.epoch, GatewayStatus: s.state})
	}
	return out
}

// gatewayStatusLocked is the one place the node's gateway status is decided
// (see the package comment).
func (n *Node) gatewayStatusLocked() mcsimv1.GatewayStatus {
	if !n.everAssigned && !n.heartbeated {
		return mcsimv1.GatewayStatus_GATEWAY_STATUS_UNINITIALIZED
	}
	if len(n.sessions) == 0 {
		return mcsimv1.GatewayStatus_GATEWAY_STATUS_DISCONNECTED
	}
	for _, s := range n.sessions {
		if s.state != mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED {
			return mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING
		}
	}
	return mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED
}

// Stop stops the node gracefully (rule 5): it refuses new assignments,
// calls OnLeave with the shards it served, closes every gateway session and
// waits for them to end (or for ctx). The health service reports
// NOT_SERVING afterwards. The caller stops the gRPC server.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	served := n.servedLocked()
	n.mu.Unlock()

	n.logger.Info().Int("shards", len(served)).Msg("stopping: closing gateway sessions")
	if n.cfg.OnLeave != nil {
		n.cfg.OnLeave(ctx, served)
	}
	n.health.Shutdown()
	n.cancel()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("coreapp stop: sessions still closing: %w", ctx.Err())
	}
}
