package faultnet

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxQueued is the most a stream holds before Write blocks: a kernel send
// buffer's worth, so a writer on a cut link soon feels the cut as TCP's
// writers do, instead of queueing without bound.
const maxQueued = 4 << 20

// lingerMax bounds how long a closed stream keeps trying to deliver what it
// still holds, as the kernel keeps sending a closed socket's buffer for a
// while and then gives up.
const lingerMax = 30 * time.Second

// errLingerExpired is what a stream reports when it dropped the bytes it
// held because it was closed and they could not go out within lingerMax.
var errLingerExpired = errors.New("faultnet: closed stream dropped bytes it held past linger")

// conn is a stream through the layer. Reads are never delayed (the sender
// applies every fault); writes go straight through while the link to the
// peer is healthy and nothing is queued, and otherwise through a queue
// that one goroutine (started when needed, gone when the queue is empty)
// writes out at each entry's release time.
type conn struct {
	net.Conn
	l *Layer
	// addr is the dialed address, looked up in the book at each write;
	// peer is the accepted stream's dialer, from its preamble. Exactly one
	// of them is set once the peer is known; neither for a stream that
	// sent no preamble, which is never faulted.
	addr string
	peer string

	// rstate says what Read must do before reading the connection itself;
	// peer is written before rstate leaves readSniff.
	rstate atomic.Uint32
	rmu    sync.Mutex
	// leftover holds what the sniff read past the preamble (or everything
	// it read, when there was none); rerr is the error it met.
	leftover []byte
	rerr     error

	// busy is true while the queue has entries or the writer is writing
	// one: a write must then queue behind them to keep the stream in order.
	busy     atomic.Bool
	isClosed atomic.Bool

	mu     sync.Mutex
	q      []entry
	qBytes int
	// unsent counts the entries in q not through yet (lost, or held by a
	// cut); due is the earliest retransmission of a lost one, and judged
	// the table the held ones were last judged under.
	unsent  int
	due     time.Time
	judged  *snapshot
	running bool
	closed  bool
	linger  time.Time // when a closed stream gives up on what it holds
	werr    error     // the first failed write; every later Write returns it
	space   chan struct{}
	done    chan struct{} // closed by Close
}

const (
	readDirect   = iota // read the connection
	readSniff           // look for a preamble first
	readLeftover        // serve leftover (or rerr) first
)

// entry is one Write waiting to go out. Each transmission of it (the
// write, then each retransmission) is judged under the table in force at
// that moment: a cut holds it, the link's loss may lose it (one draw), and
// otherwise it is through. A lost entry is retransmitted at its
// retransmission timeout; one the cut held goes out again at the next
// table change. Once through, it is released the link's latency (and its
// share of the jitter) after the transmission, re-timed at each table
// change: that is why u is kept apart from the link's latency.
type entry struct {
	b []byte
	u float64 // its share of the link's jitter (-1 to 1), drawn when written
	// sent is when the transmission that got through was made; zero while
	// none has.
	sent time.Time
	// retry is when a lost entry is retransmitted; losses counts its
	// losses since it was written or last held by a cut.
	retry  time.Time
	losses int
	// heldBy is the table under which a cut held the entry (sent and retry
	// zero): it is retransmitted once another is in force.
	heldBy *snapshot
}

func newConn(raw net.Conn, l *Layer, addr string, accepted bool) *conn {
	c := &conn{Conn: raw, l: l, addr: addr, done: make(chan struct{})}
	if accepted {
		c.rstate.Store(readSniff)
	}
	return c
}

// link is the link this stream is subject to under s, nil if none.
func (c *conn) link(s *snapshot) *Link {
	if c.addr != "" {
		return s.toAddr[c.addr]
	}
	if c.peer != "" {
		return s.toPeer[c.peer]
	}
	return nil
}

func (c *conn) Write(p []byte) (int, error) {
	if c.rstate.Load() == readSniff {
		// The peer must be known before the first byte goes out, or a
		// server's first bytes (gRPC's settings frame goes out before it
		// reads the client's preface) would escape the link's faults.
		c.sniffOnce()
	}
	if c.link(c.l.cur.Load()) == nil && !c.busy.Load() {
		return c.Conn.Write(p)
	}
	return c.enqueue(p, false)
}

// enqueue queues a copy of p behind what is already queued; with force it
// does so even when the queue is full (the preamble, which must go first).
func (c *conn) enqueue(p []byte, force bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !force && c.qBytes > 0 && c.qBytes+len(p) > maxQueued && !c.closed && c.werr == nil {
		if c.space == nil {
			c.space = make(chan struct{})
		}
		space := c.space
		c.mu.Unlock()
		select {
		case <-space:
		case <-c.done:
		}
		c.mu.Lock()
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.werr != nil {
		return 0, c.werr
	}
	e := entry{b: append([]byte(nil), p...)}
	s := c.l.cur.Load()
	if lk := c.link(s); lk != nil && lk.Jitter > 0 {
		e.u = c.l.jitter()
	}
	c.transmit(&e, s, time.Now())
	if e.sent.IsZero() {
		c.unsent++
		if !e.retry.IsZero() && (c.due.IsZero() || e.retry.Before(c.due)) {
			c.due = e.retry
		}
	}
	c.q = append(c.q, e)
	c.qBytes += len(p)
	if !c.running {
		c.running = true
		c.busy.Store(true)
		go c.run()
	}
	return len(p), nil
}

// transmit judges one transmission of e, made at t, under the table s:
// held if the link is cut, lost with the link's loss (retransmitted after
// the timeout its losses have reached), or through.
func (c *conn) transmit(e *entry, s *snapshot, t time.Time) {
	lk := c.link(s)
	switch {
	case lk != nil && lk.Cut:
		// The retransmission at the heal starts over, as a new write's.
		*e = entry{b: e.b, u: e.u, heldBy: s}
	case lk != nil && e.losses < maxRetransmits && c.l.lost(lk):
		e.losses++
		e.retry, e.heldBy = t.Add(rto(e.losses)), nil
	default:
		e.sent, e.retry, e.heldBy = t, time.Time{}, nil
	}
}

// retransmit judges every retransmission due under s at now: of each lost
// entry whose timeout has passed, and of each entry a cut held under
// another table. It looks through the queue only when one may be due: at
// the earliest timeout or when the table has changed.
func (c *conn) retransmit(s *snapshot, now time.Time) {
	if c.unsent == 0 || s == c.judged && (c.due.IsZero() || now.Before(c.due)) {
		return
	}
	c.judged, c.due = s, time.Time{}
	for i := range c.q {
		e := &c.q[i]
		if !e.sent.IsZero() {
			continue
		}
		switch {
		case !e.retry.IsZero() && !now.Before(e.retry):
			c.transmit(e, s, e.retry)
		case e.retry.IsZero() && e.heldBy != s:
			c.transmit(e, s, now)
		}
		if !e.sent.IsZero() {
			c.unsent--
		} else if !e.retry.IsZero() && (c.due.IsZero() || e.retry.Before(c.due)) {
			c.due = e.retry
		}
	}
}

// releaseAt is when e may go out under lk; hold means not until a
// retransmission gets it through or the table changes.
func (e *entry) releaseAt(lk *Link) (t time.Time, hold bool) {
	switch {
	case e.sent.IsZero() || lk != nil && lk.Cut:
		return time.Time{}, true
	case lk == nil:
		return e.sent, false
	}
	return e.sent.Add(lk.Latency + time.Duration(e.u*float64(lk.Jitter))), false
}

// run writes the queue out, each entry at its release time and never
// before the one ahead of it, and returns when the queue is empty.
func (c *conn) run() {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	c.mu.Lock()
	for {
		if len(c.q) == 0 || c.werr != nil {
			c.q, c.qBytes, c.unsent, c.due = nil, 0, 0, time.Time{}
			c.running = false
			c.busy.Store(false)
			c.signalSpace()
			closeNow := c.closed
			c.mu.Unlock()
			if closeNow {
				_ = c.Conn.Close()
			}
			return
		}
		s := c.l.cur.Load()
		now := time.Now()
		c.retransmit(s, now)
		rel, hold := c.q[0].releaseAt(c.link(s))
		if c.closed && !now.Before(c.linger) {
			c.werr = errLingerExpired
			continue
		}
		if hold || now.Before(rel) {
			// Wake at the release, the next retransmission or the end of
			// the linger, whichever comes first, or at a table change.
			var wake time.Time
			for _, w := range []time.Time{rel, c.due, c.linger} {
				if !w.IsZero() && (wake.IsZero() || w.Before(wake)) {
					wake = w
				}
			}
			var timerC <-chan time.Time
			if !wake.IsZero() {
				if timer == nil {
					timer = time.NewTimer(wake.Sub(now))
				} else {
					timer.Reset(wake.Sub(now))
				}
				timerC = timer.C
			}
			done := c.done
			if c.closed {
				done = nil // already closed: it would wake the loop forever
			}
			c.mu.Unlock()
			select {
			case <-s.changed:
			case <-timerC:
			case <-done:
			}
			c.mu.Lock()
			continue
		}
		e := c.q[0]
		c.q[0] = entry{}
		c.q = c.q[1:]
		c.qBytes -= len(e.b)
		c.signalSpace()
		c.mu.Unlock()
		_, err := c.Conn.Write(e.b)
		c.mu.Lock()
		if err != nil && c.werr == nil {
			c.werr = err
		}
	}
}

func (c *conn) signalSpace() {
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
}

// Close closes the stream. What it still holds is delivered in the
// background, subject to the link, for up to lingerMax, as a kernel
// delivers a closed socket's send buffer (a peer's last answer before it
// hangs up must not be lost to a delay); readers and blocked writers are
// released at once.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.isClosed.Store(true)
	close(c.done)
	draining := c.running
	if draining {
		c.linger = time.Now().Add(lingerMax)
	}
	c.mu.Unlock()
	if draining {
		// The writer closes the connection when it is done; a reader
		// must not wait for that, and a peer that stopped reading must
		// not keep the writer past the linger.
		_ = c.Conn.SetReadDeadline(time.Now())
		_ = c.Conn.SetWriteDeadline(c.linger)
		return nil
	}
	return c.Conn.Close()
}

func (c *conn) Read(p []byte) (int, error) {
	if c.rstate.Load() != readDirect {
		return c.readSlow(p)
	}
	n, err := c.Conn.Read(p)
	if err != nil && c.isClosed.Load() {
		err = net.ErrClosed
	}
	return n, err
}
