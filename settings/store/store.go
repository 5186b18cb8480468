// Package store is the durable store of the settings service: the shared
// source of truth that every node reads (the application settings document,
// the shard count, media providers, admin tokens, the master lease, the
// shard map and the pending status callbacks of callback_persist), kept in
// an embedded bbolt file DIR/settings.db.
//
// It is schema-agnostic: the settings document and the providers are opaque
// JSON bytes encoded and decoded by package settings.
//
// Durability: every write method returns only after its bbolt transaction
// committed, and bbolt's commit fsyncs (NoSync is left false). So a success
// returned to a client means the change is on disk, and a SIGKILL at any
// moment leaves a readable file holding every acknowledged change.
//
// Consistency: the state nodes watch (State, Latest) and the lease are kept
// in memory, and that copy is updated only after the transaction committed,
// under one write mutex, so memory never shows a change the disk does not
// have and never goes back in time.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/mcsim/mcsim/coord"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrLocked: another process (or another Store in this process) holds
	// the data dir.
	ErrLocked = errors.New("store: data dir is locked")
	// ErrNotLeaseHolder: a shard-map write from a master that does not hold
	// the lease at the epoch it claims (coord decides it for every backend).
	ErrNotLeaseHolder = coord.ErrNotLeaseHolder
	// ErrNotFound: the named record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrEpochRegression: a shard map whose max_epoch is lower than the
	// stored one (epochs only grow, DESIGN.md rule 2).
	ErrEpochRegression = coord.ErrEpochRegression
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store: closed")
)

// FileName is the database file inside the data dir.
const FileName = "settings.db"

// lockTimeout is how long Open waits for the file lock. Short, because the
// lock is held for the whole life of the other process: waiting longer never
// helps, and the user wants to hear at once that the dir is in use.
const lockTimeout = 100 * time.Millisecond

// Bucket and key names. The layout is private to this package.
const (
	bucketMeta      = "meta"
	bucketProviders = "providers"
	bucketTokens    = "tokens"
	// bucketCallbacks holds pending callbacks under a sequence number (the
	// order they were kept), bucketCallbackIDs each one's sequence by id.
	bucketCallbacks   = "callbacks"
	bucketCallbackIDs = "callback_ids"

	keyRevision    = "revision"
	keyApplication = "application"
	keyShards      = "shards"
	keyLease       = "lease"
	keyShardMap    = "shard_map"
)

// State is the replicated state nodes watch, at one revision.
type State struct {
	// Revision grows by one with every accepted change to Application or
	// Shards; 0 for a new store.
	Revision uint64
	// Application is the stored settings document, nil until first written
	// (the caller substitutes defaults). Shared, read-only: do not modify.
	Application []byte
	// Shards is the shard count; 1 until set.
	Shards int
}

// BatchDelay is how long a callback write (db.Batch) waits for others
// to join its transaction: about one fsync, so writes arriving while one
// commits share the next.
const BatchDelay = 2 * time.Millisecond

// Store is the open settings database. Its methods are safe for concurrent
// use.
type Store struct {
	db *bolt.DB

	// wmu serializes every write from "read the current value" to "publish
	// the committed value", so concurrent read-modify-writes never lose one
	// and the in-memory copy is published in commit order.
	wmu    sync.Mutex
	closed bool // under wmu

	// now is the clock used only to prune expired tokens (housekeeping, not
	// a decision); tests in this package may replace it.
	now func() time.Time

	// mu guards the in-memory copy below, which readers use without disk.
	mu       sync.Mutex
	state    State
	changed  chan struct{} // closed and replaced when state changes
	lease    Lease
	shardMap *mcsimv1.ShardMap
}

// lockedError says who holds the data dir; it unwraps to ErrLocked.
type lockedError struct{ dir, path string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("data dir %s is in use by another mcsim process (lock held on %s)", e.dir, e.path)
}

func (e *lockedError) Unwrap() error { return ErrLocked }

// Open opens (creating if needed) DIR/settings.db. If another process (or
// another Store in this process: bbolt's flock is per file descriptor) holds
// it, Open fails within about lockTimeout with an error wrapping ErrLocked.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("store: data dir: must not be empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		// NoFreelistSync: the freelist is not written on each commit but
		// rebuilt on open by walking the pages reachable from the committed
		// meta page. That is safe: a commit's data and meta pages are still
		// fsynced (NoSync stays false), and the freelist is derived data, so
		// after a crash it is rebuilt from exactly what was committed. The
		// file is small, so the rebuild on open is cheap, and each commit
		// writes (and fsyncs) fewer pages.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, &lockedError{dir: dir, path: path}
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// A lone caller's callback write waits at most this long for others
	// to share its fsync (bbolt's default, 10ms, would be most of a
	// status's way to its callback).
	db.MaxBatchDelay = BatchDelay
	s := &Store{db: db, now: time.Now, changed: make(chan struct{})}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: load %s: %w", path, err)
	}
	return s, nil
}

// load creates the buckets of a new file and reads the watched state, the
// lease and the shard map into memory.
func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{bucketMeta, bucketProviders, bucketTokens, bucketCallbacks, bucketCallbackIDs} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		st := State{Shards: 1}
		if v := meta.Get([]byte(keyRevision)); v != nil {
			r, err := decodeUint64(v)
			if err != nil {
				return fmt.Errorf("%s: %w", keyRevision, err)
			}
			st.Revision = r
		}
		if v := meta.Get([]byte(keyApplication)); v != nil {
			st.Application = bytes.Clone(v)
		}
		if v := meta.Get([]byte(keyShards)); v != nil {
			n, err := decodeUint64(v)
			if err != nil {
				return fmt.Errorf("%s: %w", keyShards, err)
			}
			st.Shards = int(n)
		}
		lease, err := decodeLease(meta.Get([]byte(keyLease)))
		if err != nil {
			return fmt.Errorf("%s: %w", keyLease, err)
		}
		sm := &mcsimv1.ShardMap{}
		if v := meta.Get([]byte(keyShardMap)); v != nil {
			if err := proto.Unmarshal(v, sm); err != nil {
				return fmt.Errorf("%s: %w", keyShardMap, err)
			}
		}
		s.state, s.lease, s.shardMap = st, lease, sm
		return nil
	})
}

// Close waits for a write in progress and closes the file, releasing the
// lock. State and Latest keep answering from memory afterwards; writes
// return ErrClosed. Channels from Latest are not closed by Close: whoever
// serves watch streams stops them through its own context.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

// State returns the current state from memory.
func (s *Store) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Latest returns the current state and a channel that is closed as soon as
// a newer state exists. A watcher sends the state, waits on the channel and
// calls Latest again: a slow watcher skips intermediate revisions but
// always sees a whole, newest state, never an older one after a newer one.
func (s *Store) Latest() (State, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.changed
}

// publish installs a committed state and wakes the watchers. Caller holds wmu.
func (s *Store) publish(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st
	close(s.changed)
	s.changed = make(chan struct{})
}

// UpdateApplication runs fn on a copy of the current document (nil if never
// written) and stores what it returns as one serialized read-modify-write.
// If fn returns an error nothing changes and that error is returned as is.
// If fn returns the document unchanged (same bytes), nothing is written and
// the revision does not move. Returning nil stores "no document" (defaults).
// On success the new state is on disk (fsynced) before this returns.
func (s *Store) UpdateApplication(fn func(cur []byte) ([]byte, error)) (State, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return State{}, ErrClosed
	}
	cur := s.state
	out, err := fn(bytes.Clone(cur.Application))
	if err != nil {
		return State{}, err
	}
	next, changed := NextApplication(cur, out)
	if !changed {
		return cur, nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if next.Application == nil {
			if err := meta.Delete([]byte(keyApplication)); err != nil {
				return err
			}
		} else if err := meta.Put([]byte(keyApplication), next.Application); err != nil {
			return err
		}
		return meta.Put([]byte(keyRevision), encodeUint64(next.Revision))
	})
	if err != nil {
		return State{}, fmt.Errorf("store: update application: %w", err)
	}
	s.publish(next)
	return next, nil
}

// SetShards stores the shard count (the caller validated it against the
// allowed values; here only n >= 1 is checked). Setting the current count
// again changes nothing and does not move the revision.
func (s *Store) SetShards(n int) (State, error) {
	st, _, err := s.UpdateShards(n)
	return st, err
}

// UpdateShards is SetShards that also reports whether the count changed,
// decided under the write lock: comparing with an earlier State() would race
// with a concurrent writer.
func (s *Store) UpdateShards(n int) (st State, changed bool, err error) {
	if err := CheckShards(n); err != nil {
		return State{}, false, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return State{}, false, ErrClosed
	}
	cur := s.state
	next, changed := NextShards(cur, n)
	if !changed {
		return cur, false, nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if err := meta.Put([]byte(keyShards), encodeUint64(uint64(n))); err != nil {
			return err
		}
		return meta.Put([]byte(keyRevision), encodeUint64(next.Revision))
	})
	if err != nil {
		return State{}, false, fmt.Errorf("store: set shards: %w", err)
	}
	s.publish(next)
	return next, true, nil
}

func encodeUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("want 8 bytes, got %d", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
