package failover

import (
	"slices"
	"time"
)

// The shard assigner: rules 2, 5 and 6. Every change to the map marks the
// batch dirty, so Step emits one PersistShardMap before the Assign/Release
// actions that depend on it (fencing: an epoch is never used before it is
// durable).

// loseShard takes shard s from its owner. It is reassigned by
// assignUnassigned in the same Step if a healthy standby exists.
func (c *Core) loseShard(now time.Time, s int, reason LostReason) {
	// An Assign of this shard still queued in the batch (made by an event
	// applied earlier in it, a shard-count change) is void now: sent, it
	// would name an owner the map no longer has.
	c.rpcs = slices.DeleteFunc(c.rpcs, func(a Action) bool {
		as, ok := a.(Assign)
		return ok && as.Shard == s
	})
	a := c.sm.Assignments[s]
	if a.Coreapp != "" {
		c.unassigned++
	}
	c.reports = append(c.reports, ShardLost{Shard: s, Coreapp: a.Coreapp, Epoch: a.Epoch, Reason: reason, At: now})
	c.sm.Assignments[s] = Assignment{Shard: s}
	c.setShard(s, shardState{lostFrom: a.Coreapp, lostAt: now})
	c.dirty = true
}

// standbys are the healthy coreapps that own no shard and are not benched
// after a refused assignment.
func (c *Core) standbys() []Candidate {
	owns := map[string]bool{}
	for _, a := range c.sm.Assignments {
		owns[a.Coreapp] = true
	}
	var out []Candidate
	for _, id := range c.ids() {
		if ca := c.coreapps[id]; ca.healthy && !ca.benched && !owns[id] {
			out = append(out, Candidate{ID: id, TroubleAt: ca.troubleAt})
		}
	}
	return out
}

// assignUnassigned gives every unassigned shard, lowest number first, to
// the standby ChooseStandby picks, with epoch MaxEpoch+1. A shard with no
// standby is reported once and retried every Step.
func (c *Core) assignUnassigned(now time.Time) {
	if c.unassigned == 0 {
		return // mostly: every Step comes here
	}
	// The standbys are listed once, when the first unassigned shard is
	// found; give changes nothing they depend on except that the chosen
	// one now owns a shard, so it is dropped from the list.
	var cands []Candidate
	listed := false
	for s, a := range c.sm.Assignments {
		if a.Coreapp != "" {
			continue
		}
		st := &c.shards[s]
		if !listed {
			cands, listed = c.standbys(), true
			if c.awaitingCoreapps(now, len(cands)) {
				return
			}
		}
		id, ok := ChooseStandby(cands)
		if !ok {
			if !st.stuck {
				st.stuck = true
				c.reports = append(c.reports, ShardUnassigned{Shard: s, At: now})
			}
			continue
		}
		from, lostAt := st.lostFrom, st.lostAt
		epoch := c.give(s, id) // resets the shard's state
		cands = slices.DeleteFunc(cands, func(x Candidate) bool { return x.ID == id })
		if from != "" {
			c.reports = append(c.reports, Failover{Shard: s, From: from, To: id, Epoch: epoch, LostAt: lostAt})
		}
	}
}

// awaitingCoreapps is the start-up wait of a fresh cluster (New got a map
// with no owner): the first assignment waits until StartupCoreapps (by
// default as many as shards) standbys are known, or HeartbeatInterval
// after New, whichever comes first. Coreapps join in any order (process
// start-up, gossip), and assigning at once would hand shard 0 to whichever
// came first and report the other shards unassigned although their
// coreapps were still starting; after the wait ChooseStandby sees them all.
// A shortage left at the end of the wait is real and reported. It reports
// FirstAssignmentWait once.
func (c *Core) awaitingCoreapps(now time.Time, joined int) bool {
	if c.startupUntil.IsZero() {
		return false
	}
	want := c.cfg.StartupCoreapps
	if want == 0 {
		want = len(c.sm.Assignments)
	}
	if joined >= want || !now.Before(c.startupUntil) {
		c.startupUntil = time.Time{}
		return false
	}
	if !c.startupReported {
		c.startupReported = true
		c.reports = append(c.reports, FirstAssignmentWait{Joined: joined, Want: want, Until: c.startupUntil, At: now})
	}
	return true
}

// give assigns shard s to id at a fresh epoch.
func (c *Core) give(s int, id string) uint64 {
	c.sm.MaxEpoch++
	e := c.sm.MaxEpoch
	if c.sm.Assignments[s].Coreapp == "" {
		c.unassigned--
	}
	c.sm.Assignments[s] = Assignment{Shard: s, Coreapp: id, Epoch: e}
	c.setShard(s, shardState{owner: c.coreapps[id]})
	c.rpcs = append(c.rpcs, Assign{Shard: s, Coreapp: id, Epoch: e, Shards: len(c.sm.Assignments)})
	c.dirty = true
	return e
}

// remap is rule 6. A shard number means a different key range under a
// different count, so every surviving assignment gets a new epoch: shard s
// < min(old, new) stays with its owner, re-assigned at a new epoch (and
// the new shard count); shards that no longer exist are released; new
// shards go to standbys (assignUnassigned). No coreapp is given a shard
// another one holds, and the gateway's epoch fencing retires the old
// sessions, so no shard is served twice at once.
func (c *Core) remap(n int) {
	old := c.sm.Assignments
	if n == len(old) {
		return
	}
	c.sm.Assignments = make([]Assignment, n)
	oldStates := c.shards
	c.shards = make([]shardState, n)
	for _, ca := range c.coreapps {
		ca.owns = 0 // counted again as give hands the shards out
	}
	for s := range c.sm.Assignments {
		c.sm.Assignments[s].Shard = s
		if s < len(old) && old[s].Coreapp == "" {
			c.shards[s] = oldStates[s] // keeps lostFrom for the Failover report
		}
	}
	for s, a := range old {
		switch {
		case a.Coreapp == "":
		case s < n:
			c.give(s, a.Coreapp)
		default:
			c.rpcs = append(c.rpcs, Release{Shard: s, Coreapp: a.Coreapp, Epoch: a.Epoch})
		}
	}
	c.cfg.Shards = n
	c.dirty = true
	c.unassigned = c.countUnassigned()
}
