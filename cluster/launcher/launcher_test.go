package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/health"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/grpcapi"
)

func TestValidateNamesEveryBadFlag(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	bad := ok
	bad.Shards, bad.Masters, bad.Coreapps, bad.HTTPAddr = 3, 0, 1, "nope"
	bad.HeartbeatInterval, bad.UnhealthyInterval = 1500*time.Millisecond, -time.Second
	err := bad.Validate()
	for _, want := range []string{
		"--shards: must be one of 1, 2, 4, 8, 16, 32, got 3",
		"--masters: must be ≥ 1, got 0",
		"--coreapps: must be ≥ --shards (3)",
		"--http: must be host:port",
		"--heartbeat-interval: must be a whole number of seconds",
		"--unhealthy-interval: must be a whole number of seconds",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
	order := ok
	order.HeartbeatInterval, order.UnhealthyInterval = 3*time.Second, 3*time.Second
	if err := order.Validate(); err == nil || !strings.Contains(err.Error(), "--unhealthy-interval: must be > --heartbeat-interval") {
		t.Errorf("unhealthy == heartbeat: Validate() = %v", err)
	}
	// up's gossip ring is on 127.0.0.1 whatever --http is: an HTTP API
	// off loopback needs a real password, not a gossip key.
	public := ok
	public.HTTPAddr = "0.0.0.0:9090"
	if err := public.Validate(); err == nil || !strings.Contains(err.Error(), "--admin-password") || strings.Contains(err.Error(), "--cluster-key") {
		t.Errorf("--http 0.0.0.0:9090 with the default password: Validate() = %v, want the password refused and no key asked for", err)
	}
	public.AdminPassword = "s3cret-long"
	if err := public.Validate(); err != nil {
		t.Errorf("--http 0.0.0.0:9090 with a password: Validate() = %v, want nil (gossip stays on loopback)", err)
	}
	noStandby := ok
	noStandby.Coreapps = noStandby.Shards
	if w := noStandby.Warnings(); len(w) != 1 || !strings.Contains(w[0], "no standby") {
		t.Errorf("Warnings() = %q, want one about no standby", w)
	}
	if w := ok.Warnings(); len(w) != 0 {
		t.Errorf("default Warnings() = %q, want none", w)
	}
}

func TestRunRefusesBadConfigBeforeTouchingTheDisk(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Shards = 3
	err := Run(context.Background(), cfg)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Run = %v, want a *ConfigError", err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir: %v, want it not created", err)
	}
}

func gwEvent(seq uint64, at time.Time, kind mcsimv1.GatewayEventKind, shard int32, epoch uint64, coreapp string) *mcsimv1.GatewayEvent {
	return &mcsimv1.GatewayEvent{Seq: seq, MonoNs: at.UnixNano(), UnixNs: at.UnixNano(), Kind: kind, Shard: shard, Shards: 2, Epoch: epoch, CoreappId: coreapp}
}

// The gateway log alone tells failovers apart from first assignments: a
// crash (disconnect, then another coreapp connects) is timed from the
// disconnect; a handover (replace) had no gap.
func TestFailoversDerivedFromTheGatewayLog(t *testing.T) {
	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.JSON, cfg.Out = true, &out
	e := newEmitter(cfg)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const (
		connect    = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT
		replace    = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE
		disconnect = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT
	)
	rep := gwEvent(5, t0.Add(5*time.Second), replace, 1, 4, "c")
	rep.ReplacedCoreappId, rep.ReplacedEpoch, rep.ReplacedShard, rep.ReplacedShards = "b", 2, 1, 2
	e.gateway([]*mcsimv1.GatewayEvent{
		gwEvent(1, t0, connect, 0, 1, "a"),
		gwEvent(2, t0, connect, 1, 2, "b"),
		gwEvent(3, t0.Add(time.Second), disconnect, 0, 1, "a"),
		gwEvent(4, t0.Add(4200*time.Millisecond), connect, 0, 3, "c"),
		rep,
	})
	var failovers []Event
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.Event == "failover" {
			failovers = append(failovers, ev)
		}
	}
	if len(failovers) != 2 {
		t.Fatalf("failovers = %+v, want 2", failovers)
	}
	f0, f1 := failovers[0], failovers[1]
	if *f0.Shard != 0 || f0.From != "a" || f0.To != "c" || f0.Epoch != 3 || *f0.DowntimeMS != 3200 {
		t.Errorf("crash failover = %+v, want shard 0 a→c epoch 3 in 3200 ms", f0)
	}
	if *f1.Shard != 1 || f1.From != "b" || f1.To != "c" || *f1.DowntimeMS != 0 {
		t.Errorf("handover = %+v, want shard 1 b→c in 0 ms", f1)
	}
	if h := e.shards[0]; h.coreapp != "c" || h.epoch != 3 {
		t.Errorf("shard 0 holder = %+v", h)
	}

	// 2→4: new shard 2 replacing 0-of-2 is no failover; shard 0 is gone
	// until 0-of-4 connects.
	out.Reset()
	remap := gwEvent(6, t0.Add(6*time.Second), replace, 2, 5, "d")
	remap.Shards = 4
	remap.ReplacedCoreappId, remap.ReplacedEpoch, remap.ReplacedShard, remap.ReplacedShards = "c", 3, 0, 2
	e.gateway([]*mcsimv1.GatewayEvent{remap})
	if strings.Contains(out.String(), `"failover"`) || !strings.Contains(out.String(), `"from_shard":0,"from_shards":2`) {
		t.Errorf("remap replace rendered %s", out.String())
	}
	if _, ok := e.shards[0]; ok || e.shards[2].coreapp != "d" {
		t.Errorf("holders after remap = %+v", e.shards)
	}
}

// A paused owner (SIGSTOP) keeps its stream open, so the gateway logs it
// SILENT, not disconnected, and the new owner's REPLACE supersedes a silent
// session: the failover's downtime_ms runs from when the old owner was last
// heard, not from the REPLACE (before rule 7 it read "0 ms without service").
// The lines a script sees, in order:
func TestFailoverOfAPausedOwnerCountsFromLastHeard(t *testing.T) {
	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.JSON, cfg.Out = true, &out
	e := newEmitter(cfg)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	silent := gwEvent(2, t0.Add(10600*time.Millisecond), mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT, 0, 1, "a")
	silent.LastHeardMonoNs, silent.LastHeardUnixNs = t0.Add(10*time.Second).UnixNano(), t0.Add(10*time.Second).UnixNano()
	rep := gwEvent(3, t0.Add(13500*time.Millisecond), mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE, 0, 2, "b")
	rep.ReplacedCoreappId, rep.ReplacedEpoch, rep.ReplacedShard, rep.ReplacedShards = "a", 1, 0, 2
	e.gateway([]*mcsimv1.GatewayEvent{gwEvent(1, t0, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT, 0, 1, "a"), silent})
	if h := e.shards[0]; !h.silent {
		t.Errorf("shard 0 holder after SILENT = %+v, want silent", h)
	}
	e.gateway([]*mcsimv1.GatewayEvent{rep})
	want := []string{
		`{"time":"2026-01-01T00:00:00Z","event":"gateway_connect","shard":0,"shards":2,"epoch":1,"coreapp":"a"}`,
		`{"time":"2026-01-01T00:00:10.6Z","event":"gateway_silent","shard":0,"shards":2,"epoch":1,"coreapp":"a","last_heard":"2026-01-01T00:00:10Z"}`,
		`{"time":"2026-01-01T00:00:13.5Z","event":"gateway_replace","shard":0,"shards":2,"epoch":2,"coreapp":"b","from":"a","from_shard":0,"from_shards":2,"from_epoch":1}`,
		`{"time":"2026-01-01T00:00:13.5Z","event":"failover","shard":0,"epoch":2,"from":"a","to":"b","downtime_ms":3500}`,
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Takeovers come from the store's own record of the lease, timed by its
// grant: renewals and releases are none, and a role seen in /v1/health is
// not one either (a deposed master may still believe it is primary).
func TestTakeoverFromTheStoresGrants(t *testing.T) {
	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.JSON, cfg.Out = true, &out
	e := newEmitter(cfg)
	t0 := time.Date(2026, 12, 1, 21, 14, 0, 0, time.UTC)
	e.health(map[string]health.Entry{"127.0.0.1:master-2": {Role: "primary_master"}}, nil)
	e.lease([]grpcapi.LeaseEvent{
		{At: t0, Master: "master-1", Epoch: 1},
		{At: t0.Add(time.Second), Master: "master-1", Epoch: 1, Renewal: true},
		{At: t0.Add(2 * time.Second), Master: "master-1", Epoch: 1, Released: true},
		{At: t0.Add(2*time.Second + 12*time.Millisecond), Master: "master-2", Epoch: 2},
		{At: t0.Add(3 * time.Second), Master: "master-2", Epoch: 2, Renewal: true},
	})
	var takeovers []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(line, `"takeover"`) {
			takeovers = append(takeovers, line)
		}
	}
	want := `{"time":"2026-12-01T21:14:02.012Z","event":"takeover","node":"master-2","from":"master-1","lease_epoch":2}`
	if len(takeovers) != 1 || takeovers[0] != want {
		t.Errorf("takeovers %q, want exactly %s", takeovers, want)
	}
	if e.tally.takeovers != 1 {
		t.Errorf("tally %d takeovers", e.tally.takeovers)
	}
}

// Children run with one P and GOGC=50 (README, "Measurements": the idle
// cost of the 36-process cluster), unless the launcher's environment says
// otherwise.
func TestChildRuntimeEnv(t *testing.T) {
	if got, want := ChildRuntimeEnv([]string{"HOME=/root", "PATH=/bin"}), []string{"GOMAXPROCS=1", "GOGC=50"}; !slices.Equal(got, want) {
		t.Errorf("ChildRuntimeEnv = %q, want %q", got, want)
	}
	if got, want := ChildRuntimeEnv([]string{"GOMAXPROCS=4", "GOGCX=1"}), []string{"GOGC=50"}; !slices.Equal(got, want) {
		t.Errorf("with GOMAXPROCS set by the user: %q, want %q", got, want)
	}
	if got := ChildRuntimeEnv([]string{"GOGC=off", "GOMAXPROCS=2"}); len(got) != 0 {
		t.Errorf("with both set by the user: %q, want nothing added", got)
	}
}

// A start that fails before the settings service runs (its log cannot be
// opened) returns the error: it does not wait forever for a service that
// never started.
func TestStartFailingBeforeTheServiceReturns(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "logs", "settings.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Start(t.Context(), cfg)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "settings.log") {
			t.Errorf("Start = %v, want the log's error", err)
		}
	case <-time.After(20 * time.Second): // a guard against the old deadlock, not a timing claim
		t.Fatal("Start did not return: Stop waits for a settings service that never started")
	}
}
