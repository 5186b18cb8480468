package loadtest

// BenchmarkMasterScale: one master (a separate `mcsim master` process, so
// its CPU is measured alone) heartbeats 1,000 in-process coreapps at
// heartbeat_interval = 1 s; targets: < 25% of one core, no false failover.
//
//	go test -run '^$' -bench BenchmarkMasterScale -benchtime 1x ./cluster/loadtest
//	go test -run '^$' -bench BenchmarkMasterScale -benchtime 1x ./cluster/loadtest -duration 10s -coreapps 200
//
// The window (-duration, default 60 s) starts once every shard is served
// and every coreapp has been heartbeated twice. Reported: master-cpu-% (of
// one core, utime+stime from /proc over the window), master-rss-MB (at the
// end; master-peak-rss-MB is VmHWM), heartbeats/s (answered by the
// coreapps in the window), max-hb-gap-ms (the longest time any coreapp went
// without a heartbeat in the window) and harness-cpu-% (this process: the
// coreapps, the gateway and the settings service, the load next to the
// master), stalls (rule 4 reports in the master's log). It fails if the gateway saw any session change after the
// initial assignment or the master logged "coreapp declared unhealthy".

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/coreapp"
	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/internal/faultnet"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings"
	"github.com/mcsim/mcsim/settings/grpcapi"
	"github.com/mcsim/mcsim/settings/store"
)

// Command-line knobs of the measurement. Read-only once flags are parsed;
// the only package-level state, as usual for test flags.
var (
	scaleDuration  = flag.Duration("duration", 60*time.Second, "BenchmarkMasterScale: length of the measured window")
	scaleCoreapps  = flag.Int("coreapps", 1000, "BenchmarkMasterScale: number of coreapps the master heartbeats")
	scaleUnhealthy = flag.Int("unhealthy", 2, "BenchmarkMasterScale: unhealthy_interval in seconds (heartbeat_interval is 1)")
)

const (
	scaleWAID   = "16315551019"
	scaleShards = 32
)

// hbCounter counts the heartbeats one coreapp answered and the longest gap
// between two of them since the last reset. Written by gRPC handler
// goroutines, read by the benchmark.
type hbCounter struct {
	count  atomic.Int64
	lastNs atomic.Int64
	maxGap atomic.Int64
}

func (h *hbCounter) interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if strings.HasSuffix(info.FullMethod, "/Heartbeat") {
		now := time.Now().UnixNano()
		if last := h.lastNs.Swap(now); last != 0 {
			for gap := now - last; ; {
				cur := h.maxGap.Load()
				if gap <= cur || h.maxGap.CompareAndSwap(cur, gap) {
					break
				}
			}
		}
		h.count.Add(1)
	}
	return next(ctx, req)
}

func BenchmarkMasterScale(b *testing.B) {
	n, window := *scaleCoreapps, *scaleDuration
	if n < scaleShards+1 || window <= 0 || *scaleUnhealthy < 2 {
		b.Fatalf("-coreapps must be > %d (got %d), -duration > 0 (got %v), -unhealthy >= 2 (got %d)",
			scaleShards, n, window, *scaleUnhealthy)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "mcsim")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mcsim/mcsim/cmd/mcsim").CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/mcsim: %v\n%s", err, out)
	}

	settingsAddr := startSettings(b, dir)
	gw := gateway.New(zerolog.Nop())
	gwAddr := serveTCP(b, nil, gw.Register)
	gwConn := dialTCP(b, gwAddr)
	counters := make([]*hbCounter, n)
	coreappFlags := make([]string, 0, 2*n)
	for i := range n {
		id := fmt.Sprintf("coreapp-%d", i+1)
		counters[i] = &hbCounter{}
		node, err := coreapp.New(coreapp.Config{ID: id, GatewayClient: mcsimv1.NewGatewayServiceClient(gwConn), Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		addr := serveTCP(b, []grpc.ServerOption{grpc.UnaryInterceptor(counters[i].interceptor)}, node.Register)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = node.Run(ctx) }()
		b.Cleanup(func() { cancel(); <-done })
		coreappFlags = append(coreappFlags, "--coreapp", id+"="+addr)
	}

	masterLog := filepath.Join(dir, "master.log")
	args := append([]string{"master", "--id", "master-1", "--settings", settingsAddr, "--log-file", masterLog}, coreappFlags...)
	cmd := exec.Command(bin, args...)
	stderr, err := os.Create(filepath.Join(dir, "master.stderr"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start mcsim master: %v", err)
	}
	// exited is closed when the master has exited; waitErr is then set.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		stderr.Close()
	})
	pid := cmd.Process.Pid

	// Steady state: every shard served, every coreapp heartbeated twice.
	masterDied := func() error {
		select {
		case <-exited:
			return fmt.Errorf("mcsim master exited: %v (see %s)", waitErr, stderr.Name())
		default:
			return nil
		}
	}
	waitFor(b, masterDied, 60*time.Second, "every shard served", func() bool { return len(gw.Sessions()) == scaleShards })
	waitFor(b, masterDied, 30*time.Second, "every coreapp heartbeated twice", func() bool {
		for _, c := range counters {
			if c.count.Load() < 2 {
				return false
			}
		}
		return true
	})

	for b.Loop() {
		perCoreapp0 := make([]int64, n)
		for i, c := range counters {
			c.maxGap.Store(0)
			perCoreapp0[i] = c.count.Load()
		}
		hb0 := sumCounts(counters)
		cpu0, err := CPUTime(pid)
		if err != nil {
			b.Fatal(err)
		}
		self0, err := CPUTime(os.Getpid())
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		select {
		case <-exited:
			b.Fatalf("mcsim master exited during the window: %v (see %s)", waitErr, stderr.Name())
		case <-time.After(window):
		}
		cpu1, err := CPUTime(pid)
		if err != nil {
			b.Fatal(err)
		}
		self1, err := CPUTime(os.Getpid())
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		hb1 := sumCounts(counters)
		rss, peak, err := Memory(pid)
		if err != nil {
			b.Fatal(err)
		}
		var maxGap int64
		fewest, most := int64(1<<62), int64(0)
		for i, c := range counters {
			maxGap = max(maxGap, c.maxGap.Load())
			k := c.count.Load() - perCoreapp0[i]
			fewest, most = min(fewest, k), max(most, k)
		}
		b.Logf("in %v: %d heartbeats, %d to %d per coreapp", elapsed.Round(time.Millisecond), hb1-hb0, fewest, most)
		b.ReportMetric(100*float64(cpu1-cpu0)/float64(elapsed), "master-cpu-%")
		b.ReportMetric(100*float64(self1-self0)/float64(elapsed), "harness-cpu-%")
		b.ReportMetric(float64(rss)/(1<<20), "master-rss-MB")
		b.ReportMetric(float64(peak)/(1<<20), "master-peak-rss-MB")
		b.ReportMetric(float64(hb1-hb0)/elapsed.Seconds(), "heartbeats/s")
		b.ReportMetric(float64(maxGap)/float64(time.Millisecond), "max-hb-gap-ms")
		b.ReportMetric(0, "ns/op")
	}

	// No false failover: exactly the initial connects at the gateway, and
	// the master never declared anyone unhealthy.
	for _, e := range gw.Log(0) {
		if e.GetKind() != mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT {
			b.Errorf("gateway: %v of shard %d by %s at epoch %d after the initial assignment", e.GetKind(), e.GetShard(), e.GetCoreappId(), e.GetEpoch())
		}
	}
	if k := len(gw.Log(0)); k != scaleShards {
		b.Errorf("gateway logged %d events; want exactly the %d initial connects", k, scaleShards)
	}
	logText, err := os.ReadFile(masterLog)
	if err != nil {
		b.Fatal(err)
	}
	if !strings.Contains(string(logText), "became primary master") {
		// Without it the checks below would pass on a log that says nothing.
		b.Fatalf("the master log %s never says \"became primary master\": is it logging at info?", masterLog)
	}
	unhealthy := strings.Count(string(logText), "coreapp declared unhealthy")
	stalls := strings.Count(string(logText), "master was stalled")
	b.ReportMetric(float64(unhealthy), "false-failovers")
	b.ReportMetric(float64(stalls), "stalls")
	if unhealthy > 0 {
		b.Errorf("the master declared %d coreapps unhealthy (false failovers); see %s", unhealthy, masterLog)
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("loadavg at the end: %s", strings.TrimSpace(string(load)))
	}
}

// startSettings opens a store with the intervals and shard count of the
// measurement and serves it on loopback TCP.
func startSettings(b *testing.B, dir string) string {
	st, err := store.Open(filepath.Join(dir, "settings"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	patch := fmt.Sprintf(`{"heartbeat_interval": 1, "unhealthy_interval": %d}`, *scaleUnhealthy)
	if _, err := st.UpdateApplication(func(cur []byte) ([]byte, error) {
		return settings.PatchStored(cur, scaleWAID, []byte(patch))
	}); err != nil {
		b.Fatalf("settings %s: %v", patch, err)
	}
	if _, err := st.SetShards(scaleShards); err != nil {
		b.Fatal(err)
	}
	var svc *grpcapi.Services
	addr := serveTCP(b, nil, func(s *grpc.Server) {
		svc = grpcapi.Register(s, grpcapi.Config{Store: st, WAID: scaleWAID, Logger: zerolog.Nop()})
	})
	b.Cleanup(svc.Shutdown)
	return addr
}

// serveTCP serves a new gRPC server on a free loopback port until the
// benchmark ends.
func serveTCP(b *testing.B, opts []grpc.ServerOption, register func(*grpc.Server)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	register(s)
	// The master dials through its fault layer, which opens every
	// connection with a preamble naming itself; a layer here reads it
	// off, as every mcsim node's does (with an empty table it faults
	// nothing).
	go func() { _ = s.Serve(faultnet.New("loadtest").Listen(l)) }()
	b.Cleanup(s.Stop)
	return l.Addr().String()
}

func dialTCP(b *testing.B, addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}

// waitFor polls cond (real time) until it holds, failing after limit or if
// the master exits first.
func waitFor(b *testing.B, died func() error, limit time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if err := died(); err != nil {
			b.Fatalf("waiting for %s: %v", what, err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %v: still waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sumCounts(cs []*hbCounter) int64 {
	var s int64
	for _, c := range cs {
		s += c.count.Load()
	}
	return s
}
