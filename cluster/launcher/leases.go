package launcher

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mcsim/mcsim/settings/grpcapi"
)

// leaseRecord keeps what the settings store decided about the master
// lease, as the store's OnLease tells it (the store runs in this process).
// It is the impartial record of takeovers: their time is the store's grant,
// to the millisecond, not when a poll of /v1/health happened to see the
// new primary; and it costs no call to any node.
type leaseRecord struct {
	mu  sync.Mutex
	evs []grpcapi.LeaseEvent
}

func (r *leaseRecord) add(ev grpcapi.LeaseEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

// since returns the events from index i on, in the store's time order.
func (r *leaseRecord) since(i int) []grpcapi.LeaseEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.evs) {
		return nil
	}
	out := slices.Clone(r.evs[i:])
	slices.SortStableFunc(out, func(a, b grpcapi.LeaseEvent) int { return a.At.Compare(b.At) })
	return out
}

// lease folds the store's new lease decisions in: a grant to a master
// other than the last holder is a takeover, at the grant's time.
func (e *emitter) lease(evs []grpcapi.LeaseEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range evs {
		if ev.Renewal || ev.Released {
			continue
		}
		if e.lastHolder != "" && ev.Master != e.lastHolder {
			e.emitLocked(Event{Event: "takeover", Node: ev.Master, From: e.lastHolder, LeaseEpoch: ev.Epoch}, ev.At)
			e.tally.takeovers++
			e.noteLocked(ev.At, fmt.Sprintf("takeover: %s is primary (was %s), lease epoch %d", ev.Master, e.lastHolder, ev.Epoch))
		}
		e.lastHolder = ev.Master
	}
}

// DefaultHealthInterval is how often mcsim up reads /v1/health, which asks
// every node for its Status: the view's roles and gateway statuses lag it
// by at most this. Takeovers come from the store and failovers from the
// gateway, both read every PollInterval, so they are not delayed by it.
const DefaultHealthInterval = time.Second
