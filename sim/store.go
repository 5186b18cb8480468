package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/mcsim/mcsim/callbacks/poster"
	"github.com/mcsim/mcsim/coord"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/settings"
)

// Writes to the store wait for an fsync: bbolt commits one transaction at
// a time, each about a millisecond or two on this kind of machine.
const (
	fsyncMin = 800 * time.Microsecond
	fsyncMax = 2500 * time.Microsecond
)

// store is the settings service with its store: the settings, the shard
// count, the master lease and the fenced shard map, decided by the same
// rules as the bbolt store (package coord), on the service's clock (the
// simulation's: the store is never skewed).
type store struct {
	w     *World
	p     *proc
	app   settings.Application
	shard int
	lease coord.Lease
	smap  *mcsimv1.ShardMap
	// busyUntil is when the last write's fsync ends: writes commit one at
	// a time.
	busyUntil time.Time
	// watchers are told every change of the settings (the Watch streams).
	watchers []watcher
}

type watcher struct {
	p   *proc
	run int
	fn  func(settingsSnap)
}

// settingsSnap is what a node reads of the settings.
type settingsSnap struct {
	hb, ui time.Duration
	shards int
	hooks  poster.Settings // the callback settings (callbacks.go)
}

func newStore(w *World, shards int) *store {
	return &store{w: w, p: newProc(w, "settings"), app: settings.Defaults("sim"), shard: shards, smap: &mcsimv1.ShardMap{}}
}

func (s *store) snap() settingsSnap {
	return settingsSnap{hb: s.app.HeartbeatInterval(), ui: s.app.UnhealthyInterval(), shards: s.shard, hooks: poster.FromApplication(s.app)}
}

// commit is when a write that starts now is durable.
func (s *store) commit() time.Time {
	start := s.w.now
	if s.busyUntil.After(start) {
		start = s.busyUntil
	}
	s.busyUntil = start.Add(s.w.uniform(fsyncMin, fsyncMax))
	return s.busyUntil
}

// patch applies a settings PATCH as the HTTP API does: all or nothing.
func (s *store) patch(body []byte) error {
	next, errs := settings.Patch(s.app, body)
	if errs != nil {
		return fmt.Errorf("settings: %w", errs)
	}
	s.app = next
	s.commitAndPush()
	return nil
}

func (s *store) setShards(n int) {
	s.shard = n
	s.commitAndPush()
}

// commitAndPush pushes the new settings to every live watcher once the
// change is durable.
func (s *store) commitAndPush() {
	snap := s.snap()
	at := s.commit()
	s.w.at(at, func() {
		live := s.watchers[:0]
		for _, wt := range s.watchers {
			if !wt.p.up || wt.p.run != wt.run {
				continue
			}
			live = append(live, wt)
			s.w.net.stream(s.p.id, wt.p.id, func() { wt.p.deliver(wt.run, func() { wt.fn(snap) }) })
		}
		s.watchers = live
	})
}

// watch subscribes p's current run to settings changes and answers the
// settings now.
func (s *store) watch(p *proc, fn func(settingsSnap)) settingsSnap {
	s.watchers = append(s.watchers, watcher{p: p, run: p.run, fn: fn})
	return s.snap()
}

type acquireAnswer struct {
	granted   bool
	epoch     uint64
	holder    string
	remaining time.Duration
}

// acquire is AcquireLease: the coord rule at the store's now, recorded
// for the runner, answered once durable.
func (s *store) acquire(master, incarnation string, ttl time.Duration) (acquireAnswer, error) {
	if err := coord.CheckAcquire(master, ttl); err != nil {
		return acquireAnswer{}, err
	}
	now := s.w.now
	r := coord.Acquire(s.lease, master, incarnation, master, ttl, now)
	s.lease = r.Lease
	if r.Granted {
		s.w.grants = append(s.w.grants, scenarios.LeaseGrant{At: now, Master: master, Epoch: r.Lease.Epoch, Expires: r.Lease.Expires, Renewal: r.Renewal})
	}
	a := acquireAnswer{granted: r.Granted, epoch: r.Lease.Epoch, holder: r.Lease.Holder}
	if r.Lease.Holder != "" && now.Before(r.Lease.Expires) {
		a.remaining = r.Lease.Expires.Sub(now)
	}
	return a, nil
}

// release is ReleaseLease; it returns when its answer may leave (after
// the fsync of a release, at once when nothing was released).
func (s *store) release(master string, epoch uint64) time.Time {
	l, ok := coord.Release(s.lease, master, epoch)
	if !ok {
		return time.Time{}
	}
	s.lease = l
	s.w.grants = append(s.w.grants, scenarios.LeaseGrant{At: s.w.now, Master: master, Epoch: epoch, Released: true})
	return s.commit()
}

// errFenced is the store's refusal of a map write (FailedPrecondition on
// the real service).
var errFenced = errors.New("fenced")

// writeMap is WriteShardMap with the fencing rule, unless sabotaged.
func (s *store) writeMap(master string, leaseEpoch uint64, m *mcsimv1.ShardMap) error {
	if !s.w.sabotage.NoMapFencing {
		if err := coord.AdmitShardMapWrite(s.lease, master, leaseEpoch, s.w.now, s.smap, m); err != nil {
			if errors.Is(err, coord.ErrNotLeaseHolder) {
				return fmt.Errorf("%w: %v", errFenced, err)
			}
			return err
		}
	} else if err := coord.CheckShardMap(m); err != nil {
		return err
	}
	s.w.truth.mapStored(master, leaseEpoch, s.smap.GetMaxEpoch(), m.GetMaxEpoch())
	s.smap = m
	return nil
}
