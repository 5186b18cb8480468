package coreapp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/mcsim/mcsim/callbacks/poster"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings"
)

// snapshotOf is the snapshot the settings service would send for a.
func snapshotOf(rev uint64, a settings.Application) *mcsimv1.Snapshot {
	return &mcsimv1.Snapshot{Revision: rev, Shards: 4, RestartRequired: a.RestartRequired(), ApplicationJson: string(a.JSON())}
}

// slowReceiver answers every callback 200 after a second and counts the
// posts in flight at once.
type slowReceiver struct {
	mu                 sync.Mutex
	posts, now, maxNow int
}

func (r *slowReceiver) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.posts++
	r.now++
	r.maxNow = max(r.maxNow, r.now)
	r.mu.Unlock()
	time.Sleep(time.Second)
	r.mu.Lock()
	r.now--
	r.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

func (r *slowReceiver) seen() (posts, maxInFlight int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts, r.maxNow
}

// The restart-required callback settings show in pending_restart when they
// change, and the node's poster keeps running with the values the node
// started with (the process's restart_required, not the first snapshot the
// watch delivers); the live ones (webhooks.url here) apply at once.
func TestWebhookSettingsAreRestartRequired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		fs := &fakeSettings{snaps: make(chan *mcsimv1.Snapshot), watches: make(chan string, 4)}
		sconn := serve(t, func(s *grpc.Server) { mcsimv1.RegisterSettingsServiceServer(s, fs) })
		started := settings.Defaults("")
		started.CallbackPersist = false // 6 at once, not persisted
		rcv := &slowReceiver{}
		p, err := poster.New(poster.Config{CoreappID: "a", Client: &http.Client{Transport: rcv}, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		n, c, _ := h.coreapp("a", func(cfg *Config) {
			cfg.Settings = mcsimv1.NewSettingsServiceClient(sconn)
			cfg.RestartRequired = started.RestartRequired()
			cfg.Webhooks = p
		})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = n.Run(ctx) }()
		<-fs.watches

		now := started
		now.CallbackPersist, now.Webhooks.MaxConcurrentRequests = true, 12
		now.Webhooks.URL = "http://127.0.0.1:9/cb" // the receiver is the client's transport
		fs.snaps <- snapshotOf(1, now)
		synctest.Wait()
		if got, want := statusOf(t, c).GetPendingRestart(), []string{"callback_persist", "webhooks.max_concurrent_requests"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("pending_restart = %v, want %v", got, want)
		}
		if p.Persist() {
			t.Fatal("the poster persists: it took callback_persist from the settings, not from the start")
		}
		// Bounded: a poster never configured would wait for ever, and
		// gRPC's timers keep a bubble's virtual clock running.
		tctx, tcancel := context.WithTimeout(t.Context(), time.Second)
		defer tcancel()
		for i := range 20 {
			u := &mcsimv1.StatusUpdate{Id: fmt.Sprintf("m%d/sent", i), MessageId: fmt.Sprint("m", i), RecipientId: "16315551234", Status: "sent"}
			if err := p.TakeStatus(tctx, 0, 4, u); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Second)
		if posts, most := rcv.seen(); posts != 20 || most != 6 {
			t.Fatalf("%d posts, at most %d in flight; want 20, at most 6 (the started webhooks.max_concurrent_requests)", posts, most)
		}
	})
}

// When the gateway accepts a session, the node's poster lists the shard's
// kept callbacks (callback_persist, the default) to post what the shard's
// last owner left.
func TestAcceptedSessionAdoptsKeptCallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		coord := &listingCoord{asked: make(chan string, 4)}
		p, err := poster.New(poster.Config{CoreappID: "a", Coord: coord, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		_, c, _ := h.coreapp("a", func(cfg *Config) { cfg.Webhooks = p })
		if _, err := c.Assign(t.Context(), assign(1, 3, 1)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case got := <-coord.asked:
			if got != "3/4" {
				t.Fatalf("listed the kept callbacks of shard %s, want 3/4", got)
			}
		default:
			t.Fatal("the accepted shard's kept callbacks were not listed")
		}
	})
}

type listingCoord struct {
	mcsimv1.CoordinationServiceClient
	asked chan string
}

func (l *listingCoord) ListCallbacks(_ context.Context, req *mcsimv1.ListCallbacksRequest, _ ...grpc.CallOption) (*mcsimv1.ListCallbacksResponse, error) {
	l.asked <- fmt.Sprintf("%d/%d", req.GetShard(), req.GetShards())
	return &mcsimv1.ListCallbacksResponse{}, nil
}
