// Package membership puts every mcsim node (settings service, masters,
// coreapps, gateway) into one gossip cluster, built on
// github.com/hashicorp/memberlist, so that masters learn which coreapps
// exist and where their gRPC servers listen without asking the settings
// service.
//
// Each node publishes its Role, gRPC address, metrics address and PID as
// memberlist metadata. Start joins the cluster; Events delivers Joined, Updated, LeftGracefully
// and Failed in order, never dropping one however slow the reader is; Members
// is the current set of alive nodes.
//
// Gossip is never what declares a coreapp unhealthy. memberlist's failure
// detector only produces Failed, which is informational: the master decides
// failures from its own gRPC heartbeats (DESIGN.md, rule 1), so a gossip
// hiccup cannot cause a false failover (rule 4). LeftGracefully is different:
// the node said goodbye itself (Leave), so the master may hand its shards
// over at once (rule 5). memberlist v0.7.0 does not tell its NotifyLeave
// callback whether a node left or died (hashicorp/memberlist#293), so Leave
// first republishes the node's metadata marked "leaving" and only then
// leaves; a peer that missed the mark reports Failed, the safe side.
//
// memberlist never contacts a node again once it considers it dead, so after
// a partition two halves of a cluster would stay apart. A rejoin loop
// remembers the address of every node ever seen, plus the seeds, and every
// RejoinInterval calls Join on those that are not alive; a healed partition
// thus heals membership within a few intervals.
//
// With a ClusterKey all gossip is encrypted and authenticated; a node with
// no key or another key cannot join (Start fails) and never appears in
// anyone's Members.
package membership

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

// Member is this process's membership in the gossip cluster. Its methods are
// safe for concurrent use.
type Member struct {
	log      zerolog.Logger
	id       string
	ml       *memberlist.Memberlist
	local    Node
	seeds    []string
	interval time.Duration
	queue    *eventQueue
	meta     *metaDelegate
	// transport is the socket transport Start made (nil when
	// Config.Transport was given); memberlist shuts it down.
	transport *netTransport

	mu sync.Mutex
	// alive is kept from memberlist's callbacks (which run under its node
	// lock) rather than read from memberlist.Members, whose *Node values
	// memberlist keeps mutating; it also keeps Members consistent with the
	// order of Events.
	alive map[string]Node
	// known maps the ID of every peer ever seen, except those that left
	// gracefully, to its last gossip address: what the rejoin loop retries
	// when the peer is not alive.
	known map[string]string

	stopOnce sync.Once
	stop     chan struct{}
	loopDone chan struct{}

	// lifecycle serialises Leave and Shutdown: memberlist panics on a
	// Leave after Shutdown, and a second UpdateNode after Leave would wait
	// out its whole timeout.
	lifecycle   sync.Mutex
	left        bool
	shutdown    bool
	shutdownErr error
}

// Start validates cfg, starts memberlist and joins the seeds in cfg.Join. If
// seeds were given and none could be contacted, Start shuts everything down
// and returns the error. The first event on Events is this node's own
// Joined.
func Start(cfg Config) (*Member, error) {
	if cfg.Node.PID == 0 {
		cfg.Node.PID = os.Getpid()
	}
	if cfg.RejoinInterval == 0 {
		cfg.RejoinInterval = DefaultRejoinInterval
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("membership: invalid config: %w", err)
	}
	metaBytes, err := encodeMeta(cfg.Node, false)
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}

	// The node's logger carries node_id and role already: adding them
	// again would write each key twice on every line.
	log := cfg.Logger
	m := &Member{
		log:      log,
		id:       cfg.Node.ID,
		seeds:    slices.Clone(cfg.Join),
		interval: cfg.RejoinInterval,
		queue:    newEventQueue(),
		meta:     &metaDelegate{},
		alive:    make(map[string]Node),
		known:    make(map[string]string),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}

	mlc := memberlistConfig(cfg.Tuning)
	mlc.Name = cfg.Node.ID
	mlc.Logger = newMemberlistLogger(log)
	if cfg.Transport != nil {
		mlc.Transport = cfg.Transport
	} else {
		host, port, _ := splitHostPort(cfg.BindAddr) // validated above
		t, err := newNetTransport(host, port, mlc.Logger, cfg.Faults)
		if err != nil {
			m.queue.close()
			return nil, fmt.Errorf("membership: starting gossip on %q: %w", cfg.BindAddr, err)
		}
		m.transport = t
		mlc.Transport = t
	}
	if cfg.AdvertiseHost != "" {
		ip, err := resolveAdvertise(cfg.AdvertiseHost)
		if err != nil {
			if m.transport != nil {
				_ = m.transport.Shutdown()
			}
			m.queue.close()
			return nil, fmt.Errorf("membership: %w", err)
		}
		// Port 0 (memberlist's default is 7946): the transport announces
		// the one it bound.
		mlc.AdvertiseAddr, mlc.AdvertisePort = ip, 0
	}
	if len(cfg.ClusterKey) > 0 {
		mlc.SecretKey = slices.Clone(cfg.ClusterKey)
		mlc.GossipVerifyIncoming = true
		mlc.GossipVerifyOutgoing = true
	}
	m.meta.set(metaBytes)
	mlc.Delegate = m.meta
	mlc.Events = eventDelegate{m: m}

	ml, err := memberlist.Create(mlc)
	if err != nil {
		if m.transport != nil {
			_ = m.transport.Shutdown()
		}
		m.queue.close()
		return nil, fmt.Errorf("membership: starting memberlist on %q: %w", cfg.BindAddr, err)
	}
	m.ml = ml

	// memberlist announced us to ourselves during Create; that NotifyJoin
	// carries the address the transport settled on (port 0 resolved).
	m.mu.Lock()
	self, ok := m.alive[cfg.Node.ID]
	m.mu.Unlock()
	if !ok {
		_ = ml.Shutdown()
		m.queue.close()
		return nil, errors.New("membership: memberlist did not report the local node alive")
	}
	m.local = self

	if len(m.seeds) > 0 {
		if _, err := ml.Join(m.seeds); err != nil {
			_ = ml.Shutdown()
			m.queue.close()
			return nil, fmt.Errorf("membership: joining seeds %v (wrong address or cluster key?): %w", m.seeds, err)
		}
		// The seeds' state named every member: the masters hear of us
		// now rather than a few gossip rounds later. A master that does
		// not answer at once (paused) delays the start by joinTellWait at
		// most; it hears of us by gossip.
		m.tell(m.peerAddrs(RoleMaster), joinTellWait)
	}
	m.log.Info().Str("gossip_addr", self.GossipAddr).Strs("seeds", m.seeds).
		Bool("encrypted", len(cfg.ClusterKey) > 0).Msg("joined gossip cluster")

	go m.rejoinLoop()
	return m, nil
}

// resolveAdvertise is host as an IP: itself, or the first address of the
// name (IPv4 first: the address peers are likeliest to route).
func resolveAdvertise(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("advertise host %q does not resolve: %v", host, err)
	}
	slices.SortStableFunc(ips, func(a, b net.IP) int {
		return cmp.Compare(boolInt(a.To4() == nil), boolInt(b.To4() == nil))
	})
	return ips[0].String(), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Events returns the membership changes in the order this node saw them,
// starting with its own Joined. Nothing is dropped while the Member runs; the
// channel is closed by Shutdown, which discards what was not yet received.
func (m *Member) Events() <-chan Event { return m.queue.out }

// Members returns the alive nodes, this one included, sorted by ID.
func (m *Member) Members() []Node {
	m.mu.Lock()
	out := make([]Node, 0, len(m.alive))
	for _, n := range m.alive {
		out = append(out, n)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// HasRole says whether any of nodes (a Members list) has the role: a
// stopping coreapp asks whether a master is still there to take its shards
// over.
func HasRole(nodes []Node, role Role) bool {
	return slices.ContainsFunc(nodes, func(n Node) bool { return n.Role == role })
}

// LocalNode returns this node, with the GossipAddr memberlist advertises.
func (m *Member) LocalNode() Node { return m.local }

// Leave announces that this node is going away and stops the rejoin loop;
// the others see LeftGracefully. It takes two rounds of direct push/pull
// exchanges, each waited for up to timeout: first the node hands every
// live peer its metadata marked "leaving" (memberlist itself does not tell
// the others a leave from a death), then it leaves and hands the masters
// and the settings service its state "left"; the other peers hear of it
// by gossip. Neither round waits for gossip, so a graceful leave reaches
// the masters in a few round trips whatever the gossip interval. Call
// Shutdown afterwards.
func (m *Member) Leave(timeout time.Duration) error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	if m.shutdown {
		return errors.New("membership: leave: already shut down")
	}
	if m.left {
		return nil
	}
	m.left = true
	m.stopRejoin()
	b, err := encodeMeta(m.local, true)
	if err != nil {
		return fmt.Errorf("membership: leave: %w", err)
	}
	m.meta.set(b)
	// UpdateNode applies the mark locally and queues its broadcast, then
	// waits until gossip has sent it a few times; that wait is skipped
	// (a near-zero timeout, whose error means only that): the push/pull
	// below carries the mark to every peer directly.
	_ = m.ml.UpdateNode(time.Nanosecond)
	// Gossip gives no order between two broadcasts: a peer may hear of the
	// leave before the "leaving" mark and report Failed, which costs the
	// cluster a whole unhealthy_interval (seen on loopback with a handful
	// of nodes). A push/pull with every live peer (memberlist's Join) hands
	// each one the marked metadata over TCP before the leave goes out.
	// Each push/pull also pulls the peer's view, which may name peers this
	// node had not heard of yet (a master that joined after it, before
	// gossip brought it here: seen on real processes, a coreapp stopped
	// 3 s after its start knew only the seed): they are told in another
	// round, else the leave below would be the first they hear of this
	// node's going, and they would report Failed.
	told := map[string]bool{}
	for range leaveRounds {
		var fresh []string
		for _, a := range m.peerAddrs() {
			if !told[a] {
				told[a] = true
				fresh = append(fresh, a)
			}
		}
		if len(fresh) == 0 {
			break
		}
		if n := m.tell(fresh, timeout); n < len(fresh) {
			m.log.Warn().Int("reached", n).Int("peers", len(fresh)).
				Msg("leave: some peers not told directly; they may report failed")
		}
	}
	// The leave itself: memberlist marks this node left and queues the
	// broadcast (again its wait for gossip is skipped), and a second
	// push/pull hands the masters and the settings service, the nodes
	// that act on a leave or report it, this node's state "left" over TCP:
	// they see it within a round trip, whatever the gossip interval. The
	// others hear it by gossip.
	if err := m.ml.Leave(time.Nanosecond); err != nil && !strings.Contains(err.Error(), "timeout") {
		return fmt.Errorf("membership: leave: %w", err)
	}
	if peers := m.peerAddrs(RoleMaster, RoleSettings); len(peers) > 0 {
		if n := m.tell(peers, timeout); n < len(peers) {
			m.log.Warn().Int("reached", n).Int("peers", len(peers)).
				Msg("leave: some masters not told directly; they hear it by gossip")
		}
	}
	m.log.Info().Msg("left gossip cluster")
	return nil
}

// Shutdown stops gossip without saying goodbye (others will eventually see
// Failed), stops the rejoin loop and closes Events. It may wait for one
// rejoin attempt in flight (at most memberlist's TCP timeout). Safe to call
// more than once.
func (m *Member) Shutdown() error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	if m.shutdown {
		return m.shutdownErr
	}
	m.shutdown = true
	m.stopRejoin()
	if err := m.ml.Shutdown(); err != nil {
		m.shutdownErr = fmt.Errorf("membership: shutdown: %w", err)
	}
	m.queue.close()
	return m.shutdownErr
}

// peerAddrs lists the gossip addresses of the live peers (not this node)
// with one of the roles, or of every live peer when no role is given.
func (m *Member) peerAddrs(roles ...Role) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.alive))
	for id, n := range m.alive {
		if id != m.id && n.GossipAddr != "" && (len(roles) == 0 || slices.Contains(roles, n.Role)) {
			out = append(out, n.GossipAddr)
		}
	}
	return out
}

// leaveRounds bounds the rounds of push/pull a Leave hands its "leaving"
// mark out in: the first reaches the peers this node knows, the second
// those it learned of from them; a third would need a peer that joined
// during the leave.
const leaveRounds = 3

// joinTellWait bounds how long Start waits for the masters to take the
// direct news of its join.
const joinTellWait = 250 * time.Millisecond

// tellParallel bounds how many push/pull exchanges tell runs at once.
const tellParallel = 8

// tell hands this node's state to each address directly: a push/pull
// exchange over TCP (memberlist's Join), all of them in parallel, instead
// of waiting for gossip to carry it. It returns how many were reached
// within timeout (0: no bound but memberlist's TCP timeout per exchange);
// exchanges still running then finish in the background.
func (m *Member) tell(addrs []string, timeout time.Duration) int {
	var reached atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	slots := make(chan struct{}, tellParallel)
	for _, a := range addrs {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			if n, err := m.ml.Join([]string{a}); n > 0 {
				reached.Add(1)
			} else {
				m.log.Debug().Err(err).Str("gossip_addr", a).Msg("direct push/pull failed")
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-done:
	case <-expired:
	}
	return int(reached.Load())
}

func (m *Member) stopRejoin() {
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.loopDone
}

// metaDelegate publishes our metadata, which changes once (Leave).
// mcsim sends no user messages over gossip, so the rest is empty.
type metaDelegate struct{ meta atomic.Pointer[[]byte] }

func (d *metaDelegate) set(b []byte) { d.meta.Store(&b) }

func (d *metaDelegate) NodeMeta(limit int) []byte {
	b := *d.meta.Load()
	if len(b) > limit { // checked in Start; memberlist would reject it
		return nil
	}
	return b
}
func (*metaDelegate) NotifyMsg([]byte)                           {}
func (*metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (*metaDelegate) LocalState(join bool) []byte                { return nil }
func (*metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// eventDelegate turns memberlist's callbacks into Events. memberlist calls
// it with its node lock held, so it only updates maps and queues.
type eventDelegate struct{ m *Member }

func (d eventDelegate) NotifyJoin(n *memberlist.Node)   { d.m.observe(Joined, n) }
func (d eventDelegate) NotifyUpdate(n *memberlist.Node) { d.m.observe(Updated, n) }
func (d eventDelegate) NotifyLeave(n *memberlist.Node)  { d.m.observe(Failed, n) }

// observe records a callback and queues its event. A departure is
// LeftGracefully if the node had announced it was leaving (or if a future
// memberlist fills in Node.State); Failed otherwise.
func (m *Member) observe(kind EventKind, mn *memberlist.Node) {
	n, leaving, err := nodeFrom(mn)
	if err != nil {
		m.log.Warn().Err(err).Str("peer", mn.Name).Msg("peer metadata unreadable; role unknown")
	}
	if kind == Failed && (leaving || mn.State == memberlist.StateLeft) {
		kind = LeftGracefully
	}
	m.mu.Lock()
	switch kind {
	case Joined, Updated:
		prev, wasAlive := m.alive[n.ID]
		if kind == Updated && wasAlive && prev == n {
			// Only the leaving flag changed: nothing for the consumer.
			m.mu.Unlock()
			return
		}
		m.alive[n.ID] = n
		if n.ID != m.id {
			m.known[n.ID] = n.GossipAddr
		}
	case LeftGracefully:
		delete(m.alive, n.ID)
		// It said goodbye: do not knock on its door every second. If it
		// comes back it joins through its own seeds.
		delete(m.known, n.ID)
	case Failed:
		delete(m.alive, n.ID)
	}
	m.mu.Unlock()
	m.queue.push(Event{Kind: kind, Node: n})

	ev := m.log.Info()
	if kind == Failed {
		ev = m.log.Warn()
	}
	ev.Str("peer", n.ID).Str("peer_role", string(n.Role)).Str("grpc_addr", n.GRPCAddr).
		Str("gossip_addr", n.GossipAddr).Stringer("event", kind).Msg("membership changed")
}
