package membership

import (
	"fmt"
	"sync"
)

// EventKind says what happened to a member.
type EventKind int

const (
	// Joined: the node is alive (first seen, or back after a failure or a
	// leave).
	Joined EventKind = iota + 1
	// Updated: an alive node changed its metadata (e.g. restarted with a
	// new gRPC address before anyone noticed it was gone).
	Updated
	// LeftGracefully: the node announced its own departure (Leave). The
	// master may hand its shards over at once.
	LeftGracefully
	// Failed: memberlist's failure detector declared the node dead. This is
	// informational only: heartbeats, not gossip, decide coreapp health.
	Failed
)

func (k EventKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Updated:
		return "updated"
	case LeftGracefully:
		return "left_gracefully"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a change in membership as this node saw it.
type Event struct {
	Kind EventKind
	Node Node
}

func (e Event) String() string { return fmt.Sprintf("%v(%s)", e.Kind, e.Node.ID) }

// eventQueue decouples memberlist's callbacks, which run under memberlist's
// node lock and must not block, from a consumer that may be slow: it keeps
// every event in an unbounded slice and one goroutine feeds them to out in
// order.
type eventQueue struct {
	mu      sync.Mutex
	pending []Event
	closed  bool

	wake    chan struct{} // capacity 1: "pending may be non-empty"
	out     chan Event
	done    chan struct{}
	stopped chan struct{}
}

func newEventQueue() *eventQueue {
	q := &eventQueue{
		wake:    make(chan struct{}, 1),
		out:     make(chan Event),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go q.run()
	return q
}

// push never blocks. Events pushed after close are dropped.
func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.pending = append(q.pending, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run() {
	defer close(q.stopped)
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-q.done:
				return
			}
		}
		e := q.pending[0]
		q.pending[0] = Event{}
		q.pending = q.pending[1:]
		q.mu.Unlock()
		select {
		case q.out <- e:
		case <-q.done:
			return
		}
	}
}

// close stops the feeder, discards what was not received, and closes out.
func (q *eventQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		<-q.stopped
		return
	}
	q.closed = true
	q.pending = nil
	q.mu.Unlock()
	close(q.done)
	<-q.stopped
}
