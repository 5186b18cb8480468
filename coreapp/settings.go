package coreapp

import (
	"context"
	"maps"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Run watches the settings service (when Config.Settings is set) to keep the
// latest restart-required values for Status.pending_restart and to
// configure the webhook poster, re-opening the watch after SettingsRetry
// when it breaks. It returns when ctx ends.
// Without a settings client it only waits for ctx.
func (n *Node) Run(ctx context.Context) error {
	if n.cfg.Settings == nil {
		<-ctx.Done()
		return nil
	}
	for {
		err := n.watchSettings(ctx)
		if ctx.Err() != nil {
			return nil
		}
		n.logger.Warn().Err(err).Dur("retry_in_ms", n.cfg.SettingsRetry).Msg("settings watch broke")
		t := n.cfg.Clock.NewTimer(n.cfg.SettingsRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

func (n *Node) watchSettings(ctx context.Context) error {
	stream, err := n.cfg.Settings.Watch(ctx, &mcsimv1.WatchRequest{NodeId: n.cfg.ID})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		n.applySnapshot(resp.GetSnapshot())
	}
}

// applySnapshot records a snapshot's restart-required values; the first one
// becomes the baseline when the node was not given one.
func (n *Node) applySnapshot(snap *mcsimv1.Snapshot) {
	if snap == nil {
		return
	}
	vals := maps.Clone(snap.GetRestartRequired())
	if vals == nil {
		vals = map[string]string{}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if snap.GetRevision() < n.latestRev {
		return // an older view, e.g. from a lagging replica after a reconnect
	}
	n.latestRev = snap.GetRevision()
	if n.baseline == nil {
		n.baseline = maps.Clone(vals)
	}
	n.latest = vals
	n.configureWebhooksLocked(snap)
	n.logger.Debug().Uint64("revision", snap.GetRevision()).Msg("settings snapshot")
}
