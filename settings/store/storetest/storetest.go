// Package storetest is the one behaviour suite every settings store backend
// passes (store.Backend): bbolt's settings/store and PostgreSQL's
// settings/store/pgstore run it from their tests. Multi-process tests (two
// Stores on one database) run only for a backend that allows it.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/shard"
)

// Backend describes a backend under test.
type Backend struct {
	Name string
	// New makes an empty store location for one test and returns how to
	// open it. Open may be called again after Close (a restart) and, when
	// Shared, while another Store on the location is open (another
	// settings process).
	New    func(t testing.TB) (open func() (store.Backend, error))
	Shared bool
}

// Open opens a Store on a fresh location, closed at the end of the test,
// and returns the opener too.
func (b Backend) Open(t testing.TB) (store.Backend, func() (store.Backend, error)) {
	t.Helper()
	open := b.New(t)
	s := mustOpen(t, open)
	return s, open
}

func mustOpen(t testing.TB, open func() (store.Backend, error)) store.Backend {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name   string
		shared bool
		run    func(*testing.T, Backend)
	}{
		{"new store", false, testNewStore},
		{"revision grows by one per change, not on an unchanged write", false, testRevision},
		{"fn error changes nothing", false, testFnError},
		{"Latest channel closes on change", false, testLatest},
		{"concurrent updates lose nothing", false, testConcurrentUpdates},
		{"shards", false, testShards},
		{"providers", false, testProviders},
		{"tokens", false, testTokens},
		{"lease lifecycle", false, testLease},
		{"shard map fencing", false, testShardMap},
		{"callbacks", false, testCallbacks},
		{"reopen keeps everything", false, testReopen},
		{"closed store refuses writes", false, testClosed},
		{"a change through one Store reaches the other's Latest in revision order", true, testTwoWatch},
		{"concurrent updates through two Stores lose nothing", true, testTwoUpdates},
		{"concurrent lease acquisitions through two Stores never both win", true, testTwoLease},
		{"random acquires, renewals and releases through two Stores: one holder per epoch", true, testTwoLeaseMixed},
		{"concurrent callback writes lose nothing", false, testConcurrentCallbacks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.shared && !b.Shared {
				t.Skipf("%s: one process per store", b.Name)
			}
			tc.run(t, b)
		})
	}
}

type counterDoc struct {
	N int `json:"n"`
}

// Bump is an UpdateApplication fn adding one to {"n":N} (nil counts 0).
func Bump(cur []byte) ([]byte, error) {
	var d counterDoc
	if cur != nil {
		if err := json.Unmarshal(cur, &d); err != nil {
			return nil, err
		}
	}
	d.N++
	return json.Marshal(d)
}

func counter(t testing.TB, doc []byte) int {
	t.Helper()
	var d counterDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("stored document %q: %v", doc, err)
	}
	return d.N
}

func t0() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) }

func testNewStore(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	st := s.State()
	if st.Revision != 0 || st.Application != nil || st.Shards != 1 {
		t.Fatalf("new store state = %+v, want revision 0, nil application, 1 shard", st)
	}
	if l := s.CurrentLease(); l != (store.Lease{}) {
		t.Fatalf("new store lease = %+v, want zero", l)
	}
	m, err := s.ShardMap()
	if err != nil || m.GetVersion() != 0 || len(m.GetAssignments()) != 0 {
		t.Fatalf("new store shard map = %v, %v; want empty version 0", m, err)
	}
}

func testRevision(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	for i := 1; i <= 3; i++ {
		st, err := s.UpdateApplication(Bump)
		if err != nil {
			t.Fatal(err)
		}
		if st.Revision != uint64(i) || counter(t, st.Application) != i {
			t.Fatalf("write %d: state %+v", i, st)
		}
	}
	same := func(cur []byte) ([]byte, error) { return cur, nil }
	st, err := s.UpdateApplication(same)
	if err != nil || st.Revision != 3 {
		t.Fatalf("unchanged write: %+v, %v; want revision 3", st, err)
	}
	st, err = s.UpdateApplication(func([]byte) ([]byte, error) { return nil, nil })
	if err != nil || st.Revision != 4 || st.Application != nil {
		t.Fatalf("write nil: %+v, %v; want revision 4, nil document", st, err)
	}
	if got := s.State(); got.Revision != 4 || got.Application != nil {
		t.Fatalf("State() = %+v", got)
	}
}

func testFnError(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	if _, err := s.UpdateApplication(Bump); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err := s.UpdateApplication(func([]byte) ([]byte, error) { return []byte(`{"n":99}`), boom })
	if err != boom {
		t.Fatalf("error = %v, want fn's error as is", err)
	}
	if st := s.State(); st.Revision != 1 || counter(t, st.Application) != 1 {
		t.Fatalf("state after failed fn = %+v", st)
	}
}

func testLatest(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	st, ch := s.Latest()
	select {
	case <-ch:
		t.Fatal("channel closed before any change")
	default:
	}
	if _, err := s.UpdateApplication(Bump); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("channel not closed after a change")
	}
	if next, _ := s.Latest(); next.Revision != st.Revision+1 {
		t.Fatalf("Latest after change = %d, want %d", next.Revision, st.Revision+1)
	}
}

func testConcurrentUpdates(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	const writers, each = 8, 5
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.UpdateApplication(Bump); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := s.State()
	if st.Revision != writers*each || counter(t, st.Application) != writers*each {
		t.Fatalf("after %d writes: %+v", writers*each, st)
	}
}

func testShards(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	for _, step := range []struct {
		n       int
		changed bool
		rev     uint64
	}{{4, true, 1}, {4, false, 1}, {1, true, 2}} {
		st, changed, err := s.UpdateShards(step.n)
		if err != nil || changed != step.changed || st.Revision != step.rev || st.Shards != step.n {
			t.Fatalf("UpdateShards(%d) = %+v, %v, %v; want changed %v, revision %d", step.n, st, changed, err, step.changed, step.rev)
		}
	}
	if _, err := s.SetShards(0); err == nil {
		t.Fatal("SetShards(0): no error")
	}
	if st := s.State(); st.Revision != 2 || st.Shards != 1 {
		t.Fatalf("after a refused count: %+v", st)
	}
}

func testProviders(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	must(t, s.PutProviders(map[string][]byte{"a": []byte(`{"x":1}`), "b": []byte(`{"x":2}`)}))
	must(t, s.PutProviders(map[string][]byte{"a": []byte(`{"x":3}`)}))
	if err := s.PutProviders(map[string][]byte{"c": []byte(`{}`), "d": []byte(`not json`)}); err == nil {
		t.Fatal("bad document accepted")
	}
	if err := s.PutProviders(map[string][]byte{"": []byte(`{}`)}); err == nil {
		t.Fatal("empty name accepted")
	}
	must(t, s.DeleteProvider("b"))
	if err := s.DeleteProvider("b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete missing: %v, want ErrNotFound", err)
	}
	got, err := s.Providers()
	must(t, err)
	if len(got) != 1 || !bytes.Equal(got["a"], []byte(`{"x":3}`)) {
		t.Fatalf("providers = %q, want only a = {\"x\":3}", got)
	}
}

func testTokens(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	h := func(s string) []byte { x := sha256.Sum256([]byte(s)); return x[:] }
	// Far in the future, and long past: the store prunes by its own clock.
	future := time.Now().Add(24 * time.Hour).Round(0).UTC()
	must(t, s.PutToken(h("old"), time.Unix(1, 0)))
	must(t, s.PutToken(h("tok"), future))
	exp, ok, err := s.TokenExpiry(h("tok"))
	if err != nil || !ok || !exp.Equal(future) {
		t.Fatalf("TokenExpiry(tok) = %v, %v, %v; want %v", exp, ok, err, future)
	}
	if _, ok, err := s.TokenExpiry(h("old")); err != nil || ok {
		t.Fatalf("expired token still kept after the next PutToken: %v, %v", ok, err)
	}
	if _, ok, _ := s.TokenExpiry(h("never")); ok {
		t.Fatal("unknown token found")
	}
	if err := s.PutToken([]byte("short"), future); err == nil {
		t.Fatal("short hash accepted")
	}
}

func testLease(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	ttl := 10 * time.Second
	steps := []struct {
		who, inc string
		at       time.Duration
		granted  bool
		epoch    uint64
		holder   string
	}{
		{"m1", "i1", 0, true, 1, "m1"},
		{"m2", "i2", time.Second, false, 1, "m1"},
		{"m1", "i1", 2 * time.Second, true, 1, "m1"},  // renewal
		{"m1", "i9", 3 * time.Second, false, 1, "m1"}, // another incarnation waits
		{"m2", "i2", 12 * time.Second, true, 2, "m2"}, // lapsed: new term
	}
	for i, st := range steps {
		res, err := s.AcquireLease(st.who, st.inc, "addr-"+st.who, ttl, t0().Add(st.at))
		if err != nil || res.Granted != st.granted || res.Lease.Epoch != st.epoch || res.Lease.Holder != st.holder {
			t.Fatalf("step %d (%s at +%s): %+v, %v; want granted %v epoch %d holder %s", i, st.who, st.at, res, err, st.granted, st.epoch, st.holder)
		}
	}
	if l := s.CurrentLease(); l.Holder != "m2" || l.Epoch != 2 || !l.Expires.Equal(t0().Add(22*time.Second)) || l.Address != "addr-m2" {
		t.Fatalf("CurrentLease = %+v", l)
	}
	if ok, err := s.ReleaseLease("m2", 1); err != nil || ok {
		t.Fatalf("release at a stale epoch: %v, %v", ok, err)
	}
	if ok, err := s.ReleaseLease("m2", 2); err != nil || !ok {
		t.Fatalf("release: %v, %v", ok, err)
	}
	res, err := s.AcquireLease("m1", "i1", "a", ttl, t0().Add(13*time.Second))
	if err != nil || !res.Granted || res.Lease.Epoch != 3 {
		t.Fatalf("acquire after release: %+v, %v; want epoch 3", res, err)
	}
	if _, err := s.AcquireLease("", "i", "a", ttl, t0()); err == nil {
		t.Fatal("empty master id accepted")
	}
}

func testShardMap(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	ttl := 10 * time.Second
	if _, err := s.AcquireLease("m1", "i1", "a", ttl, t0()); err != nil {
		t.Fatal(err)
	}
	mk := func(maxEpoch uint64) *mcsimv1.ShardMap {
		return &mcsimv1.ShardMap{Shards: 2, MaxEpoch: maxEpoch, Assignments: []*mcsimv1.ShardAssignment{{Shard: 0, CoreappId: "c1", Epoch: maxEpoch}}}
	}
	for i, step := range []struct {
		who     string
		epoch   uint64
		at      time.Duration
		m       *mcsimv1.ShardMap
		wantErr error
		version uint64
	}{
		{"m1", 1, time.Second, mk(3), nil, 1},
		{"m1", 1, 2 * time.Second, mk(4), nil, 2},
		{"m2", 1, 2 * time.Second, mk(5), store.ErrNotLeaseHolder, 0},
		{"m1", 7, 2 * time.Second, mk(5), store.ErrNotLeaseHolder, 0},
		{"m1", 1, 11 * time.Second, mk(5), store.ErrNotLeaseHolder, 0}, // lapsed
		{"m1", 1, 3 * time.Second, mk(2), store.ErrEpochRegression, 0},
	} {
		before := fmt.Sprint(step.m)
		v, err := s.WriteShardMap(step.who, step.epoch, step.m, t0().Add(step.at))
		if step.wantErr != nil {
			if !errors.Is(err, step.wantErr) || fmt.Sprint(step.m) != before {
				t.Fatalf("step %d: %v, want %v and the map untouched", i, err, step.wantErr)
			}
			continue
		}
		if err != nil || v != step.version || step.m.GetVersion() != step.version {
			t.Fatalf("step %d: version %d, %v; want %d", i, v, err, step.version)
		}
	}
	m, err := s.ShardMap()
	if err != nil || m.GetVersion() != 2 || m.GetMaxEpoch() != 4 {
		t.Fatalf("stored map = %v, %v; want version 2, max_epoch 4", m, err)
	}
}

// recipientIn returns a recipient id whose bucket is b.
func recipientIn(t testing.TB, b int) string {
	for i := range 100000 {
		r := fmt.Sprintf("1555%07d", i)
		if shard.BucketOf(r) == b {
			return r
		}
	}
	t.Fatalf("no recipient in bucket %d", b)
	return ""
}

func cb(id, recipient, status string) *mcsimv1.PendingCallback {
	return &mcsimv1.PendingCallback{Id: id, RecipientId: recipient, Status: status}
}

func listIDs(t testing.TB, s store.Backend, sh, shards int) string {
	t.Helper()
	cbs, err := s.ListCallbacks(sh, shards)
	must(t, err)
	var b bytes.Buffer
	for _, c := range cbs {
		fmt.Fprintf(&b, "%s:%s ", c.GetId(), c.GetStatus())
	}
	return b.String()
}

func testCallbacks(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	r0, r1 := recipientIn(t, 0), recipientIn(t, 1)
	must(t, s.PutCallbacks([]*mcsimv1.PendingCallback{cb("x", r0, "sent"), cb("y", r1, "sent"), cb("z", r0, "sent")}))
	must(t, s.PutCallbacks([]*mcsimv1.PendingCallback{cb("w", r0, "sent"), cb("x", r0, "read"), cb("w", r0, "read")}))
	if got, want := listIDs(t, s, 0, 1), "x:read y:sent z:sent w:read "; got != want {
		t.Fatalf("all = %q, want %q (first-kept order, replaced in place)", got, want)
	}
	if got, want := listIDs(t, s, 1, 2), "y:sent "; got != want {
		t.Fatalf("shard 1 of 2 = %q, want %q", got, want)
	}
	must(t, s.DeleteCallbacks([]string{"x", "nope"}))
	if got, want := listIDs(t, s, 0, 2), "z:sent w:read "; got != want {
		t.Fatalf("shard 0 of 2 after delete = %q, want %q", got, want)
	}
	if err := s.PutCallbacks([]*mcsimv1.PendingCallback{cb("v", r0, "sent"), cb("", r0, "sent")}); err == nil {
		t.Fatal("empty id accepted")
	}
	if _, err := s.ListCallbacks(2, 2); err == nil {
		t.Fatal("shard out of range accepted")
	}
	if got, want := listIDs(t, s, 0, 1), "y:sent z:sent w:read "; got != want {
		t.Fatalf("after refused put = %q, want %q", got, want)
	}
}

func testReopen(t *testing.T, b Backend) {
	open := b.New(t)
	s, err := open()
	must(t, err)
	_, err = s.UpdateApplication(Bump)
	must(t, err)
	_, err = s.SetShards(4)
	must(t, err)
	must(t, s.PutProviders(map[string][]byte{"p": []byte(`{}`)}))
	_, err = s.AcquireLease("m1", "i1", "a", time.Minute, t0())
	must(t, err)
	_, err = s.WriteShardMap("m1", 1, &mcsimv1.ShardMap{Shards: 4, MaxEpoch: 2}, t0())
	must(t, err)
	must(t, s.PutCallbacks([]*mcsimv1.PendingCallback{cb("k", "15550000000", "sent")}))
	must(t, s.Close())

	r := mustOpen(t, open)
	st := r.State()
	if st.Revision != 2 || st.Shards != 4 || counter(t, st.Application) != 1 {
		t.Fatalf("reopened state = %+v", st)
	}
	if l := r.CurrentLease(); l.Holder != "m1" || l.Epoch != 1 || !l.Expires.Equal(t0().Add(time.Minute)) {
		t.Fatalf("reopened lease = %+v", l)
	}
	if m, err := r.ShardMap(); err != nil || m.GetVersion() != 1 || m.GetMaxEpoch() != 2 {
		t.Fatalf("reopened map = %v, %v", m, err)
	}
	if p, err := r.Providers(); err != nil || len(p) != 1 {
		t.Fatalf("reopened providers = %v, %v", p, err)
	}
	if got := listIDs(t, r, 0, 1); got != "k:sent " {
		t.Fatalf("reopened callbacks = %q", got)
	}
}

func testClosed(t *testing.T, b Backend) {
	open := b.New(t)
	s, err := open()
	must(t, err)
	_, err = s.UpdateApplication(Bump)
	must(t, err)
	must(t, s.Close())
	if _, err := s.UpdateApplication(Bump); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}
	if _, err := s.AcquireLease("m", "i", "a", time.Second, t0()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("lease after Close: %v, want ErrClosed", err)
	}
	if st, _ := s.Latest(); st.Revision != 1 {
		t.Fatalf("Latest after Close = %+v, want the last state", st)
	}
}

// testTwoWatch: a watcher on B (send, wait, Latest again, as the Watch
// stream does) sees the revisions written through A grow strictly and
// reach the last one; a read through B right after A's answer shows it.
func testTwoWatch(t *testing.T, b Backend) {
	a, open := b.Open(t)
	other := mustOpen(t, open)
	const writes = 30
	// watched is what B's watcher saw: the revision it started at, the
	// one after each wake-up, and whether it gave up waiting.
	type watched struct {
		first    uint64
		revs     []uint64
		timedOut bool
	}
	seen := make(chan watched, 1)
	go func() {
		st, ch := other.Latest()
		w := watched{first: st.Revision}
		deadline := time.After(10 * time.Second)
		for st.Revision < writes {
			select {
			case <-ch:
			case <-deadline:
				w.timedOut = true
				seen <- w
				return
			}
			st, ch = other.Latest()
			w.revs = append(w.revs, st.Revision)
		}
		seen <- w
	}()
	// No reads through B meanwhile: they could wake its watcher too, and
	// this is about what reaches B unasked.
	for range writes {
		_, err := a.UpdateApplication(Bump)
		must(t, err)
	}
	w := <-seen
	// The watcher may first look after every write was made (then it
	// never waits, and revs is empty): its last revision is where it began.
	last, prev := w.first, w.first
	for _, r := range w.revs {
		if r <= prev {
			t.Fatalf("B's watcher saw revisions out of order: started at %d, then %v", w.first, w.revs)
		}
		last, prev = r, r
	}
	if w.timedOut || last != writes {
		t.Fatalf("B's watcher started at %d, saw %v and stopped at %d: revision %d never arrived", w.first, w.revs, last, writes)
	}
	st, err := a.UpdateApplication(Bump)
	must(t, err)
	if got := other.State(); got.Revision != st.Revision {
		t.Fatalf("B.State() right after A acknowledged revision %d = %d", st.Revision, got.Revision)
	}
	t.Logf("B's watcher woke %d times for %d writes", len(w.revs), writes)
}

func testTwoUpdates(t *testing.T, b Backend) {
	a, open := b.Open(t)
	other := mustOpen(t, open)
	const each = 15
	var wg sync.WaitGroup
	for _, s := range []store.Backend{a, other, a, other} {
		wg.Go(func() {
			for range each {
				if _, err := s.UpdateApplication(Bump); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, s := range []store.Backend{a, other} {
		if st := s.State(); st.Revision != 4*each || counter(t, st.Application) != 4*each {
			t.Fatalf("after %d writes: %+v", 4*each, st)
		}
	}
}

// testTwoLease: in every round the lease has lapsed and eight masters ask
// at once, half through each Store, at the same time; exactly one gets
// the new term, and the epochs of the winners grow by one per round.
func testTwoLease(t *testing.T, b Backend) {
	a, open := b.Open(t)
	other := mustOpen(t, open)
	const rounds, masters = 20, 8
	ttl := time.Second
	for round := range rounds {
		now := t0().Add(time.Duration(round) * 2 * ttl) // the previous term lapsed
		var (
			mu      sync.Mutex
			winners []string
			wg      sync.WaitGroup
			start   = make(chan struct{})
		)
		for m := range masters {
			s := []store.Backend{a, other}[m%2]
			id := fmt.Sprintf("m%d", m)
			wg.Go(func() {
				<-start
				res, err := s.AcquireLease(id, "inc", id, ttl, now)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Granted {
					if res.Lease.Epoch != uint64(round+1) {
						t.Errorf("round %d: %s granted epoch %d, want %d", round, id, res.Lease.Epoch, round+1)
					}
					mu.Lock()
					winners = append(winners, id)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: winners %v, want exactly one", round, winners)
		}
	}
}

// testTwoLeaseMixed: four masters, each with a goroutine per Store, ask
// for, renew and release the lease at random times (a seeded source per
// goroutine) in a window where terms lapse often. Whatever the
// interleaving, each epoch belongs to one master: no grant gives an epoch
// to a second holder.
func testTwoLeaseMixed(t *testing.T, b Backend) {
	a, open := b.Open(t)
	other := mustOpen(t, open)
	const masters, ops = 4, 40
	ttl := 300 * time.Millisecond
	type grant struct {
		holder string
		epoch  uint64
	}
	var (
		mu     sync.Mutex
		grants []grant
		wg     sync.WaitGroup
	)
	for m := range masters {
		for si, s := range []store.Backend{a, other} {
			id := fmt.Sprintf("m%d", m)
			rng := rand.New(rand.NewPCG(uint64(m), uint64(si)))
			wg.Go(func() {
				var held uint64
				for range ops {
					now := t0().Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
					if held != 0 && rng.IntN(4) == 0 {
						if _, err := s.ReleaseLease(id, held); err != nil {
							t.Error(err)
						}
						held = 0
						continue
					}
					res, err := s.AcquireLease(id, "inc", id, ttl, now)
					if err != nil {
						t.Error(err)
						return
					}
					if res.Granted {
						held = res.Lease.Epoch
						mu.Lock()
						grants = append(grants, grant{id, res.Lease.Epoch})
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	owner := map[uint64]string{}
	for _, g := range grants {
		if o, ok := owner[g.epoch]; ok && o != g.holder {
			t.Fatalf("epoch %d granted to %s and to %s", g.epoch, o, g.holder)
		}
		owner[g.epoch] = g.holder
	}
	t.Logf("%d grants, %d terms", len(grants), len(owner))
}

func testConcurrentCallbacks(t *testing.T, b Backend) {
	s, _ := b.Open(t)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s.PutCallbacks([]*mcsimv1.PendingCallback{cb(id, "15550000000", "sent")}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	cbs, err := s.ListCallbacks(0, 1)
	must(t, err)
	if len(cbs) != writers*each {
		t.Fatalf("%d callbacks kept, want %d", len(cbs), writers*each)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
