package books

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

const (
	connecting = mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING
	connected  = mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED
)

// Books are one coreapp's books. Not safe for concurrent use: the driver
// holds its lock around every call.
type Books struct {
	id           string
	stopped      bool
	leaseEpoch   uint64
	heartbeated  bool // a master has heartbeated it: it is part of the cluster
	everAssigned bool
	seen         map[int32]uint64 // newest epoch accepted per shard
	// held are the sessions held, one per shard, sorted by shard: a
	// coreapp holds a few, and every Step after a ping walks them (a
	// map's iteration and its sorted keys cost more than the walk).
	held []*session
	// closeOnAnswer maps a session to the older session of its shard that
	// it took the place of, to close at its first answer (see the package
	// doc). The older one is out of held already.
	closeOnAnswer map[key]uint64
	// unfenced: commands of older lease epochs are accepted
	// (DisableLeaseFence).
	unfenced bool
	// accept backs accepted's answer.
	accept [1]Action
}

// accepted is the answer [Accept{}] without a new slice per heartbeat: it
// is the same value every time, so a caller that keeps an earlier one
// still holds what it was given (callers only read what Step returns).
func (b *Books) accepted() []Action {
	b.accept[0] = Accept{}
	return b.accept[:1:1]
}

// DisableLeaseFence makes the books accept commands of a lease epoch older
// than one already seen, as if the coreapp had no lease-epoch check. It
// exists for the simulator's selftest (sim.Sabotage), which must show that
// the checkers catch what this lets through; a test keeps every other
// package from calling it.
func (b *Books) DisableLeaseFence() { b.unfenced = true }

type key struct {
	shard int32
	epoch uint64
}

type session struct {
	shard       int32
	shards      int32
	epoch       uint64
	status      mcsimv1.GatewayStatus
	accepted    bool
	silentAfter time.Duration
	lastPing    time.Time // the last ping, or the acceptance before the first
}

// New returns the empty books of coreapp id.
func New(id string) *Books {
	return &Books{id: id, seen: map[int32]uint64{}, closeOnAnswer: map[key]uint64{}}
}

// Step applies ev at now and returns what to do (see the package doc).
func (b *Books) Step(now time.Time, ev Event) ([]Action, error) {
	switch ev := ev.(type) {
	case AssignAsked:
		return b.assign(ev), nil
	case ReleaseAsked:
		return b.release(ev), nil
	case HeartbeatAsked:
		if r, bad := b.checkTarget(ev.Coreapp); bad {
			return []Action{r}, nil
		}
		b.leaseEpoch = max(b.leaseEpoch, ev.LeaseEpoch)
		b.heartbeated = true
		return b.accepted(), nil
	case StopAsked:
		if b.stopped {
			return nil, nil
		}
		b.stopped = true
		return []Action{Leave{Shards: b.Served()}}, nil
	case SessionAccepted:
		out := b.answered(ev.Shard, ev.Epoch)
		if s := b.current(ev.Shard, ev.Epoch); s != nil {
			s.accepted, s.status, s.silentAfter, s.lastPing = true, connected, ev.SilentAfter, now
		}
		return out, nil
	case SessionRejected:
		return append(b.answered(ev.Shard, ev.Epoch), b.drop(ev.Shard, ev.Epoch)...), nil
	case SessionReplaced:
		return b.drop(ev.Shard, ev.Epoch), nil
	case SessionEnded:
		return b.drop(ev.Shard, ev.Epoch), nil
	case GatewayPinged:
		s := b.current(ev.Shard, ev.Epoch)
		if s == nil || !s.accepted {
			return nil, nil
		}
		last := s.lastPing
		s.lastPing = now
		if s.status == connected {
			return nil, nil
		}
		s.status = connected
		return []Action{SetStatus{Shard: ev.Shard, Epoch: s.epoch, Status: connected, Silence: now.Sub(last)}}, nil
	case Tick:
		return b.expire(now), nil
	}
	return nil, fmt.Errorf("books: unknown event %T", ev)
}

// NextWake is the earliest silence deadline of a shard still CONNECTED;
// zero when there is none.
func (b *Books) NextWake() time.Time {
	var w time.Time
	for _, s := range b.held {
		if d, ok := s.deadline(); ok && (w.IsZero() || d.Before(w)) {
			w = d
		}
	}
	return w
}

func (s *session) deadline() (time.Time, bool) {
	if s.status != connected || s.silentAfter <= 0 {
		return time.Time{}, false
	}
	return s.lastPing.Add(s.silentAfter), true
}

// expire turns every CONNECTED shard whose gateway was silent until now
// CONNECTING (rule 7); the session and the assignment stay.
func (b *Books) expire(now time.Time) []Action {
	var out []Action
	for _, s := range b.held {
		if d, ok := s.deadline(); ok && !now.Before(d) {
			s.status = connecting
			out = append(out, SetStatus{Shard: s.shard, Epoch: s.epoch, Status: connecting, Silence: now.Sub(s.lastPing)})
		}
	}
	return out
}

func (b *Books) assign(ev AssignAsked) []Action {
	if err := validateAssign(ev); err != nil {
		return []Action{Refuse{Code: codes.InvalidArgument, Reason: err.Error()}}
	}
	if r, bad := b.checkTarget(ev.Coreapp); bad {
		return []Action{r}
	}
	if b.stopped {
		return []Action{Refuse{Code: codes.Unavailable, Reason: "coreapp is stopping"}}
	}
	if r, bad := b.fence(ev.LeaseEpoch); bad {
		return []Action{r}
	}
	if seen := b.seen[ev.Shard]; ev.Epoch <= seen {
		return []Action{Refuse{Code: codes.FailedPrecondition, Verdict: true,
			Reason: fmt.Sprintf("shard %d epoch %d is not newer than epoch %d already seen", ev.Shard, ev.Epoch, seen)}}
	}
	b.leaseEpoch = max(b.leaseEpoch, ev.LeaseEpoch)
	b.seen[ev.Shard] = ev.Epoch
	b.everAssigned = true
	if old := b.get(ev.Shard); old != nil {
		b.closeOnAnswer[key{ev.Shard, ev.Epoch}] = old.epoch
	}
	s := &session{shard: ev.Shard, shards: sessionShards(ev.Shards), epoch: ev.Epoch, status: connecting}
	b.put(s)
	return []Action{Accept{}, OpenSession{Shard: ev.Shard, Shards: s.shards, Epoch: ev.Epoch}}
}

func (b *Books) release(ev ReleaseAsked) []Action {
	if ev.Shard < 0 {
		return []Action{Refuse{Code: codes.InvalidArgument, Reason: fmt.Sprintf("shard: must be ≥ 0, got %d", ev.Shard)}}
	}
	if r, bad := b.checkTarget(ev.Coreapp); bad {
		return []Action{r}
	}
	if r, bad := b.fence(ev.LeaseEpoch); bad {
		return []Action{r}
	}
	s := b.get(ev.Shard)
	if s != nil && s.epoch != ev.Epoch {
		return []Action{Refuse{Code: codes.FailedPrecondition, Verdict: true,
			Reason: fmt.Sprintf("shard %d is held with epoch %d, not %d", ev.Shard, s.epoch, ev.Epoch)}}
	}
	b.leaseEpoch = max(b.leaseEpoch, ev.LeaseEpoch)
	if s == nil {
		return []Action{Accept{}}
	}
	b.del(ev.Shard)
	return append([]Action{Accept{}}, b.close(ev.Shard, s.epoch)...)
}

// checkTarget refuses a request meant for another coreapp ("" means any):
// the caller dialed an address that is no longer that coreapp's.
func (b *Books) checkTarget(id string) (Refuse, bool) {
	if id != "" && id != b.id {
		return Refuse{Code: codes.FailedPrecondition,
			Reason: fmt.Sprintf("coreapp_id: this is coreapp %q, not %q (the address changed hands)", b.id, id)}, true
	}
	return Refuse{}, false
}

// fence refuses a command from a master older than one already seen.
func (b *Books) fence(leaseEpoch uint64) (Refuse, bool) {
	if leaseEpoch < b.leaseEpoch && !b.unfenced {
		return Refuse{Code: codes.FailedPrecondition, Verdict: true,
			Reason: fmt.Sprintf("lease epoch %d is older than lease epoch %d already seen", leaseEpoch, b.leaseEpoch)}, true
	}
	return Refuse{}, false
}

// answered closes the session that the one of shard at epoch took the
// place of, now that its first answer came.
func (b *Books) answered(shard int32, epoch uint64) []Action {
	k := key{shard, epoch}
	old, ok := b.closeOnAnswer[k]
	if !ok {
		return nil
	}
	delete(b.closeOnAnswer, k)
	return b.close(shard, old)
}

// close closes the session of shard at epoch and, if it had not answered
// yet, the one it was to close at its answer: closing settles that answer
// already (it can only be a failure, or an acceptance the newer session
// replaces), and waiting for it would keep two sessions of the shard open
// at the gateway for nothing.
func (b *Books) close(shard int32, epoch uint64) []Action {
	out := []Action{CloseSession{Shard: shard, Epoch: epoch}}
	k := key{shard, epoch}
	if older, ok := b.closeOnAnswer[k]; ok {
		delete(b.closeOnAnswer, k)
		out = append(out, b.close(shard, older)...)
	}
	return out
}

// current is the held session of shard if it is the one at epoch.
func (b *Books) current(shard int32, epoch uint64) *session {
	if s := b.get(shard); s != nil && s.epoch == epoch {
		return s
	}
	return nil
}

// find is where shard's session is in held, or would be.
// Written out rather than slices.BinarySearchFunc, whose comparison
// func is called, not inlined: every gateway ping looks its session up.
func (b *Books) find(shard int32) (int, bool) {
	lo, hi := 0, len(b.held)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b.held[m].shard < shard {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(b.held) && b.held[lo].shard == shard
}

// get is the session held for shard, nil if none.
func (b *Books) get(shard int32) *session {
	if i, ok := b.find(shard); ok {
		return b.held[i]
	}
	return nil
}

// put holds s for its shard, in the place of any session held for it.
func (b *Books) put(s *session) {
	if i, ok := b.find(s.shard); ok {
		b.held[i] = s
	} else {
		b.held = slices.Insert(b.held, i, s)
	}
}

// del forgets the session held for shard, if any.
func (b *Books) del(shard int32) {
	if i, ok := b.find(shard); ok {
		b.held = slices.Delete(b.held, i, i+1)
	}
}

// drop forgets the session of shard at epoch if it is still the shard's (a
// Release or a newer assignment may have taken its place).
func (b *Books) drop(shard int32, epoch uint64) []Action {
	if b.current(shard, epoch) == nil {
		return nil
	}
	b.del(shard)
	return []Action{Dropped{Shard: shard, Epoch: epoch}}
}

// Served lists the shards held, by shard, including those still
// connecting (their status says so).
func (b *Books) Served() []Served { return b.AppendServed(make([]Served, 0, len(b.held))) }

// AppendServed appends what Served lists to dst (a driver that asks on
// every heartbeat reuses its slice).
func (b *Books) AppendServed(dst []Served) []Served {
	for _, s := range b.held {
		dst = append(dst, Served{Shard: s.shard, Epoch: s.epoch, Status: s.status})
	}
	return dst
}

// ServedCount is the number of shards CONNECTED: accepted by the gateway
// and heard from it.
func (b *Books) ServedCount() int {
	n := 0
	for _, s := range b.held {
		if s.status == connected {
			n++
		}
	}
	return n
}

// LeaseEpoch is the newest lease epoch seen.
func (b *Books) LeaseEpoch() uint64 { return b.leaseEpoch }

// Stopped reports whether StopAsked was stepped.
func (b *Books) Stopped() bool { return b.stopped }

// GatewayStatus is the node's overall gateway status (see the package doc).
func (b *Books) GatewayStatus() mcsimv1.GatewayStatus {
	if !b.everAssigned && !b.heartbeated {
		return mcsimv1.GatewayStatus_GATEWAY_STATUS_UNINITIALIZED
	}
	if len(b.held) == 0 {
		return mcsimv1.GatewayStatus_GATEWAY_STATUS_DISCONNECTED
	}
	for _, s := range b.held {
		if s.status != connected {
			return connecting
		}
	}
	return connected
}

// validateAssign checks an assignment's fields. Shards may be 0 (unknown
// to the sender, see sessionShards); when set, it is a count the gateway
// accepts (shard.ValidCount) and Shard falls inside it.
func validateAssign(ev AssignAsked) error {
	switch {
	case ev.Shard < 0:
		return fmt.Errorf("shard: must be ≥ 0, got %d", ev.Shard)
	case ev.Shards == 0 && ev.Shard >= shard.Buckets:
		return fmt.Errorf("shard: must be < %d, got %d", shard.Buckets, ev.Shard)
	case ev.Epoch == 0:
		return fmt.Errorf("epoch: must be ≥ 1, got 0")
	case ev.Shards < 0:
		return fmt.Errorf("shards: must be ≥ 0, got %d", ev.Shards)
	case ev.Shards > 0 && !shard.ValidCount(int(ev.Shards)):
		return fmt.Errorf("shards: %s (or 0: unknown), got %d", shard.CountRule, ev.Shards)
	case ev.Shards > 0 && ev.Shard >= ev.Shards:
		return fmt.Errorf("shard: must be < shards (%d), got %d", ev.Shards, ev.Shard)
	}
	return nil
}

// sessionShards is the shard count a session is opened with. A sender that
// does not know the count (0; the master always sends it) gets the finest,
// shard.Buckets, under which distinct shard numbers never share a key: the
// gateway then fences by shard number alone, as it did before counts were
// known.
func sessionShards(shards int32) int32 {
	if shards == 0 {
		return shard.Buckets
	}
	return shards
}
