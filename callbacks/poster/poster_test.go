package poster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/grpcapi"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/shard"
	"github.com/mcsim/mcsim/webhook"
)

// receiver is the webhook sink (package webhook) served in-process through
// the posters' http.Client, so a whole exchange runs in a synctest bubble
// on virtual time. It also counts the posts in flight at once.
type receiver struct {
	*webhook.Sink
	mu           sync.Mutex
	inFlight     int
	maxInFlight  int
	contentTypes map[string]int
}

func newReceiver(cfg webhook.Config) *receiver { return &receiver{Sink: webhook.New(cfg, nil)} }

func (r *receiver) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	if r.contentTypes == nil {
		r.contentTypes = map[string]int{}
	}
	r.contentTypes[req.Header.Get("Content-Type")]++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return w.Result(), nil
}

func (r *receiver) maxSeen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInFlight
}

// posts renders the receiver's records as "id/status#attempt:code@t by
// coreapp" lines, t in seconds since the receiver started, sorted by t and
// then by line (posts at the same instant race each other to the sink).
func (r *receiver) posts() string {
	recs := r.Records()
	slices.SortStableFunc(recs, func(a, b webhook.Record) int { return a.At.Compare(b.At) })
	var out, same []string
	for i, rec := range recs {
		same = append(same, fmt.Sprintf("%s/%s#%d:%d@%gs by %s", rec.ID, rec.Status, rec.CoreappAttempt, rec.Code, rec.T, rec.Coreapp))
		if i == len(recs)-1 || !recs[i+1].At.Equal(rec.At) {
			slices.Sort(same)
			out, same = append(out, same...), nil
		}
	}
	return strings.Join(out, "\n")
}

const url = "http://sink.test/cb?auth=secret"

// testSettings: every kind on, 3 s backoff capped at 12 s, 6 at once,
// persisted.
func testSettings() Settings {
	return Settings{URL: url, Sent: true, Delivered: true, Read: true, MaxConcurrent: 6,
		Backoff: 3 * time.Second, MaxBackoff: 12 * time.Second, Persist: true}
}

func newPoster(t *testing.T, id string, rt http.RoundTripper, coord mcsimv1.CoordinationServiceClient, s Settings) *Poster {
	t.Helper()
	p, err := New(Config{CoreappID: id, Client: &http.Client{Transport: rt}, Coord: coord, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Configure(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// recipient is a recipient whose shard of count 2 is 1.
func recipient() string {
	for i := 16315551234; ; i++ {
		if r := strconv.Itoa(i); shard.Of(r, 2) == 1 {
			return r
		}
	}
}

func update(msg, status string) *mcsimv1.StatusUpdate {
	return &mcsimv1.StatusUpdate{Id: msg + "/" + status, MessageId: msg, RecipientId: recipient(), Status: status, TimestampUnix: 1764623400}
}

// counted reads one of the poster's metrics (mcsim_coreapp_callbacks_NAME)
// from its registry.
func counted(t *testing.T, p *Poster, name string) float64 {
	t.Helper()
	families, err := p.cfg.Registry.(*prometheus.Registry).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "mcsim_coreapp_callbacks_"+name {
			m := f.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric mcsim_coreapp_callbacks_%s", name)
	return 0
}

func take(t *testing.T, p *Poster, msg, status string) {
	t.Helper()
	if err := p.TakeStatus(t.Context(), 1, 2, update(msg, status)); err != nil {
		t.Fatalf("TakeStatus(%s/%s): %v", msg, status, err)
	}
}

// The seed's backoff rule with small numbers: after the n-th failure the
// next attempt waits callback_backoff_delay_ms × n (3 s, 6 s, 9 s), capped
// at max_callback_backoff_delay_ms (12 s), forever; the first 200 ends it.
// The headers carry this coreapp's id and attempt, the URL its query.
func TestBackoffScheduleFollowsTheSettings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := newReceiver(webhook.Config{})
		rcv.SetDown(true)
		p := newPoster(t, "coreapp-1", rcv, nil, func() Settings { s := testSettings(); s.Persist = false; return s }())
		take(t, p, "m1", "delivered")
		time.Sleep(60 * time.Second)
		rcv.SetDown(false)
		time.Sleep(time.Minute)
		synctest.Wait()

		want := strings.Join([]string{
			"m1/delivered#1:503@0s by coreapp-1",
			"m1/delivered#2:503@3s by coreapp-1",  // +3 s
			"m1/delivered#3:503@9s by coreapp-1",  // +6 s
			"m1/delivered#4:503@18s by coreapp-1", // +9 s
			"m1/delivered#5:503@30s by coreapp-1", // +12 s, the cap
			"m1/delivered#6:503@42s by coreapp-1",
			"m1/delivered#7:503@54s by coreapp-1",
			"m1/delivered#8:200@66s by coreapp-1", // up again: delivered, no more posts
		}, "\n")
		if got := rcv.posts(); got != want {
			t.Fatalf("posts:\n%s\nwant:\n%s", got, want)
		}
		rec := rcv.Records()[0]
		if rec.Query != "auth=secret" || rec.Recipient != recipient() {
			t.Errorf("first post %+v, want the query auth=secret and the recipient", rec)
		}
		if got := fmt.Sprint(rcv.contentTypes); got != "map[application/json:8]" {
			t.Errorf("Content-Types posted: %s, want application/json every time", got)
		}
		if got := counted(t, p, "failed_attempts_total"); got != 7 {
			t.Errorf("failed attempts counted %v, want 7", got)
		}
		if got := counted(t, p, "delivered_total"); got != 1 {
			t.Errorf("delivered counted %v, want 1", got)
		}
		if p.Pending() != 0 {
			t.Errorf("%d callbacks still pending", p.Pending())
		}
	})
}

// A receiver that does not answer within the timeout fails the attempt at
// the timeout, and the backoff counts from there.
func TestUnansweredPostTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := newReceiver(webhook.Config{Latency: 15 * time.Second})
		p := newPoster(t, "coreapp-1", rcv, nil, func() Settings { s := testSettings(); s.Persist = false; return s }())
		take(t, p, "m1", "sent")
		// The first post times out at 10 s, the second is due at 13 s and
		// times out at 23 s: the sink records both as not answered (0).
		time.Sleep(24 * time.Second)
		synctest.Wait()
		if got, want := rcv.posts(), "m1/sent#1:0@0s by coreapp-1\nm1/sent#2:0@13s by coreapp-1"; got != want {
			t.Fatalf("posts:\n%s\nwant:\n%s", got, want)
		}
		if got := counted(t, p, "failed_attempts_total"); got != 2 {
			t.Errorf("failed attempts %v, want 2", got)
		}
		if got := counted(t, p, "delivered_total"); got != 0 {
			t.Errorf("delivered %v, want 0: an answer after the timeout does not count", got)
		}
	})
}

// Only the kinds webhooks.message enables are posted, and the switch takes
// effect live; an empty webhooks.url drops every callback, counted.
func TestKindsAndURL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := newReceiver(webhook.Config{})
		s := testSettings()
		s.Persist, s.Delivered = false, false
		p := newPoster(t, "coreapp-1", rcv, nil, s)
		take(t, p, "m1", "sent")
		take(t, p, "m1", "delivered")
		take(t, p, "m1", "read")
		synctest.Wait()
		s.Delivered, s.Read = true, false
		if err := p.Configure(s); err != nil {
			t.Fatal(err)
		}
		take(t, p, "m2", "delivered")
		take(t, p, "m2", "read")
		synctest.Wait()
		want := "m1/read#1:200@0s by coreapp-1\nm1/sent#1:200@0s by coreapp-1\nm2/delivered#1:200@0s by coreapp-1"
		if got := rcv.posts(); got != want {
			t.Fatalf("posts:\n%s\nwant:\n%s", got, want)
		}
		if got := counted(t, p, "dropped_total"); got != 2 {
			t.Errorf("dropped %v, want 2 (m1/delivered, m2/read)", got)
		}

		s.URL = ""
		if err := p.Configure(s); err != nil {
			t.Fatal(err)
		}
		take(t, p, "m3", "sent")
		synctest.Wait()
		time.Sleep(time.Minute)
		if n := len(rcv.Records()); n != 3 {
			t.Errorf("with no webhooks.url the receiver got %d posts, want still 3", n)
		}
		if got := counted(t, p, "dropped_total"); got != 3 {
			t.Errorf("dropped %v, want 3", got)
		}
		if got := counted(t, p, "queued_total"); got != 3 {
			t.Errorf("queued %v, want 3", got)
		}
	})
}

// At most webhooks.max_concurrent_requests posts are in flight, and a live
// change of it does not change that (restart-required); nor does a live
// change of callback_persist.
func TestMaxConcurrentIsRestartRequired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := newReceiver(webhook.Config{Latency: time.Second})
		s := testSettings()
		s.Persist, s.MaxConcurrent = false, 2
		p := newPoster(t, "coreapp-1", rcv, nil, s)
		for i := range 10 {
			take(t, p, fmt.Sprint("m", i), "sent")
		}
		time.Sleep(10 * time.Second)
		if got := rcv.maxSeen(); got != 2 {
			t.Fatalf("at most %d posts in flight, want 2", got)
		}
		if n := len(rcv.Records()); n != 10 {
			t.Fatalf("%d posts, want 10 (two at a time, one second each)", n)
		}

		s.MaxConcurrent, s.Persist = 5, true
		if err := p.Configure(s); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			take(t, p, fmt.Sprint("n", i), "sent")
		}
		time.Sleep(10 * time.Second)
		if got := rcv.maxSeen(); got != 2 {
			t.Fatalf("after a live change to 5: at most %d in flight, want still 2", got)
		}
		if p.Persist() {
			t.Fatal("a live change of callback_persist took effect")
		}
	})
}

// coordEnv is the settings service's coordination API over bufconn, on a
// real store: what callback_persist keeps callbacks in.
func coordEnv(t *testing.T) (mcsimv1.CoordinationServiceClient, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	grpcapi.Register(srv, grpcapi.Config{Store: st, Logger: zerolog.Nop()})
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		_ = lis.Close()
		_ = st.Close()
	})
	return mcsimv1.NewCoordinationServiceClient(conn), st
}

func kept(t *testing.T, st *store.Store) int {
	t.Helper()
	cbs, err := st.ListCallbacks(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	return len(cbs)
}

// callback_persist: a callback coreapp-1 took (and so acknowledged to the
// gateway) survives coreapp-1's crash in the shared store; coreapp-2,
// assigned the shard next, posts it, and deletes it once delivered.
// Without callback_persist the crash loses it.
func TestPersistedCallbackOutlivesItsCoreapp(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprint("callback_persist=", persist), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				coord, st := coordEnv(t)
				rcv := newReceiver(webhook.Config{})
				rcv.SetDown(true)
				s := testSettings()
				s.Persist = persist
				p1 := newPoster(t, "coreapp-1", rcv, coord, s)
				take(t, p1, "m1", "delivered")
				time.Sleep(time.Second) // the first attempt fails
				p1.Close()              // the process is gone; what it held in memory too

				wantKept := map[bool]int{true: 1, false: 0}[persist]
				if got := kept(t, st); got != wantKept {
					t.Fatalf("kept %d callbacks after the crash, want %d", got, wantKept)
				}
				rcv.SetDown(false)
				p2 := newPoster(t, "coreapp-2", rcv, coord, s)
				p2.Adopt(0, 2) // not the callback's shard: nothing
				p2.Adopt(1, 2)
				time.Sleep(time.Second)
				synctest.Wait()

				want := "m1/delivered#1:503@0s by coreapp-1"
				if persist {
					want += "\nm1/delivered#1:200@1s by coreapp-2"
				}
				if got := rcv.posts(); got != want {
					t.Fatalf("posts:\n%s\nwant:\n%s", got, want)
				}
				if got := kept(t, st); got != 0 {
					t.Fatalf("%d callbacks still kept after delivery", got)
				}
				if got, want := counted(t, p1, "persisted_total"), float64(wantKept); got != want {
					t.Errorf("coreapp-1 persisted %v, want %v", got, want)
				}
				if got, want := counted(t, p2, "adopted_total"), float64(wantKept); got != want {
					t.Errorf("coreapp-2 adopted %v, want %v", got, want)
				}
			})
		})
	}
}

// With callback_persist, a status whose callback could not be kept is not
// taken (the session must not acknowledge it, so the gateway offers it
// again), and nothing is queued; an already pending one is taken at once.
func TestPersistFailureRefusesTheStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := newReceiver(webhook.Config{})
		coord := &failingCoord{}
		p := newPoster(t, "coreapp-1", rcv, coord, testSettings())
		err := p.TakeStatus(t.Context(), 1, 2, update("m1", "sent"))
		if err == nil || !strings.Contains(err.Error(), "callback_persist") {
			t.Fatalf("TakeStatus with a failing store = %v, want an error naming callback_persist", err)
		}
		synctest.Wait()
		if p.Pending() != 0 || len(rcv.Records()) != 0 {
			t.Fatalf("a status not kept was queued (%d pending, %d posts)", p.Pending(), len(rcv.Records()))
		}
	})
}

type failingCoord struct {
	mcsimv1.CoordinationServiceClient
}

func (failingCoord) PutCallbacks(context.Context, *mcsimv1.PutCallbacksRequest, ...grpc.CallOption) (*mcsimv1.PutCallbacksResponse, error) {
	return nil, errors.New("store unavailable")
}

// Bad status updates are refused naming the field; statuses wait for the
// first settings.
func TestTakeStatusChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := New(Config{CoreappID: "c", Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for _, tc := range []struct {
			u     *mcsimv1.StatusUpdate
			field string
		}{
			{&mcsimv1.StatusUpdate{MessageId: "m", RecipientId: "1", Status: "sent"}, "id"},
			{&mcsimv1.StatusUpdate{Id: "m/x", MessageId: "m", RecipientId: "1", Status: "x"}, "status"},
			{&mcsimv1.StatusUpdate{Id: "m/sent", MessageId: "m", Status: "sent"}, "recipient_id"},
		} {
			if err := p.TakeStatus(t.Context(), 0, 1, tc.u); err == nil || !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("TakeStatus(%v) = %v, want an error naming %s", tc.u, err, tc.field)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := p.TakeStatus(ctx, 0, 1, update("m1", "sent")); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("TakeStatus before any settings = %v, want to wait for them until ctx ends", err)
		}
		if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "CoreappID") {
			t.Errorf("New without an id = %v", err)
		}
	})
}

// The gateway offers a status again until the session acknowledges it; a
// status whose callback is already pending is taken without a second
// callback.
func TestStatusOfferedTwiceIsOneCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := newReceiver(webhook.Config{})
		rcv.SetDown(true)
		p := newPoster(t, "coreapp-1", rcv, nil, func() Settings { s := testSettings(); s.Persist = false; return s }())
		take(t, p, "m1", "read")
		take(t, p, "m1", "read")
		time.Sleep(2 * time.Second)
		if got, want := rcv.posts(), "m1/read#1:503@0s by coreapp-1"; got != want {
			t.Fatalf("posts:\n%s\nwant:\n%s", got, want)
		}
		if got := counted(t, p, "queued_total"); got != 1 {
			t.Errorf("queued %v, want 1", got)
		}
	})
}
