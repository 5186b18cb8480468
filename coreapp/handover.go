package coreapp

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The rule-5 goodbye of a stopping coreapp lives here, in the node's
// package, rather than in the command that wires it, so that it is tested
// with the node and the gateway it waits on, and so that mcsim coreapp and
// cluster/inproc (both call HandOver from Config.OnLeave) share it.

// DefaultHandoverWait bounds how long a stopping coreapp keeps its sessions
// open for successors to replace them: long enough for a primary to assign
// and a standby to open its sessions, short because with no standby nobody
// ever will, and the stop must end.
const DefaultHandoverWait = 2 * time.Second

// leaveTimeout bounds the goodbye itself: the membership pushes it to the
// masters at once, so waiting longer than this only delays a stop whose
// goodbye is lost anyway (the masters then fall back to the heartbeat rule).
const leaveTimeout = time.Second

// handoverPoll is how often the node's own status is read while waiting:
// small against the handover it waits for, which takes a heartbeat round
// trip and a session open.
const handoverPoll = 10 * time.Millisecond

// Handover is what HandOver needs from the world around the node: the
// gossip cluster's goodbye and whether a master is still there to hear it.
type Handover struct {
	// Leave leaves the gossip cluster gracefully within timeout, so that
	// the primary hands the node's shards over at once (rule 5).
	Leave func(timeout time.Duration) error
	// MasterAlive says whether any master is still a gossip member.
	// Without one nobody will take the shards over (as when a whole
	// cluster stops, masters first), so there is nothing to wait for.
	MasterAlive func() bool
	// Wait bounds the wait for the successors (0: DefaultHandoverWait).
	Wait time.Duration
	// Logger is the node's logger (with node_id and role).
	Logger zerolog.Logger
}

// HandOver is the graceful goodbye of a coreapp that is stopping while it
// served the shards in served (Config.OnLeave's argument): it leaves the
// gossip cluster, and then, if it served any shard and a master is alive
// to hand them over, keeps its sessions open until the successors' newer
// epochs replaced every one of them at the gateway (node serves no shard),
// or for h.Wait, or until ctx ends. Closing the sessions before the
// successors' opened would leave the shards unserved in between; waiting
// for nobody would only slow the stop.
//
// A failed Leave means the masters may never hear the goodbye and will
// wait for the heartbeat rule instead, so there is no handover to wait
// for either.
func HandOver(ctx context.Context, node *Node, served []*mcsimv1.ServedShard, h Handover) {
	if err := h.Leave(leaveTimeout); err != nil {
		h.Logger.Warn().Err(err).Msg("gossip leave incomplete: masters will wait for the heartbeat rule")
		return
	}
	if len(served) == 0 || !h.MasterAlive() {
		return
	}
	wait := h.Wait
	if wait == 0 {
		wait = DefaultHandoverWait
	}
	awaitHandover(ctx, node, wait, h.Logger)
}

// awaitHandover waits until node serves no shard (each was replaced by a
// successor's newer epoch), or for d, or ctx.
func awaitHandover(ctx context.Context, node *Node, d time.Duration, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(handoverPoll)
	defer tick.Stop()
	for {
		st, err := node.Status(ctx, &mcsimv1.StatusRequest{})
		if err == nil && len(st.GetShards()) == 0 {
			log.Info().Msg("every shard handed over")
			return
		}
		select {
		case <-ctx.Done():
			log.Warn().Int("shards", len(st.GetShards())).Msg("shards not handed over in time: closing their sessions anyway")
			return
		case <-tick.C:
		}
	}
}
