package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/mcsim/mcsim/scenarios"
)

// truth is what only the simulator can see: when an answer reached a
// master's host (even if the master could not read it yet), which lease
// a master could prove it held by its own clock when it sent a command,
// and every map the store ever took. From it the simulator judges three
// rules of DESIGN.md directly, where real processes can only show their
// effects at the gateway:
//
//   - rule 3 (single_primary): a master sends an assign or release only
//     while a lease it was granted lasts by its own clock (the send time
//     of a granted request plus its TTL);
//   - rule 4 (no_false_failover): a coreapp whose answer to the heartbeat
//     rule 1 blames reached the master within unhealthy_interval is
//     never declared unhealthy;
//   - rule 2 (epoch_monotonic): the store's max_epoch never goes down
//     (a later primary would hand out epochs again).
//
// With every safety mechanism in place none of them fires; selftest shows
// each firing when one is switched off.
type truth struct {
	w          *World
	heartbeats map[hbKey]*hbRecords
	proof      map[proofKey]time.Time
	// actedPast: a rule-3 violation was reported for this lease already
	// (every command after the first says the same).
	actedPast  map[proofKey]bool
	violations []scenarios.Violation
}

// hbKey is one term of one master process and one coreapp: seqs start
// again with every term's core.
type hbKey struct {
	master    string
	run, term int
	coreapp   string
}

// hbRecords are the heartbeats of one hbKey, oldest first; only the last
// keepHeartbeats count (recent). Up to as many older ones are kept too, so
// that dropping them is one copy per keepHeartbeats sends. A heartbeat
// call keeps a pointer to them for its answer's arrival.
type hbRecords struct{ rs []hbRecord }

// recent are the records that count.
func (r *hbRecords) recent() []hbRecord { return r.rs[max(0, len(r.rs)-keepHeartbeats):] }

type hbRecord struct {
	seq uint64
	// Times by the master's clock, in nanoseconds since the world's zero
	// (a third of a time.Time's size: every heartbeat is recorded).
	sentAt    int64
	arrivedAt int64 // notArrived: no successful answer reached its host
}

type proofKey struct {
	master string
	run    int
	epoch  uint64
}

func newTruth(w *World) *truth {
	return &truth{w: w, heartbeats: map[hbKey]*hbRecords{}, proof: map[proofKey]time.Time{}, actedPast: map[proofKey]bool{}}
}

// keepHeartbeats bounds the records kept per coreapp: rule 1 blames a
// heartbeat at most unhealthy_interval old, far fewer than this many.
const keepHeartbeats = 64

// records are k's heartbeat records, made on first use.
func (t *truth) records(k hbKey) *hbRecords {
	r := t.heartbeats[k]
	if r == nil {
		// At its full size at once: a term lasts minutes, and growing
		// it by doubling allocated twice as much.
		r = &hbRecords{rs: make([]hbRecord, 0, 2*keepHeartbeats)}
		t.heartbeats[k] = r
	}
	return r
}

// sent records heartbeat seq sent at at (the master's clock, in
// nanoseconds since the world's zero); its arrival is noted in r.
func (r *hbRecords) sent(seq uint64, at int64) {
	if len(r.rs) == 2*keepHeartbeats {
		// Shifted down, so that the array is reused.
		n := copy(r.rs, r.rs[keepHeartbeats:])
		clear(r.rs[n:])
		r.rs = r.rs[:n]
	}
	r.rs = append(r.rs, hbRecord{seq: seq, sentAt: at, arrivedAt: notArrived})
}

// notArrived is hbRecord.arrivedAt before an answer arrived.
const notArrived = math.MinInt64

// arrived notes that the successful answer to heartbeat seq reached the
// master's host at at (its clock, in nanoseconds since the world's zero).
func (r *hbRecords) arrived(seq uint64, at int64) {
	rs := r.recent()
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].seq == seq {
			rs[i].arrivedAt = at
			return
		}
	}
}

// declared checks rule 4 for a declaration at now (the master's clock)
// blaming the heartbeat sent at blamed.
func (t *truth) declared(k hbKey, blamed, now time.Time, ui time.Duration) {
	rs := t.heartbeats[k]
	if rs == nil {
		return
	}
	if blamed.IsZero() {
		return // no heartbeat was blamed
	}
	b, n := t.w.sinceZero(blamed), t.w.sinceZero(now)
	for _, r := range rs.recent() {
		if r.sentAt != b || r.arrivedAt == notArrived || r.arrivedAt > n || time.Duration(r.arrivedAt-r.sentAt) >= ui {
			continue
		}
		t.violations = append(t.violations, scenarios.Violation{Invariant: "no_false_failover", At: t.w.now,
			Details: fmt.Sprintf("rule 4 (simulator's ground truth): %s declared %s unhealthy for heartbeat %d, whose answer reached it %v after it was sent, within unhealthy_interval (%v)",
				k.master, k.coreapp, r.seq, time.Duration(r.arrivedAt-r.sentAt).Round(time.Microsecond), ui)})
		return
	}
}

// granted notes a lease grant the master received for a request sent at
// sentAt (its clock) asking for ttl.
func (t *truth) granted(k proofKey, sentAt time.Time, ttl time.Duration) {
	if end := sentAt.Add(ttl); end.After(t.proof[k]) {
		t.proof[k] = end
	}
}

// commandSent checks rule 3 for a command a master sends at now (its
// clock) at lease epoch k.epoch.
func (t *truth) commandSent(k proofKey, kind string, shard int, now time.Time) {
	end, ok := t.proof[k]
	if ok && now.Before(end) || t.actedPast[k] {
		return
	}
	t.actedPast[k] = true
	t.violations = append(t.violations, scenarios.Violation{Invariant: "single_primary", At: t.w.now,
		Details: fmt.Sprintf("rule 3 (simulator's ground truth): %s sent %s of shard %d at lease epoch %d %v after its lease ended by its own clock",
			k.master, kind, shard, k.epoch, now.Sub(end).Round(time.Microsecond))})
}

// mapStored checks rule 2 for a map the store takes.
func (t *truth) mapStored(master string, leaseEpoch, from, to uint64) {
	if to >= from {
		return
	}
	t.violations = append(t.violations, scenarios.Violation{Invariant: "epoch_monotonic", At: t.w.now,
		Details: fmt.Sprintf("the store's shard map max_epoch went down from %d to %d, written by %s at lease epoch %d: a later primary would hand out epochs again",
			from, to, master, leaseEpoch)})
}
