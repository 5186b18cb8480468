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

	mu      sync.Mutex
	q       []entry
	qBytes  int
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

// entry is one Write waiting to go out.
type entry struct {
	b  []byte
	at time.Time // when it was written
	// u is the entry's share of the link's jitter (-1 to 1) and rtx the
	// retransmission delay of its losses, drawn when it was written. They
	// are kept apart from the link's latency so that a table change
	// re-times the entry under the new link.
	u   float64
	rtx time.Duration
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
	e := entry{b: append([]byte(nil), p...), at: time.Now()}
	if lk := c.link(c.l.cur.Load()); lk != nil {
		e.u, e.rtx = c.l.draw(lk)
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

// releaseAt is when e may go out under lk; hold means not until the table
// changes (a cut).
func (e *entry) releaseAt(lk *Link) (t time.Time, hold bool) {
	switch {
	case lk == nil:
		return e.at, false
	case lk.Cut:
		return time.Time{}, true
	}
	d := lk.Latency + time.Duration(e.u*float64(lk.Jitter))
	if lk.LossPercent > 0 {
		d += e.rtx
	}
	return e.at.Add(d), false
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
			c.q, c.qBytes = nil, 0
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
		rel, hold := c.q[0].releaseAt(c.link(s))
		if c.closed && !now.Before(c.linger) {
			c.werr = errLingerExpired
			continue
		}
		if hold || now.Before(rel) {
			wake := c.linger
			if !c.closed || (!hold && rel.Before(wake)) {
				wake = rel
			}
			var timerC <-chan time.Time
			if !hold || c.closed {
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
