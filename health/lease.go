package health

import (
	"encoding/json"
	"fmt"
	"time"
)

// Lease is the master lease as the settings store holds it, in the health
// answer's "lease" object. The nodes' entries say who acts as primary; the
// store says who holds the lease and for how long. The two differ while a
// cluster restarted on the same data dir waits for the previous run's
// lease to lapse (its holder is dead, or the same id in a new process,
// which must wait like any other master: rule 3), and then nobody is
// primary for up to a TTL.
type Lease struct {
	// Holder is the master id holding the lease; "" when it is free.
	Holder string `json:"holder"`
	// Epoch is the lease epoch (it grows with every new holder).
	Epoch uint64 `json:"epoch"`
	// RemainingMS is how long the lease runs by the store's clock, in
	// whole milliseconds; 0 when it is free or has lapsed.
	RemainingMS int64 `json:"remaining_ms"`
}

// LeaseAt is the lease of holder at epoch, expiring at expires, as seen
// at now (the store's clock).
func LeaseAt(holder string, epoch uint64, expires, now time.Time) Lease {
	l := Lease{Holder: holder, Epoch: epoch}
	if holder != "" && now.Before(expires) {
		l.RemainingMS = expires.Sub(now).Milliseconds()
	}
	return l
}

// DecodeLease reads the "lease" object of a GET /v1/health answer; nil
// when the answer has none (an older service).
func DecodeLease(body []byte) (*Lease, error) {
	var ans struct {
		Lease *Lease `json:"lease"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, err
	}
	return ans.Lease, nil
}

// PrimaryNote says why there is no primary, for people (the status table,
// the live view of `mcsim up`): "" when an entry is primary, or when no
// master is listed and no lease runs (nothing to explain). A running lease
// that nobody listed acts on is the previous holder's: the masters wait
// for it to lapse (up to a TTL after a restart on the same data dir).
func PrimaryNote(entries map[string]Entry, l *Lease) string {
	secondaries := false
	for _, e := range entries {
		if e.Role == RolePrimaryMaster {
			return ""
		}
		secondaries = secondaries || e.Role == RoleSecondaryMaster
	}
	switch {
	case WaitingForLease(entries, l):
		return fmt.Sprintf("no primary: waiting for the previous lease (%s, epoch %d) to lapse, %s left",
			l.Holder, l.Epoch, formatLeft(time.Duration(l.RemainingMS)*time.Millisecond))
	case secondaries:
		return "no primary yet: the lease is free; a master takes it at its next try"
	}
	return ""
}

// WaitingForLease says whether the masters wait for a lease nobody listed
// acts on: no entry is primary and the store says the lease still runs.
func WaitingForLease(entries map[string]Entry, l *Lease) bool {
	for _, e := range entries {
		if e.Role == RolePrimaryMaster {
			return false
		}
	}
	return l != nil && l.RemainingMS > 0
}

// formatLeft rounds up to whole seconds ("24 s"), with a tenth below 10 s
// ("2.4 s"), so a wait never reads shorter than it is.
func formatLeft(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%d s", (d+time.Second-1)/time.Second)
	}
	tenths := (d + 100*time.Millisecond - 1) / (100 * time.Millisecond)
	return fmt.Sprintf("%d.%d s", tenths/10, tenths%10)
}

// StateOutsideGossip is the state of a master the store says holds the
// lease while gossip does not list it (cut off from gossip, or started
// without --join): it is still the primary the store knows, so `mcsim
// status` lists it rather than hide it.
const StateOutsideGossip = "outside_gossip"

// AddLeaseHolder adds to entries the lease's holder when no entry is that
// master and its lease runs, keyed "lease:<id>", and reports whether it
// did.
func AddLeaseHolder(entries map[string]Entry, l *Lease) bool {
	if l == nil || l.Holder == "" || l.RemainingMS <= 0 {
		return false
	}
	for key := range entries {
		if NodeID(key) == l.Holder {
			return false
		}
	}
	entries["lease:"+l.Holder] = Entry{
		Role: RoleUnknown, GatewayStatus: GatewayDisconnected, Shards: []int{}, PendingRestart: []string{},
		State: StateOutsideGossip,
		Error: fmt.Sprintf("holds the lease by the store (epoch %d, %s left) but is not in the gossip cluster", l.Epoch, formatLeft(time.Duration(l.RemainingMS)*time.Millisecond)),
	}
	return true
}
