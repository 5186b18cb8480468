package failover

import (
	"slices"
	"strings"
	"time"
)

// The due index: every coreapp by when it is next due (dueOf: its next
// heartbeat or its rule-1 deadline, whichever is first), in a binary
// min-heap. A Step looks at the coreapps due by its now and no others, and
// NextWake is the heap's top: with a thousand coreapps the walk of all of
// them on every Step was most of a master's time.
//
// Every change to what dueOf reads goes through touch (one coreapp) or
// retrack (all of them: a stall, a settings change, the deadline switched
// off); TestDueCacheChangesNothing compares a core that uses the index
// with one that walks every coreapp on every Step.

// touch recomputes ca's due time and moves it in the index (adding it if
// it is not there).
func (c *Core) touch(ca *coreapp) {
	due := c.dueOf(ca)
	if ca.hi != 0 && due == ca.due {
		return // in its place already: an answer mostly leaves it due at its next heartbeat
	}
	ca.due = due
	if ca.hi == 0 {
		c.due = append(c.due, ca)
		ca.hi = len(c.due)
		c.dueUp(ca.hi - 1)
		return
	}
	if i := ca.hi - 1; !c.dueUp(i) {
		c.dueDown(i)
	}
}

// untrack takes ca out of the index.
func (c *Core) untrack(ca *coreapp) {
	if ca.hi == 0 {
		return
	}
	i, last := ca.hi-1, len(c.due)-1
	c.dueSwap(i, last)
	c.due[last] = nil
	c.due = c.due[:last]
	ca.hi = 0
	if i < last && !c.dueUp(i) {
		c.dueDown(i)
	}
}

// retrack recomputes every coreapp's due time and rebuilds the index.
func (c *Core) retrack() {
	clear(c.due)
	c.due = c.due[:0]
	for _, ca := range c.all() {
		ca.due = c.dueOf(ca)
		c.due = append(c.due, ca)
		ca.hi = len(c.due)
	}
	for i := len(c.due)/2 - 1; i >= 0; i-- {
		c.dueDown(i)
	}
}

// dueFirst is the earliest due time of any coreapp (zero: none).
func (c *Core) dueFirst() time.Time {
	if len(c.due) == 0 {
		return time.Time{}
	}
	return c.due[0].due
}

// dueBy lists the coreapps due at or before now, in id order (the order
// the walk of every coreapp visits them). The slice is reused by the next
// call.
func (c *Core) dueBy(now time.Time) []*coreapp {
	out, stack := c.dueScratch[:0], append(c.dueStack[:0], 0)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(c.due) || !dueAtOrBefore(c.due[i].due, now) {
			continue // nor are its children: they are due no earlier
		}
		out = append(out, c.due[i])
		stack = append(stack, 2*i+1, 2*i+2)
	}
	c.dueStack = stack
	if len(out) > 1 { // mostly one is due
		slices.SortFunc(out, func(a, b *coreapp) int { return strings.Compare(a.id, b.id) })
	}
	c.dueScratch = out
	return out
}

func dueAtOrBefore(due, now time.Time) bool { return !due.IsZero() && !due.After(now) }

// dueLess orders the index: earlier first, zero (never due) last.
func dueLess(a, b *coreapp) bool {
	return !a.due.IsZero() && (b.due.IsZero() || a.due.Before(b.due))
}

func (c *Core) dueSwap(i, j int) {
	c.due[i], c.due[j] = c.due[j], c.due[i]
	c.due[i].hi, c.due[j].hi = i+1, j+1
}

// dueUp moves entry i up while it is due before its parent; it reports
// whether it moved.
func (c *Core) dueUp(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if !dueLess(c.due[i], c.due[p]) {
			break
		}
		c.dueSwap(i, p)
		i, moved = p, true
	}
	return moved
}

// dueDown moves entry i down while a child is due before it.
func (c *Core) dueDown(i int) {
	n := len(c.due)
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && dueLess(c.due[l], c.due[m]) {
			m = l
		}
		if r < n && dueLess(c.due[r], c.due[m]) {
			m = r
		}
		if m == i {
			return
		}
		c.dueSwap(i, m)
		i = m
	}
}
