package store

import (
	"strconv"
	"strings"
	"testing"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// recipientIn returns a recipient (digits) whose bucket is b.
func recipientIn(t *testing.T, b int) string {
	t.Helper()
	for i := 16315550000; ; i++ {
		r := strconv.Itoa(i)
		if shard.BucketOf(r) == b {
			return r
		}
	}
}

func cb(id, recipient, status string) *mcsimv1.PendingCallback {
	return &mcsimv1.PendingCallback{Id: id + "/" + status, MessageId: id, RecipientId: recipient, Status: status, TimestampUnix: 1764623400, CoreappId: "c1"}
}

// ids lists the callbacks' ids, in order.
func ids(cbs []*mcsimv1.PendingCallback) string {
	var out []string
	for _, c := range cbs {
		out = append(out, c.GetId())
	}
	return strings.Join(out, " ")
}

func listAll(t *testing.T, s *Store) string {
	t.Helper()
	got, err := s.ListCallbacks(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ids(got)
}

func TestCallbacksRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	if got := listAll(t, s); got != "" {
		t.Fatalf("new store lists %q", got)
	}
	r := recipientIn(t, 5)
	if err := s.PutCallbacks([]*mcsimv1.PendingCallback{cb("m2", r, "sent"), cb("m1", r, "sent")}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCallbacks([]*mcsimv1.PendingCallback{cb("m1", r, "delivered")}); err != nil {
		t.Fatal(err)
	}
	// The order kept, not the ids' order.
	if got, want := listAll(t, s), "m2/sent m1/sent m1/delivered"; got != want {
		t.Fatalf("listed %q, want %q", got, want)
	}
	// Overwrite keeps the place and takes the new value.
	over := cb("m2", r, "sent")
	over.CoreappId = "c2"
	if err := s.PutCallbacks([]*mcsimv1.PendingCallback{over}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListCallbacks(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if ids(got) != "m2/sent m1/sent m1/delivered" || got[0].GetCoreappId() != "c2" || got[0].GetTimestampUnix() != 1764623400 {
		t.Fatalf("after overwrite: %v", got)
	}
	// Unknown ids are ignored.
	if err := s.DeleteCallbacks([]string{"m1/sent", "nope"}); err != nil {
		t.Fatal(err)
	}
	if got, want := listAll(t, s), "m2/sent m1/delivered"; got != want {
		t.Fatalf("after delete listed %q, want %q", got, want)
	}
	// Callbacks are not part of the watched state.
	if st := s.State(); st.Revision != 0 {
		t.Fatalf("callbacks moved revision to %d", st.Revision)
	}
}

func TestCallbacksSurviveReopen(t *testing.T) {
	s, dir := openTemp(t)
	r := recipientIn(t, 0)
	if err := s.PutCallbacks([]*mcsimv1.PendingCallback{cb("a", r, "sent"), cb("b", r, "read")}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCallbacks([]string{"a/sent"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := listAll(t, s2); got != "b/read" {
		t.Fatalf("after reopen listed %q, want b/read", got)
	}
	// The sequence survives too: a new callback goes after the old ones.
	if err := s2.PutCallbacks([]*mcsimv1.PendingCallback{cb("c", r, "sent")}); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, s2); got != "b/read c/sent" {
		t.Fatalf("after reopen and put listed %q, want b/read c/sent", got)
	}
}

// A callback is listed for exactly the shard its recipient's bucket falls
// in, whatever the shard count: a successor under a new count finds it.
func TestListCallbacksByShard(t *testing.T) {
	s, _ := openTemp(t)
	var all []*mcsimv1.PendingCallback
	for b := range shard.Buckets {
		all = append(all, cb(strconv.Itoa(b+1), recipientIn(t, b), "sent"))
	}
	if err := s.PutCallbacks(all); err != nil {
		t.Fatal(err)
	}
	for _, n := range shard.Counts() {
		seen := map[string]int{}
		for sh := range n {
			got, err := s.ListCallbacks(sh, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != shard.Buckets/n {
				t.Errorf("shard %d/%d lists %d callbacks, want %d", sh, n, len(got), shard.Buckets/n)
			}
			covers := map[int]bool{}
			for _, b := range shard.Covers(sh, n) {
				covers[b] = true
			}
			for _, c := range got {
				if !covers[shard.BucketOf(c.GetRecipientId())] {
					t.Errorf("shard %d/%d lists %s of bucket %d", sh, n, c.GetId(), shard.BucketOf(c.GetRecipientId()))
				}
				seen[c.GetId()]++
			}
		}
		if len(seen) != len(all) {
			t.Errorf("%d shards list %d distinct callbacks, want %d", n, len(seen), len(all))
		}
	}
}

func TestCallbacksBadInput(t *testing.T) {
	s, _ := openTemp(t)
	r := recipientIn(t, 1)
	for _, tc := range []struct {
		put   []*mcsimv1.PendingCallback
		field string
	}{
		{[]*mcsimv1.PendingCallback{cb("a", r, "sent"), {RecipientId: r}}, "callbacks[1].id"},
		{[]*mcsimv1.PendingCallback{{Id: "x/sent"}}, "callbacks[0].recipient_id"},
	} {
		if err := s.PutCallbacks(tc.put); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("PutCallbacks(%v) = %v, want an error naming %s", tc.put, err, tc.field)
		}
	}
	if got := listAll(t, s); got != "" {
		t.Fatalf("a refused put kept %q", got)
	}
	for _, tc := range []struct{ sh, n int }{{0, 3}, {2, 2}, {-1, 4}} {
		if _, err := s.ListCallbacks(tc.sh, tc.n); err == nil {
			t.Errorf("ListCallbacks(%d, %d) = nil error", tc.sh, tc.n)
		}
	}
}
