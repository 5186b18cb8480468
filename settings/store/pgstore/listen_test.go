package pgstore_test

import (
	"bytes"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcsim/mcsim/settings/store/pgstore"
	"github.com/mcsim/mcsim/settings/store/pgstore/pgtest"
	"github.com/mcsim/mcsim/settings/store/storetest"
)

// TestChangeWhileOpeningIsSeen: another process commits a change while
// this one is between its two start-up steps (subscribing and reading the
// state). Latest shows it without any further change: it is in the read
// (LISTEN came first) or announced to the listener. Reading first and
// listening second would miss it until the next change.
func TestChangeWhileOpeningIsSeen(t *testing.T) {
	dsn := pgtest.Schema(t)
	other, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s, err := pgstore.OpenAfterListen(dsn, pgstore.Options{}, func() {
		if _, err := other.UpdateApplication(storetest.Bump); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, changed := s.Latest()
	if st.Revision == 1 {
		return
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatalf("Latest stayed at revision %d: the change committed while opening was missed", st.Revision)
	}
	if st, _ := s.Latest(); st.Revision != 1 {
		t.Fatalf("Latest = revision %d, want 1", st.Revision)
	}
}

// TestSilentlyDeadListenerIsReplaced: the listening connection stops
// carrying anything in either direction without being closed (a partition,
// a crashed host: no FIN, no RST, so no error ever reaches the waiting
// read). The listener finds out by pinging after a quiet slice, reconnects
// and re-reads, so B's watchers see A's change; waiting for the next
// notification alone would wait until TCP gave up, minutes later.
func TestSilentlyDeadListenerIsReplaced(t *testing.T) {
	dsn := pgtest.Schema(t)
	p := newBlackHoleProxy(t, dsn)
	a, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := pgstore.OpenListenChecks(p.dsn, pgstore.Options{}, 200*time.Millisecond, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	p.blackHoleListeners() // only B's LISTEN connection; its pool still works
	_, changed := b.Latest()
	st, err := a.UpdateApplication(storetest.Bump)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("B's watcher never saw A's change: its dead listening connection was never replaced")
	}
	if got, _ := b.Latest(); got.Revision != st.Revision {
		t.Fatalf("B's Latest = revision %d, want %d", got.Revision, st.Revision)
	}
}

// blackHoleProxy forwards TCP connections to the database and can make
// every connection that sent LISTEN go silent: bytes in either direction
// are dropped, the sockets stay open.
type blackHoleProxy struct {
	dsn string // dsn through the proxy

	mu        sync.Mutex
	listeners []*proxied // connections that sent LISTEN
}

type proxied struct{ dead atomic.Bool }

func newBlackHoleProxy(t *testing.T, dsn string) *blackHoleProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String()
	p := &blackHoleProxy{dsn: u.String()}
	var conns sync.WaitGroup
	var open []net.Conn
	var openMu sync.Mutex
	track := func(c net.Conn) { openMu.Lock(); open = append(open, c); openMu.Unlock() }
	t.Cleanup(func() {
		_ = ln.Close()
		openMu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		openMu.Unlock()
		conns.Wait()
	})
	conns.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			track(client)
			track(server)
			pc := &proxied{}
			conns.Go(func() { p.pipe(pc, server, client, true) })
			conns.Go(func() { p.pipe(pc, client, server, false) })
		}
	})
	return p
}

// pipe copies from src to dst until either closes, dropping what passes
// once pc is dead; fromClient marks the connection as a listener when
// it sends LISTEN.
func (p *blackHoleProxy) pipe(pc *proxied, dst, src net.Conn, fromClient bool) {
	defer func() { _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if fromClient && bytes.Contains(buf[:n], []byte("LISTEN ")) {
			p.mu.Lock()
			p.listeners = append(p.listeners, pc)
			p.mu.Unlock()
		}
		if pc.dead.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *blackHoleProxy) blackHoleListeners() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.listeners {
		pc.dead.Store(true)
	}
}

// TestRelistenBacksOffWhenTheReadFails: the listener's connection is lost
// and every reconnect's LISTEN works but the read after it fails (here the
// state table is gone). The wait between attempts still doubles (0.1, 0.2,
// 0.4, 0.8 s), so the fifth attempt comes at least 1.5 s after the first;
// retrying at the first backoff each time would make ten a second.
func TestRelistenBacksOffWhenTheReadFails(t *testing.T) {
	dsn := pgtest.Schema(t)
	const attempts = 5
	var (
		mu    sync.Mutex
		times []time.Time
		fifth = make(chan struct{})
	)
	s, err := pgstore.OpenOnRelisten(dsn, pgstore.Options{}, func() {
		mu.Lock()
		defer mu.Unlock()
		if times = append(times, time.Now()); len(times) == attempts {
			close(fifth)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exec(t, dsn, `ALTER TABLE mcsim_state RENAME TO mcsim_state_gone`)
	pgtest.TerminateConnections(t, dsn)
	select {
	case <-fifth:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener stopped reconnecting")
	}
	mu.Lock()
	defer mu.Unlock()
	if spread := times[attempts-1].Sub(times[0]); spread < 1400*time.Millisecond {
		t.Fatalf("%d reconnects within %s, want the backoff to double (0.1+0.2+0.4+0.8 = 1.5 s at least)", attempts, spread.Round(time.Millisecond))
	}
}
