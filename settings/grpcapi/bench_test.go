//go:build unix

package grpcapi

import (
	"context"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/settings/store/storetest"
)

// BenchmarkWatchFanout100 measures how long one settings change takes to
// reach 100 watchers over real loopback TCP, one connection per watcher
// (as 100 nodes would have). Each iteration is one change through the store
// (including its fsync) and ends when the 100th watcher received it.
// Reports p50-ms and p99-ms of that latency, and commit-p50-ms, the part
// spent in the store's write, and cpu-ms/op, the process CPU time (user +
// system, all goroutines: server and clients) per change, which unlike the
// latencies does not depend on what else the machine is running.
//
// Sub-benchmarks per store backend: bbolt; postgres (the change through
// the Store that serves the watchers); postgres-two-stores (the change through a
// second Store on the same database, as another settings process would
// make it, reaching the watchers by NOTIFY). postgres* need
// MCSIM_TEST_POSTGRES.
func BenchmarkWatchFanout100(b *testing.B) {
	for _, tc := range []struct {
		name    string
		backend storetest.Backend
		twoProc bool
	}{{"bbolt", storetest.Bolt, false}, {"postgres", storetest.Postgres, false}, {"postgres-two-stores", storetest.Postgres, true}} {
		b.Run(tc.name, func(b *testing.B) {
			st, open := tc.backend.Open(b)
			writer := st
			if tc.twoProc {
				w, err := open()
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				writer = w
			}
			watchFanout(b, st, writer)
		})
	}
}

// watchFanout serves st to 100 watchers and times changes written
// through writer.
func watchFanout(b *testing.B, st, writer store.Backend) {
	const watchers = 100
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	services := Register(srv, Config{Store: st, WAID: testWAID, Logger: zerolog.Nop()})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	defer services.Shutdown()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	arrived := make(chan uint64, watchers)
	for i := range watchers {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		w, err := mcsimv1.NewSettingsServiceClient(conn).Watch(ctx, &mcsimv1.WatchRequest{NodeId: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			b.Fatalf("watcher %d first Recv: %v", i, err)
		}
		go func() {
			for {
				m, err := w.Recv()
				if err != nil {
					return
				}
				arrived <- m.GetSnapshot().GetRevision()
			}
		}()
	}

	var fanout, commit []time.Duration
	v := 100000
	cpu0 := cpuTime(b)
	for b.Loop() {
		v++
		t0 := time.Now()
		rev := setMax(b, writer, v).Revision
		commit = append(commit, time.Since(t0))
		for n := 0; n < watchers; {
			// Changes are one at a time, so every message is this one.
			if r := <-arrived; r != rev {
				b.Fatalf("watcher got revision %d, want %d", r, rev)
			}
			n++
		}
		fanout = append(fanout, time.Since(t0))
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(len(fanout)), "cpu-ms/op")
	b.ReportMetric(percentileMs(fanout, 50), "p50-ms")
	b.ReportMetric(percentileMs(fanout, 99), "p99-ms")
	b.ReportMetric(percentileMs(commit, 50), "commit-p50-ms")
}

// cpuTime is the user + system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentileMs(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)*p/100, len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// BenchmarkSnapshotMarshal is the per-watcher cost the snapshot cache does
// not remove: one proto marshal of the shared message per stream.
func BenchmarkSnapshotMarshal(b *testing.B) {
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv := newSettingsServer(Config{Store: st, WAID: testWAID, Logger: zerolog.Nop()})
	msg, err := srv.watchResponse(setMax(b, st, 100001))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := proto.Marshal(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotBuild is what the cache saves per watcher and revision.
func BenchmarkSnapshotBuild(b *testing.B) {
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	state := setMax(b, st, 100001)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := buildSnapshot(state, testWAID); err != nil {
			b.Fatal(err)
		}
	}
}
