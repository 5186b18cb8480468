// Package lease is the master's term as a pure state machine: the master
// lease (DESIGN.md rule 3), the renew schedule (live, rule 6), what an
// acquire or renew answer means, when the master becomes primary and when
// it steps down, and the epoch blocks of the shard-map writes (the
// batching rule). Every one of these decisions used to be made in the
// driver's loop (package master); here they are made in one place, from
// the same inputs, for the real driver and the simulator alike.
//
// It has the shape of master/failover: Step(now, Event) returns Actions,
// NextWake says when it wants a Tick. No goroutines, clock, I/O or
// logging: time is an argument, so a transcript pins every rule down to
// the nanosecond and a seeded random run can check rule 3 after every
// step.
//
// # Driving it
//
// primary.Machine is its one driver: it joins the Term to the failover
// core and is what the master's loop and the simulator step. Its rules:
//
//   - One goroutine (the master's loop) owns the Term. now comes from the
//     master's own clock and never goes back.
//   - Step Settings with the live intervals on the first snapshot (it
//     starts competing for the lease) and on every change of them.
//   - Step Check before acting on any other input: a primary whose lease
//     ran out by its own clock steps down before anything else happens.
//     Every Step makes that check first (a map write's own Steps name a
//     more precise reason); Check is the Step that does nothing else.
//   - Set a timer at NextWake (zero: none) and Step a Tick when it fires.
//   - Carry out SendAcquire in the background: read the send time from the
//     own clock just before the request goes out and Step Answered with
//     it, the TTL asked for, and the answer or error. One is in flight at a
//     time; a renewal that falls due meanwhile goes out when it returns.
//   - Carry out LoadShardMap by loading the stored map (bounded by its
//     Timeout) and Step ShardMapLoaded at the own clock's now after the
//     load. BecomePrimary follows if the lease still holds: build the
//     failover core from the loaded map. If that fails, Step
//     PrimaryAborted.
//   - While primary, before a batch's assignments go out, Step PersistMap
//     with the core's map's MaxEpoch; carry out WriteMap (in the
//     background, or waited for within Timeout) and Step MapPersisted at
//     the own clock's now after it, or MapWriteFailed. A background write
//     that fails later is MapWriteFailed with Background set.
//   - StepDown: stop acting at once (drop the core, stop the map writer);
//     the machine has already forgotten the lease.
//   - Shutdown on a stop: ReleaseLease follows for a primary that stops
//     gracefully (flush the last map, then release). After Shutdown the
//     Term decides nothing more.
//
// # Decisions
//
// Rule 3. The lease holds until the send time of the last successful
// acquire or renewal plus its TTL, by the master's own clock: the store
// started its TTL no earlier than the request was sent, so this errs on
// the safe side. The latest grant is the truth, also when its TTL is
// shorter than the one before (a live change moved the store's expiry
// earlier); only an answer to a request sent before the grant held is
// ignored. A renewal with a shorter TTL moves the end the master acts by
// to its send time plus that TTL as it is sent: the store may apply it
// and the answer be lost, and the master would otherwise act by its longer
// end after another took the lease (testdata/shorter_ttl_lost.txt). A
// primary steps down, with the same reasons the logs have
// always carried, when its lease ends by its own clock ("lease expired by
// the master's own clock"; also at once when a renewal with a shorter TTL
// is answered after the end it grants), when the store says another master holds it
// ("lease held by X"), when it was granted again at a new epoch after it
// lapsed in the store (another master may have acted in the gap), and
// when a shard-map write fails, is fenced, or cannot be made or finish
// within the lease.
//
// Renew schedule. Every renew interval (default heartbeat_interval) with a
// TTL (default unhealthy_interval); the overrides of Config replace them.
// An interval that reaches the TTL would let the lease lapse between
// renewals, so the renewal then comes at a third of the TTL (Timing). A
// refused master tries again when the store says the holder's lease
// lapses, if that is before its next poll, so a crashed primary is
// replaced within about the TTL. A live change of the intervals that
// changes the timing renews at once with the new TTL (or as soon as the
// renewal in flight returns) and schedules the next from then on. A master
// that leaves gracefully releases the lease, so a secondary tries at once
// when it hears of it.
//
// Becoming primary. A grant that still holds when its answer arrives
// makes a secondary load the stored map; it becomes primary only if the
// lease still holds after the load.
//
// Epoch blocks (the batching rule). An epoch must be durable before a
// coreapp sees it; the owner need not be. So a primary reserves EpochBlock
// epochs at a time in the store: a map whose MaxEpoch lies within the
// reserved block is written in the background (the failover's Assign goes
// out at once); one past it waits for the write that reserves the next
// block (MaxEpoch + EpochBlock).
package lease
