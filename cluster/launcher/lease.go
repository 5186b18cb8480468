package launcher

import (
	"fmt"

	"github.com/mcsim/mcsim/health"
)

// leaseWait folds the store's lease into the view: while no master is
// primary and the lease runs (a cluster restarted on the same data dir
// waits out the previous run's lease, up to a TTL), the view says so with
// the time left, and a lease_wait event is reported once per lease.
func (e *emitter) leaseWait(entries map[string]health.Entry, l *health.Lease) {
	e.mu.Lock()
	defer e.mu.Unlock()
	note := health.PrimaryNote(entries, l)
	if note != e.note {
		e.note, e.dirty = note, true
	}
	waitingFor := ""
	if health.WaitingForLease(entries, l) {
		waitingFor = fmt.Sprintf("%s/%d", l.Holder, l.Epoch)
	}
	if waitingFor != "" && waitingFor != e.waitingFor {
		ms := l.RemainingMS
		e.emitLocked(Event{Event: "lease_wait", Node: l.Holder, Epoch: l.Epoch, RemainingMS: &ms}, e.now())
	}
	e.waitingFor = waitingFor
}
