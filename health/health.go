// Package health builds the cluster view behind the settings service's
// GET /v1/health: every master and coreapp that gossip (membership/)
// says is alive, each asked for its own Status over gRPC at the moment of
// the request.
//
// Nothing is cached but connections: the answer must show a failover or a
// takeover within 100 ms of it happening, so every request asks every node
// again, all of them in parallel, each bounded by Config.Timeout. A node
// that hangs or is dead therefore costs one timeout, not one per node, and
// is listed as "unreachable" rather than hiding the others.
//
// Decisions where the contract is silent:
//   - The settings service and the gateway are not listed: they are not
//     nodes that serve shards or hold the lease, and have no Status RPC.
//     Members with any other role (or unreadable metadata) are skipped.
//   - An unreachable node gets role "unknown" and gateway_status
//     "disconnected", with the PID and metrics URL from its gossip
//     metadata.
//   - A node gossip lost (failed) or that left stays listed, with state
//     "failed" or "left" and since when, until it joins again: `mcsim
//     status` must show the dead, not hide them. An unreachable node
//     carries the time of its first failed Status call in a row.
//   - gRPC connections are cached by address and dropped when no alive
//     member has that address any more, and after a failed call, so a node
//     restarted on the same address is not stuck behind gRPC's reconnect
//     backoff.
package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/internal/grpcopts"
	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// DefaultTimeout bounds each node's Status call when Config.Timeout is 0.
// Status is a map read on loopback, well under a millisecond; 75 ms leaves
// room for a loaded machine and still answers a poller fast.
const DefaultTimeout = 75 * time.Millisecond

// Members is the source of the alive nodes; *membership.Member is one.
type Members interface {
	Members() []membership.Node
}

// Dialer opens a client connection to a gRPC address (host:port). It must
// not block on the connection being up (grpc.NewClient does not).
type Dialer func(addr string) (*grpc.ClientConn, error)

// Config configures an Aggregator.
type Config struct {
	// Members lists the alive nodes; required.
	Members Members
	// Dial opens connections; nil means plaintext grpc.NewClient.
	Dial Dialer
	// Timeout bounds each node's Status call (default DefaultTimeout).
	Timeout time.Duration
	// Logger receives connection failures at debug level.
	Logger zerolog.Logger
	// Events, when set, is the membership's event stream (Member.Events):
	// the Aggregator reads it to remember nodes that failed or left. It
	// must be the only reader.
	Events <-chan membership.Event
	// Now is the clock of the since times (nil: time.Now).
	Now func() time.Time
}

// gone is a node gossip no longer lists.
type gone struct {
	node  membership.Node
	state string
	since time.Time
}

// Aggregator answers health requests. Safe for concurrent use.
type Aggregator struct {
	members Members
	dial    Dialer
	timeout time.Duration
	log     zerolog.Logger

	now func() time.Time

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
	// gone and unreachableSince are keyed by Key.
	gone             map[string]gone
	unreachableSince map[string]time.Time
}

// New returns an Aggregator; Close releases its connections.
func New(cfg Config) (*Aggregator, error) {
	if cfg.Members == nil {
		return nil, errors.New("health: Config.Members is required")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("health: Config.Timeout must be >= 0 (0 means %v), got %v", DefaultTimeout, cfg.Timeout)
	}
	a := &Aggregator{
		members: cfg.Members,
		dial:    cfg.Dial,
		timeout: cfg.Timeout,
		log:     cfg.Logger,
		conns:   make(map[string]*grpc.ClientConn),
		now:     cfg.Now,

		gone:             map[string]gone{},
		unreachableSince: map[string]time.Time{},
	}
	if a.now == nil {
		a.now = time.Now
	}
	if cfg.Events != nil {
		go a.follow(cfg.Events)
	}
	if a.dial == nil {
		a.dial = func(addr string) (*grpc.ClientConn, error) {
			return grpc.NewClient(addr, append(grpcopts.Dial(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		}
	}
	if a.timeout == 0 {
		a.timeout = DefaultTimeout
	}
	return a, nil
}

// Health asks every alive master and coreapp for its Status, in parallel,
// and returns their entries keyed by Key. It fails only when ctx is done
// before it starts or the Aggregator is closed; a node that does not answer
// is an entry with Error set.
func (a *Aggregator) Health(ctx context.Context) (map[string]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var targets []membership.Node
	for _, n := range a.members.Members() {
		if n.Role == membership.RoleMaster || n.Role == membership.RoleCoreapp {
			targets = append(targets, n)
		}
	}
	if err := a.prune(targets); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	entries := make([]Entry, len(targets))
	var wg sync.WaitGroup
	for i, n := range targets {
		wg.Go(func() { entries[i] = a.query(ctx, n) })
	}
	wg.Wait()

	out := make(map[string]Entry, len(targets))
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, n := range targets {
		key := Key(n)
		e := entries[i]
		if e.State == StateUnreachable {
			since, ok := a.unreachableSince[key]
			if !ok {
				since = now
				a.unreachableSince[key] = now
			}
			e.Since = since.UTC().Format(TimeFormat)
		} else {
			delete(a.unreachableSince, key)
		}
		out[key] = e
	}
	for key, g := range a.gone {
		if _, alive := out[key]; !alive {
			out[key] = Gone(g.node, g.state, g.since)
		}
	}
	return out, nil
}

// follow remembers the masters and coreapps that fail or leave, and
// forgets them when they join again.
func (a *Aggregator) follow(events <-chan membership.Event) {
	for ev := range events {
		n := ev.Node
		if n.Role != membership.RoleMaster && n.Role != membership.RoleCoreapp {
			continue
		}
		key := Key(n)
		a.mu.Lock()
		switch ev.Kind {
		case membership.Failed:
			a.gone[key] = gone{node: n, state: StateFailed, since: a.now()}
		case membership.LeftGracefully:
			a.gone[key] = gone{node: n, state: StateLeft, since: a.now()}
		default:
			delete(a.gone, key)
			a.forgetOtherKeysOf(n)
		}
		a.mu.Unlock()
	}
}

// forgetOtherKeysOf drops the gone entry of a node id that joined again
// under another address: one node, one line.
func (a *Aggregator) forgetOtherKeysOf(n membership.Node) {
	for key := range a.gone {
		if NodeID(key) == n.ID {
			delete(a.gone, key)
		}
	}
}

// query asks one node; any failure makes it unreachable and drops its
// connection.
func (a *Aggregator) query(ctx context.Context, n membership.Node) Entry {
	if n.GRPCAddr == "" {
		return Unreachable(n, errors.New("no gRPC address in its gossip metadata"))
	}
	conn, err := a.conn(n.GRPCAddr)
	if err != nil {
		return Unreachable(n, err)
	}
	var e Entry
	if n.Role == membership.RoleMaster {
		var r *mcsimv1.MasterServiceStatusResponse
		if r, err = mcsimv1.NewMasterServiceClient(conn).Status(ctx, &mcsimv1.MasterServiceStatusRequest{}); err == nil {
			e = FromMaster(n, r)
		}
	} else {
		var r *mcsimv1.StatusResponse
		if r, err = mcsimv1.NewCoreAppServiceClient(conn).Status(ctx, &mcsimv1.StatusRequest{}); err == nil {
			e = FromCoreapp(n, r)
		}
	}
	if err != nil {
		a.log.Debug().Err(err).Str("peer", n.ID).Str("grpc_addr", n.GRPCAddr).Msg("health: status failed")
		a.drop(n.GRPCAddr, conn)
		return Unreachable(n, err)
	}
	return e
}

// conn returns the cached connection to addr, dialing one if needed.
func (a *Aggregator) conn(addr string) (*grpc.ClientConn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errors.New("health: aggregator closed")
	}
	if c, ok := a.conns[addr]; ok {
		return c, nil
	}
	c, err := a.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	a.conns[addr] = c
	return c, nil
}

// drop closes conn if it is still the cached one for addr (a concurrent
// request may have replaced it already).
func (a *Aggregator) drop(addr string, conn *grpc.ClientConn) {
	a.mu.Lock()
	if a.conns[addr] == conn {
		delete(a.conns, addr)
	} else {
		conn = nil
	}
	a.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// prune closes the connections to addresses no target has any more: the
// membership changed, and a later node on that address starts clean.
func (a *Aggregator) prune(targets []membership.Node) error {
	keep := make(map[string]bool, len(targets))
	for _, n := range targets {
		keep[n.GRPCAddr] = true
	}
	var stale []*grpc.ClientConn
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return errors.New("health: aggregator closed")
	}
	for addr, c := range a.conns {
		if !keep[addr] {
			stale = append(stale, c)
			delete(a.conns, addr)
		}
	}
	a.mu.Unlock()
	for _, c := range stale {
		_ = c.Close()
	}
	return nil
}

// Close closes every cached connection; Health fails afterwards.
func (a *Aggregator) Close() {
	a.mu.Lock()
	conns := a.conns
	a.conns, a.closed = nil, true
	a.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
