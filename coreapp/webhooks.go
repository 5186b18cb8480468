package coreapp

import (
	"github.com/mcsim/mcsim/callbacks/poster"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The webhook poster is the coreapp's StatusHandler.
var _ StatusHandler = (*poster.Poster)(nil)

// configureWebhooksLocked hands the callback settings of snap to the
// webhook poster, with the restart-required ones (callback_persist,
// webhooks.max_concurrent_requests) as the node started with them: the
// same baseline pending_restart compares against. Caller holds mu.
func (n *Node) configureWebhooksLocked(snap *mcsimv1.Snapshot) {
	if n.cfg.Webhooks == nil {
		return
	}
	s, err := poster.FromSnapshot(snap)
	if err == nil {
		s, err = s.StartedWith(n.baseline)
	}
	if err == nil {
		err = n.cfg.Webhooks.Configure(s)
	}
	if err != nil {
		n.logger.Error().Err(err).Uint64("revision", snap.GetRevision()).Msg("webhook settings not applied")
	}
}

// configureWebhooksWithoutSettings configures the poster of a node that
// watches no settings: the defaults, with the restart-required values it
// was given.
func (n *Node) configureWebhooksWithoutSettings() error {
	if n.cfg.Webhooks == nil || n.cfg.Settings != nil {
		return nil
	}
	s, err := poster.Defaults().StartedWith(n.baseline)
	if err != nil {
		return err
	}
	return n.cfg.Webhooks.Configure(s)
}
