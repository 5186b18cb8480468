package grpcapi

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

func TestGetDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		resp, err := e.settings.Get(t.Context(), &mcsimv1.GetRequest{})
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		s := resp.GetSnapshot()
		if s.GetRevision() != 0 || s.GetHeartbeatIntervalSeconds() != 5 || s.GetUnhealthyIntervalSeconds() != 30 || s.GetShards() != 1 {
			t.Errorf("Get = revision %d, heartbeat %d s, unhealthy %d s, shards %d; want 0, 5, 30, 1",
				s.GetRevision(), s.GetHeartbeatIntervalSeconds(), s.GetUnhealthyIntervalSeconds(), s.GetShards())
		}
		if got := s.GetRestartRequired()["log_level"]; got != `"info"` {
			t.Errorf("restart_required[log_level] = %q, want %q", got, `"info"`)
		}
		if got := maxOf(t, s); got != 900000 {
			t.Errorf("max_callback_backoff_delay_ms = %d, want default 900000", got)
		}
	})
}

func TestWatchSendsCurrentThenEveryChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		setMax(t, e.st, 100000) // revision 1, before the watch opens

		w, err := e.settings.Watch(t.Context(), &mcsimv1.WatchRequest{NodeId: "coreapp-1"})
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		first, err := w.Recv()
		if err != nil {
			t.Fatalf("first Recv: %v", err)
		}
		if r, v := first.GetSnapshot().GetRevision(), maxOf(t, first.GetSnapshot()); r != 1 || v != 100000 {
			t.Fatalf("first snapshot = revision %d max %d, want the current one: revision 1 max 100000", r, v)
		}
		for i := 2; i <= 6; i++ {
			setMax(t, e.st, 100000+i)
			m, err := w.Recv()
			if err != nil {
				t.Fatalf("Recv after change %d: %v", i, err)
			}
			if r, v := m.GetSnapshot().GetRevision(), maxOf(t, m.GetSnapshot()); r != uint64(i) || v != 100000+i {
				t.Fatalf("after change %d: revision %d max %d, want revision %d max %d", i, r, v, i, 100000+i)
			}
		}
		if _, err := e.st.SetShards(4); err != nil {
			t.Fatal(err)
		}
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("Recv after SetShards: %v", err)
		}
		if s := m.GetSnapshot(); s.GetRevision() != 7 || s.GetShards() != 4 || maxOf(t, s) != 100006 {
			t.Fatalf("after SetShards(4): revision %d shards %d max %d, want 7, 4, 100006", s.GetRevision(), s.GetShards(), maxOf(t, s))
		}
	})
}

// A watcher that does not read while 50 changes happen must then get whole
// snapshots in growing revision order ending at the newest, each one
// consistent with its revision (never a mix of two).
func TestSlowWatcherSkipsToLatest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		w, err := e.settings.Watch(t.Context(), &mcsimv1.WatchRequest{NodeId: "slow"})
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatalf("first Recv: %v", err)
		}
		// A 2 KB webhook URL makes every snapshot big enough that 50 of
		// them overflow the 64 KiB stream window: the server's Send blocks
		// while changes go on, so it must skip.
		setURL(t, e.st, "https://example.com/hook?auth="+strings.Repeat("x", 2000)) // revision 1
		const changes = 51
		for i := 2; i <= changes; i++ {
			setMax(t, e.st, 100000+i)
		}
		synctest.Wait() // let the server send whatever it will

		var got []uint64
		for last := uint64(0); last < changes; {
			m, err := w.Recv()
			if err != nil {
				t.Fatalf("Recv after %v: %v", got, err)
			}
			s := m.GetSnapshot()
			if s.GetRevision() <= last {
				t.Fatalf("revision %d after %d (received so far %v): revisions must strictly grow", s.GetRevision(), last, got)
			}
			if v := maxOf(t, s); s.GetRevision() > 1 && v != 100000+int(s.GetRevision()) {
				t.Fatalf("snapshot revision %d has max %d, want %d: snapshot not consistent with its revision", s.GetRevision(), v, 100000+int(s.GetRevision()))
			}
			last = s.GetRevision()
			got = append(got, last)
		}
		t.Logf("slow watcher received revisions %v", got)
		if len(got) >= changes {
			t.Fatalf("slow watcher received all %d revisions; the window should have forced it to skip some", changes)
		}

		// Nothing older is queued behind the newest: the next message is
		// the next change.
		setMax(t, e.st, 100000+changes+1)
		m, err := w.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r := m.GetSnapshot().GetRevision(); r != changes+1 {
			t.Fatalf("after catching up, next revision = %d, want %d", r, changes+1)
		}
	})
}

func TestHundredWatchersAllGetTheChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		const n = 100
		streams := make([]mcsimv1.SettingsService_WatchClient, n)
		for i := range streams {
			w, err := e.settings.Watch(ctx, &mcsimv1.WatchRequest{NodeId: "node"})
			if err != nil {
				t.Fatalf("Watch %d: %v", i, err)
			}
			if _, err := w.Recv(); err != nil {
				t.Fatalf("watcher %d first Recv: %v", i, err)
			}
			streams[i] = w
		}
		setMax(t, e.st, 123456)
		for i, w := range streams {
			m, err := w.Recv()
			if err != nil {
				t.Fatalf("watcher %d: %v", i, err)
			}
			if r, v := m.GetSnapshot().GetRevision(), maxOf(t, m.GetSnapshot()); r != 1 || v != 123456 {
				t.Fatalf("watcher %d got revision %d max %d, want 1 and 123456", i, r, v)
			}
		}
		cancel()
		synctest.Wait()
		if a := e.activeStreams.Load(); a != 0 {
			t.Fatalf("%d watch handlers still running after every client cancelled", a)
		}
	})
}

func TestSnapshotBuiltOncePerRevision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		s := e.services.settings
		st := setMax(t, e.st, 100001)
		a, err := s.snapshot(st)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.snapshot(e.st.State())
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatal("two watchers at the same revision got two snapshot builds; want one shared message")
		}
		setMax(t, e.st, 100002)
		c, err := s.snapshot(e.st.State())
		if err != nil {
			t.Fatal(err)
		}
		if c == a || c.GetRevision() != 2 {
			t.Fatalf("after a change got revision %d (same message: %v), want a new build at revision 2", c.GetRevision(), c == a)
		}
		// An older state never gets an older snapshot than the cached one.
		if old, _ := s.snapshot(st); old != c {
			t.Fatalf("snapshot(revision 1) after revision 2 was built = revision %d, want the newer cached one", old.GetRevision())
		}
	})
}

func TestCancelledWatchEndsHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		ctx, cancel := context.WithCancel(t.Context())
		w, err := e.settings.Watch(ctx, &mcsimv1.WatchRequest{NodeId: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if a := e.activeStreams.Load(); a != 1 {
			t.Fatalf("active watch handlers = %d, want 1", a)
		}
		cancel()
		synctest.Wait()
		if a := e.activeStreams.Load(); a != 0 {
			t.Fatalf("active watch handlers after cancel = %d, want 0", a)
		}
	})
}

func TestHealthAndShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		for _, name := range serviceNames() {
			r, err := e.health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: name})
			if err != nil {
				t.Fatalf("Check(%q): %v", name, err)
			}
			if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("Check(%q) = %v, want SERVING", name, r.GetStatus())
			}
		}

		w, err := e.settings.Watch(t.Context(), &mcsimv1.WatchRequest{NodeId: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
		e.services.Shutdown()
		e.services.Shutdown() // twice is fine
		if _, err := w.Recv(); status.Code(err) != codes.Unavailable {
			t.Fatalf("Recv after Shutdown: %v, want code Unavailable", err)
		}
		r, err := e.health.Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health after Shutdown = %v, want NOT_SERVING", r.GetStatus())
		}
	})
}
