package master

import (
	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/membership"
)

// What gossip means to a master is decided here, in the node's package, so
// that every way of running masters (the mcsim master process, which reads
// its membership's Events, and cluster/inproc, which makes up the same
// events) takes the same path from a gossip event to the loop.

// gossipTarget is the part of *Node that gossip drives. It is an interface
// so that the decision can be tested without a running node.
type gossipTarget interface {
	CoreappJoined(id, addr string)
	CoreappLeft(id string)
	MasterLeft(id string)
}

// Gossip tells the master what one gossip event means to it.
func (n *Node) Gossip(ev membership.Event) { hear(n, n.log, ev) }

// FollowMembership feeds the master every gossip event until events is
// closed (the membership shut down). The mcsim master process runs it on
// its membership's Events.
func (n *Node) FollowMembership(events <-chan membership.Event) {
	for ev := range events {
		n.Gossip(ev)
	}
}

// hear decides what ev means to the master to: a coreapp that joined or
// changed its metadata is (re)learned at its gRPC address; one that left
// gracefully said goodbye itself, so its shards are handed over at once
// (rule 5). A coreapp gossip reports failed is only logged: memberlist must
// never declare a coreapp unhealthy, the heartbeat rule does (rules 1 and
// 4). A master that left gracefully has released the lease first, so the
// others are told to try for it at once; a failed master is left to the
// lease's expiry. Other roles (settings service, gateway) mean nothing to a
// master.
func hear(to gossipTarget, log zerolog.Logger, ev membership.Event) {
	if ev.Node.Role == membership.RoleMaster && ev.Kind == membership.LeftGracefully {
		to.MasterLeft(ev.Node.ID)
		return
	}
	if ev.Node.Role != membership.RoleCoreapp {
		return
	}
	switch ev.Kind {
	case membership.Joined, membership.Updated:
		// A member without a gRPC address cannot be heartbeaten; its
		// metadata may still arrive in an Updated.
		if ev.Node.GRPCAddr != "" {
			to.CoreappJoined(ev.Node.ID, ev.Node.GRPCAddr)
		}
	case membership.LeftGracefully:
		to.CoreappLeft(ev.Node.ID)
	case membership.Failed:
		log.Info().Str("coreapp", ev.Node.ID).Msg("gossip reports coreapp failed; the heartbeat rule decides")
	}
}
