package failover

import (
	"errors"
	"fmt"
	"time"

	"github.com/mcsim/mcsim/shard"
)

// Config holds the settings the core decides with. Heartbeat and unhealthy
// intervals change live through SettingsChanged; the shard count through
// ShardCountChanged.
type Config struct {
	// HeartbeatInterval is settings heartbeat_interval: one heartbeat per
	// coreapp per interval. Must be > 0.
	HeartbeatInterval time.Duration
	// UnhealthyInterval is settings unhealthy_interval: a coreapp is
	// unhealthy at t + UnhealthyInterval (rule 1). Must be > 0.
	UnhealthyInterval time.Duration
	// Shards is the number of shards: 1, 2, 4, 8, 16 or 32.
	Shards int
	// StallThreshold: a Step whose now is later than the wake-up the core
	// asked for (NextWake) by more than this is a stall of the master itself
	// (rule 4). Zero means the default, HeartbeatInterval/2 of the current
	// heartbeat interval. Smaller catches shorter stalls (no false failover
	// when queued answers are processed after a late deadline tick), at the
	// cost of restarting every coreapp's unhealthy clock more often (a real
	// crash that overlaps a stall is detected later). Must be >= 0.
	StallThreshold time.Duration
	// StartupCoreapps is how many coreapps a fresh cluster (a map with no
	// owner) waits for before its first assignment, for at most one
	// HeartbeatInterval from New. Zero means Shards. Must be >= 0.
	StartupCoreapps int
}

// Validate reports every problem with the config, each naming its field
// and the value it got.
func (c Config) Validate() error {
	var errs []error
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, fmt.Errorf("failover: HeartbeatInterval: must be > 0, got %v", c.HeartbeatInterval))
	}
	if c.UnhealthyInterval <= 0 {
		errs = append(errs, fmt.Errorf("failover: UnhealthyInterval: must be > 0, got %v", c.UnhealthyInterval))
	}
	if err := shard.CountError(c.Shards); err != nil {
		errs = append(errs, fmt.Errorf("failover: Shards: %w", err))
	}
	if c.StallThreshold < 0 {
		errs = append(errs, fmt.Errorf("failover: StallThreshold: must be >= 0, got %v", c.StallThreshold))
	}
	if c.StartupCoreapps < 0 {
		errs = append(errs, fmt.Errorf("failover: StartupCoreapps: must be >= 0, got %d", c.StartupCoreapps))
	}
	return errors.Join(errs...)
}

// stallThreshold is the effective threshold: the configured one, or half
// the current heartbeat interval.
func (c Config) stallThreshold() time.Duration {
	if c.StallThreshold > 0 {
		return c.StallThreshold
	}
	return c.HeartbeatInterval / 2
}

// Assignment is the owner of one shard. Coreapp "" means unassigned (and
// then Epoch is 0).
type Assignment struct {
	Shard   int
	Coreapp string
	Epoch   uint64
}

// ShardMap is what the driver persists (the store's ShardMap message minus
// the store-managed version). Assignments has one entry per shard, indexed
// by shard number, so len(Assignments) is the shard count.
type ShardMap struct {
	// MaxEpoch is the highest epoch ever handed out; the next assignment
	// uses MaxEpoch+1, across master restarts and takeovers.
	MaxEpoch    uint64
	Assignments []Assignment
}

// Clone returns a deep copy.
func (m ShardMap) Clone() ShardMap {
	return ShardMap{MaxEpoch: m.MaxEpoch, Assignments: append([]Assignment(nil), m.Assignments...)}
}

// Owner returns the coreapp serving shard s ("" if none or out of range).
func (m ShardMap) Owner(s int) string {
	if s < 0 || s >= len(m.Assignments) {
		return ""
	}
	return m.Assignments[s].Coreapp
}

// validate checks a persisted map handed to New. An empty map is valid
// (nothing persisted yet).
func (m ShardMap) validate() error {
	if len(m.Assignments) == 0 {
		return nil
	}
	var errs []error
	if err := shard.CountError(len(m.Assignments)); err != nil {
		errs = append(errs, fmt.Errorf("failover: ShardMap.Assignments: length %w", err))
	}
	entries := make([]shard.Assignment, len(m.Assignments))
	for i, a := range m.Assignments {
		entries[i] = shard.Assignment{Shard: a.Shard, Owner: a.Coreapp, Epoch: a.Epoch}
	}
	for _, p := range shard.CheckMap(len(m.Assignments), m.MaxEpoch, entries) {
		i, a := p.Index, m.Assignments[p.Index]
		switch p.Fault {
		case shard.OutOfPlace:
			errs = append(errs, fmt.Errorf("failover: ShardMap.Assignments[%d].Shard: must equal its index %d, got %d", i, i, a.Shard))
		case shard.AboveMaxEpoch:
			errs = append(errs, fmt.Errorf("failover: ShardMap.Assignments[%d].Epoch: must be <= MaxEpoch %d, got %d", i, m.MaxEpoch, a.Epoch))
		case shard.OwnedWithoutEpoch:
			errs = append(errs, fmt.Errorf("failover: ShardMap.Assignments[%d].Epoch: an assigned shard needs an epoch >= 1, got 0", i))
		}
		// OutOfRange and Repeated imply OutOfPlace, which says it better.
	}
	return errors.Join(errs...)
}
