package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcsim/mcsim/settings/store"
)

// querier is what a read needs: the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readState reads the watched state (no lock: a consistent snapshot).
func (s *Store) readState(ctx context.Context, q querier) (store.State, error) {
	var (
		st     store.State
		rev    int64
		shards int32
	)
	if err := q.QueryRow(ctx, `SELECT revision, application, shards FROM mcsim_state WHERE id = 1`).Scan(&rev, &st.Application, &shards); err != nil {
		return store.State{}, fmt.Errorf("store: read state: %w", err)
	}
	st.Revision, st.Shards = uint64(rev), int(shards)
	return st, nil
}

// State reads the current state from the database, so a GET on any
// process shows what any other acknowledged; if the database does not
// answer it returns the last state this Store saw.
func (s *Store) State() store.State {
	ctx, done, err := s.begin()
	if err == nil {
		defer done()
		if st, err := s.readState(ctx, s.pool); err == nil {
			s.publish(st)
			return st
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Latest returns the newest state this Store has seen and a channel closed
// when a newer one arrives (a NOTIFY from any process, or a write of this
// one). See store.Store.Latest.
func (s *Store) Latest() (store.State, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.changed
}

// publish installs st if it is newer than what watchers have seen: states
// arrive from writes, reads and notifications in any order, and watchers
// must never see a revision go back.
func (s *Store) publish(st store.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.Revision <= s.state.Revision {
		return
	}
	s.state = st
	close(s.changed)
	s.changed = make(chan struct{})
}

// UpdateApplication is store.Store.UpdateApplication across processes: the
// state row is read under FOR UPDATE in the transaction that writes it, so
// concurrent writers through any process are serialized by the database and
// none is lost. NOTIFY carries the new revision to every process's
// watchers when the transaction commits.
func (s *Store) UpdateApplication(fn func(cur []byte) ([]byte, error)) (store.State, error) {
	var next store.State
	err := s.inTx("update application", func(ctx context.Context, tx pgx.Tx) error {
		cur, err := s.lockState(ctx, tx)
		if err != nil {
			return err
		}
		out, err := fn(bytes.Clone(cur.Application))
		if err != nil {
			return refuse(err)
		}
		var changed bool
		if next, changed = store.NextApplication(cur, out); !changed {
			return nil
		}
		return s.writeState(ctx, tx, next)
	})
	if err != nil {
		return store.State{}, err
	}
	s.publish(next)
	return next, nil
}

// SetShards: see store.Store.SetShards.
func (s *Store) SetShards(n int) (store.State, error) {
	st, _, err := s.UpdateShards(n)
	return st, err
}

// UpdateShards: see store.Store.UpdateShards; serialized like
// UpdateApplication.
func (s *Store) UpdateShards(n int) (store.State, bool, error) {
	if err := store.CheckShards(n); err != nil {
		return store.State{}, false, err
	}
	var (
		next    store.State
		changed bool
	)
	err := s.inTx("set shards", func(ctx context.Context, tx pgx.Tx) error {
		cur, err := s.lockState(ctx, tx)
		if err != nil {
			return err
		}
		if next, changed = store.NextShards(cur, n); !changed {
			return nil
		}
		return s.writeState(ctx, tx, next)
	})
	if err != nil {
		return store.State{}, false, err
	}
	s.publish(next)
	return next, changed, nil
}

// lockState reads the state row and locks it until the transaction ends.
func (s *Store) lockState(ctx context.Context, tx pgx.Tx) (store.State, error) {
	var (
		st     store.State
		rev    int64
		shards int32
	)
	err := tx.QueryRow(ctx, `SELECT revision, application, shards FROM mcsim_state WHERE id = 1 FOR UPDATE`).Scan(&rev, &st.Application, &shards)
	if err != nil {
		return store.State{}, fmt.Errorf("read state: %w", err)
	}
	st.Revision, st.Shards = uint64(rev), int(shards)
	return st, nil
}

// writeState writes st and queues its NOTIFY (sent at commit).
func (s *Store) writeState(ctx context.Context, tx pgx.Tx, st store.State) error {
	if _, err := tx.Exec(ctx, `UPDATE mcsim_state SET revision = $1, application = $2, shards = $3 WHERE id = 1`,
		int64(st.Revision), st.Application, int32(st.Shards)); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, strconv.FormatUint(st.Revision, 10)); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// listen opens the dedicated listening connection and subscribes, within
// ctx's deadline.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("store: postgres %s: listen: %w", s.dsn, err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("store: postgres %s: listen: %w", s.dsn, err)
	}
	return conn, nil
}

// Reconnect backoff of the listener after its connection is lost (the
// database restarting): first retry soon, then no faster than maxBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// listenSlice is how long the listener waits for a notification before it
// checks that its connection still answers. A connection that died
// silently (a peer gone without a FIN or RST: a partition, a crashed host)
// never errors a wait; TCP would tell only after its retransmission
// timeout, minutes later, and Watch would freeze that long. A ping every
// slice finds it within listenSlice+listenPing. (Tests shorten both:
// Store.listenSlice, Store.listenPing.)
const (
	listenSlice = 5 * time.Second
	listenPing  = 5 * time.Second
)

// listenLoop waits for notifications and publishes the state they
// announce, until Close. When the connection is lost it reconnects and
// reads the state once, so what was committed while it was away is seen.
func (s *Store) listenLoop(conn *pgx.Conn) {
	backoff := minBackoff
	// retry drops conn and waits backoff before the next connect; false if
	// closed meanwhile. The backoff doubles on every failed round,
	// whichever step failed, so a database that accepts LISTEN but fails
	// the read is not hammered either.
	retry := func() bool {
		if conn != nil {
			_ = conn.Close(context.Background())
			conn = nil
		}
		if !s.sleep(backoff) {
			return false
		}
		backoff = min(2*backoff, maxBackoff)
		return true
	}
	for {
		if conn == nil {
			ctx, cancel := context.WithTimeout(s.ctx, connectTimeout)
			c, err := s.listen(ctx)
			cancel()
			if err != nil {
				if !retry() {
					return
				}
				continue
			}
			conn = c
			if s.onRelisten != nil {
				s.onRelisten()
			}
			if err := s.refresh(); err != nil {
				if !retry() {
					return
				}
				continue
			}
			backoff = minBackoff
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.listenSlice)
		n, err := conn.WaitForNotification(ctx)
		cancel()
		switch {
		case s.ctx.Err() != nil:
			_ = conn.Close(context.Background())
			return
		case err != nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// A quiet slice: is anyone still there?
			pctx, pcancel := context.WithTimeout(s.ctx, s.listenPing)
			err = conn.Ping(pctx)
			pcancel()
			if err != nil {
				_ = conn.Close(context.Background())
				conn = nil // reconnect (and re-read) at once
			}
			continue
		case err != nil:
			_ = conn.Close(context.Background())
			conn = nil
			continue
		}
		if rev, perr := strconv.ParseUint(n.Payload, 10, 64); perr == nil && rev <= s.seen() {
			continue // this Store wrote it, or a later one was already read
		}
		if err := s.refresh(); err != nil {
			// Start over as after a lost connection: the reconnect reads
			// again, so this change is not missed.
			if !retry() {
				return
			}
		}
	}
}

// refresh reads the state and publishes it if newer.
func (s *Store) refresh() error {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	st, err := s.readState(ctx, s.pool)
	if err != nil {
		return err
	}
	s.publish(st)
	return nil
}

func (s *Store) seen() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Revision
}

// sleep waits d or until Close; false if closed.
func (s *Store) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}
