// Package books is the pure core of a coreapp: its books of which master
// commands it accepted and which shards it holds, and the decisions made
// on them. Which Assign and Release it accepts or refuses (the lease-epoch
// fence, a shard epoch that must grow, a release that must name the epoch
// held), which gateway sessions it opens and closes, what a session that
// ends means for the shard, and whether a shard is served or only
// connecting (rule 7: the gateway must be heard).
//
// It is a state machine of the same shape as master/failover: Step(now,
// Event) returns Actions, NextWake says when it wants a Tick. It has no
// goroutines, clock, I/O or logging, so the coreapp's gRPC handlers (the
// real driver, package coreapp) and the simulator decide the same way from
// the same inputs, and a transcript pins every rule down.
//
// # Driving it
//
//   - One lock guards the Books; every Step and query happens under it.
//     The driver logs the verdicts under that same lock, so the order of
//     its log lines is the order of acceptance (the scenario checkers
//     judge a deposed master by that order).
//   - An RPC is one event (AssignAsked, ReleaseAsked, HeartbeatAsked); its
//     first action is Accept or Refuse. Refuse carries the gRPC code and
//     the exact text to answer with.
//   - Carry out OpenSession by opening a gateway session and posting its
//     first answer: SessionAccepted (with the silence the gateway
//     announced) or SessionRejected (rejected, failed, or any other
//     answer). Afterwards post GatewayPinged for every ping and
//     SessionReplaced or SessionEnded when the stream says so or breaks.
//     Every session gets exactly one first answer, also after a
//     CloseSession or a stop.
//   - Carry out CloseSession by closing that session's stream; nothing is
//     posted for it beyond what the stream's end reports.
//   - Set a timer at NextWake (zero: none) after every Step and Step a Tick
//     when it fires. Deadlines fire only on a Tick, so a ping stepped
//     before the Tick counts even if it is a little late.
//   - Step returns an error only for an event type it does not know.
//
// # Decisions
//
// Commands are checked in the order the handlers always have: the request
// is well formed (InvalidArgument), it is meant for this coreapp (another
// coreapp_id: the address changed hands), the node is not stopping
// (Assign only), the lease epoch is not older than one already seen, then
// the shard epoch. Only the last two are verdicts on a master's command
// (Refuse.Verdict): the others are answered without judging the master.
//
// Lease epochs. Every accepted command and every heartbeat raises the lease
// epoch remembered; a heartbeat is never refused for an old lease epoch
// (answering changes nothing, refusing would make a deposed master blame
// a live coreapp), but it raises the bar for the Assign and Release that
// follow.
//
// Assign. The shard epoch must be newer than any seen for that shard on
// this node, held or not; it is remembered once accepted (a refused one is
// not). An older session of the same shard leaves the books at once (the
// heartbeat answer lists the new epoch) but is closed only when the new
// session's first answer comes, whatever it is: accepted, the gateway has
// already replaced the old one; failed, the old one would otherwise stay
// open at the gateway as an orphan no master can see or release. Closing a
// session that has not answered yet (its successor answered first, or it
// was released) closes the one it was waiting to close too.
//
// Release. Fenced like Assign, and the epoch must be the one the shard is
// held with. Releasing a shard not held succeeds and does nothing: it may
// already have been dropped (replaced, broken).
//
// Sessions that end. A session replaced by the gateway (a newer epoch took
// the shard elsewhere) or whose stream ends drops the shard if it is still
// the shard's session; the node never reconnects by itself, the master
// decides who serves the shard next (see package coreapp).
//
// Send. Route (a query, no event: sending changes nothing in the books)
// says whether a message to a recipient may go out and on which session:
// only when the recipient's shard under the front door's shard count is
// held with that count and CONNECTED. Otherwise FailedPrecondition with a
// reason starting "not primary coreapp: ", which the front door answers
// with 1018.
//
// Gateway status. A shard is CONNECTING while its session opens, CONNECTED
// once accepted, CONNECTING again after SilentAfter without a ping (the
// node is cut off or the gateway paused; the assignment stays) and
// CONNECTED with the next ping. The node's overall status: UNINITIALIZED
// until a master heartbeats it or assigns it a shard, DISCONNECTED while
// it holds no shard, CONNECTING while any held shard is, else CONNECTED.
package books
