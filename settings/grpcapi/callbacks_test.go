package grpcapi

import (
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// recipientOf returns a recipient whose shard of count n is s.
func recipientOf(s, n int) string {
	for i := 16315550000; ; i++ {
		if r := strconv.Itoa(i); shard.Of(r, n) == s {
			return r
		}
	}
}

func TestCallbacksPutListDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		ctx := t.Context()
		r0, r1 := recipientOf(0, 2), recipientOf(1, 2)
		put := []*mcsimv1.PendingCallback{
			{Id: "m1/sent", MessageId: "m1", RecipientId: r0, Status: "sent", TimestampUnix: 1764623400, CoreappId: "c1"},
			{Id: "m2/sent", MessageId: "m2", RecipientId: r1, Status: "sent", TimestampUnix: 1764623401, CoreappId: "c1"},
			{Id: "m1/delivered", MessageId: "m1", RecipientId: r0, Status: "delivered", TimestampUnix: 1764623402, CoreappId: "c1"},
		}
		if _, err := e.coord.PutCallbacks(ctx, &mcsimv1.PutCallbacksRequest{Callbacks: put}); err != nil {
			t.Fatalf("PutCallbacks: %v", err)
		}
		list := func(s, n int32) string {
			t.Helper()
			r, err := e.coord.ListCallbacks(ctx, &mcsimv1.ListCallbacksRequest{Shard: s, Shards: n})
			if err != nil {
				t.Fatalf("ListCallbacks(%d, %d): %v", s, n, err)
			}
			var ids []string
			for _, c := range r.GetCallbacks() {
				ids = append(ids, c.GetId()+"@"+c.GetCoreappId())
			}
			return strings.Join(ids, " ")
		}
		if got, want := list(0, 2), "m1/sent@c1 m1/delivered@c1"; got != want {
			t.Errorf("shard 0/2 lists %q, want %q", got, want)
		}
		if got, want := list(1, 2), "m2/sent@c1"; got != want {
			t.Errorf("shard 1/2 lists %q, want %q", got, want)
		}
		if got, want := list(0, 1), "m1/sent@c1 m2/sent@c1 m1/delivered@c1"; got != want {
			t.Errorf("shard 0/1 lists %q, want %q", got, want)
		}
		if _, err := e.coord.DeleteCallbacks(ctx, &mcsimv1.DeleteCallbacksRequest{Ids: []string{"m1/sent", "unknown"}}); err != nil {
			t.Fatalf("DeleteCallbacks: %v", err)
		}
		if got, want := list(0, 2), "m1/delivered@c1"; got != want {
			t.Errorf("after delete shard 0/2 lists %q, want %q", got, want)
		}
	})
}

func TestCallbacksBadRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		ctx := t.Context()
		_, err := e.coord.PutCallbacks(ctx, &mcsimv1.PutCallbacksRequest{Callbacks: []*mcsimv1.PendingCallback{{Id: "a/sent", RecipientId: "1"}, {RecipientId: "1"}}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "callbacks[1].id") {
			t.Errorf("PutCallbacks without id: %v, want InvalidArgument naming callbacks[1].id", err)
		}
		_, err = e.coord.PutCallbacks(ctx, &mcsimv1.PutCallbacksRequest{Callbacks: []*mcsimv1.PendingCallback{{Id: "a/sent"}}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "callbacks[0].recipient_id") {
			t.Errorf("PutCallbacks without recipient: %v, want InvalidArgument naming callbacks[0].recipient_id", err)
		}
		for _, tc := range []struct {
			s, n  int32
			field string
		}{{0, 3, "shards"}, {0, 0, "shards"}, {4, 4, "shard"}, {-1, 2, "shard"}} {
			_, err := e.coord.ListCallbacks(ctx, &mcsimv1.ListCallbacksRequest{Shard: tc.s, Shards: tc.n})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("ListCallbacks(%d, %d) = %v, want InvalidArgument naming %s", tc.s, tc.n, err, tc.field)
			}
		}
	})
}
