package coreapp

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"google.golang.org/grpc"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// failingEpochGateway fails every session request at epoch fail (the
// gateway unreachable for that one request).
type failingEpochGateway struct {
	mcsimv1.GatewayServiceClient
	fail uint64
}

func (g failingEpochGateway) Session(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse], error) {
	st, err := g.GatewayServiceClient.Session(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return failingEpochStream{st, g.fail}, nil
}

type failingEpochStream struct {
	grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse]
	fail uint64
}

func (s failingEpochStream) Send(in *mcsimv1.SessionRequest) error {
	if in.GetEpoch() == s.fail {
		return errors.New("gateway unreachable")
	}
	return s.BidiStreamingClient.Send(in)
}

// A newer assignment of a shard the node already serves replaces the old
// session in the node's books at once. If the new session then fails, the
// old one must not stay open at the gateway as an orphan: the node no
// longer reports it (so the master cannot release it) while it still holds
// the shard at the gateway.
func TestNewerEpochSameNodeFailedLeavesNoOrphan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		_, c, _ := h.coreapp("a", func(cfg *Config) {
			cfg.GatewayClient = failingEpochGateway{GatewayServiceClient: h.gc, fail: 2}
		})
		ctx := t.Context()
		if _, err := c.Assign(ctx, assign(1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Assign(ctx, assign(1, 0, 2)); err == nil {
			t.Fatal("assign at epoch 2 succeeded; the fake gateway should have failed it")
		}
		synctest.Wait()
		st := statusOf(t, c)
		hold, held := h.gw.Sessions()[0]
		if len(st.GetShards()) == 0 && held {
			t.Fatalf("node reports no shard but the gateway still holds shard 0 for %q at epoch %d (orphan session)", hold.CoreappID, hold.Epoch)
		}
	})
}
