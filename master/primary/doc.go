// Package primary is the master as one pure state machine: its lease and
// term (a lease.Term) and, while primary, its failover core (a
// failover.Core), with the rules that join the two. Those rules used to be
// written twice, in the real driver's loop (package master) and in the
// simulator's adapter (package sim), and the two copies had begun to
// drift; here they are written once, for both.
//
// It has the shape of the machines it owns: Step(now, Event) returns
// Actions, NextWake says when it wants a Tick. No goroutines, clock, I/O
// or logging: time is an argument.
//
// # Driving it
//
//   - One goroutine (the master's loop) owns the Machine; now comes from
//     the master's own clock and never goes back.
//   - Step Settings on the first snapshot (the master starts competing for
//     the lease) and on every later one.
//   - Set a timer at NextWake (zero: none) and Step a Tick when it fires.
//     Step Check before acting on an input that is not an Event (a status
//     query): rule 3 comes first. Every Event checks it itself.
//   - Carry out the actions in order. SendAcquire: send it in the
//     background and Step Answered with the send time read just before it
//     went out. LoadShardMap: load the stored map and Step MapLoaded.
//     SendHeartbeat, Assign, Release: send them with the action's
//     LeaseEpoch and Step their outcomes (HeartbeatsDone, AssignDone) with
//     the action's Term; Release has no outcome. WriteMap: queue it on the
//     term's map writer (Wait false; a failure later is MapWriteFailed) or
//     write it and wait, within Timeout, then Step MapWritten; nothing else
//     is stepped until then, as the loop is blocked on the write (Step
//     refuses other events meanwhile). StepDown: stop acting at once (stop
//     the map writer). ReleaseLease: flush Map, if any, then release the
//     lease. The rest are reports to log and count.
//   - Step a Shutdown on a stop.
//
// # Decisions
//
// Rule 3 before anything else: every Step except a map write's own outcome
// asks the lease first, so a master whose lease ran out by its own clock
// steps down before it looks at the input, and nothing of the input is
// carried out.
//
// Becoming primary. A granted lease loads the stored map; if the lease
// still holds after the load, a fresh core is built from the map, every
// coreapp known (by membership or as an owner in the map) joins it, sorted
// by id, and a Tick sends the first heartbeats. A core that cannot be
// built leaves the master secondary (PrimaryAborted).
//
// The batching rule. Within a batch of the core's actions, the
// PersistShardMap comes before the Assigns and Releases that use its
// epochs. The lease decides: within the reserved epoch block the map is
// written in the background and the batch goes on at once; past it the
// batch stops at the WriteMap until MapWritten says the map, with the next
// block reserved, is durable. A failed write ends the term and the rest of
// the batch is dropped: no epoch is used before it is durable (rule 2).
// Core events that came while the batch waited (the joins of a new term)
// are stepped after it, in order.
//
// Terms. Each time the master becomes primary a new term begins, with a
// new core whose heartbeat seqs start again at 1. Calls carry the term
// they were made in; an outcome of another term, or one that comes back
// after a step-down, is ignored (only rule 3 is checked, as for every
// input): it describes a core that no longer exists, whose seqs and
// epochs mean nothing to the current one.
//
// Stepping down drops the core, any batch waiting for its write, and the
// core events queued behind it; the lease has already been forgotten.
package primary
