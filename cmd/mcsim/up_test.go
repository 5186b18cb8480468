package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/cluster/gateway"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/client"
	"github.com/mcsim/mcsim/settings/service"
)

// buildMcsim builds the binary under test once per test (the Go build
// cache makes the later builds cheap). It is built without -race: the
// children are many and their RSS and start-up time are part of what is
// measured.
func buildMcsim(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcsim")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

func TestUpRefusesBadFlagsBeforeStartingAnything(t *testing.T) {
	bin := buildMcsim(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--shards", "3"}, "--shards: must be one of 1, 2, 4, 8, 16, 32, got 3"},
		{[]string{"--coreapps", "1", "--shards", "2"}, "--coreapps: must be ≥ --shards (2)"},
		{[]string{"--masters", "0"}, "--masters: must be ≥ 1, got 0"},
	} {
		data := filepath.Join(t.TempDir(), "data")
		cmd := exec.Command(bin, append([]string{"up", "--data", data, "--http", "127.0.0.1:0"}, tc.args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if code := exitCode(err); code != exitUsage {
			t.Errorf("up %v: exit %d (%v), want %d; stderr %q", tc.args, code, err, exitUsage, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("up %v: stderr %q, want it to contain %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("up %v: printed %q, want nothing", tc.args, stdout.String())
		}
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("up %v: data dir exists (%v): something was started", tc.args, err)
		}
	}
}

// upEvent is the part of `mcsim up --json` lines the test reads.
type upEvent struct {
	Event   string `json:"event"`
	HTTP    string `json:"http"`
	Gateway string `json:"gateway"`
	Node    string `json:"node"`
	PID     int    `json:"pid"`
}

type healthEntry struct {
	Role          string `json:"role"`
	GatewayStatus string `json:"gateway_status"`
	Shards        []int  `json:"shards"`
	PID           int    `json:"pid"`
}

func readHealth(ctx context.Context, api *client.Client) (map[string]healthEntry, error) {
	b, err := api.Do(ctx, "GET", "/v1/health", nil)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Health map[string]healthEntry `json:"health"`
	}
	return resp.Health, json.Unmarshal(b, &resp)
}

// holderOf returns the connected coreapp serving shard, if any.
func holderOf(h map[string]healthEntry, shard int) (key string, e healthEntry, ok bool) {
	for k, e := range h {
		if e.Role == "coreapp" && e.GatewayStatus == "connected" && slices.Contains(e.Shards, shard) {
			return k, e, true
		}
	}
	return "", healthEntry{}, false
}

// pollHealth reads /v1/health every 20 ms until done says so or ctx ends.
func pollHealth(ctx context.Context, t *testing.T, api *client.Client, what string, done func(map[string]healthEntry) bool) map[string]healthEntry {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last map[string]healthEntry
	var lastErr error
	for {
		h, err := readHealth(ctx, api)
		if err == nil && done(h) {
			return h
		}
		last, lastErr = h, err
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; last health %+v (err %v)", what, ctx.Err(), last, lastErr)
		case <-tick.C:
		}
	}
}

// TestUpFailoverEndToEnd runs the end-to-end check on real
// processes: SIGKILL the coreapp serving shard 0 and time, from outside,
// until /v1/health shows shard 0 on another coreapp.
//
// Bound: rule 1 gives unhealthy_interval + heartbeat_interval (3 s + 1 s)
// from the kill; the test allows 2 s more for real time on a loaded
// 2-core machine (process scheduling, the 20 ms poll, assign + connect).
func TestUpFailoverEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	const heartbeat, unhealthy, tolerance = time.Second, 3 * time.Second, 2 * time.Second
	bin := buildMcsim(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	data := t.TempDir()

	up := exec.Command(bin, "up", "--data", data, "--http", "127.0.0.1:0", "--json",
		"--masters", "2", "--coreapps", "3", "--shards", "2",
		"--heartbeat-interval", heartbeat.String(), "--unhealthy-interval", unhealthy.String())
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	up.Stderr = &stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	t.Cleanup(func() {
		_ = up.Process.Kill() // children die with it (Pdeathsig)
		<-exited
	})

	events := make(chan upEvent, 1024)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev upEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
	}()
	var urls upEvent
	var pids []int
	for started := false; !started; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("up ended before the cluster started; stderr %q", stderr.String())
			}
			switch ev.Event {
			case "urls":
				urls = ev
			case "node_started":
				pids = append(pids, ev.PID)
			case "cluster_started":
				started = true
			}
		case <-ctx.Done():
			t.Fatalf("cluster did not start: %v; stderr %q", ctx.Err(), stderr.String())
		}
	}
	if urls.HTTP == "" || urls.Gateway == "" || len(pids) != 5 {
		t.Fatalf("urls %+v, %d node pids: want both addresses and 5 nodes", urls, len(pids))
	}
	api := client.New(urls.HTTP, service.DefaultAdminPassword, nil)

	// A second cluster on the same data dir fails before starting a node.
	second := exec.CommandContext(ctx, bin, "up", "--data", data, "--http", "127.0.0.1:0", "--json")
	var out2, err2 bytes.Buffer
	second.Stdout, second.Stderr = &out2, &err2
	if code := exitCode(second.Run()); code != exitFailure {
		t.Errorf("second up on the same data dir: exit %d, want %d; stderr %q", code, exitFailure, err2.String())
	}
	if !strings.Contains(err2.String(), "lock") || strings.Contains(out2.String(), "node_started") {
		t.Errorf("second up: stderr %q (want a lock error), stdout %q (want no node started)", err2.String(), out2.String())
	}

	h := pollHealth(ctx, t, api, "both shards connected", func(h map[string]healthEntry) bool {
		_, _, ok0 := holderOf(h, 0)
		_, _, ok1 := holderOf(h, 1)
		return ok0 && ok1
	})
	victimKey, victim, _ := holderOf(h, 0)
	if victim.PID == 0 {
		t.Fatalf("health entry %s has no pid: %+v", victimKey, victim)
	}
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	h = pollHealth(ctx, t, api, "shard 0 on another coreapp", func(h map[string]healthEntry) bool {
		k, _, ok := holderOf(h, 0)
		return ok && k != victimKey
	})
	elapsed := time.Since(killed)
	newKey, _, _ := holderOf(h, 0)
	t.Logf("shard 0 moved %s → %s in %v", victimKey, newKey, elapsed)
	if bound := unhealthy + heartbeat + tolerance; elapsed > bound {
		t.Errorf("failover took %v, want ≤ %v (unhealthy %v + heartbeat %v + tolerance %v)", elapsed, bound, unhealthy, heartbeat, tolerance)
	}

	conn, err := grpc.NewClient(urls.Gateway, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	log, err := mcsimv1.NewGatewayServiceClient(conn).Events(ctx, &mcsimv1.EventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v := gateway.CheckLog(log.GetEvents()); len(v) > 0 {
		t.Errorf("gateway log violations: %v", v)
	}

	if err := up.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if code := exitCode(err); code != 0 {
			t.Errorf("up after SIGTERM: exit %d (%v), want 0; stderr %q", code, err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("up did not stop after SIGTERM: %v", ctx.Err())
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child pid %d still exists after up stopped (kill 0: %v)", pid, err)
		}
	}
}
