package scenarios

import (
	"context"
	"encoding/json"
	"time"
)

// Target is a cluster the runner drives: the real multi-process cluster
// (procs) or, later, the simulator (sim). The runner decides and judges;
// a Target only starts nodes, applies faults and reports what the
// impartial witnesses saw (the gateway, the settings store) and what the
// nodes said. Every time it reports is on its own clock (Now).
type Target interface {
	// Name is the --target name: "procs" or "sim".
	Name() string
	// Start runs the cluster: the shape, the settings applied before any
	// node starts, every node ready. An error means the cluster could not
	// be started (exit 3).
	Start(ctx context.Context, c Cluster, settings json.RawMessage) error
	// Close stops every process the target started and removes every
	// fault, also after a failed Start. It must be safe to call twice.
	Close() error
	// Now is the target's clock; Sleep lets time pass on it.
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error

	// Nodes are the masters and coreapps now, by id.
	Nodes(ctx context.Context) (map[string]NodeState, error)
	// Served is who serves each shard now, as the gateway hears it. The
	// caller must not change the map.
	Served() map[int]string
	// Failovers are the shards the gateway saw pass between coreapps so far.
	Failovers() []FailoverSeen
	// Grants are the store's lease decisions so far, in time order: grants
	// to a new holder, renewals and releases.
	Grants() []LeaseGrant
	// Declarations are the coreapps the masters declared unhealthy so far.
	Declarations() []Declaration
	// Commands are the assignments and releases the coreapps accepted or
	// refused so far, as they reported them.
	Commands() []Command
	// Violations are the invariants the target saw broken so far: the
	// gateway log's fencing (single_owner, epoch_monotonic) on every
	// target, and on the simulator also what its ground truth shows
	// (rule 3 under single_primary, rule 4 under no_false_failover, the
	// stored max_epoch under epoch_monotonic). The runner counts each
	// under its invariant when the scenario checks it.
	Violations() []Violation

	// Process faults and changes, by node id.
	Kill(ctx context.Context, id string) error
	Stop(ctx context.Context, id string) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Restart(ctx context.Context, id string) error
	// Network replaces the network faults in force with links (none:
	// every link heals). Nodes that cannot take it now (paused) get it
	// when they resume; nodes that start later get it as they start.
	Network(ctx context.Context, links []NetLink) error
	// Clock sets the rate of a master's or coreapp's clock (1: real time).
	Clock(ctx context.Context, id string, rate float64) error
	// StartNode starts a new master or coreapp with the next free id.
	StartNode(ctx context.Context, role string) (string, error)
	Patch(ctx context.Context, body json.RawMessage) error
	SetShards(ctx context.Context, n int) error
	// Where is where the target keeps its files (data dir, logs), for
	// --keep; "" if none.
	Where() string
}

// SessionWitness is a Target that also tells every gateway session it
// saw (both targets do). It is apart from Target because only reports
// read it: no verdict depends on it.
type SessionWitness interface {
	Sessions() []SessionSeen
}

// NodeState is one node as the runner selects it.
type NodeState struct {
	ID string
	// Role is primary_master, secondary_master, coreapp, or unknown.
	Role   string
	Shards []int
	// Up: the process runs and is not paused.
	Up bool
}

// FailoverSeen is a shard passing from one coreapp to another, as the
// gateway saw it: From last served at ServedUntil, To first at
// ServedAgain.
type FailoverSeen struct {
	Shard                    int
	From, To                 string
	Epoch                    uint64
	ServedUntil, ServedAgain time.Time
}

// Downtime is how long the shard went unserved in this failover (0 when
// the new owner was heard before the old one last was).
func (f FailoverSeen) Downtime() time.Duration { return max(0, f.ServedAgain.Sub(f.ServedUntil)) }

// LeaseGrant is one decision of the store about the master lease: a grant
// to a new holder, a renewal by the holder, or a release.
type LeaseGrant struct {
	At      time.Time
	Master  string
	Epoch   uint64
	Expires time.Time // zero for a release
	Renewal bool
	// Released: Master gave the lease up at At.
	Released bool
}

// newTerm says whether g began a term: a grant, not a renewal or release.
func (g LeaseGrant) newTerm() bool { return !g.Renewal && !g.Released }

// Declaration is a master declaring a coreapp unhealthy.
type Declaration struct {
	At      time.Time
	Master  string
	Coreapp string
}

// Command is a coreapp's verdict on one command of a master: an assign
// or release, accepted or refused, with the lease epoch it carried; or
// (Kind heartbeat, Accepted) the first heartbeat by which it heard a newer
// lease epoch, which raises the bar for the commands after it.
type Command struct {
	At      time.Time
	Coreapp string
	// Run counts the coreapp's processes (0: the first): a restarted
	// coreapp remembers no lease epoch, so each run is judged alone.
	Run        int
	Master     string
	Kind       string // assign, release or heartbeat
	LeaseEpoch uint64
	Accepted   bool
}

// Violation is one broken invariant, with what shows it.
type Violation struct {
	Invariant string
	At        time.Time
	Details   string
}
