package faultnet

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/test/bufconn"
)

// sendMany sends n datagrams from l to b and returns which went out (now
// or later).
func sendMany(t *testing.T, l *Layer, n int) []bool {
	t.Helper()
	sent := make([]bool, n)
	for i := range n {
		if err := l.SendPacket(addrB, []byte{byte(i)}, func([]byte) error { sent[i] = true; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return sent
}

func count(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// Datagrams under loss are dropped in about the share asked for, and the
// choice repeats with the seed: same seed, same drops; another seed,
// other drops.
func TestDatagramLossIsSeeded(t *testing.T) {
	const n = 20000
	run := func(seed int64) []bool {
		l := New("a")
		if err := l.Set(Table{Links: []Link{{From: "a", To: "b", LossPercent: 30}}, Book: testBook, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		return sendMany(t, l, n)
	}
	first, again, other := run(7), run(7), run(8)
	dropped := 100 * float64(n-count(first)) / n
	if dropped < 28 || dropped > 32 {
		t.Errorf("dropped %.1f%% of datagrams, want about 30%%", dropped)
	}
	if !reflect.DeepEqual(first, again) {
		t.Error("the same seed dropped other datagrams")
	}
	if reflect.DeepEqual(first, other) {
		t.Error("another seed dropped the same datagrams")
	}
}

// A cut drops every datagram to the peer and none to others; no link
// sends at once; a delay sends a copy later (the caller may reuse its
// buffer), and datagrams under jitter may overtake each other, as UDP's do.
func TestDatagramCutAndDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New("a")
		mustSet(t, "a>b cut", l)
		if got := count(sendMany(t, l, 100)); got != 0 {
			t.Errorf("a cut let %d of 100 datagrams through", got)
		}
		var toA int
		_ = l.SendPacket(addrA, []byte("x"), func([]byte) error { toA++; return nil })
		_ = l.SendPacket("10.9.9.9:1", []byte("x"), func([]byte) error { toA++; return nil })
		if toA != 2 {
			t.Errorf("datagrams to unfaulted addresses: %d of 2 sent", toA)
		}

		mustSet(t, "a>b latency=400ms jitter=100ms", l)
		start := time.Now()
		type got struct {
			i  byte
			at time.Duration
		}
		var mu sync.Mutex // AfterFunc's goroutines send
		var arrived []got
		buf := make([]byte, 1)
		for i := range 50 {
			buf[0] = byte(i)
			_ = l.SendPacket(addrB, buf, func(b []byte) error {
				mu.Lock()
				defer mu.Unlock()
				arrived = append(arrived, got{b[0], time.Since(start)})
				return nil
			})
			buf[0] = 255 // the layer must have copied
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Second)
		mu.Lock()
		defer mu.Unlock()
		if len(arrived) != 50 {
			t.Fatalf("%d of 50 delayed datagrams sent", len(arrived))
		}
		reordered := false
		for k, a := range arrived {
			if a.i == 255 {
				t.Fatal("a delayed datagram was not copied")
			}
			if d := a.at - time.Duration(a.i)*10*time.Millisecond; d < 300*time.Millisecond || d > 500*time.Millisecond {
				t.Errorf("datagram %d sent %v after SendPacket, want 300..500ms", a.i, d)
			}
			if k > 0 && a.i < arrived[k-1].i {
				reordered = true
			}
		}
		if !reordered {
			t.Error("no datagram overtook another under 100 ms of jitter")
		}
	})
}

// An accepted stream learns its peer from the preamble and applies the
// link to it; the dialer's bytes arrive without the preamble.
func TestPreambleNamesTheDialer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := New("a"), New("b")
		bl := bufconn.Listen(1 << 16)
		ln := lb.Listen(bl)
		defer ln.Close()
		dial := la.WrapDial(func(ctx context.Context, _, _ string) (net.Conn, error) { return bl.DialContext(ctx) })
		accepted := acceptOne(t, ln)
		ca, err := dial(t.Context(), "tcp", addrB)
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		cb := <-accepted
		defer cb.Close()
		if _, err := ca.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, cb, 5); got != "hello" {
			t.Fatalf("b read %q, want \"hello\"", got)
		}
		if peer := cb.(*conn).peer; peer != "a" {
			t.Fatalf("the accepted stream's peer is %q, want \"a\"", peer)
		}
		// b's answers are subject to b→a.
		mustSet(t, "b>a latency=300ms", la, lb)
		start := time.Now()
		if _, err := cb.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		readN(t, ca, 2)
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Fatalf("b's answer took %v, want the 300ms of b→a", d)
		}
	})
}

// A client that sends no preamble (grpcurl, grpc_health_probe, the
// runner's control client: an HTTP/2 preface) has its bytes passed through
// untouched and is never faulted, even with every link cut. A client that
// starts like a preamble and then is not one is passed through whole too,
// and a silent client does not stall Accept.
func TestNoPreambleIsNeverFaulted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lb := New("b")
		mustSet(t, "b>a cut\na>b cut\nb>runner cut", lb)
		bl := bufconn.Listen(1 << 16)
		ln := lb.Listen(bl)
		defer ln.Close()

		accepted := acceptOne(t, ln)
		silent, err := bl.DialContext(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		defer (<-accepted).Close()

		for _, hello := range []string{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "MCSIMxyz: not a preamble"} {
			accepted := acceptOne(t, ln)
			raw, err := bl.DialContext(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			cb := <-accepted
			defer cb.Close()
			if _, err := raw.Write([]byte(hello)); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, cb, len(hello)); got != hello {
				t.Fatalf("server read %q, want %q untouched", got, hello)
			}
			start := time.Now()
			if _, err := cb.Write([]byte("answer")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, raw, 6); got != "answer" || time.Since(start) != 0 {
				t.Fatalf("client read %q after %v, want \"answer\" at once", got, time.Since(start))
			}
		}
	})
}

// A dial waits while either direction between the two nodes is cut (a TCP
// connect needs both), succeeds when the link heals, and fails when its
// context ends first.
func TestDialWaitsForHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la := New("a")
		dialed := 0
		dial := la.WrapDial(func(context.Context, string, string) (net.Conn, error) {
			dialed++
			c, s := net.Pipe()
			go func() { _, _ = s.Read(make([]byte, 64)) }() // the preamble
			return c, nil
		})
		mustSet(t, "b>a cut", la)

		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		if _, err := dial(ctx, "tcp", addrB); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 2*time.Second {
			t.Fatalf("dial during a cut: %v after %v; want the context's deadline after 2s", err, time.Since(start))
		}

		start = time.Now()
		done := make(chan error)
		go func() {
			c, err := dial(t.Context(), "tcp", addrB)
			if err == nil {
				c.Close()
			}
			done <- err
		}()
		time.Sleep(5 * time.Second)
		if dialed != 0 {
			t.Fatal("the layer connected during a cut")
		}
		mustSet(t, "", la)
		if err := <-done; err != nil || time.Since(start) != 5*time.Second {
			t.Fatalf("dial: %v after %v; want success at the heal (5s)", err, time.Since(start))
		}
		// Other peers are not held up by the cut.
		mustSet(t, "b>a cut", la)
		if c, err := dial(t.Context(), "tcp", "10.9.9.9:1"); err != nil {
			t.Fatalf("dial to an unfaulted address: %v", err)
		} else {
			c.Close()
		}
	})
}

// Set refuses a bad table with every problem named by its field, and the
// table in force stays.
func TestSetRefusesBadTablesAndKeepsTheOld(t *testing.T) {
	l := New("a")
	good := Table{Links: []Link{{From: "a", To: "b", Latency: time.Second}}, Book: testBook, Seed: 3}
	if err := l.Set(good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		t    Table
		want []string
	}{
		{"loss", Table{Links: []Link{{}, {}, {From: "a", To: "b", LossPercent: 140}}},
			[]string{"links[2].loss_percent: 140 outside 0..100", "links[0].from: must not be empty", "links[0].to: must not be empty"}},
		{"self", Table{Links: []Link{{From: "a", To: "a", Cut: true}}}, []string{`links[0].to: "a" is the same node as from`}},
		{"duplicate", Table{Links: []Link{{From: "a", To: "b"}, {From: "a", To: "b", Cut: true}}}, []string{"links[1]: a→b is already links[0]"}},
		{"negative", Table{Links: []Link{{From: "a", To: "b", Latency: -time.Second, Jitter: -time.Millisecond}}},
			[]string{"links[0].latency_us: -1s is negative", "links[0].jitter_us: -1ms is negative"}},
		{"jitter", Table{Links: []Link{{From: "a", To: "b", Latency: time.Millisecond, Jitter: time.Second}}},
			[]string{"links[0].jitter_us: 1s is more than latency_us 1ms"}},
		{"book", Table{Book: map[string][]string{"a": {"10.0.0.1"}, "": {"10.0.0.2:1"}}},
			[]string{`book[""]: node id must not be empty`, `book["a"].addresses[0]: "10.0.0.1" is not host:port`}},
		{"shared address", Table{Book: map[string][]string{"a": {"[::ffff:10.0.0.1]:1"}, "b": {"10.0.0.1:1"}}},
			[]string{`book["b"].addresses[0]: 10.0.0.1:1 is also node "a"'s`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Set(tc.t)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !reflect.DeepEqual(l.Table(), good) {
				t.Errorf("table in force is %+v, want the old %+v", l.Table(), good)
			}
		})
	}
}

// The table in force is the layer's own copy.
func TestSetCopiesTheTable(t *testing.T) {
	l := New("a")
	tb := Table{Links: []Link{{From: "a", To: "b", Cut: true}}, Book: map[string][]string{"b": {addrB}}}
	if err := l.Set(tb); err != nil {
		t.Fatal(err)
	}
	tb.Links[0].Cut = false
	tb.Book["b"][0] = "10.9.9.9:9"
	if got := l.Table(); !got.Links[0].Cut || got.Book["b"][0] != addrB {
		t.Fatalf("the caller's later changes reached the table in force: %+v", got)
	}
}

// A preamble that arrives in pieces, or across a read deadline, is still
// recognised, and the bytes after it are read whole.
func TestPreambleInPieces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lb := New("b")
		client, server := net.Pipe()
		defer client.Close()
		cb := lb.WrapAccepted(server)
		defer cb.Close()
		go func() {
			p := encodePreamble("a")
			for _, piece := range [][]byte{p[:3], p[3:9], p[9:], []byte("data")} {
				time.Sleep(time.Second)
				_, _ = client.Write(piece)
			}
		}()
		_ = cb.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		if _, err := cb.Read(make([]byte, 8)); !isTimeout(err) {
			t.Fatalf("read across the deadline: %v, want a timeout", err)
		}
		_ = cb.SetReadDeadline(time.Time{})
		if got := readN(t, cb, 4); got != "data" {
			t.Fatalf("read %q after the preamble, want \"data\"", got)
		}
		if peer := cb.(*conn).peer; peer != "a" {
			t.Fatalf("peer %q, want \"a\"", peer)
		}
	})
}
