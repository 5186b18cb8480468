package membership

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// memNet is an in-memory network for memberlist transports, usable inside a
// synctest bubble. Unlike memberlist.MockNetwork it never blocks a sender
// (a packet to a full, closed or cut-off node is dropped, like UDP), a dial
// to a closed or cut-off node fails, it can partition nodes, and an address
// can be taken over by a new transport (a restart).
type memNet struct {
	mu     sync.Mutex
	byAddr map[string]*memTransport
	cut    map[[2]string]bool
	deaf   map[string]bool // addresses that get no packets (gossip), only streams (push/pull)
	port   int
}

func newMemNet() *memNet {
	return &memNet{byAddr: make(map[string]*memTransport), cut: make(map[[2]string]bool), deaf: make(map[string]bool), port: 7000}
}

// newTransport returns a transport at a fresh address.
func (n *memNet) newTransport() *memTransport {
	n.mu.Lock()
	n.port++
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
	n.mu.Unlock()
	return n.transportAt(addr)
}

// transportAt returns a transport at addr, replacing any earlier one.
func (n *memNet) transportAt(addr string) *memTransport {
	t := &memTransport{
		net:      n,
		addr:     memAddr(addr),
		packetCh: make(chan *memberlist.Packet, 256),
		streamCh: make(chan net.Conn, 16),
		done:     make(chan struct{}),
	}
	n.mu.Lock()
	n.byAddr[addr] = t
	n.mu.Unlock()
	return t
}

// partition cuts every link between a node of side a and a node of side b.
func (n *memNet) partition(a, b []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			n.cut[[2]string{x, y}] = true
			n.cut[[2]string{y, x}] = true
		}
	}
}

// deafen drops every packet to addr from now on (gossip broadcasts,
// probes), while its streams (push/pull over TCP) still work: what a node
// learns then, it learns only by push/pull.
func (n *memNet) deafen(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.deaf[addr] = true
}

// heal restores every link.
func (n *memNet) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
}

// route returns the live transport at to, if from can reach it.
func (n *memNet) route(from, to string) (*memTransport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut[[2]string{from, to}] {
		return nil, fmt.Errorf("memnet: %s -> %s: partitioned", from, to)
	}
	t, ok := n.byAddr[to]
	if !ok || t.closed() {
		return nil, fmt.Errorf("memnet: %s -> %s: connection refused", from, to)
	}
	return t, nil
}

func (n *memNet) isDeaf(addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.deaf[addr]
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

type memTransport struct {
	net      *memNet
	addr     memAddr
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	once     sync.Once
	done     chan struct{}
}

var _ memberlist.NodeAwareTransport = (*memTransport)(nil)

func (t *memTransport) closed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func (t *memTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	host, port, err := splitHostPort(string(t.addr))
	if err != nil {
		return nil, 0, err
	}
	return net.ParseIP(host), port, nil
}

func (t *memTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *memTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	dest, err := t.net.route(string(t.addr), a.Addr)
	if err != nil || t.net.isDeaf(a.Addr) {
		return now, nil // lost, as UDP would be
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: t.addr, Timestamp: now}
	select {
	case dest.packetCh <- p:
	default: // receiver's buffer full: dropped
	}
	return now, nil
}

func (t *memTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *memTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *memTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dest, err := t.net.route(string(t.addr), a.Addr)
	if err != nil {
		return nil, err
	}
	local, remote := net.Pipe()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case dest.streamCh <- remote:
		return local, nil
	case <-dest.done:
	case <-t.done:
	case <-timer.C:
	}
	_ = local.Close()
	_ = remote.Close()
	return nil, errors.New("memnet: dial " + a.Addr + ": not accepted")
}

func (t *memTransport) StreamCh() <-chan net.Conn { return t.streamCh }

func (t *memTransport) Shutdown() error {
	t.once.Do(func() { close(t.done) })
	return nil
}
