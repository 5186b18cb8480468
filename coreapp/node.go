// Package coreapp is the coreapp node of an mcsim cluster: it answers the
// primary master's heartbeats, serves the shards it is assigned by holding
// one gateway session per shard, fences stale masters and stale shard
// epochs, reports restart-required settings that changed since it started,
// and carries fault hooks (slow or silent heartbeats) for chaos scenarios.
//
// # Gateway status
//
// Every decision on commands, sessions and status is made by the node's
// books (package books, a pure machine the simulator runs too); this
// package delivers the RPCs and the gateway's answers to them as events and
// carries out the actions. The node's overall gateway_status
// (books.GatewayStatus):
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
// # Webhooks
//
// A node given a webhook poster (Config.Webhooks, package
// callbacks/poster) keeps it configured from the settings it watches and
// has it adopt a shard's kept callbacks whenever a session for the shard
// is accepted; the poster is the sessions' StatusHandler. The
// restart-required callback settings (callback_persist,
// webhooks.max_concurrent_requests) stay as the node started with them and
// a change of them shows in pending_restart like any other.
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
//
// # Messages and status updates
//
// Send goes out only on a shard the books say is ours under the caller's
// shard count and served (books.Route); it answers once the gateway's ack
// comes, so an accepted Send is a message the gateway logged. Status
// updates the gateway offers on a session go to Config.Statuses one at a
// time and are acknowledged only once it took them (see StatusHandler and
// traffic.go).
package coreapp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/callbacks/poster"
	"github.com/mcsim/mcsim/coreapp/books"
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
	// Webhooks, when not nil, is the node's webhook poster: the node
	// configures it from every settings snapshot (the restart-required
	// callback_persist and webhooks.max_concurrent_requests as the node
	// started with them; without a settings client, the defaults) and,
	// each time the gateway accepts a session for a shard, has it adopt the
	// callbacks the shard's last owner kept. The wiring also makes it the
	// sessions' StatusHandler and closes it after Stop.
	Webhooks *poster.Poster
	// Statuses takes the status updates the gateway offers (see
	// StatusHandler); nil takes each and drops it, counted in
	// mcsim_coreapp_statuses_dropped_total.
	Statuses StatusHandler
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

// session is the handle of one gateway session the books opened, run by
// its goroutine (runSession) until it ends; what it means for the shard is
// in the books. Its fields do not change.
type session struct {
	shard  int32
	shards int32 // the assignment's shard count, sent to the gateway
	epoch  uint64
	ctx    context.Context
	cancel context.CancelFunc // closes the session (CloseSession, Stop)
	lg     zerolog.Logger
	io     *sessionIO // messages and statuses on the stream
}

// sessionKey names a session: a shard's epoch is accepted once per node.
type sessionKey struct {
	shard int32
	epoch uint64
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

	mu sync.Mutex
	// books decide every command and what sessions mean (package books).
	books *books.Books
	// sessions are the handles of the sessions still running, including
	// those out of the books and not yet closed.
	sessions     map[sessionKey]*session
	wake         clock.Timer       // at books.NextWake; nil until first set
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
	if cfg.Statuses == nil && cfg.Webhooks != nil {
		// The poster takes the statuses it posts (callback_persist: kept
		// before the gateway hears they are taken).
		cfg.Statuses = cfg.Webhooks
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:      cfg,
		m:        newMetrics(cfg.Registry),
		logger:   cfg.Logger.With().Str("node_id", cfg.ID).Str("role", "coreapp").Logger(),
		health:   health.NewServer(),
		ctx:      ctx,
		cancel:   cancel,
		books:    books.New(cfg.ID),
		sessions: make(map[sessionKey]*session),
		unblock:  make(chan struct{}),
	}
	if cfg.RestartRequired != nil {
		n.baseline = maps.Clone(cfg.RestartRequired)
		n.latest = maps.Clone(cfg.RestartRequired)
	}
	if err := n.configureWebhooksWithoutSettings(); err != nil {
		cancel()
		return nil, fmt.Errorf("coreapp config: Webhooks: %w", err)
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

// Heartbeat implements mcsimv1.CoreAppServiceServer. The books decide
// (never refused for a stale lease epoch, but remembered for fencing
// Assign/Release; see package books); the fault hooks then delay it.
func (n *Node) Heartbeat(ctx context.Context, req *mcsimv1.HeartbeatRequest) (*mcsimv1.HeartbeatResponse, error) {
	n.mu.Lock()
	before := n.books.LeaseEpoch()
	if err := refusal(n.stepLocked(books.HeartbeatAsked{Coreapp: req.GetCoreappId(), LeaseEpoch: req.GetLeaseEpoch()})); err != nil {
		n.mu.Unlock()
		return nil, err
	}
	if n.books.LeaseEpoch() > before {
		// Logged under the lock, in order with the verdicts: from here on
		// a deposed master's commands are refused, and single_primary
		// judges that from these lines.
		n.logger.Info().Str("master_id", req.GetMasterId()).Uint64("lease_epoch", req.GetLeaseEpoch()).Msg("heard a newer lease epoch")
	}
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
		GatewayStatus: n.books.GatewayStatus(),
		Pid:           int64(n.cfg.PID),
		LeaseEpoch:    n.books.LeaseEpoch(),
	}
	if n.baseline != nil && n.latest != nil {
		resp.PendingRestart = settings.PendingRestart(n.baseline, n.latest)
	}
	return resp, nil
}

// servedLocked lists the shards the node holds, sorted, including those
// still connecting (their gateway_status says so).
func (n *Node) servedLocked() []*mcsimv1.ServedShard {
	return servedShards(n.books.Served())
}

func servedShards(held []books.Served) []*mcsimv1.ServedShard {
	out := make([]*mcsimv1.ServedShard, 0, len(held))
	for _, s := range held {
		out = append(out, &mcsimv1.ServedShard{Shard: s.Shard, Epoch: s.Epoch, GatewayStatus: s.Status})
	}
	return out
}

// Stop stops the node gracefully (rule 5): it refuses new assignments,
// calls OnLeave with the shards it served, closes every gateway session and
// waits for them to end (or for ctx). The health service reports
// NOT_SERVING afterwards. The caller stops the gRPC server.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	var served []*mcsimv1.ServedShard
	var leaving bool
	for _, a := range n.stepLocked(books.StopAsked{}) {
		if l, ok := a.(books.Leave); ok {
			served, leaving = servedShards(l.Shards), true
		}
	}
	n.mu.Unlock()
	if !leaving {
		return nil // stopped already
	}

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
