package books

import (
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/mcsim/mcsim/shard"
)

// Route is where a message goes: the session of Shard (of count Shards)
// held at Epoch.
type Route struct {
	Shard  int32
	Shards int32
	Epoch  uint64
}

// NotPrimary starts the reason of every Send refused because this coreapp
// does not serve the recipient's shard; the front door answers it with
// 1018 Not Primary Coreapp.
const NotPrimary = "not primary coreapp: "

// Route says whether this coreapp may send a message to recipient to for
// a front door that routed it with the shard count shards (and meant
// coreapp, "" for any), and on which session. It is a query: it changes
// nothing.
//
// The coreapp sends only when it holds the recipient's shard under that
// same count (a count change in flight means the front door's map and
// ours disagree: the client retries with the new map) and the shard is
// CONNECTED: its session is accepted and the gateway is heard (rule 7). A
// session still opening, or cut off from the gateway, is no place to send
// on; the gateway would fence a stale one anyway, but refusing here
// answers at once. A stopping coreapp still sends on the sessions it holds
// until they close: the handover replaces them, and the gateway fences.
func (b *Books) Route(coreapp, to string, shards int32) (Route, *Refuse) {
	switch {
	case to == "":
		return Route{}, &Refuse{Code: codes.InvalidArgument, Reason: "to: must not be empty"}
	case !shard.ValidCount(int(shards)):
		return Route{}, &Refuse{Code: codes.InvalidArgument, Reason: fmt.Sprintf("shards: %s, got %d", shard.CountRule, shards)}
	}
	if r, bad := b.checkTarget(coreapp); bad {
		r.Reason = NotPrimary + r.Reason
		return Route{}, &r
	}
	sh := int32(shard.Of(to, int(shards)))
	refuse := func(format string, args ...any) (Route, *Refuse) {
		return Route{}, &Refuse{Code: codes.FailedPrecondition,
			Reason: NotPrimary + fmt.Sprintf("recipient %q is in shard %d of %d, ", to, sh, shards) + fmt.Sprintf(format, args...)}
	}
	s := b.get(sh)
	switch {
	case s == nil:
		return refuse("which coreapp %q does not hold", b.id)
	case s.shards != shards:
		return refuse("which coreapp %q does not hold: it holds shard %d of %d (epoch %d)", b.id, sh, s.shards, s.epoch)
	case !s.accepted:
		return refuse("whose session (epoch %d) the gateway has not accepted yet", s.epoch)
	case s.status != connected:
		return refuse("whose gateway (epoch %d) has not been heard for %v", s.epoch, s.silentAfter)
	}
	return Route{Shard: sh, Shards: shards, Epoch: s.epoch}, nil
}
