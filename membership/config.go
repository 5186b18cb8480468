package membership

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/internal/loopback"
)

// Role is what kind of mcsim node a member is. Masters look for RoleCoreapp.
type Role string

// The roles of mcsim nodes.
const (
	RoleSettings Role = "settings"
	RoleMaster   Role = "master"
	RoleCoreapp  Role = "coreapp"
	RoleGateway  Role = "gateway"
)

func (r Role) valid() bool {
	switch r {
	case RoleSettings, RoleMaster, RoleCoreapp, RoleGateway:
		return true
	}
	return false
}

// Node is one member of the gossip cluster as the others see it.
type Node struct {
	// ID is the memberlist node name; it must be unique in the cluster. A
	// process restarted with the same ID is the same logical node.
	ID string
	// Role says what the node is.
	Role Role
	// GRPCAddr is where the node serves gRPC (host:port); empty if it
	// serves none.
	GRPCAddr string
	// GossipAddr is the host:port memberlist advertises. It is set by the
	// package (from the transport), never read from Config.Node.
	GossipAddr string
	// PID is the process id, for the cluster tooling (kill, pause). Zero in
	// Config.Node means os.Getpid().
	PID int
	// MetricsAddr is the host:port where the node serves HTTP /metrics;
	// empty if it serves none. The health view links to it.
	MetricsAddr string
}

// Tuning picks memberlist's timings.
type Tuning string

const (
	// TuningLAN is memberlist's DefaultLANConfig: for nodes on a real
	// network. The zero Tuning means TuningLAN.
	TuningLAN Tuning = "lan"
	// TuningLocal is for clusters on one host (loopback) and tests.
	// Push/pull runs every second (memberlist stretches it above 32 nodes)
	// and probes every 500 ms, several times more often than on a LAN, so
	// views converge within a second or so of a start and a crash is seen
	// within about 3 s; gossip runs at the LAN pace (200 ms) and nothing is
	// compressed. Joins and graceful leaves do not wait for any of it: they
	// are pushed to the masters directly (see Start and Leave).
	TuningLocal Tuning = "local"
)

// TuningFor picks the tuning for a node gossiping on bindAddr (host:port):
// TuningLocal on a loopback host, where every node is on this machine,
// TuningLAN otherwise (also when bindAddr does not parse).
func TuningFor(bindAddr string) Tuning {
	if host, _, err := net.SplitHostPort(bindAddr); err == nil && loopback.Host(host) {
		return TuningLocal
	}
	return TuningLAN
}

// DefaultRejoinInterval is how often the rejoin loop retries lost peers when
// Config.RejoinInterval is zero.
const DefaultRejoinInterval = time.Second

// Config configures one member. Only Node.ID, Node.Role and (without a
// Transport) BindAddr are required.
type Config struct {
	// Node is this node. GossipAddr is ignored here; LocalNode reports it
	// after Start. PID 0 means os.Getpid().
	Node Node
	// BindAddr is host:port for gossip, TCP and UDP on the same port. Port 0
	// picks a free port. Ignored when Transport is set.
	BindAddr string
	// AdvertiseHost, when not empty, is the host (IP or name) other nodes
	// reach this one's gossip at, with the port bound: what a node bound
	// on every interface (0.0.0.0) announces. A name is resolved once, at
	// Start (memberlist announces an IP). Empty: the bound address, or a
	// private address of this host when bound on every interface.
	AdvertiseHost string
	// Join lists seed addresses (host:port) to join at Start. Empty for the
	// first node. At least one seed must answer or Start fails: a node that
	// cannot get in (wrong cluster key, wrong address) should say so at
	// once. Seeds are also retried by the rejoin loop whenever no live
	// member is at that address.
	Join []string
	// ClusterKey encrypts and authenticates all gossip (AES-GCM). Nil means
	// no encryption; otherwise 16, 24 or 32 bytes. See KeyFromPassphrase.
	ClusterKey []byte
	// RejoinInterval is how often to retry seeds and peers that are not
	// alive (default DefaultRejoinInterval).
	RejoinInterval time.Duration
	// Tuning picks memberlist's timings (default TuningLAN).
	Tuning Tuning
	// Logger receives this package's logs and memberlist's own (with
	// component=memberlist).
	Logger zerolog.Logger
	// Transport replaces the UDP/TCP sockets, e.g. with an in-memory
	// network in tests. Nil means real sockets on BindAddr.
	Transport memberlist.NodeAwareTransport
	// Faults is the node's fault layer (internal/faultnet's Layer), which
	// the socket transport sends every packet and opens every stream
	// through, and wraps every stream it accepts with, so that the
	// scenario runner's partitions, delays and loss reach gossip as they
	// reach gRPC. Nil means no layer. Only with the socket transport: a
	// Transport given is used as it is.
	Faults Faults
}

// Faults is what the socket transport needs of a fault layer; faultnet's
// Layer has it. It is defined here so that membership does not depend on
// the fault layer's package.
type Faults interface {
	// DialContext opens a stream to addr as the peer there should see
	// it (the layer announces this node first).
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// WrapAccepted wraps a stream the listener accepted.
	WrapAccepted(net.Conn) net.Conn
	// SendPacket sends b to addr by calling send now, later or never.
	SendPacket(addr string, b []byte, send func([]byte) error) error
}

// KeyFromPassphrase turns the CLI's --cluster-key passphrase into a 32-byte
// AES key (SHA-256 of the passphrase), so every node given the same phrase
// gets the same key. The empty passphrase gives nil: no encryption.
func KeyFromPassphrase(s string) []byte {
	if s == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// Validate reports every problem with the configuration; it changes nothing.
func (c Config) Validate() error {
	var errs []error
	if c.Node.ID == "" {
		errs = append(errs, errors.New("Node.ID: must not be empty"))
	}
	if !c.Node.Role.valid() {
		errs = append(errs, fmt.Errorf("Node.Role: must be %q, %q, %q or %q, got %q",
			RoleSettings, RoleMaster, RoleCoreapp, RoleGateway, c.Node.Role))
	}
	if c.Node.GRPCAddr != "" {
		if _, _, err := splitHostPort(c.Node.GRPCAddr); err != nil {
			errs = append(errs, fmt.Errorf("Node.GRPCAddr: must be host:port, got %q: %v", c.Node.GRPCAddr, err))
		}
	}
	if c.Node.MetricsAddr != "" {
		if _, _, err := splitHostPort(c.Node.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("Node.MetricsAddr: must be host:port, got %q: %v", c.Node.MetricsAddr, err))
		}
	}
	if c.Node.PID < 0 {
		errs = append(errs, fmt.Errorf("Node.PID: must be >= 0, got %d", c.Node.PID))
	}
	if c.Transport != nil && c.Faults != nil {
		errs = append(errs, errors.New("Faults: only with the socket transport (Transport must be nil)"))
	}
	if c.Transport == nil {
		if _, _, err := splitHostPort(c.BindAddr); err != nil {
			errs = append(errs, fmt.Errorf("BindAddr: must be host:port (port 0 picks one), got %q: %v", c.BindAddr, err))
		}
	}
	for i, s := range c.Join {
		if _, _, err := splitHostPort(s); err != nil {
			errs = append(errs, fmt.Errorf("Join[%d]: must be host:port, got %q: %v", i, s, err))
		}
	}
	switch len(c.ClusterKey) {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, fmt.Errorf("ClusterKey: must be 16, 24 or 32 bytes (or none), got %d bytes", len(c.ClusterKey)))
	}
	if c.RejoinInterval < 0 {
		errs = append(errs, fmt.Errorf("RejoinInterval: must be >= 0 (0 means %v), got %v", DefaultRejoinInterval, c.RejoinInterval))
	}
	switch c.Tuning {
	case "", TuningLAN, TuningLocal:
	default:
		errs = append(errs, fmt.Errorf("Tuning: must be %q or %q, got %q", TuningLAN, TuningLocal, c.Tuning))
	}
	if len(errs) == 0 {
		if _, err := encodeMeta(c.Node, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func splitHostPort(s string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number in 0..65535", portStr)
	}
	return host, port, nil
}

// memberlistConfig builds memberlist's configuration for the tuning. The
// delegates, name, addresses and key are filled in by Start.
func memberlistConfig(t Tuning) *memberlist.Config {
	var c *memberlist.Config
	switch t {
	case TuningLocal:
		c = memberlist.DefaultLocalConfig()
		// Probes only detect crashes, and a crash only makes gossip report
		// Failed, which nothing acts on (the heartbeat rule decides; mcsim
		// status shows it as "failed since"). A probe every second (each
		// node pings one peer and answers about as many) declares a crashed
		// node dead within about 5 s with 36 nodes, and lets a process
		// restarted under the same ID back soon after (DeadNodeReclaimTime).
		c.ProbeInterval = time.Second
		c.ProbeTimeout = 100 * time.Millisecond
		// Gossip only carries news (joins, leaves, suspicions), and the news
		// that must be fast does not wait for it: a node's join and its
		// graceful leave are pushed to the masters directly (Start,
		// Leave). Twice a second is enough for the rest, and an idle node
		// wakes 2 times a second for it instead of memberlist's 20.
		c.GossipInterval = 500 * time.Millisecond
		// Gossip can miss a node that joined while the others were still
		// joining; the full-state push-pull repairs that. Joins reach the
		// masters directly and a new primary dials the stored owners, so
		// nothing waits for this repair: every 3 s (each is a TCP exchange
		// of the whole 36-node state) instead of every second.
		c.PushPullInterval = 3 * time.Second
		c.GossipToTheDeadTime = 5 * time.Second
		c.TCPTimeout = time.Second
		// A restarted process (same ID, new port) takes its name back as
		// soon as the old one is declared dead or left. With a longer
		// reclaim time its join bounces ("conflicting address") and the
		// masters learn its new address only at the next push-pull, seconds
		// later: a restarted standby that nobody can heartbeat.
		c.DeadNodeReclaimTime = 10 * time.Millisecond
		// Compression buys nothing on loopback, and memberlist's costs a
		// fresh LZW table (64 KiB) per packet sent: it was half of an idle
		// node's allocations. Peers still read compressed packets.
		c.EnableCompression = false
	default:
		c = memberlist.DefaultLANConfig()
		// As on loopback, a restarted process (same ID, new port) takes its
		// name back as soon as the old one is declared dead. Its own join
		// is refused while the old one still looks alive, so its new
		// address reaches the others only with a later push-pull: at
		// memberlist's LAN pace (30 s) a restarted coreapp stayed unseen,
		// a standby nobody heartbeats, for half a minute (found by the
		// network namespace test). Every 3 s, as on loopback; memberlist
		// stretches it above 32 nodes.
		c.DeadNodeReclaimTime = 10 * time.Millisecond
		c.PushPullInterval = 3 * time.Second
	}
	return c
}

// meta is what a node publishes in memberlist's NodeMeta. ID and gossip
// address are not in it: memberlist already carries them.
// Leaving is the node's announcement, made by Leave just before
// memberlist's own leave, that it is going away on purpose: memberlist
// v0.7.0 does not tell NotifyLeave whether a node left or died (its
// Node.State is always StateAlive there; hashicorp/memberlist#293), so this
// flag is how the others tell LeftGracefully from Failed.
type meta struct {
	Role     Role   `json:"role"`
	GRPCAddr string `json:"grpc_addr,omitempty"`
	PID      int    `json:"pid,omitempty"`
	Metrics  string `json:"metrics_addr,omitempty"`
	Leaving  bool   `json:"leaving,omitempty"`
}

func encodeMeta(n Node, leaving bool) ([]byte, error) {
	b, err := json.Marshal(meta{Role: n.Role, GRPCAddr: n.GRPCAddr, PID: n.PID, Metrics: n.MetricsAddr, Leaving: leaving})
	if err != nil {
		return nil, fmt.Errorf("Node: encoding metadata: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("Node: metadata is %d bytes encoded, memberlist allows at most %d (shorten GRPCAddr)",
			len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// nodeFrom converts memberlist's view of a node and reports whether it
// announced that it is leaving. Metadata that does not decode (a foreign
// memberlist node) leaves Role empty rather than hiding the node.
func nodeFrom(n *memberlist.Node) (node Node, leaving bool, err error) {
	node = Node{ID: n.Name, GossipAddr: n.Address()}
	if len(n.Meta) == 0 {
		return node, false, fmt.Errorf("node %q has no metadata", n.Name)
	}
	var m meta
	if err := json.Unmarshal(n.Meta, &m); err != nil {
		return node, false, fmt.Errorf("node %q: bad metadata %q: %w", n.Name, n.Meta, err)
	}
	node.Role, node.GRPCAddr, node.PID, node.MetricsAddr = m.Role, m.GRPCAddr, m.PID, m.Metrics
	return node, m.Leaving, nil
}
