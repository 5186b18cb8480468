// Package master is the master node of an mcsim cluster: one loop
// goroutine around the master's pure machine (package master/primary: the
// lease, the term and, while primary, the failover core), plus the settings
// watch, the map writer and the gRPC clients to coreapps.
//
// Everything that happens (a heartbeat answered, a settings change, a
// coreapp joining, a lease renewal coming back, a timer) is an event posted
// to the loop; gRPC handlers and RPC goroutines never touch the core or the
// loop's state. The loop sets one timer at the machine's NextWake (the
// earliest of the core's, the next lease renewal and the lease's end by
// its own clock), so rule-1 deadlines fire on time, not at the next tick.
//
// Lease (rule 3): every master tries to acquire or renew the lease in the
// settings store every renew interval (default heartbeat_interval) with a
// TTL (default unhealthy_interval). A master acts as primary only while its
// own clock says the lease holds, measured from the send time of its last
// successful renewal; the check runs before every batch of actions, so a
// master resumed after a pause stops before it sends anything. Every
// decision about the lease and the term (the renew schedule, what an
// answer means, becoming primary, stepping down, the epoch blocks of map
// writes) is made by the pure machine lease.Term (package master/lease),
// and how it joins the failover core (which batch waits for which write,
// which answers are stale) by primary.Machine, which owns both; this loop
// delivers its events and carries out its actions. A new
// primary loads the shard map from the store and builds a fresh core, in
// which every owner starts with a fresh unhealthy clock: taking over causes
// no failover by itself.
package master

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/internal/clock"
	"github.com/mcsim/mcsim/internal/grpcopts"
	"github.com/mcsim/mcsim/master/failover"
	"github.com/mcsim/mcsim/master/primary"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Config configures a master node.
type Config struct {
	// ID names the master (node_id in logs, the lease holder). Required.
	ID string
	// Address is the master's own gRPC address, published with the lease.
	Address string
	// Settings is the settings service's SettingsService client. Required.
	Settings mcsimv1.SettingsServiceClient
	// Coordination is the settings service's lease and shard-map client.
	// Required.
	Coordination mcsimv1.CoordinationServiceClient
	// Dial opens a client connection to a coreapp's gRPC address. Default:
	// grpc.NewClient with insecure credentials. Tests pass a bufconn dialer.
	Dial func(addr string) (*grpc.ClientConn, error)
	// LeaseTTL overrides the lease TTL; 0 means unhealthy_interval (live).
	LeaseTTL time.Duration
	// RenewInterval overrides how often the lease is renewed (and how often
	// a secondary tries to take it); 0 means heartbeat_interval (live).
	// With both set it must be shorter than LeaseTTL. With one set, a live
	// change that makes the renewal interval reach the TTL renews at a
	// third of the TTL instead (see lease.Timing).
	RenewInterval time.Duration
	// StallThreshold is passed to the core (rule 4); 0 is the core's
	// default (half the heartbeat interval).
	StallThreshold time.Duration
	// ExpectCoreapps is how many coreapps a fresh cluster's first
	// assignment waits for (for at most one heartbeat_interval after
	// becoming primary); 0 means as many as shards. See
	// failover.Config.StartupCoreapps.
	ExpectCoreapps int
	// Logger is the node's logger; New adds node_id and role.
	Logger zerolog.Logger
	// Registry receives the node's metrics; nil means a private registry.
	Registry prometheus.Registerer
	// PID is reported in Status (the OS process id; 0 in tests).
	PID int
	// RestartRequired holds the restart-required settings the node started
	// with; nil means the first snapshot is the baseline.
	RestartRequired map[string]string
	// Clock is the master's own clock: its timers, the core's now and the
	// lease's end (rule 3) are read from it, and the times it reports
	// (Observe, Status, logged deadlines) are on it. nil means
	// clock.Real(); a *clock.Skewed lets a scenario run this master's time
	// fast or slow while it runs.
	Clock clock.Clock
	// Observe, when not nil, is called on the loop goroutine with every
	// action of the core that is carried out and the time it was produced
	// (by the master's own clock),
	// just before it is executed; actions dropped because the master
	// stepped down mid-batch are not observed. Tests and measurements use
	// it; it must not block.
	Observe func(at time.Time, a failover.Action)
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("master: ID: must not be empty"))
	}
	if c.Settings == nil {
		errs = append(errs, errors.New("master: Settings: must not be nil"))
	}
	if c.Coordination == nil {
		errs = append(errs, errors.New("master: Coordination: must not be nil"))
	}
	if c.LeaseTTL < 0 {
		errs = append(errs, fmt.Errorf("master: LeaseTTL: must be >= 0, got %v", c.LeaseTTL))
	}
	if c.RenewInterval < 0 {
		errs = append(errs, fmt.Errorf("master: RenewInterval: must be >= 0, got %v", c.RenewInterval))
	}
	if c.LeaseTTL > 0 && c.RenewInterval >= c.LeaseTTL {
		errs = append(errs, fmt.Errorf("master: RenewInterval: must be shorter than LeaseTTL %v, got %v", c.LeaseTTL, c.RenewInterval))
	}
	if c.StallThreshold < 0 {
		errs = append(errs, fmt.Errorf("master: StallThreshold: must be >= 0, got %v", c.StallThreshold))
	}
	if c.ExpectCoreapps < 0 {
		errs = append(errs, fmt.Errorf("master: ExpectCoreapps: must be >= 0, got %d", c.ExpectCoreapps))
	}
	return errors.Join(errs...)
}

// FastReconnect caps gRPC's reconnect backoff (default up to 120 s) at one
// second, so a healed partition or a restarted coreapp is heartbeated again
// within a heartbeat interval instead of being blamed for gRPC's backoff.
func FastReconnect() grpc.ConnectParams {
	return grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: time.Second,
	}
}

// CoreappDialOptions are the options of the master's connections to
// coreapps: plain TCP, FastReconnect, and small transport buffers. A master
// holds one connection per coreapp and sends each a heartbeat of a few dozen
// bytes per interval, so gRPC's default 32 KiB read and write buffers per
// connection are mostly idle memory (with 1,000 coreapps, tens of MB).
// Fixed windows (grpcopts) spare each heartbeat a bandwidth-probing PING.
func CoreappDialOptions() []grpc.DialOption {
	return append(grpcopts.Dial(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(FastReconnect()),
		grpc.WithReadBufferSize(4<<10),
		grpc.WithWriteBufferSize(4<<10),
	)
}

// DialCoreapp is the default Config.Dial: a lazy connection to a coreapp's
// gRPC address with CoreappDialOptions.
func DialCoreapp(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, CoreappDialOptions()...)
}

// Node is a running master.
type Node struct {
	cfg Config
	clk clock.Clock // cfg.Clock: every time the master reads is its own
	// incarnation names this Node (this process run) to the lease: a
	// restarted master with the same id is a new holder (rule 3).
	incarnation string
	log         zerolog.Logger
	m           *metrics
	events      chan any
	done        chan struct{} // closed when Run returns
	crashed     atomic.Bool   // Crash was called: stop without a goodbye

	// Everything below is owned by the loop goroutine.
	snap        *mcsimv1.Snapshot
	started     map[string]string // restart-required values at start
	mc          *primary.Machine  // the lease, the term and the core: every decision about them
	loaded      *mcsimv1.ShardMap // the stored map while MapLoaded is stepped (its addresses)
	peers       map[string]*peer
	failingOver map[int]failoverStart
	// unassigned remembers, for `mcsim status`, since when each shard of
	// the primary's map has had no owner and whether the assigner found no
	// standby for it.
	unassigned map[int]unassignedShard
	writer     *mapWriter         // this term's shard-map writer (nil when secondary)
	stopWriter context.CancelFunc // ends writer

	// leaseUntil mirrors lease.ValidUntil for the map writer's goroutine,
	// which must not send a write once the lease has ended by our own
	// clock (rule 3), even while the loop is blocked or not yet woken.
	leaseUntil atomic.Pointer[time.Time]
}

type peer struct {
	addr   string
	conn   *grpc.ClientConn
	client mcsimv1.CoreAppServiceClient
}

type failoverStart struct {
	lostAt time.Time
	epoch  uint64
}

// New builds a master node. Run starts it.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dial == nil {
		cfg.Dial = DialCoreapp
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	return &Node{
		cfg:         cfg,
		clk:         cfg.Clock,
		incarnation: rand.Text(),
		log:         cfg.Logger.With().Str("node_id", cfg.ID).Str("role", "master").Logger(),
		m:           newMetrics(cfg.Registry),
		events:      make(chan any, 4096),
		done:        make(chan struct{}),
		started:     cfg.RestartRequired,
		mc: primary.New(primary.Config{ID: cfg.ID, LeaseTTL: cfg.LeaseTTL, RenewInterval: cfg.RenewInterval,
			StallThreshold: cfg.StallThreshold, StartupCoreapps: cfg.ExpectCoreapps}),
		peers:       map[string]*peer{},
		failingOver: map[int]failoverStart{},
		unassigned:  map[int]unassignedShard{},
	}, nil
}

// Events posted to the loop.
type (
	snapshotEvent struct{ snap *mcsimv1.Snapshot }
	coreappJoined struct{ id, addr string }
	coreappLeft   struct{ id string }
	masterLeft    struct{ id string }
	leaseResult   struct {
		sentAt time.Time
		ttl    time.Duration
		resp   *mcsimv1.AcquireLeaseResponse
		err    error
	}
	heartbeatResult struct {
		term uint64
		id   string
		seq  uint64
		rtt  time.Duration
		resp *mcsimv1.HeartbeatResponse
		err  error
	}
	assignResult struct {
		term uint64
		a    failover.Assign
		err  error
	}
	statusQuery struct {
		reply chan *mcsimv1.MasterServiceStatusResponse
	}
	freezeEvent    struct{ d time.Duration }
	mapWriteFailed struct {
		term uint64
		err  error
	}
)

// post hands an event to the loop; it gives up once the loop has ended.
func (n *Node) post(ev any) {
	select {
	case n.events <- ev:
	case <-n.done:
	}
}

// CoreappJoined tells the master that coreapp id serves gRPC at addr (a
// new member, a recovered one, or a new address). Safe from any goroutine.
func (n *Node) CoreappJoined(id, addr string) { n.post(coreappJoined{id: id, addr: addr}) }

// CoreappLeft tells the master that coreapp id stopped gracefully: its
// shards are handed over at once (rule 5). Never call it for a failure.
func (n *Node) CoreappLeft(id string) { n.post(coreappLeft{id: id}) }

// MasterLeft tells a secondary that master id left the cluster gracefully.
// A primary releases the lease before it leaves, so a secondary tries for
// it at once instead of at its next poll: a graceful handover then takes
// one lease round trip, not up to a renew interval.
func (n *Node) MasterLeft(id string) { n.post(masterLeft{id: id}) }

// Crash makes the next stop of Run abrupt, as a SIGKILL would: the lease is
// not released, so a secondary must wait for it to expire. A fault hook
// for tests and chaos.
func (n *Node) Crash() { n.crashed.Store(true) }

// Freeze stops the loop for d, as a SIGSTOP would: timers fire late and
// answers queue up. A fault hook for tests of rules 3 and 4.
func (n *Node) Freeze(d time.Duration) { n.post(freezeEvent{d: d}) }

// Run runs the loop until ctx ends. On the way out a primary releases the
// lease so a secondary can take over at once.
func (n *Node) Run(ctx context.Context) error {
	// RPC goroutines post their results; closing done first (defers run
	// last-in first-out) lets any of them blocked on a full queue return
	// before Wait.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(n.done)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Add(1)
	go func() { defer wg.Done(); n.watchSettings(watchCtx) }()

	timer := n.clk.NewTimer(time.Hour)
	defer timer.Stop()
	n.log.Info().Msg("master starting; waiting for the first settings snapshot")
	for {
		select {
		case <-ctx.Done():
			n.shutdown(ctx, &wg)
			return nil
		case ev := <-n.events:
			n.handleQueued(ctx, &wg, n.drain([]any{ev}))
		case <-timer.C():
			// Answers that arrived before the deadline count (rule 1), so
			// everything already queued is stepped before the timer's Tick;
			// select alone would pick between them at random.
			n.handleQueued(ctx, &wg, n.drain(nil))
			n.onTimer(ctx, &wg)
		}
		if wake := n.nextWake(); !wake.IsZero() {
			timer.Reset(max(clock.Until(n.clk, wake), 0))
		}
	}
}

// nextWake is the machine's: the earliest of the core's wake-up, the next
// renewal, and the end of the lease by our own clock while primary.
func (n *Node) nextWake() time.Time {
	if n.snap == nil {
		return time.Time{}
	}
	return n.mc.NextWake()
}

// drain appends every event already queued to evs.
func (n *Node) drain(evs []any) []any {
	for {
		select {
		case ev := <-n.events:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// handleQueued handles events that were all queued when the loop woke.
// Heartbeat outcomes go first, as one event: stepping them one at a time
// would let the first Step fire the deadline of a coreapp whose answer,
// already here, is queued behind it (rules 1 and 4: an answer that arrived
// in time counts).
func (n *Node) handleQueued(ctx context.Context, wg *sync.WaitGroup, evs []any) {
	var rest []any
	var hbs []heartbeatResult
	for _, ev := range evs {
		if r, ok := ev.(heartbeatResult); ok {
			hbs = append(hbs, r)
		} else {
			rest = append(rest, ev)
		}
	}
	if len(hbs) > 0 {
		n.heartbeatsDone(ctx, wg, n.clk.Now(), hbs) // the machine checks the lease first
	}
	for _, ev := range rest {
		n.handle(ctx, wg, ev)
	}
}

// handle handles one event other than a heartbeatResult (handleQueued
// applies those itself).
func (n *Node) handle(ctx context.Context, wg *sync.WaitGroup, ev any) {
	now := n.clk.Now()
	n.checkLease(ctx, wg, now)
	switch ev := ev.(type) {
	case snapshotEvent:
		n.applySnapshot(ctx, wg, now, ev.snap)
	case leaseResult:
		n.onLease(ctx, wg, now, ev)
	case coreappJoined:
		n.setPeer(ev.id, ev.addr)
		n.stepMachine(ctx, wg, now, primary.CoreappJoined{ID: ev.id})
	case coreappLeft:
		n.log.Info().Str("coreapp", ev.id).Msg("coreapp left gracefully; handing its shards over")
		n.stepMachine(ctx, wg, now, primary.CoreappLeft{ID: ev.id})
		// The machine forgets it as a member; forget its connection too.
		if p := n.peers[ev.id]; p != nil && p.conn != nil {
			p.conn.Close()
		}
		delete(n.peers, ev.id)
	case masterLeft:
		n.stepMachine(ctx, wg, now, primary.MasterLeft{ID: ev.id})
	case assignResult:
		n.onAssign(ctx, wg, now, ev)
	case statusQuery:
		ev.reply <- n.status()
	case mapWriteFailed:
		n.stepMachine(ctx, wg, now, primary.MapWriteFailed{Term: ev.term, Err: ev.err.Error()})
	case freezeEvent:
		n.freeze(ctx, ev.d)
	}
}

// freeze blocks the loop for d, as SIGSTOP would; like SIGKILL on a
// stopped process, ending ctx ends it at once (so Run never outlives its
// context by the length of a pause). Nothing is checked or sent here: the
// lease check at the next event or timer decides what the resumed master
// may still do. A pause is imposed from outside, so d is real time (the
// time package's), not the master's own.
func (n *Node) freeze(ctx context.Context, d time.Duration) {
	n.log.Warn().Dur("for_ms", d).Msg("frozen by a fault hook")
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (n *Node) onTimer(ctx context.Context, wg *sync.WaitGroup) {
	// Rule 3 first, then a renewal that is due, then the core if it is.
	n.stepMachine(ctx, wg, n.clk.Now(), primary.Tick{})
}

// checkLease is rule 3: a primary whose lease ran out by its own clock
// stops acting at once, before anything else is processed.
func (n *Node) checkLease(ctx context.Context, wg *sync.WaitGroup, now time.Time) {
	n.stepMachine(ctx, wg, now, primary.Check{})
}

// stepDown carries out the machine's StepDown: it has dropped the core and
// forgotten the lease already; the loop stops acting as primary.
func (n *Node) stepDown(a primary.StepDown) {
	n.log.Warn().Uint64("lease_epoch", a.Epoch).Str("reason", a.Reason).Msg("stepping down: no longer primary")
	n.stopMapWriter()
	n.publishLease()
	n.failingOver = map[int]failoverStart{}
	n.unassigned = map[int]unassignedShard{}
	n.m.leaseHolder.Set(0)
	n.m.leaseLostOwnClock.Inc()
}

// publishLease makes the lease's end by our own clock visible to the map
// writer's goroutine; call it after every Step of the machine.
func (n *Node) publishLease() {
	until := n.mc.Lease().ValidUntil()
	n.leaseUntil.Store(&until)
}

// leaseEnd is the lease's end by our own clock as last published; zero
// when not held. Safe from any goroutine.
func (n *Node) leaseEnd() time.Time {
	if p := n.leaseUntil.Load(); p != nil {
		return *p
	}
	return time.Time{}
}

func (n *Node) intervals() (hb, ui time.Duration) {
	return time.Duration(n.snap.GetHeartbeatIntervalSeconds()) * time.Second,
		time.Duration(n.snap.GetUnhealthyIntervalSeconds()) * time.Second
}

func (n *Node) applySnapshot(ctx context.Context, wg *sync.WaitGroup, now time.Time, s *mcsimv1.Snapshot) {
	if n.snap != nil && s.GetRevision() <= n.snap.GetRevision() {
		return
	}
	old := n.snap
	n.snap = s
	n.m.settingsRevision.Set(float64(s.GetRevision()))
	if n.started == nil {
		n.started = s.GetRestartRequired()
	}
	hb, ui := n.intervals()
	switch {
	case old == nil:
		n.log.Info().Uint64("revision", s.GetRevision()).Dur("heartbeat_interval_ms", hb).Dur("unhealthy_interval_ms", ui).
			Int32("shards", s.GetShards()).Msg("settings received; competing for the master lease")
	default:
		if old.GetHeartbeatIntervalSeconds() != s.GetHeartbeatIntervalSeconds() || old.GetUnhealthyIntervalSeconds() != s.GetUnhealthyIntervalSeconds() {
			n.log.Info().Dur("heartbeat_interval_ms", hb).Dur("unhealthy_interval_ms", ui).Msg("live settings changed")
		}
		if old.GetShards() != s.GetShards() {
			n.log.Info().Int32("shards", s.GetShards()).Msg("shard count changed")
		}
	}
	// The machine starts competing for the lease on the first, and sees
	// itself what a later one changes (rule 6: a change of the lease's
	// timing renews at once).
	n.stepMachine(ctx, wg, now, primary.Settings{HeartbeatInterval: hb, UnhealthyInterval: ui, Shards: int(s.GetShards())})
}

// setPeer dials a coreapp that joined, or re-joined. A re-join at the same
// address of a coreapp that is answering (a gossip flap: memberlist
// declared it dead and it refuted) keeps the connection, so heartbeats and
// assignments in flight on it are not cancelled; an assignment failed that
// way costs a needless failover. Otherwise the connection is replaced: a
// restarted process, or a connection that may be half-open after a
// partition, is dialed afresh rather than left to gRPC's backoff.
func (n *Node) setPeer(id, addr string) {
	p := n.peers[id]
	if c := n.mc.Core(); p != nil && p.conn != nil && p.addr == addr && p.conn.GetState() == connectivity.Ready &&
		c != nil && c.Healthy(id) {
		return
	}
	if p != nil && p.conn != nil {
		p.conn.Close()
	}
	conn, err := n.cfg.Dial(addr)
	if err != nil {
		n.log.Error().Err(err).Str("coreapp", id).Str("addr", addr).Msg("cannot dial coreapp")
		n.peers[id] = &peer{addr: addr}
		return
	}
	n.peers[id] = &peer{addr: addr, conn: conn, client: mcsimv1.NewCoreAppServiceClient(conn)}
}

func (n *Node) shutdown(ctx context.Context, wg *sync.WaitGroup) {
	// Rule 3: ctx may end before the timer at the lease's end is served;
	// a master whose lease ran out by its own clock steps down and writes
	// no last map.
	n.stepMachine(ctx, wg, n.clk.Now(), primary.Shutdown{Crashed: n.crashed.Load()})
	n.stopMapWriter()
	for _, p := range n.peers {
		if p.conn != nil {
			p.conn.Close()
		}
	}
}
