package faultnet

import (
	"bytes"
	"errors"
	"net"
)

// magic opens every preamble. No protocol a node serves starts with it: an
// HTTP/2 client opens with "PRI * HTTP/2.0", and memberlist's streams with
// a message type byte below 16.
const magic = "MCSIMFN1"

// preambleMax is the longest preamble: magic, the id's length, the id.
const preambleMax = len(magic) + 1 + maxID

func encodePreamble(self string) []byte {
	b := make([]byte, 0, len(magic)+1+len(self))
	b = append(b, magic...)
	b = append(b, byte(len(self)))
	return append(b, self...)
}

type preambleState int

const (
	preamblePartial preambleState = iota // a prefix of one: read on
	preambleAbsent                       // not a preamble: pass everything through
	preambleComplete
)

// parsePreamble looks for a preamble at the start of b and, when it is
// complete, returns the id it carries and the bytes after it.
func parsePreamble(b []byte) (id string, rest []byte, st preambleState) {
	n := min(len(b), len(magic))
	if !bytes.Equal(b[:n], []byte(magic[:n])) {
		return "", nil, preambleAbsent
	}
	if len(b) <= len(magic) {
		return "", nil, preamblePartial
	}
	end := len(magic) + 1 + int(b[len(magic)])
	if len(b) < end {
		return "", nil, preamblePartial
	}
	return string(b[len(magic)+1 : end]), b[end:], preambleComplete
}

// Listen wraps ln so that each accepted stream learns its peer from the
// dialer's preamble and applies the link to it. A stream that opens with
// anything else (a control client, grpc_health_probe) gets its bytes
// untouched and is never faulted. A stream's first Write waits for the
// client's first bytes (the peer must be known before anything is sent):
// every protocol a node serves, HTTP/2 and memberlist's streams, has the
// client speak first.
func (l *Layer) Listen(ln net.Listener) net.Listener { return &listener{Listener: ln, l: l} }

// WrapAccepted does to one accepted stream what Listen does to each.
func (l *Layer) WrapAccepted(c net.Conn) net.Conn { return newConn(c, l, "", true) }

type listener struct {
	net.Listener
	l *Layer
}

// Accept does not read the preamble: a client slow to send its first bytes
// must not stall the accept loop. The stream's first Read or Write does.
func (ln *listener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return ln.l.WrapAccepted(c), nil
}

// sniffOnce reads the start of an accepted stream to learn its peer. It
// reads at most a preamble's length and returns as soon as the bytes
// cannot be one, so a client that sent no preamble waits for nothing.
func (c *conn) sniffOnce() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rstate.Load() != readSniff {
		return
	}
	buf := c.leftover
	if buf == nil {
		buf = make([]byte, 0, preambleMax)
	}
	for {
		n, err := c.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		id, rest, st := parsePreamble(buf)
		switch {
		case st == preamblePartial && err == nil:
			continue
		case st == preamblePartial && isTimeout(err):
			// A deadline is not the end of the stream: keep what was
			// read and resume at the next Read.
			c.leftover, c.rerr = buf, err
			return
		case st == preambleComplete:
			c.peer, c.leftover = id, rest
		default:
			c.leftover = buf
		}
		c.rerr = err
		if len(c.leftover) == 0 {
			c.leftover = nil
		}
		if c.leftover == nil && c.rerr == nil {
			c.rstate.Store(readDirect)
		} else {
			c.rstate.Store(readLeftover)
		}
		return
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readSlow serves a Read before the stream is read directly: the sniff,
// then what it read past the preamble, then the error it met.
func (c *conn) readSlow(p []byte) (int, error) {
	c.sniffOnce()
	c.rmu.Lock()
	switch c.rstate.Load() {
	case readSniff:
		// The sniff stopped at a deadline; the next Read resumes it.
		err := c.rerr
		c.rerr = nil
		c.rmu.Unlock()
		return 0, c.closedErr(err)
	case readLeftover:
		if len(c.leftover) > 0 {
			n := copy(p, c.leftover)
			c.leftover = c.leftover[n:]
			if len(c.leftover) == 0 {
				c.leftover = nil
				if c.rerr == nil {
					c.rstate.Store(readDirect)
				}
			}
			c.rmu.Unlock()
			return n, nil
		}
		err := c.rerr
		c.rerr = nil
		c.rstate.Store(readDirect)
		c.rmu.Unlock()
		if err != nil {
			return 0, c.closedErr(err)
		}
	default:
		c.rmu.Unlock()
	}
	return c.Read(p)
}

func (c *conn) closedErr(err error) error {
	if err != nil && c.isClosed.Load() {
		return net.ErrClosed
	}
	return err
}
