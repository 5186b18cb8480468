package master

import (
	"context"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// watchSettings keeps a Watch stream open on the settings service and posts
// every snapshot to the loop; a broken stream is re-opened after a short
// pause (the loop keeps the last snapshot meanwhile).
func (n *Node) watchSettings(ctx context.Context) {
	const retry = 500 * time.Millisecond
	for ctx.Err() == nil {
		stream, err := n.cfg.Settings.Watch(ctx, &mcsimv1.WatchRequest{NodeId: n.cfg.ID})
		if err == nil {
			for {
				resp, rerr := stream.Recv()
				if rerr != nil {
					err = rerr
					break
				}
				n.post(snapshotEvent{snap: resp.GetSnapshot()})
			}
		}
		if ctx.Err() != nil {
			return
		}
		n.log.Warn().Err(err).Msg("settings watch broken; re-opening")
		t := n.clk.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}
