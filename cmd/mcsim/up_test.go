package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/health"
	"github.com/mcsim/mcsim/settings/store/pgstore/pgtest"
)

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

	c := startUp(ctx, t, bin, data,
		"--masters", "2", "--coreapps", "3", "--shards", "2",
		"--heartbeat-interval", heartbeat.String(), "--unhealthy-interval", unhealthy.String())
	if len(c.nodes) != 5 {
		t.Fatalf("%d nodes started, want 5: %v", len(c.nodes), c.nodes)
	}

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

	failOverShard0(ctx, t, c, unhealthy+heartbeat+tolerance)
	c.stop(ctx, t)
	checkNodeLogs(t, data)
}

// TestUpFailoverEndToEndPostgres is the coreapp kill with the settings
// store in PostgreSQL (mcsim up --store postgres://…; MCSIM_TEST_POSTGRES,
// see package pgtest).
func TestUpFailoverEndToEndPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	dsn := pgtest.Schema(t)
	const heartbeat, unhealthy, tolerance = time.Second, 3 * time.Second, 2 * time.Second
	bin := buildMcsim(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	data := t.TempDir()
	c := startUp(ctx, t, bin, data, "--store", dsn,
		"--masters", "2", "--coreapps", "3", "--shards", "2",
		"--heartbeat-interval", heartbeat.String(), "--unhealthy-interval", unhealthy.String())

	// The data dir is still one cluster's, though the store is elsewhere.
	second := exec.CommandContext(ctx, bin, "up", "--data", data, "--store", dsn, "--http", "127.0.0.1:0", "--json")
	var out2, err2 bytes.Buffer
	second.Stdout, second.Stderr = &out2, &err2
	if code := exitCode(second.Run()); code != exitFailure || !strings.Contains(err2.String(), "lock") || strings.Contains(out2.String(), "node_started") {
		t.Errorf("second up on the same data dir: exit %d (want %d), stderr %q (want a lock error), stdout %q (want no node started)", code, exitFailure, err2.String(), out2.String())
	}

	failOverShard0(ctx, t, c, unhealthy+heartbeat+tolerance)
	c.stop(ctx, t)
	checkNodeLogs(t, data)
}

// failOverShard0 waits for both shards to be served, SIGKILLs shard 0's
// coreapp and checks that another one serves it within bound and that the
// gateway's log breaks no rule.
func failOverShard0(ctx context.Context, t *testing.T, c *upCluster, bound time.Duration) {
	t.Helper()
	api := c.api
	h := pollHealth(ctx, t, api, "both shards connected", func(h map[string]health.Entry) bool {
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
	h = pollHealth(ctx, t, api, "shard 0 on another coreapp", func(h map[string]health.Entry) bool {
		k, _, ok := holderOf(h, 0)
		return ok && k != victimKey
	})
	elapsed := time.Since(killed)
	newKey, _, _ := holderOf(h, 0)
	t.Logf("shard 0 moved %s → %s in %v", victimKey, newKey, elapsed)
	if elapsed > bound {
		t.Errorf("failover took %v, want ≤ %v (unhealthy + heartbeat + tolerance)", elapsed, bound)
	}
	if v := gateway.CheckLog(gatewayLog(ctx, t, c.urls.Gateway)); len(v) > 0 {
		t.Errorf("gateway log violations: %v", v)
	}
}

// TestUpSurvivesLostDatabaseConnections: with the store in PostgreSQL,
// the server ends every connection of the settings service (what a
// database restart does to it), three times a second apart, under a
// running cluster (heartbeat 1 s, unhealthy 3 s). The calls that fail are
// retried; the gateway sees no session end or start (no failover, no
// re-assignment) over 5 s after the last cut, and a setting PATCHed before
// the cuts is still there, the primary stayed primary, and a PATCH after
// the cuts is accepted.
func TestUpSurvivesLostDatabaseConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	dsn := pgtest.Schema(t)
	bin := buildMcsim(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	data := t.TempDir()
	c := startUp(ctx, t, bin, data, "--store", dsn,
		"--masters", "2", "--coreapps", "3", "--shards", "2",
		"--heartbeat-interval", "1s", "--unhealthy-interval", "3s")
	h := pollHealth(ctx, t, c.api, "both shards connected and a primary", func(h map[string]health.Entry) bool {
		_, _, ok0 := holderOf(h, 0)
		_, _, ok1 := holderOf(h, 1)
		return ok0 && ok1 && len(mastersByRole(h, "primary_master")) == 1
	})
	primary := mastersByRole(h, "primary_master")
	if _, err := c.api.Patch(ctx, []byte(`{"max_callback_backoff_delay_ms": 123456}`)); err != nil {
		t.Fatal(err)
	}
	before := lastSeq(gatewayLog(ctx, t, c.urls.Gateway))
	for range 3 {
		n := pgtest.TerminateConnections(t, dsn)
		t.Logf("the server ended %d connections of the settings service", n)
		time.Sleep(time.Second) // real time: the cluster runs on it
	}
	// Longer than the lease's TTL (3 s) and a renewal (1 s): a store that
	// did not recover would have cost the primary its lease by now.
	time.Sleep(5 * time.Second)
	if evs := eventsAfter(gatewayLog(ctx, t, c.urls.Gateway), before); len(evs) > 0 {
		t.Errorf("the gateway saw sessions change while the database connections were cut:%s", describeEvents(evs))
	}
	// The primary renewed its lease through the cuts (its TTL is 3 s, a
	// renewal every 1 s): it is still the one primary.
	h, err := readHealth(ctx, c.api)
	if got := mastersByRole(h, "primary_master"); err != nil || !slices.Equal(got, primary) {
		t.Errorf("primary after the cuts: %v (err %v), want still %v", got, err, primary)
	}
	body, err := c.api.Get(ctx)
	if err != nil || !strings.Contains(string(body), `"max_callback_backoff_delay_ms":123456`) {
		t.Errorf("GET after the cuts: %v, %s; want the PATCHed 123456", err, body)
	}
	// And the store works again: a change is accepted and read back.
	if _, err := c.api.Patch(ctx, []byte(`{"max_callback_backoff_delay_ms": 123457}`)); err != nil {
		t.Errorf("PATCH after the cuts: %v", err)
	} else if body, err := c.api.Get(ctx); err != nil || !strings.Contains(string(body), `"max_callback_backoff_delay_ms":123457`) {
		t.Errorf("GET after a PATCH after the cuts: %v, %s; want 123457", err, body)
	}
	c.stop(ctx, t)
}
