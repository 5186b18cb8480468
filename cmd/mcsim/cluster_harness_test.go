package main

// Helpers shared by the tests and benchmarks that run a real `mcsim up`
// (up_test.go, ha_test.go): build the binary, start the cluster and read its
// JSON events, read /v1/health, scrape a node's /metrics, read the gateway
// log, stop the cluster.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/health"
	"github.com/mcsim/mcsim/internal/logging"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/client"
	"github.com/mcsim/mcsim/settings/service"
)

// buildMcsim builds the binary under test once per test (the Go build
// cache makes the later builds cheap). It is built without -race: the
// children are many and their RSS and start-up time are part of what is
// measured.
func buildMcsim(t testing.TB) string {
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

// upEvent is the part of `mcsim up --json` lines the tests read.
type upEvent struct {
	Event   string `json:"event"`
	HTTP    string `json:"http"`
	Gateway string `json:"gateway"`
	Node    string `json:"node"`
	Role    string `json:"role"`
	PID     int    `json:"pid"`
	Metrics string `json:"metrics"`
}

func readHealth(ctx context.Context, api *client.Client) (map[string]health.Entry, error) {
	b, err := api.Do(ctx, "GET", "/v1/health", nil)
	if err != nil {
		return nil, err
	}
	return health.Decode(b)
}

// holderOf returns the connected coreapp serving shard, if any.
func holderOf(h map[string]health.Entry, shard int) (key string, e health.Entry, ok bool) {
	for k, e := range h {
		if e.Role == "coreapp" && e.GatewayStatus == "connected" && slices.Contains(e.Shards, shard) {
			return k, e, true
		}
	}
	return "", health.Entry{}, false
}

// pollHealth reads /v1/health every 20 ms until done says so or ctx ends.
func pollHealth(ctx context.Context, t testing.TB, api *client.Client, what string, done func(map[string]health.Entry) bool) map[string]health.Entry {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last map[string]health.Entry
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

// lockedBuffer is up's stderr: written by exec's copying goroutine while
// the test may read it for a failure message.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// upCluster is a running `mcsim up --json`.
type upCluster struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan error // receives up's exit once; stop puts it back
	urls   upEvent
	nodes  map[string]upEvent // node_started by node id
	api    *client.Client
}

// pids lists every node's pid.
func (c *upCluster) pids() []int {
	var out []int
	for _, n := range c.nodes {
		out = append(out, n.PID)
	}
	return out
}

// startUp starts `bin up --json` on data with args and waits for
// cluster_started. The cluster is killed at cleanup if still running
// (its children die with it: Pdeathsig).
func startUp(ctx context.Context, t testing.TB, bin, data string, args ...string) *upCluster {
	t.Helper()
	up := exec.Command(bin, append([]string{"up", "--data", data, "--http", "127.0.0.1:0", "--json"}, args...)...)
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &upCluster{cmd: up, stderr: &lockedBuffer{}, exited: make(chan error, 1), nodes: map[string]upEvent{}}
	up.Stderr = c.stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	// The reader drains stdout to EOF whatever happens, so up never blocks
	// writing events nobody reads; exec.Wait waits for it (StdoutPipe), so
	// the reader must not wait on anything else.
	events := make(chan upEvent, 4096)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev upEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				select {
				case events <- ev:
				default: // nobody reads after the start; drop
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { c.exited <- up.Wait() }()
	t.Cleanup(func() {
		_ = up.Process.Kill()
		<-c.exited
		if t.Failed() {
			dumpNodeLogs(t, data)
		}
	})
	for started := false; !started; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("up ended before the cluster started; stderr %q", c.stderr.String())
			}
			switch ev.Event {
			case "urls":
				c.urls = ev
			case "node_started":
				c.nodes[ev.Node] = ev
			case "cluster_started":
				started = true
			}
		case <-ctx.Done():
			t.Fatalf("cluster did not start: %v; stderr %q", ctx.Err(), c.stderr.String())
		}
	}
	if c.urls.HTTP == "" || c.urls.Gateway == "" {
		t.Fatalf("urls %+v: want both the HTTP and the gateway address", c.urls)
	}
	c.api = client.New(c.urls.HTTP, service.DefaultAdminPassword, nil)
	return c
}

// stop sends SIGTERM and expects exit 0 and every child gone.
func (c *upCluster) stop(ctx context.Context, t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.exited:
		c.exited <- err // for the cleanup
		if code := exitCode(err); code != 0 {
			t.Errorf("up after SIGTERM: exit %d (%v), want 0; stderr %q", code, err, c.stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("up did not stop after SIGTERM: %v", ctx.Err())
	}
	for _, pid := range c.pids() {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child pid %d still exists after up stopped (kill 0: %v)", pid, err)
		}
	}
}

// gatewayLog reads the gateway's whole event log over its Events RPC.
func gatewayLog(ctx context.Context, t testing.TB, addr string) []*mcsimv1.GatewayEvent {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := mcsimv1.NewGatewayServiceClient(conn).Events(ctx, &mcsimv1.EventsRequest{})
	if err != nil {
		t.Fatalf("gateway Events: %v", err)
	}
	return resp.GetEvents()
}

// scrapeMetric reads one unlabelled sample from a Prometheus text /metrics.
func scrapeMetric(ctx context.Context, hc *http.Client, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("GET %s: no sample %q", url, name)
}

// dumpNodeLogs logs the warnings and errors of every node's log file (and
// the master logs' info lines, where takeovers and failovers are told), so
// a failure on CI explains itself.
func dumpNodeLogs(t testing.TB, data string) {
	files, _ := filepath.Glob(filepath.Join(data, "logs", "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		master := strings.Contains(filepath.Base(f), "master")
		var keep []string
		for _, line := range strings.Split(string(b), "\n") {
			if master || strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
				keep = append(keep, line)
			}
		}
		if len(keep) > 200 {
			keep = keep[len(keep)-200:]
		}
		t.Logf("%s:\n%s", f, strings.Join(keep, "\n"))
	}
}

// checkNodeLogs fails the test for every line of every node log that a
// script could not time a failover with: not JSON (jq . must read every
// line), a key twice, or a timestamp without milliseconds.
func checkNodeLogs(t testing.TB, data string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(data, "logs", "*.log"))
	if len(files) == 0 {
		t.Errorf("no node logs in %s", data)
	}
	bad := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Error(err)
			continue
		}
		for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			if err := logging.CheckLine(line); err != nil {
				if bad++; bad <= 10 {
					t.Errorf("%s:%d: %v", filepath.Base(f), i+1, err)
				}
			}
		}
	}
}
