package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

type counterDoc struct {
	N int `json:"n"`
}

// bump is an UpdateApplication fn adding one to {"n":N} (nil counts as 0).
func bump(cur []byte) ([]byte, error) {
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

func TestNewStoreState(t *testing.T) {
	s, _ := openTemp(t)
	st := s.State()
	if st.Revision != 0 || st.Application != nil || st.Shards != 1 {
		t.Fatalf("new store state = %+v, want revision 0, nil application, 1 shard", st)
	}
}

func TestRevisionGrowsByOnePerChange(t *testing.T) {
	s, _ := openTemp(t)
	for i := 1; i <= 5; i++ {
		st, err := s.UpdateApplication(bump)
		if err != nil {
			t.Fatal(err)
		}
		if st.Revision != uint64(i) || counter(t, st.Application) != i {
			t.Fatalf("after %d updates: %+v", i, st)
		}
		if got := s.State(); got.Revision != st.Revision || !bytes.Equal(got.Application, st.Application) {
			t.Fatalf("State() = %+v, UpdateApplication returned %+v", got, st)
		}
	}
	st, err := s.SetShards(4)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != 6 || st.Shards != 4 || counter(t, st.Application) != 5 {
		t.Fatalf("after SetShards(4): %+v", st)
	}
}

func TestUnchangedWriteKeepsRevision(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.UpdateApplication(func([]byte) ([]byte, error) { return []byte(`{"a":1}`), nil }); err != nil {
		t.Fatal(err)
	}
	st, err := s.UpdateApplication(func(cur []byte) ([]byte, error) { return cur, nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != 1 {
		t.Fatalf("same bytes moved revision to %d", st.Revision)
	}
	if st, _ = s.SetShards(1); st.Revision != 1 {
		t.Fatalf("SetShards(1) on 1 shard moved revision to %d", st.Revision)
	}
	// nil is "back to defaults", a change.
	st, err = s.UpdateApplication(func([]byte) ([]byte, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != 2 || st.Application != nil {
		t.Fatalf("reset to nil: %+v", st)
	}
}

func TestLatestChannelClosesOnChange(t *testing.T) {
	s, _ := openTemp(t)
	st0, ch := s.Latest()
	select {
	case <-ch:
		t.Fatal("channel closed before any change")
	default:
	}
	if _, err := s.UpdateApplication(bump); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("channel not closed after a change")
	}
	st1, ch1 := s.Latest()
	if st1.Revision != st0.Revision+1 {
		t.Fatalf("Latest after change: revision %d, want %d", st1.Revision, st0.Revision+1)
	}
	// A slow watcher that missed several changes gets the newest whole state.
	for range 3 {
		if _, err := s.UpdateApplication(bump); err != nil {
			t.Fatal(err)
		}
	}
	<-ch1
	st2, _ := s.Latest()
	if st2.Revision != 4 || counter(t, st2.Application) != 4 {
		t.Fatalf("slow watcher got %+v, want revision 4, n 4", st2)
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	s, _ := openTemp(t)
	const goroutines, each = 50, 3
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for range goroutines {
		wg.Go(func() {
			for range each {
				if _, err := s.UpdateApplication(bump); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.State()
	if got := counter(t, st.Application); got != goroutines*each || st.Revision != goroutines*each {
		t.Fatalf("after %d concurrent updates: n=%d revision=%d", goroutines*each, got, st.Revision)
	}
}

func TestFnErrorChangesNothing(t *testing.T) {
	s, dir := openTemp(t)
	if _, err := s.UpdateApplication(bump); err != nil {
		t.Fatal(err)
	}
	before, ch := s.Latest()
	boom := errors.New("boom")
	_, err := s.UpdateApplication(func(cur []byte) ([]byte, error) {
		cur[0] = 'X' // fn gets a copy: scribbling on it must not leak
		return []byte(`{"n":99}`), boom
	})
	if err != boom {
		t.Fatalf("error = %v, want boom returned as is", err)
	}
	after := s.State()
	if after.Revision != before.Revision || !bytes.Equal(after.Application, before.Application) {
		t.Fatalf("state changed on fn error: %+v -> %+v", before, after)
	}
	select {
	case <-ch:
		t.Fatal("watchers woken on fn error")
	default:
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.State(); got.Revision != 1 || counter(t, got.Application) != 1 {
		t.Fatalf("on disk after fn error: %+v", got)
	}
}

func TestSetShardsRejectsBadCount(t *testing.T) {
	s, _ := openTemp(t)
	_, err := s.SetShards(0)
	if err == nil || !strings.Contains(err.Error(), "shards") {
		t.Fatalf("SetShards(0) error = %v, want one naming shards", err)
	}
	if st := s.State(); st.Revision != 0 || st.Shards != 1 {
		t.Fatalf("bad SetShards changed state: %+v", st)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 123, time.UTC)
	if _, err := s.UpdateApplication(bump); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetShards(8); err != nil {
		t.Fatal(err)
	}
	if err := s.PutProviders(map[string][]byte{"p1": []byte(`{"name":"p1"}`)}); err != nil {
		t.Fatal(err)
	}
	hash := bytes.Repeat([]byte{7}, 32)
	tokExp := time.Now().Add(7 * 24 * time.Hour)
	if err := s.PutToken(hash, tokExp); err != nil {
		t.Fatal(err)
	}
	lr, err := s.AcquireLease("m1", "inc-1", "127.0.0.1:9000", 10*time.Second, now)
	if err != nil || !lr.Granted {
		t.Fatalf("AcquireLease: %+v, %v", lr, err)
	}
	sm := &mcsimv1.ShardMap{MaxEpoch: 3, Shards: 2, Assignments: []*mcsimv1.ShardAssignment{{Shard: 0, CoreappId: "c1", Epoch: 3}}}
	if _, err := s.WriteShardMap("m1", lr.Lease.Epoch, sm, now); err != nil {
		t.Fatal(err)
	}
	wantState, wantLease := s.State(), s.CurrentLease()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateApplication(bump); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}

	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got := s2.State()
	if got.Revision != wantState.Revision || got.Shards != 8 || !bytes.Equal(got.Application, wantState.Application) {
		t.Fatalf("reopened state %+v, want %+v", got, wantState)
	}
	gl := s2.CurrentLease()
	if gl.Holder != wantLease.Holder || gl.Incarnation != "inc-1" || gl.Address != wantLease.Address ||
		gl.Epoch != wantLease.Epoch || !gl.Expires.Equal(wantLease.Expires) {
		t.Fatalf("reopened lease %+v, want %+v", gl, wantLease)
	}
	// The holder's process renews across the store's restart at the same
	// epoch; the same id from another process does not.
	if r, err := s2.AcquireLease("m1", "inc-2", "127.0.0.1:9000", 10*time.Second, now.Add(time.Second)); err != nil || r.Granted {
		t.Fatalf("another incarnation of m1 after reopen: %+v, %v; want refused", r, err)
	}
	if r, err := s2.AcquireLease("m1", "inc-1", "127.0.0.1:9000", 10*time.Second, now.Add(time.Second)); err != nil || !r.Granted || r.Lease.Epoch != wantLease.Epoch {
		t.Fatalf("renewal by m1 inc-1 after reopen: %+v, %v; want granted at epoch %d", r, err, wantLease.Epoch)
	}
	p, err := s2.Providers()
	if err != nil || string(p["p1"]) != `{"name":"p1"}` || len(p) != 1 {
		t.Fatalf("reopened providers %q, %v", p, err)
	}
	exp, ok, err := s2.TokenExpiry(hash)
	if err != nil || !ok || !exp.Equal(tokExp) {
		t.Fatalf("reopened token expiry %v %v %v, want %v", exp, ok, err, tokExp)
	}
	gm, err := s2.ShardMap()
	if err != nil || gm.GetVersion() != 1 || gm.GetMaxEpoch() != 3 || gm.GetAssignments()[0].GetCoreappId() != "c1" {
		t.Fatalf("reopened shard map %v, %v", gm, err)
	}
}

func TestOpenTwiceIsLocked(t *testing.T) {
	s, dir := openTemp(t)
	start := time.Now()
	s2, err := Open(dir)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of the same dir succeeded")
	}
	t.Logf("second Open failed after %s: %v", time.Since(start), err)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("error %v does not wrap ErrLocked", err)
	}
	want := fmt.Sprintf("data dir %s is in use by another mcsim process (lock held on %s)", dir, filepath.Join(dir, FileName))
	if err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	// The first Store is unaffected, and the lock goes with Close.
	if _, err := s.UpdateApplication(bump); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}

func TestOpenRejectsEmptyDir(t *testing.T) {
	if _, err := Open(""); err == nil || !strings.Contains(err.Error(), "data dir") {
		t.Fatalf("Open(\"\") error = %v, want one naming the data dir", err)
	}
}

// UpdateShards says whether the count changed, which the HTTP API turns
// into 201 (changed) or 200 (the same count again).
func TestUpdateShardsReportsChange(t *testing.T) {
	s, _ := openTemp(t)
	for _, step := range []struct {
		n       int
		changed bool
		rev     uint64
	}{{1, false, 0}, {4, true, 1}, {4, false, 1}, {2, true, 2}} {
		st, changed, err := s.UpdateShards(step.n)
		if err != nil {
			t.Fatal(err)
		}
		if changed != step.changed || st.Shards != step.n || st.Revision != step.rev {
			t.Fatalf("UpdateShards(%d) = %+v, changed %v; want shards %d, revision %d, changed %v",
				step.n, st, changed, step.n, step.rev, step.changed)
		}
	}
}
