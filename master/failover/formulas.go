package failover

import (
	"sort"
	"time"
)

// The pure formulas the core decides with, exposed so drivers, scenario
// checks and the simulator compute the same numbers.

// UnhealthyAt is rule 1: a coreapp whose unhealthy clock runs from
// clockFrom is unhealthy at clockFrom + unhealthyInterval. A Step at
// exactly that time declares it; an answer processed in an earlier Step (or
// earlier in the same Step's event) clears it.
func UnhealthyAt(clockFrom time.Time, unhealthyInterval time.Duration) time.Time {
	return clockFrom.Add(unhealthyInterval)
}

// ClockFrom is where rule 1's clock starts: the send time of the earliest
// unanswered heartbeat, but never before the master's last stall resume
// (rule 4: heartbeats a stalled master did not send in time are not held
// against coreapps). Zero resumedAt means no stall so far.
func ClockFrom(earliestUnansweredSentAt, resumedAt time.Time) time.Time {
	if resumedAt.After(earliestUnansweredSentAt) {
		return resumedAt
	}
	return earliestUnansweredSentAt
}

// PendingDeadline is rule 6 for unhealthy_interval changes: the deadline is
// recomputed with the new interval from the same clock start, and if that
// is already past it fires at now (the Step that applies the change).
func PendingDeadline(clockFrom time.Time, unhealthyInterval time.Duration, now time.Time) time.Time {
	d := UnhealthyAt(clockFrom, unhealthyInterval)
	if d.Before(now) {
		return now
	}
	return d
}

// NextHeartbeatAt is rule 6 for heartbeat_interval: the next heartbeat goes
// one (current) interval after the previous one, or at once if that is
// already past (after a shortened interval or a stall).
func NextHeartbeatAt(lastSentAt time.Time, heartbeatInterval time.Duration, now time.Time) time.Time {
	t := lastSentAt.Add(heartbeatInterval)
	if t.Before(now) {
		return now
	}
	return t
}

// ServedAgainBound is rule 1's window for a coreapp that crashed at crash:
// its shards are reassigned by the core between crash + unhealthy_interval
// and crash + unhealthy_interval + heartbeat_interval (the earliest
// unanswered heartbeat goes out at most one interval after the crash).
// Round trips and the assign/connect overhead ε come on top.
func ServedAgainBound(crash time.Time, cfg Config) (earliest, latest time.Time) {
	earliest = crash.Add(cfg.UnhealthyInterval)
	return earliest, earliest.Add(cfg.HeartbeatInterval)
}

// IsStall is rule 4's own detection: a Step at actual when the core asked
// to be woken at wanted is a stall if it is later by more than threshold.
// A zero wanted (nothing was pending) is never a stall.
func IsStall(wanted, actual time.Time, threshold time.Duration) bool {
	return !wanted.IsZero() && actual.Sub(wanted) > threshold
}

// Candidate is a healthy standby (a healthy coreapp serving no shard).
type Candidate struct {
	ID string
	// TroubleAt is the last time it was declared unhealthy, refused an
	// assignment or lost a shard; zero if never.
	TroubleAt time.Time
}

// ChooseStandby picks the standby that gets a shard: the least recently
// troubled one (never troubled first), ties broken by the smallest ID. So
// a flapping or refusing coreapp is picked last, and the choice never
// depends on input order. ok is false when there is no candidate.
func ChooseStandby(cands []Candidate) (id string, ok bool) {
	if len(cands) == 0 {
		return "", false
	}
	c := append([]Candidate(nil), cands...)
	sort.Slice(c, func(i, j int) bool {
		if !c[i].TroubleAt.Equal(c[j].TroubleAt) {
			return c[i].TroubleAt.Before(c[j].TroubleAt)
		}
		return c[i].ID < c[j].ID
	})
	return c[0].ID, true
}
