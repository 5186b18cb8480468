package faultnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test vocabulary: two nodes, a and b, each with its layer, and the
// book every table carries. Streams run over net.Pipe, which blocks
// durably, so inside a synctest bubble time only moves when every
// goroutine waits: an arrival's time is exactly when the layer released it.

const (
	addrA = "10.0.0.1:7000"
	addrB = "10.0.0.2:7000"
)

var testBook = map[string][]string{"a": {addrA}, "b": {addrB}}

// lingerAtEnd lets virtual time run past the linger of streams closed
// while holding bytes: a bubble's clock stops when its test function
// returns, and Test fails while their writers still wait. Call it first,
// so that it runs after every other cleanup.
func lingerAtEnd(t *testing.T) {
	t.Cleanup(func() { time.Sleep(lingerMax + time.Second) })
}

// pair is a stream a dialed to b, seen from both ends.
type pair struct {
	a, b net.Conn // a's end (dialed), b's end (accepted)
}

// openPair dials b from a through a's layer over a pipe, and wraps b's
// end as b's listener would.
func openPair(t *testing.T, la, lb *Layer) pair {
	t.Helper()
	ca, cb := net.Pipe()
	dial := la.WrapDial(func(context.Context, string, string) (net.Conn, error) { return ca, nil })
	a, err := dial(t.Context(), "tcp", addrB)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	b := lb.WrapAccepted(cb)
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return pair{a: a, b: b}
}

// arrival is one Read's worth of bytes, when it was read.
type arrival struct {
	at   time.Duration // since the recorder started
	data string
}

// recorder reads a stream until it ends and keeps what arrived when. Each
// pipe Write arrives as one Read, so each arrival is one release of the
// layer.
type recorder struct {
	mu    sync.Mutex
	got   []arrival
	err   error
	ended chan struct{}
}

func record(c net.Conn, start time.Time) *recorder {
	r := &recorder{ended: make(chan struct{})}
	go func() {
		defer close(r.ended)
		buf := make([]byte, 1<<16)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				r.mu.Lock()
				r.got = append(r.got, arrival{at: time.Since(start), data: string(buf[:n])})
				r.mu.Unlock()
			}
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				return
			}
		}
	}()
	return r
}

// take returns what arrived since the last take.
func (r *recorder) take() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// parseLinks reads one link a line: "a>b cut latency=400ms jitter=100ms
// loss=10".
func parseLinks(lines string) ([]Link, error) {
	var out []Link
	for line := range strings.Lines(lines) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		from, to, ok := strings.Cut(f[0], ">")
		if !ok {
			return nil, fmt.Errorf("link %q: want from>to", f[0])
		}
		lk := Link{From: from, To: to}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "cut":
				lk.Cut = true
			case "latency":
				lk.Latency, err = time.ParseDuration(v)
			case "jitter":
				lk.Jitter, err = time.ParseDuration(v)
			case "loss":
				lk.LossPercent, err = strconv.ParseFloat(v, 64)
			default:
				err = errors.New("unknown")
			}
			if err != nil {
				return nil, fmt.Errorf("link %q: %s: %v", line, kv, err)
			}
		}
		out = append(out, lk)
	}
	return out, nil
}

// mustSet sets the same table on every layer, as the runner does.
func mustSet(t *testing.T, links string, layers ...*Layer) {
	t.Helper()
	lk, err := parseLinks(links)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if err := l.Set(Table{Links: lk, Book: testBook, Seed: 1}); err != nil {
			t.Fatalf("%s: Set: %v", l.Self(), err)
		}
	}
}

// readAll reads n bytes or fails the test.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return string(buf)
}

// acceptOne accepts one stream in the background: an in-memory dial
// waits for its Accept.
func acceptOne(t *testing.T, ln net.Listener) <-chan net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}
