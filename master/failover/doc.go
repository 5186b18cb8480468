// Package failover is the pure core of the primary master: the failure
// detector (which coreapp is unhealthy, rules 1 and 4 of DESIGN.md) and the
// shard assigner (which coreapp serves which shard at which epoch, rules 2,
// 5 and 6) as one deterministic state machine, in the style of etcd-io/raft's
// RawNode. It has no goroutines, timers, clock, I/O, logging or randomness:
// time is an argument, inputs are Events, outputs are Actions plus the time
// the core wants to be woken (NextWake). The same inputs give the same
// outputs byte for byte, so the real driver (master/) and the discrete-event
// simulator drive the same code.
//
// # Driving it
//
//	c, err := failover.New(cfg, storedMap, now) // on becoming primary
//	loop:
//	    acts, err := c.Step(now, ev)            // ev: an Event, or Tick{} when the timer fires
//	    execute(acts)                           // see below
//	    timer.Reset(c.NextWake() - now)         // zero NextWake: no timer
//
// Rules for the driver (primary.Machine follows them for the master's loop
// and the simulator alike):
//   - One goroutine owns the Core. gRPC callbacks, memberlist and settings
//     watchers post events to it; they never call it.
//   - Right after New, Step(now, Tick{}): it sends the first heartbeats (and
//     the re-map, if the stored map has another shard count).
//   - Set a timer at exactly NextWake and Step a Tick when it fires; deadlines
//     fire on time, not at the next heartbeat. When the timer and replies are
//     both ready, step the replies first (an answer that arrived before a
//     deadline counts). When several replies are queued, Apply them all and
//     then Step a Tick at the same now: each Step fires due deadlines, so
//     stepping them one by one would blame a coreapp whose answer is queued
//     behind another event.
//   - now must never go backwards (use the monotonic clock).
//   - Execute a batch in order: reports (log/metrics) and SendHeartbeat
//     first, send those at once (the Step's now is their send time). Then at
//     most one PersistShardMap: the epochs up to its MaxEpoch must be
//     durable in the store before the Assign/Release that follow it go out
//     (in order per coreapp). Simplest: write the map and wait. The real
//     driver reserves a block of epochs durably instead (it stores a larger
//     max_epoch) and writes maps inside the block in the background, in
//     order; the core's adoption rule (ShardAdopted) repairs the map a
//     successor loads if such a write was lost with its master. If a write
//     fails (lost lease), execute nothing more and stop acting as primary:
//     drop the Core; the next primary builds a new one from the stored map.
//     Fencing relies on this: no epoch is used before it is durable.
//   - Post every heartbeat outcome (HeartbeatAnswered with exactly the shards
//     the answer lists, or HeartbeatFailed) and every assign outcome
//     (AssignDone; OK=false for a refusal or an RPC error). Release has no
//     outcome. A coreapp must ignore a Release whose epoch is not the one it
//     holds.
//   - Post CoreappJoined when a coreapp appears (and again when it restarts),
//     CoreappLeft only for a graceful stop, SettingsChanged on every change of
//     heartbeat_interval/unhealthy_interval, ShardCountChanged on a shard
//     count change, and Stalled if the driver itself measures a stall.
//   - Step errors mean bad input and change nothing; errors wrapping
//     ErrUnknownCoreapp are expected for replies racing a CoreappLeft.
//
// # Decisions
//
// Rule 1 (heartbeats). Each known coreapp, healthy or not, gets one
// heartbeat per heartbeat_interval, whether or not earlier ones are
// outstanding (so an unhealthy one can prove it recovered). An answer to seq
// n clears every outstanding seq <= n. A failure clears nothing and declares
// nothing. A healthy coreapp is declared unhealthy at the first Step with
// now >= ClockFrom + unhealthy_interval (UnhealthyAt), ClockFrom being the
// send time of its earliest outstanding heartbeat, or the last stall resume
// if later. Within a Step the event is applied before due deadlines, so an
// answer stepped at exactly the deadline counts. Heartbeat seqs start at 1
// per Core and per coreapp (again after a leave and re-join).
//
// Rule 2 (assignment). Unassigned shards, lowest first, go to standbys:
// healthy coreapps owning no shard. ChooseStandby picks the least recently
// troubled (declared unhealthy, refused an assignment, lost a shard), then
// the smallest ID. Every assignment takes epoch MaxEpoch+1. A shard without
// a standby is reported once (ShardUnassigned) and assigned in the first
// Step that finds one. A fresh cluster (New got a map with no owner) makes
// its first assignment once Config.StartupCoreapps standbys (default: as
// many as shards) are known, or HeartbeatInterval after New, whichever is
// first (FirstAssignmentWait is reported once): coreapps join in any
// order, and assigning to the first to join would give shard 0 to
// whichever started fastest and report shards unassigned whose coreapps
// are still starting. Only a shortage after the wait is reported. An unhealthy coreapp recovers (Recovered) when it
// re-joins, or when after an answer its rule-1 deadline lies in the future;
// it comes back as a standby (no failback). A coreapp that refuses an
// assignment (AssignDone OK=false) loses the shard and is benched (no
// standby) until it answers a heartbeat sent after the refusal, so retries
// happen at most once per heartbeat interval.
//
// Reconciliation from heartbeat answers. A coreapp that lists a shard it
// does not own in the map is sent a Release for it. A coreapp that owns a
// confirmed shard (AssignDone OK, or owned in the map given to New) but
// answers a heartbeat sent after the confirmation without listing it at
// its epoch has lost it (it restarted): the shard is reassigned at once
// (ShardLost reason not-served).
//
// Rule 6 (live settings). heartbeat_interval: each coreapp's next heartbeat
// is at its last send + the new interval, or at once if that is past
// (NextHeartbeatAt). unhealthy_interval: pending deadlines are recomputed
// from the same ClockFrom with the new value; one already past fires in the
// Step that applies the change (PendingDeadline).
//
// Rule 4 (stalls). A Step whose now is later than the previous NextWake by
// more than StallThreshold (IsStall; default heartbeat_interval/2), or a
// Stalled event, is a stall: the resume time becomes the earliest ClockFrom
// for every outstanding heartbeat, and every coreapp is heartbeated at once.
// So no coreapp is declared within unhealthy_interval of the resume for
// heartbeats sent (or answers received) around the stall; the cost is that
// a real crash overlapping a stall is detected up to the stall's length
// later.
//
// Rule 5 (graceful leave). CoreappLeft hands the coreapp's shards to
// standbys in the same Step and forgets the coreapp.
//
// Shard count (live too, rule 6). Shard s < min(old, new) keeps its
// owner, re-assigned at a new epoch with the new count; shards >= new are
// released; new shards go to standbys. Each shard has one owner in the
// map at all times, and the gateway's epoch fencing retires old sessions.
//
// New: every owner in the stored map becomes a healthy known coreapp with a
// fresh clock (its first heartbeat is sent at the first Step), so a takeover
// causes no failover by itself; epochs continue from the stored MaxEpoch.
package failover
