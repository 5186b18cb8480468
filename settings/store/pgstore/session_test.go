package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcsim/mcsim/settings/store/pgstore"
	"github.com/mcsim/mcsim/settings/store/pgstore/pgtest"
)

// TestHungLockHolderIsCutOff: a settings process stops (paused, dead
// without its socket closing, cut off) inside a transaction holding the
// lease row's lock. The server ends its session after the idle timeout,
// so another process's AcquireLease goes through instead of waiting for
// TCP keepalive to notice (hours). Without the timeout it fails on its
// lock wait.
func TestHungLockHolderIsCutOff(t *testing.T) {
	dsn := pgtest.Schema(t)
	o := pgstore.Options{IdleInTransactionTimeout: 300 * time.Millisecond}
	hung, err := pgstore.OpenWith(dsn, o)
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	other, err := pgstore.OpenWith(dsn, o)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	ctx := context.Background()
	tx, err := hung.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM mcsim_lease WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	// … and nothing more from that session.
	start := time.Now()
	res, err := other.AcquireLease("m1", "i1", "m1:7000", 10*time.Second, time.Now())
	if err != nil || !res.Granted {
		t.Fatalf("AcquireLease while a hung session held the lease row: %+v, %v; want granted once the server ends that session", res, err)
	}
	t.Logf("granted after %s", time.Since(start).Round(time.Millisecond))
}

// TestSerializableServerDefault: the server's (or role's) default
// isolation is serializable. Concurrent lease acquisitions through two
// Stores still each get an answer, exactly one winner per round: the
// store's transactions are read committed by name, so the second locker
// reads what the first committed instead of failing with a serialization
// error (40001).
func TestSerializableServerDefault(t *testing.T) {
	dsn := pgtest.Schema(t) + "&default_transaction_isolation=serializable"
	var stores []*pgstore.Store
	for range 2 {
		s, err := pgstore.OpenWith(dsn, pgstore.Options{CallerClock: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	var iso string
	if err := stores[0].Pool().QueryRow(context.Background(), `SHOW default_transaction_isolation`).Scan(&iso); err != nil || iso != "serializable" {
		t.Fatalf("session default isolation = %q, %v; the test needs serializable", iso, err)
	}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	const rounds, masters = 10, 6
	for round := range rounds {
		now := t0.Add(time.Duration(round) * 2 * time.Second) // the last term lapsed
		var (
			mu      sync.Mutex
			winners []string
			errs    []string
			wg      sync.WaitGroup
			start   = make(chan struct{})
		)
		for m := range masters {
			s, id := stores[m%2], fmt.Sprintf("m%d", m)
			wg.Go(func() {
				<-start
				res, err := s.AcquireLease(id, "inc", id, time.Second, now)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err.Error())
				} else if res.Granted {
					winners = append(winners, id)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 || len(winners) != 1 {
			t.Fatalf("round %d: winners %v, errors:\n%s\nwant one winner and no errors", round, winners, strings.Join(errs, "\n"))
		}
	}
}

// TestSynchronousCommitOffRefused: durability does not depend on the URL
// either: asking for synchronous_commit=off is refused, naming the field.
func TestSynchronousCommitOffRefused(t *testing.T) {
	dsn := pgtest.Schema(t)
	_, err := pgstore.Open(dsn + "&synchronous_commit=off")
	if err == nil || !strings.Contains(err.Error(), "synchronous_commit") {
		t.Fatalf("Open with synchronous_commit=off = %v, want refused naming synchronous_commit", err)
	}
	s, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for setting, want := range map[string]string{"synchronous_commit": "on", "lock_timeout": "5s", "idle_in_transaction_session_timeout": "1s"} {
		var got string
		if err := s.Pool().QueryRow(context.Background(), "SHOW "+setting).Scan(&got); err != nil || got != want {
			t.Errorf("SHOW %s = %q, %v; want %q", setting, got, err, want)
		}
	}
}
