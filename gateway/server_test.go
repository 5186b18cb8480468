package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// newGateway serves a gateway over bufconn. Call it inside a synctest bubble;
// everything is closed by t.Cleanup, which runs inside the bubble.
func newGateway(t *testing.T) (*Server, mcsimv1.GatewayServiceClient) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	gw := New(zerolog.Nop())
	gw.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		_ = lis.Close()
	})
	return gw, mcsimv1.NewGatewayServiceClient(conn)
}

// session is a coreapp's side of a gateway session: it answers every ping
// (unless muted, as a paused or cut-off coreapp would not) and passes the
// other messages on to recv.
type session struct {
	stream grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse]
	cancel context.CancelFunc
	msgs   chan recvd
	mute   *atomic.Bool
}

type recvd struct {
	msg *mcsimv1.SessionResponse
	err error
}

// recv returns the next message that is not a ping.
func (s session) recv() (*mcsimv1.SessionResponse, error) {
	r := <-s.msgs
	return r.msg, r.err
}

// open opens a session and returns it with its first message.
func open(t *testing.T, c mcsimv1.GatewayServiceClient, coreapp string, shard int32, epoch uint64) (session, *mcsimv1.SessionResponse) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	st, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&mcsimv1.SessionRequest{CoreappId: coreapp, Shard: shard, Shards: 4, Epoch: epoch}); err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil {
		t.Fatalf("session %s/%d/%d: %v", coreapp, shard, epoch, err)
	}
	s := session{st, cancel, make(chan recvd, 16), new(atomic.Bool)}
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				s.msgs <- recvd{nil, err}
				return
			}
			if m.GetPing() == 0 {
				s.msgs <- recvd{m, nil}
			} else if !s.mute.Load() {
				_ = st.Send(&mcsimv1.SessionRequest{Pong: m.GetPing()})
			}
		}
	}()
	return s, first
}

func wantState(t *testing.T, got *mcsimv1.SessionResponse, want mcsimv1.SessionState) {
	t.Helper()
	if got.GetState() != want {
		t.Fatalf("state = %v (%s), want %v", got.GetState(), got.GetReason(), want)
	}
}

func TestSessionLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		gw, c := newGateway(t)

		a, first := open(t, c, "a", 0, 1)
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_ACCEPTED)
		if h := gw.Sessions()[0]; h.CoreappID != "a" || h.Epoch != 1 {
			t.Fatalf("holder = %+v", h)
		}

		time.Sleep(time.Second)
		b, first := open(t, c, "b", 0, 2)
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_ACCEPTED)
		msg, err := a.recv()
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, msg, mcsimv1.SessionState_SESSION_STATE_REPLACED)
		if _, err := a.recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("replaced stream did not end: %v", err)
		}

		time.Sleep(time.Second)
		_, first = open(t, c, "a", 0, 1)
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_REJECTED)
		if !strings.Contains(first.GetReason(), "stale epoch 1") || !strings.Contains(first.GetReason(), "newest is 2") {
			t.Errorf("reject reason = %q", first.GetReason())
		}

		time.Sleep(time.Second)
		b.cancel()
		synctest.Wait()
		if len(gw.Sessions()) != 0 {
			t.Fatalf("shard still held after disconnect: %v", gw.Sessions())
		}

		resp, err := c.Events(t.Context(), &mcsimv1.EventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			kind    mcsimv1.GatewayEventKind
			coreapp string
			epoch   uint64
			at      time.Duration
		}{
			{kConnect, "a", 1, 0},
			{kReplace, "b", 2, time.Second},
			{kReject, "a", 1, 2 * time.Second},
			{kDisconnect, "b", 2, 3 * time.Second},
		}
		evs := resp.GetEvents()
		if len(evs) != len(want) {
			t.Fatalf("events = %v", evs)
		}
		for i, w := range want {
			e := evs[i]
			if e.GetSeq() != uint64(i+1) || e.GetKind() != w.kind || e.GetCoreappId() != w.coreapp ||
				e.GetEpoch() != w.epoch || e.GetMonoNs() != int64(w.at) || e.GetUnixNs() != start.Add(w.at).UnixNano() {
				t.Errorf("event %d = %v, want %+v", i, e, w)
			}
		}
		if e := evs[1]; e.GetReplacedCoreappId() != "a" || e.GetReplacedEpoch() != 1 {
			t.Errorf("replace event = %v", e)
		}
		if v := CheckLog(evs); len(v) != 0 {
			t.Errorf("violations: %v", v)
		}
		if resp, _ := c.Events(t.Context(), &mcsimv1.EventsRequest{SinceSeq: 3}); len(resp.GetEvents()) != 2 {
			t.Errorf("Events(since 3) = %v", resp.GetEvents())
		}
	})
}

func TestSameEpochReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw, c := newGateway(t)
		a, first := open(t, c, "a", 2, 7)
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_ACCEPTED)

		// While the session is open, the same epoch is refused, even from
		// the same coreapp: it must not silently take over a live session.
		_, first = open(t, c, "a", 2, 7)
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_REJECTED)

		a.cancel()
		synctest.Wait()
		_, first = open(t, c, "x", 2, 7)
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_REJECTED)
		_, first = open(t, c, "a", 2, 7)
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_ACCEPTED)
		if h := gw.Sessions()[2]; h.CoreappID != "a" || h.Epoch != 7 {
			t.Fatalf("holder = %+v", h)
		}
	})
}

func TestSessionBadRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw, c := newGateway(t)
		st, err := c.Session(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&mcsimv1.SessionRequest{CoreappId: "a", Shard: 0, Shards: 4, Epoch: 0}); err != nil {
			t.Fatal(err)
		}
		_, err = st.Recv()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "epoch") {
			t.Fatalf("err = %v, want InvalidArgument naming epoch", err)
		}
		if n := len(gw.Log(0)); n != 0 {
			t.Fatalf("bad request logged %d events", n)
		}
	})
}

func TestWatchEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := newGateway(t)
		a, _ := open(t, c, "a", 0, 1)
		a.cancel()
		synctest.Wait()

		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		all, err := c.WatchEvents(ctx, &mcsimv1.WatchEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		fromTwo, err := c.WatchEvents(ctx, &mcsimv1.WatchEventsRequest{SinceSeq: 2})
		if err != nil {
			t.Fatal(err)
		}
		recv := func(st grpc.ServerStreamingClient[mcsimv1.WatchEventsResponse], seq uint64, kind mcsimv1.GatewayEventKind) {
			t.Helper()
			m, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if m.GetEvent().GetSeq() != seq || m.GetEvent().GetKind() != kind {
				t.Fatalf("watched %v, want seq %d %v", m.GetEvent(), seq, kind)
			}
		}
		recv(all, 1, kConnect)
		recv(all, 2, kDisconnect)
		recv(fromTwo, 2, kDisconnect)

		// New events arrive as they happen; fromTwo is not read meanwhile,
		// which must not hold anything up.
		time.Sleep(time.Minute)
		open(t, c, "b", 0, 2)
		open(t, c, "c", 0, 1)
		recv(all, 3, kConnect)
		recv(all, 4, kReject)
		recv(fromTwo, 3, kConnect)
		recv(fromTwo, 4, kReject)
		cancel()
	})
}

// TestSessionSilence runs the pings over gRPC in virtual time: a session
// that stops answering is logged SILENT SilentAfter after its last pong,
// keeps its keys, and is logged HEARD with its next pong.
func TestSessionSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		gw, c := newGateway(t)
		a, first := open(t, c, "a", 0, 1)
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_ACCEPTED)
		if first.GetPingIntervalMs() != PingInterval.Milliseconds() || first.GetSilentAfterMs() != SilentAfter.Milliseconds() {
			t.Errorf("ACCEPTED says ping %d ms, silent after %d ms", first.GetPingIntervalMs(), first.GetSilentAfterMs())
		}
		time.Sleep(10 * time.Second) // answering: nothing logged
		if n := len(gw.Log(0)); n != 1 {
			t.Fatalf("an answering session logged %v", gw.Log(0))
		}
		// Muted just after the pong of the ping at 10 s: last heard 10 s.
		synctest.Wait()
		a.mute.Store(true)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		evs := gw.Log(2)
		if len(evs) != 1 || evs[0].GetKind() != kSilent ||
			time.Duration(evs[0].GetLastHeardMonoNs()) != 10*time.Second ||
			time.Duration(evs[0].GetMonoNs()) != 10*time.Second+SilentAfter {
			t.Fatalf("after muting at 10s: %v, want SILENT at 10.6s last heard 10s", evs)
		}
		if h := gw.Sessions()[0]; h.CoreappID != "a" {
			t.Errorf("a silent session lost its keys: %v", gw.Sessions())
		}
		a.mute.Store(false)
		time.Sleep(PingInterval)
		synctest.Wait()
		evs = gw.Log(3)
		if len(evs) != 1 || evs[0].GetKind() != kHeard || time.Duration(evs[0].GetMonoNs()) != time.Since(start) {
			t.Fatalf("after unmuting: %v, want HEARD at the next ping", evs)
		}
	})
}
