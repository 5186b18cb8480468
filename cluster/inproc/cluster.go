// Package inproc runs a whole mcsim cluster in one process: the settings
// store and its gRPC services, the gateway, masters and coreapps, each with
// its own gRPC server, over an in-memory network (for tests in
// testing/synctest bubbles, where five hours of heartbeats take a fraction
// of a second) or over real loopback TCP (for measurements). It is the
// test harness's vocabulary: Start, KillCoreapp, StopCoreapp,
// RestartCoreapp, FreezeCoreapp, CutCoreapp, HealCoreapp, KillMaster,
// StopMaster, FreezeMaster, CutMasterFromStore, HealMaster, Patch,
// GatewayLog. Options.Clocks gives a node its own (skewable) clock.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/mcsim/mcsim/callbacks/poster"
	"github.com/mcsim/mcsim/coreapp"
	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/internal/clock"
	"github.com/mcsim/mcsim/master"
	"github.com/mcsim/mcsim/master/failover"
	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings"
	"github.com/mcsim/mcsim/settings/grpcapi"
	"github.com/mcsim/mcsim/settings/store"
)

// waID is the WhatsApp account id of every in-process cluster.
const waID = "16315551019"

// Options shape the cluster.
type Options struct {
	// Masters and Coreapps count the nodes (ids master-1.., coreapp-1..).
	Masters, Coreapps int
	// Shards is the shard count (1, 2, 4, 8, 16, 32).
	Shards int
	// HeartbeatInterval and UnhealthyInterval are written to the settings
	// before any node starts (whole seconds, as the settings API has them).
	HeartbeatInterval, UnhealthyInterval time.Duration
	// Network: NewBufconn() (default) or TCP{}.
	Network Network
	// DataDir holds the settings store. Required.
	DataDir string
	// Logger receives every node's logs (each with its node_id).
	Logger zerolog.Logger
	// Observe, when set, sees every action of every master's core.
	Observe func(masterID string, at time.Time, a failover.Action)
	// LeaseTTL and RenewInterval override the masters' lease timing.
	LeaseTTL, RenewInterval time.Duration
	// Clocks gives nodes their own clock by node id (master-1, coreapp-2);
	// a node not listed runs on the real clock. A *clock.Skewed here lets
	// a test change that node's rate while it runs. A restarted node keeps
	// its clock: the clock belongs to the machine, not the process.
	Clocks map[string]clock.Clock
}

// Cluster is a running in-process cluster.
type Cluster struct {
	opts    Options
	net     Network
	Store   *store.Store
	Gateway *gateway.Server

	settingsAddr, gatewayAddr string
	settingsSrv, gatewaySrv   *grpc.Server
	settingsSvc               *grpcapi.Services
	settingsConn, gwConn      *grpc.ClientConn

	mu       sync.Mutex
	masters  map[string]*runningMaster
	coreapps map[string]*runningCoreapp
	wg       sync.WaitGroup
}

type runningMaster struct {
	node   *master.Node
	srv    *grpc.Server
	cancel context.CancelFunc
	done   chan struct{}
	// storeLis is the master's own listener of the settings service and
	// storeConn its connection to it, so that its link to the store can be
	// cut (faults.go) for this master alone; storeGate holds that link.
	storeLis  net.Listener
	storeConn *grpc.ClientConn
	storeGate *gate
}

type runningCoreapp struct {
	node     *coreapp.Node
	webhooks *poster.Poster
	srv      *grpc.Server
	addr     string
	conns    []*grpc.ClientConn
	cancel   context.CancelFunc
	done     chan struct{}
	// gwLis is the coreapp's own listener of the gateway, so that the
	// gateway link can be cut (faults.go) for this coreapp alone; gwGate
	// and inGate hold the gateway link and the masters' link.
	gwLis          net.Listener
	gwGate, inGate *gate
}

// Start builds and starts the cluster. Close stops it.
func Start(opts Options) (*Cluster, error) {
	if opts.Network == nil {
		opts.Network = NewBufconn()
	}
	if opts.Shards == 0 {
		opts.Shards = 1
	}
	st, err := store.Open(opts.DataDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, net: opts.Network, Store: st,
		masters: map[string]*runningMaster{}, coreapps: map[string]*runningCoreapp{}}
	if err := c.configure(); err != nil {
		st.Close()
		return nil, err
	}

	if c.settingsSrv, c.settingsAddr, err = c.serve("settings", func(s *grpc.Server) {
		c.settingsSvc = grpcapi.Register(s, grpcapi.Config{Store: st, WAID: waID, Logger: c.nodeLogger("settings")})
	}); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	c.Gateway = gateway.New(c.nodeLogger("gateway"))
	if c.gatewaySrv, c.gatewayAddr, err = c.serve("gateway", c.Gateway.Register); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	if c.settingsConn, err = c.net.Dial(c.settingsAddr); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	if c.gwConn, err = c.net.Dial(c.gatewayAddr); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	for i := 1; i <= opts.Coreapps; i++ {
		if err := c.StartCoreapp(fmt.Sprintf("coreapp-%d", i)); err != nil {
			return nil, errors.Join(err, c.Close())
		}
	}
	for i := 1; i <= opts.Masters; i++ {
		if err := c.StartMaster(fmt.Sprintf("master-%d", i)); err != nil {
			return nil, errors.Join(err, c.Close())
		}
	}
	return c, nil
}

// configure writes the intervals and the shard count to the store.
func (c *Cluster) configure() error {
	patch := fmt.Sprintf(`{"heartbeat_interval": %d, "unhealthy_interval": %d}`,
		int(c.opts.HeartbeatInterval/time.Second), int(c.opts.UnhealthyInterval/time.Second))
	if c.opts.HeartbeatInterval > 0 || c.opts.UnhealthyInterval > 0 {
		if err := c.Patch(patch); err != nil {
			return err
		}
	}
	if _, err := c.Store.SetShards(c.opts.Shards); err != nil {
		return err
	}
	return nil
}

// Patch applies a settings PATCH body as the HTTP API would.
func (c *Cluster) Patch(body string) error {
	_, err := c.Store.UpdateApplication(func(cur []byte) ([]byte, error) {
		return settings.PatchStored(cur, waID, []byte(body))
	})
	return err
}

// SetShards changes the shard count live.
func (c *Cluster) SetShards(n int) error {
	if e := settings.ValidateShards(n); e != nil {
		return e
	}
	_, err := c.Store.SetShards(n)
	return err
}

func (c *Cluster) nodeLogger(id string) zerolog.Logger {
	return c.opts.Logger.With().Str("node_id", id).Logger()
}

func (c *Cluster) serve(name string, register func(*grpc.Server)) (*grpc.Server, string, error) {
	return c.serveThrough(name, register, nil)
}

// serveThrough is serve with every accepted connection passed through g
// (nil: none).
func (c *Cluster) serveThrough(name string, register func(*grpc.Server), g *gate) (*grpc.Server, string, error) {
	l, addr, err := c.net.Listen(name)
	if err != nil {
		return nil, "", err
	}
	if g != nil {
		l = gatedListener{l, g}
	}
	s := grpc.NewServer()
	register(s)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); _ = s.Serve(l) }()
	return s, addr, nil
}

// StartCoreapp starts (or restarts, as a fresh process would) coreapp id and
// announces it to every master.
func (c *Cluster) StartCoreapp(id string) error {
	gwGate, inGate := newGate(), newGate()
	gwLis, gwAddr, err := c.net.Listen("gateway-for-" + id)
	if err != nil {
		return err
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); _ = c.gatewaySrv.Serve(gatedListener{gwLis, gwGate}) }()
	gw, err := c.net.Dial(gwAddr)
	if err != nil {
		gwLis.Close()
		return err
	}
	// Connect now, not on the first session: a standby's first session is
	// a failover, and a cold HTTP/2 handshake would add to its ε.
	gw.Connect()
	// The webhook poster posts over the real network: the scenario's
	// receiver is an HTTP server, not a node of the cluster.
	wh, err := poster.New(poster.Config{CoreappID: id, Coord: mcsimv1.NewCoordinationServiceClient(c.settingsConn),
		Logger: c.nodeLogger(id).With().Str("role", "coreapp").Logger(), Clock: c.opts.Clocks[id]})
	if err != nil {
		gw.Close()
		gwLis.Close()
		return err
	}
	var node *coreapp.Node
	node, err = coreapp.New(coreapp.Config{
		ID:            id,
		Webhooks:      wh,
		GatewayClient: mcsimv1.NewGatewayServiceClient(gw),
		Settings:      mcsimv1.NewSettingsServiceClient(c.settingsConn),
		Logger:        c.nodeLogger(id),
		Clock:         c.opts.Clocks[id],
		// The goodbye of mcsim coreapp (coreapp.HandOver), with the
		// cluster's made-up gossip: the masters hear the leave at once,
		// and the node keeps its sessions until the successors replaced
		// them.
		OnLeave: func(ctx context.Context, served []*mcsimv1.ServedShard) {
			coreapp.HandOver(ctx, node, served, coreapp.Handover{
				Leave: func(time.Duration) error {
					c.gossip(coreappEvent(membership.LeftGracefully, id, ""))
					return nil
				},
				MasterAlive: c.anyMaster,
				Logger:      c.nodeLogger(id).With().Str("role", "coreapp").Logger(),
			})
		},
	})
	if err != nil {
		wh.Close()
		gw.Close()
		gwLis.Close()
		return err
	}
	srv, addr, err := c.serveThrough(id, node.Register, inGate)
	if err != nil {
		wh.Close()
		gw.Close()
		gwLis.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningCoreapp{node: node, webhooks: wh, srv: srv, addr: addr, conns: []*grpc.ClientConn{gw}, cancel: cancel, done: make(chan struct{}),
		gwLis: gwLis, gwGate: gwGate, inGate: inGate}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); defer close(rc.done); _ = node.Run(ctx) }()
	c.mu.Lock()
	c.coreapps[id] = rc
	c.mu.Unlock()
	c.gossip(coreappEvent(membership.Joined, id, addr))
	return nil
}

// RejoinCoreapp tells every master that coreapp id joined again at its
// address, as gossip does after memberlist wrongly declared a live node
// dead and the node refuted (a flap on a loaded machine).
func (c *Cluster) RejoinCoreapp(id string) error {
	c.mu.Lock()
	rc := c.coreapps[id]
	c.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("inproc: no running coreapp %q", id)
	}
	c.gossip(coreappEvent(membership.Joined, id, rc.addr))
	return nil
}

// KillCoreapp makes coreapp id vanish as in a crash: its server and its
// connections close at once, without a graceful leave.
func (c *Cluster) KillCoreapp(id string) error {
	return c.removeCoreapp(id, nil)
}

// StopCoreapp stops coreapp id gracefully (rule 5: its shards are handed
// over at once).
func (c *Cluster) StopCoreapp(ctx context.Context, id string) error {
	return c.removeCoreapp(id, func(n *coreapp.Node) error { return n.Stop(ctx) })
}

// removeCoreapp takes coreapp id out of the cluster: first the optional
// goodbye, then its server, its connections and its loop.
func (c *Cluster) removeCoreapp(id string, goodbye func(*coreapp.Node) error) error {
	c.mu.Lock()
	rc := c.coreapps[id]
	delete(c.coreapps, id)
	c.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("inproc: no running coreapp %q", id)
	}
	var err error
	if goodbye != nil {
		err = goodbye(rc.node)
	}
	rc.inGate.closeAll()
	rc.gwGate.closeAll()
	rc.srv.Stop()
	for _, conn := range rc.conns {
		conn.Close()
	}
	rc.gwLis.Close()
	rc.cancel()
	<-rc.done
	// Last, as a process's memory goes: callbacks it did not keep
	// (callback_persist false) are lost here.
	rc.webhooks.Close()
	return err
}

// Webhooks returns the webhook poster of the running coreapp id (nil if
// none): the sessions' status handler, and what a scenario reads the
// coreapp's pending callbacks from.
func (c *Cluster) Webhooks(id string) *poster.Poster {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc := c.coreapps[id]; rc != nil {
		return rc.webhooks
	}
	return nil
}

// Coreapp returns the running coreapp id (nil if none), for fault hooks.
func (c *Cluster) Coreapp(id string) *coreapp.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc := c.coreapps[id]; rc != nil {
		return rc.node
	}
	return nil
}

// StartMaster starts master id and tells it about every running coreapp.
func (c *Cluster) StartMaster(id string) error { return c.startMaster(id, true, nil) }

// StartMasterSeeing starts master id and tells it only about the listed
// coreapps, as when gossip has not yet shown it the others (a master that
// joined before them can wait a push-pull interval to hear of them).
// Coreapps started later are announced to it as to every master.
func (c *Cluster) StartMasterSeeing(id string, coreapps ...string) error {
	return c.startMaster(id, false, coreapps)
}

// startMaster starts master id and announces the running coreapps to it:
// all of them, or those in seeing.
func (c *Cluster) startMaster(id string, all bool, seeing []string) error {
	var observe func(time.Time, failover.Action)
	if c.opts.Observe != nil {
		observe = func(at time.Time, a failover.Action) { c.opts.Observe(id, at, a) }
	}
	storeGate := newGate()
	storeLis, storeAddr, err := c.net.Listen("settings-for-" + id)
	if err != nil {
		return err
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); _ = c.settingsSrv.Serve(gatedListener{storeLis, storeGate}) }()
	storeConn, err := c.net.Dial(storeAddr)
	if err != nil {
		storeLis.Close()
		return err
	}
	node, err := master.New(master.Config{
		ID:             id,
		Address:        id,
		Settings:       mcsimv1.NewSettingsServiceClient(storeConn),
		Coordination:   mcsimv1.NewCoordinationServiceClient(storeConn),
		Dial:           c.net.Dial,
		LeaseTTL:       c.opts.LeaseTTL,
		RenewInterval:  c.opts.RenewInterval,
		ExpectCoreapps: c.opts.Coreapps,
		Logger:         c.nodeLogger(id),
		Observe:        observe,
		Clock:          c.opts.Clocks[id],
	})
	if err != nil {
		storeConn.Close()
		storeLis.Close()
		return err
	}
	srv, _, err := c.serve(id, node.Register)
	if err != nil {
		storeConn.Close()
		storeLis.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	rm := &runningMaster{node: node, srv: srv, cancel: cancel, done: make(chan struct{}),
		storeLis: storeLis, storeConn: storeConn, storeGate: storeGate}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); defer close(rm.done); _ = node.Run(ctx) }()
	c.mu.Lock()
	c.masters[id] = rm
	ids := sortedKeys(c.coreapps)
	if !all {
		ids = slices.DeleteFunc(ids, func(cid string) bool { return !slices.Contains(seeing, cid) })
	}
	addrs := make([]string, len(ids))
	for i, cid := range ids {
		addrs[i] = c.coreapps[cid].addr
	}
	c.mu.Unlock()
	for i, cid := range ids {
		node.Gossip(coreappEvent(membership.Joined, cid, addrs[i]))
	}
	return nil
}

// Master returns the running master id (nil if none).
func (c *Cluster) Master(id string) *master.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rm := c.masters[id]; rm != nil {
		return rm.node
	}
	return nil
}

// KillMaster stops master id abruptly: no lease release, no goodbye.
func (c *Cluster) KillMaster(id string) error {
	rm, err := c.takeMaster(id)
	if err != nil {
		return err
	}
	rm.srv.Stop()
	rm.node.Crash()
	rm.cancel()
	<-rm.done
	rm.closeStoreLink()
	return nil
}

// closeStoreLink closes the master's own connection to the store once it
// has stopped (a graceful stop releases the lease over it first).
func (rm *runningMaster) closeStoreLink() {
	rm.storeConn.Close()
	rm.storeLis.Close()
	rm.storeGate.closeAll()
}

// StopMaster stops master id gracefully, as SIGTERM would: a primary
// releases the lease on the way out, then leaves the cluster, and the
// other masters hear of the leave (as from gossip) and try for the lease
// at once.
func (c *Cluster) StopMaster(id string) error {
	rm, err := c.takeMaster(id)
	if err != nil {
		return err
	}
	rm.cancel()
	<-rm.done
	rm.srv.Stop()
	rm.closeStoreLink()
	c.gossip(membership.Event{Kind: membership.LeftGracefully, Node: membership.Node{ID: id, Role: membership.RoleMaster}})
	return nil
}

// takeMaster removes master id from the cluster's list and returns it for
// the caller to stop.
func (c *Cluster) takeMaster(id string) (*runningMaster, error) {
	c.mu.Lock()
	rm := c.masters[id]
	delete(c.masters, id)
	c.mu.Unlock()
	if rm == nil {
		return nil, fmt.Errorf("inproc: no running master %q", id)
	}
	return rm, nil
}

// FreezeMaster pauses master id's loop for d, as SIGSTOP then SIGCONT
// would. It returns at once; the pause starts when the loop takes it.
func (c *Cluster) FreezeMaster(id string, d time.Duration) error {
	m := c.Master(id)
	if m == nil {
		return fmt.Errorf("inproc: no running master %q", id)
	}
	m.Freeze(d)
	return nil
}

// Coordination is a client of the settings service's lease and shard-map
// service, for tests that act as a (stale) master would.
func (c *Cluster) Coordination() mcsimv1.CoordinationServiceClient {
	return mcsimv1.NewCoordinationServiceClient(c.settingsConn)
}

func (c *Cluster) forMasters(f func(*master.Node)) {
	c.mu.Lock()
	var ms []*master.Node
	for _, id := range sortedKeys(c.masters) {
		ms = append(ms, c.masters[id].node)
	}
	c.mu.Unlock()
	for _, m := range ms {
		f(m)
	}
}

// gossip tells every master what the gossip cluster would tell it: the
// in-process cluster has no membership, so it makes up the events a real
// one delivers, and each master decides what they mean as the mcsim master
// process does (master.Node.Gossip).
func (c *Cluster) gossip(ev membership.Event) {
	c.forMasters(func(m *master.Node) { m.Gossip(ev) })
}

// anyMaster says whether a master runs, as a gossip member would see it.
func (c *Cluster) anyMaster() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.masters) > 0
}

// coreappEvent is the gossip event about coreapp id at gRPC address addr.
func coreappEvent(kind membership.EventKind, id, addr string) membership.Event {
	return membership.Event{Kind: kind, Node: membership.Node{ID: id, Role: membership.RoleCoreapp, GRPCAddr: addr}}
}

// GatewayLog returns the gateway's whole event log.
func (c *Cluster) GatewayLog() []*mcsimv1.GatewayEvent { return c.Gateway.Log(0) }

// Close stops every node and the services, then closes the store.
func (c *Cluster) Close() error {
	c.mu.Lock()
	masters, coreapps := sortedKeys(c.masters), sortedKeys(c.coreapps)
	c.mu.Unlock()
	for _, id := range masters {
		_ = c.KillMaster(id)
	}
	for _, id := range coreapps {
		_ = c.KillCoreapp(id)
	}
	if c.settingsSvc != nil {
		c.settingsSvc.Shutdown()
	}
	for _, s := range []*grpc.Server{c.settingsSrv, c.gatewaySrv} {
		if s != nil {
			s.Stop()
		}
	}
	for _, conn := range []*grpc.ClientConn{c.settingsConn, c.gwConn} {
		if conn != nil {
			conn.Close()
		}
	}
	c.wg.Wait()
	return c.Store.Close()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
