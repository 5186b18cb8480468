package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/mcsim/mcsim/coord"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store"
)

// The master lease and the shard map it fences. coord decides; these
// methods read the lease row under a lock in the transaction that writes
// coord's decision, so the database's row lock, not any process's memory,
// orders the grants: of two processes asking at once, the second reads
// what the first committed.
//
// The clock: coord judges at the database's time, read in the same
// transaction after the row lock is held, never at the now the caller
// passes. Every settings process sharing the database then grants and
// ends terms by one clock. With each process's own clock, two whose
// clocks differ by δ would disagree by δ about when a term ends: the one
// ahead could grant the next term while the holder, timing its lease from
// the other's grant, still acts. Reading it after the lock matters too: a
// time read before waiting for the lock could be older than the grant the
// lock holder commits.

// selectDBNow is the database's wall clock in Unix nanoseconds.
// clock_timestamp, not now(): now() is the transaction's start, which may
// be before the lock wait.
const (
	dbNowExpr   = `(extract(epoch FROM clock_timestamp()) * 1e9)::bigint`
	selectDBNow = `SELECT ` + dbNowExpr
)

// judgeNow is the time to judge a lease at, read in tx after its row
// lock: the database's clock, or with Options.CallerClock the caller's.
func (s *Store) judgeNow(ctx context.Context, tx pgx.Tx, caller time.Time) (time.Time, error) {
	var ns int64
	if err := tx.QueryRow(ctx, selectDBNow).Scan(&ns); err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	if s.callerClock {
		return caller, nil
	}
	return time.Unix(0, ns).UTC(), nil
}

const (
	leaseColumns = `holder, incarnation, address, epoch, expires_unix_nano`
	selectLease  = `SELECT ` + leaseColumns + ` FROM mcsim_lease WHERE id = 1`
	// selectLeaseAt is the lease and the database's clock in one statement.
	selectLeaseAt = `SELECT ` + leaseColumns + `, ` + dbNowExpr + ` FROM mcsim_lease WHERE id = 1`
)

func scanLease(row pgx.Row) (store.Lease, error) {
	var (
		l       store.Lease
		epoch   int64
		expires int64
	)
	if err := row.Scan(&l.Holder, &l.Incarnation, &l.Address, &epoch, &expires); err != nil {
		return store.Lease{}, err
	}
	l.Epoch = uint64(epoch)
	if expires != 0 {
		l.Expires = time.Unix(0, expires).UTC()
	}
	return l, nil
}

// readLease reads the committed lease and the database's clock with it,
// and remembers the lease for CurrentLease's fallback.
func (s *Store) readLease(ctx context.Context) (store.Lease, time.Time, error) {
	var ns int64
	l, err := scanLease(plusColumn{s.pool.QueryRow(ctx, selectLeaseAt), &ns})
	if err != nil {
		return store.Lease{}, time.Time{}, fmt.Errorf("store: read lease: %w", err)
	}
	s.remember(l)
	return l, time.Unix(0, ns).UTC(), nil
}

// remember keeps l as the last lease this Store saw.
func (s *Store) remember(l store.Lease) {
	s.mu.Lock()
	s.lease = l
	s.mu.Unlock()
}

func (s *Store) putLease(ctx context.Context, tx pgx.Tx, l store.Lease) error {
	var expires int64
	if !l.Expires.IsZero() {
		expires = l.Expires.UnixNano()
	}
	_, err := tx.Exec(ctx, `UPDATE mcsim_lease SET holder = $1, incarnation = $2, address = $3, epoch = $4, expires_unix_nano = $5 WHERE id = 1`,
		l.Holder, l.Incarnation, l.Address, int64(l.Epoch), expires)
	return err
}

// AcquireLease: coord.Acquire on the lease read FOR UPDATE in this
// transaction, at the database's time (now is ignored unless
// Options.CallerClock; res.Now is the time judged at); a grant is
// committed before this returns.
func (s *Store) AcquireLease(masterID, incarnation, address string, ttl time.Duration, now time.Time) (store.LeaseResult, error) {
	if err := coord.CheckAcquire(masterID, ttl); err != nil {
		return store.LeaseResult{}, err
	}
	var res store.LeaseResult
	err := s.inTx("acquire lease", func(ctx context.Context, tx pgx.Tx) error {
		cur, err := scanLease(tx.QueryRow(ctx, selectLease+` FOR UPDATE`))
		if err != nil {
			return fmt.Errorf("read lease: %w", err)
		}
		at, err := s.judgeNow(ctx, tx, now)
		if err != nil {
			return err
		}
		res = coord.Acquire(cur, masterID, incarnation, address, ttl, at)
		if !res.Granted {
			return nil
		}
		return s.putLease(ctx, tx, res.Lease)
	})
	if err != nil {
		return store.LeaseResult{}, err
	}
	s.remember(res.Lease)
	return res, nil
}

// ReleaseLease: coord.Release, serialized like AcquireLease.
func (s *Store) ReleaseLease(masterID string, epoch uint64) (bool, error) {
	var (
		next store.Lease
		ok   bool
	)
	err := s.inTx("release lease", func(ctx context.Context, tx pgx.Tx) error {
		cur, err := scanLease(tx.QueryRow(ctx, selectLease+` FOR UPDATE`))
		if err != nil {
			return fmt.Errorf("read lease: %w", err)
		}
		if next, ok = coord.Release(cur, masterID, epoch); !ok {
			return nil
		}
		return s.putLease(ctx, tx, next)
	})
	if err != nil || !ok {
		return false, err
	}
	s.remember(next)
	return true, nil
}

// CurrentLease reads the committed lease; if the database does not answer,
// the last one this Store saw.
func (s *Store) CurrentLease() store.Lease {
	l, _ := s.CurrentLeaseAt()
	return l
}

// CurrentLeaseAt is CurrentLease with the database's clock read in the
// same statement (store.LeaseClock), so a reader judges the lease by the
// clock that granted it. With Options.CallerClock, or when the database
// does not answer, the time is zero: the lease was judged by the callers'
// clock, or is only the last one seen.
func (s *Store) CurrentLeaseAt() (store.Lease, time.Time) {
	ctx, done, err := s.begin()
	if err == nil {
		defer done()
		if l, now, err := s.readLease(ctx); err == nil {
			if s.callerClock {
				return l, time.Time{}
			}
			return l, now
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease, time.Time{}
}

// plusColumn scans a row with one more column than its reader asks for.
type plusColumn struct {
	row   pgx.Row
	extra any
}

func (p plusColumn) Scan(dest ...any) error { return p.row.Scan(append(dest, p.extra)...) }

func scanShardMap(row pgx.Row) (*mcsimv1.ShardMap, error) {
	var b []byte
	if err := row.Scan(&b); err != nil {
		return nil, err
	}
	m := &mcsimv1.ShardMap{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return m, nil
}

// ShardMap reads the committed shard map (version 0 if never written).
func (s *Store) ShardMap() (*mcsimv1.ShardMap, error) {
	ctx, done, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	m, err := scanShardMap(s.pool.QueryRow(ctx, `SELECT map FROM mcsim_shard_map WHERE id = 1`))
	if err != nil {
		return nil, fmt.Errorf("store: shard map: %w", err)
	}
	return m, nil
}

// WriteShardMap: coord.AdmitShardMapWrite on the lease (locked FOR SHARE,
// so no grant can commit in between) and the map (FOR UPDATE) read in this
// transaction, at the database's time read after both locks (now is
// ignored unless Options.CallerClock). See store.Store.WriteShardMap.
func (s *Store) WriteShardMap(masterID string, leaseEpoch uint64, m *mcsimv1.ShardMap, now time.Time) (uint64, error) {
	var next *mcsimv1.ShardMap
	err := s.inTx("write shard map", func(ctx context.Context, tx pgx.Tx) error {
		cur, err := scanLease(tx.QueryRow(ctx, selectLease+` FOR SHARE`))
		if err != nil {
			return fmt.Errorf("read lease: %w", err)
		}
		old, err := scanShardMap(tx.QueryRow(ctx, `SELECT map FROM mcsim_shard_map WHERE id = 1 FOR UPDATE`))
		if err != nil {
			return fmt.Errorf("read shard map: %w", err)
		}
		at, err := s.judgeNow(ctx, tx, now)
		if err != nil {
			return err
		}
		if err := coord.AdmitShardMapWrite(cur, masterID, leaseEpoch, at, old, m); err != nil {
			return refuse(err)
		}
		next = proto.Clone(m).(*mcsimv1.ShardMap)
		next.Version = old.GetVersion() + 1
		b, err := proto.Marshal(next)
		if err != nil {
			return refuse(fmt.Errorf("store: write shard map: encode: %w", err))
		}
		_, err = tx.Exec(ctx, `UPDATE mcsim_shard_map SET map = $1 WHERE id = 1`, b)
		return err
	})
	if err != nil {
		return 0, err
	}
	m.Version = next.Version
	return next.Version, nil
}
