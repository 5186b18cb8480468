package faultnet

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Layer is one node's fault layer. Its methods are safe for concurrent
// use.
type Layer struct {
	self     string
	preamble []byte
	cur      atomic.Pointer[snapshot]

	// setMu orders concurrent Sets, so each closes the channel of the
	// snapshot it replaces exactly once.
	setMu sync.Mutex

	rngMu sync.Mutex
	rng   *rand.Rand
	seed  int64
}

// snapshot is a table in force, indexed for the write path: what it reads
// for every write is one atomic load and one map lookup.
type snapshot struct {
	table Table
	// toPeer holds the links from this node, by the id of their To.
	toPeer map[string]*Link
	// toAddr holds the same links by each address of their To in the book.
	toAddr map[string]*Link
	// dialBlocked holds the addresses of the peers with a cut either way
	// between them and this node: a TCP connect needs both directions.
	dialBlocked map[string]bool
	// changed is closed when this snapshot is replaced, waking every
	// writer, dialer and held stream that waits on the table.
	changed chan struct{}
}

// New returns the fault layer of the node self, with no faults. It panics
// if self is longer than 255 bytes: a preamble could not carry it.
func New(self string) *Layer {
	if len(self) > maxID {
		panic(fmt.Sprintf("faultnet: node id %q is longer than %d bytes", self, maxID))
	}
	l := &Layer{self: self, preamble: encodePreamble(self)}
	l.rng = rand.New(rand.NewPCG(0, selfHash(self)))
	l.cur.Store(l.index(Table{}))
	return l
}

// selfHash tells apart the random streams of nodes given the same seed.
func selfHash(self string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(self))
	return h.Sum64()
}

// Self is the id of the node the layer belongs to.
func (l *Layer) Self() string { return l.self }

// Set replaces the whole table at once. An invalid table is refused with
// every problem named and the table in force is kept. Bytes held or
// delayed under the old table are re-timed under the new one at once: a
// healed link delivers what it held, in order. A write lost to the loss of
// the old table goes out at its next retransmission, judged under the
// table in force then.
func (l *Layer) Set(t Table) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("faultnet: %w", err)
	}
	s := l.index(t.clone())
	l.setMu.Lock()
	defer l.setMu.Unlock()
	l.rngMu.Lock()
	// The same seed keeps the stream of choices going: the runner resends
	// the whole table on every change, and restarting the stream each time
	// would repeat the same few choices.
	if t.Seed != l.seed {
		l.seed = t.Seed
		l.rng = rand.New(rand.NewPCG(uint64(t.Seed), selfHash(l.self)))
	}
	l.rngMu.Unlock()
	old := l.cur.Swap(s)
	close(old.changed)
	return nil
}

// Table returns a copy of the table in force.
func (l *Layer) Table() Table { return l.cur.Load().table.clone() }

func (l *Layer) index(t Table) *snapshot {
	s := &snapshot{
		table:       t,
		toPeer:      make(map[string]*Link),
		toAddr:      make(map[string]*Link),
		dialBlocked: make(map[string]bool),
		changed:     make(chan struct{}),
	}
	for i := range t.Links {
		lk := &t.Links[i]
		switch {
		case lk.From == l.self:
			s.toPeer[lk.To] = lk
			for _, a := range t.Book[lk.To] {
				for _, k := range addrKeys(a) {
					s.toAddr[k] = lk
				}
			}
			if lk.Cut {
				s.block(t.Book[lk.To])
			}
		case lk.To == l.self && lk.Cut:
			s.block(t.Book[lk.From])
		}
	}
	return s
}

func (s *snapshot) block(addrs []string) {
	for _, a := range addrs {
		for _, k := range addrKeys(a) {
			s.dialBlocked[k] = true
		}
	}
}

// DialFunc dials an address, as net.Dialer.DialContext does.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// DialContext dials addr through the layer: it waits while the link
// either way between this node and the address's owner is cut (as a TCP
// connect hangs during a partition) or until ctx ends, then connects and
// sends the preamble that tells the acceptor who is calling. The returned
// connection applies the link to the owner, as the table in force names
// it at each write.
func (l *Layer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.WrapDial(defaultDial)(ctx, network, addr)
}

func defaultDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// WrapDial returns dial with the layer around it, as DialContext is
// around net.Dialer: for in-memory networks and custom dialers.
func (l *Layer) WrapDial(dial DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		for {
			s := l.cur.Load()
			if !s.dialBlocked[addr] {
				break
			}
			select {
			case <-s.changed:
			case <-ctx.Done():
				return nil, fmt.Errorf("faultnet: dial %s: link cut: %w", addr, ctx.Err())
			}
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := newConn(raw, l, addr, false)
		// Queued rather than written: on an in-memory pipe a direct write
		// would wait for the acceptor's first read, and the preamble is
		// subject to the link like any byte.
		c.enqueue(l.preamble, true)
		return c, nil
	}
}

// GRPCDialer returns DialContext in the form grpc.WithContextDialer takes.
func (l *Layer) GRPCDialer() func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return l.DialContext(ctx, "tcp", addr)
	}
}

// SendPacket sends one datagram to addr through the layer, calling send
// now, later (on a copy of b) or never: a cut drops it, loss drops it with
// the link's probability, latency and jitter send it later (so datagrams
// may reorder, as UDP's do). It returns send's error when it sends now,
// nil otherwise.
func (l *Layer) SendPacket(addr string, b []byte, send func([]byte) error) error {
	lk := l.cur.Load().toAddr[addr]
	if lk == nil {
		return send(b)
	}
	if lk.Cut {
		return nil
	}
	l.rngMu.Lock()
	lost := lk.LossPercent > 0 && l.rng.Float64()*100 < lk.LossPercent
	var u float64
	if !lost && lk.Jitter > 0 {
		u = 2*l.rng.Float64() - 1
	}
	l.rngMu.Unlock()
	if lost {
		return nil
	}
	d := lk.Latency + time.Duration(u*float64(lk.Jitter))
	if d <= 0 {
		return send(b)
	}
	cp := append([]byte(nil), b...)
	time.AfterFunc(d, func() { _ = send(cp) })
	return nil
}

// The retransmission timeout of a lost write on a stream: TCP's initial
// RTO (RFC 6298), doubled each time the retransmission is lost too, up to
// maxRTO. After maxRetransmits losses (Linux's tcp_retries2) the write goes
// through: at 100% loss that is after about eight minutes, which is as
// good as never, and Linux would have broken the connection.
const (
	initialRTO     = 200 * time.Millisecond
	maxRTO         = time.Minute
	maxRetransmits = 15
)

// rto is the timeout after a write's n-th loss (n ≥ 1).
func rto(n int) time.Duration {
	if n > 10 { // 200 ms << 9 is past maxRTO already
		return maxRTO
	}
	return min(initialRTO<<(n-1), maxRTO)
}

// jitter draws a write's share of the jitter, -1 to 1.
func (l *Layer) jitter() float64 {
	l.rngMu.Lock()
	defer l.rngMu.Unlock()
	return 2*l.rng.Float64() - 1
}

// lost draws whether one transmission on a stream under lk is lost.
func (l *Layer) lost(lk *Link) bool {
	if lk.LossPercent <= 0 {
		return false
	}
	l.rngMu.Lock()
	defer l.rngMu.Unlock()
	return l.rng.Float64()*100 < lk.LossPercent
}
