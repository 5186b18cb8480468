package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const healthBody = `{"health": {
	"127.0.0.1:coreapp-2": {"role": "coreapp", "gateway_status": "disconnected", "shards": [], "pid": 302, "pending_restart": [], "state": "alive"},
	"127.0.0.1:coreapp-1": {"role": "coreapp", "gateway_status": "connected", "shards": [0, 1], "pid": 301, "pending_restart": ["log_level", "verbose_logging"], "state": "alive"},
	"127.0.0.1:master-2": {"role": "primary_master", "gateway_status": "disconnected", "shards": [], "pid": 202, "pending_restart": [], "state": "alive",
		"unassigned_shards": [{"shard": 2, "since": "2026-12-01T21:14:03.512Z", "reason": "no healthy standby"}, {"shard": 3, "reason": "being assigned"}]},
	"127.0.0.1:master-1": {"role": "secondary_master", "gateway_status": "disconnected", "shards": [], "pid": 201, "pending_restart": []},
	"127.0.0.1:coreapp-0": {"role": "unknown", "gateway_status": "disconnected", "shards": [], "pid": 300, "pending_restart": [], "error": "unreachable: deadline", "state": "unreachable", "since": "2026-12-01T21:14:01.004Z"},
	"127.0.0.1:coreapp-3": {"role": "coreapp", "gateway_status": "disconnected", "shards": [], "pid": 303, "pending_restart": [], "error": "lost by gossip (crashed, paused or cut off)", "state": "failed", "since": "2026-12-01T21:14:00.250Z"}
}, "meta": {"api_status": "stable", "version": "test"}}`

func TestFormatStatus(t *testing.T) {
	got, err := formatStatus([]byte(healthBody), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := `NODE                 ROLE              STATE                           GATEWAY       SHARDS  PID  PENDING_RESTART            ERROR
127.0.0.1:master-2   primary_master    alive                           disconnected  -       202  -                          -
127.0.0.1:master-1   secondary_master  alive                           disconnected  -       201  -                          -
127.0.0.1:coreapp-1  coreapp           alive                           connected     0,1     301  log_level,verbose_logging  -
127.0.0.1:coreapp-2  coreapp           alive                           disconnected  -       302  -                          -
127.0.0.1:coreapp-3  coreapp           failed since 21:14:00.250       disconnected  -       303  -                          lost by gossip (crashed, paused or cut off)
127.0.0.1:coreapp-0  unknown           unreachable since 21:14:01.004  disconnected  -       300  -                          unreachable: deadline
shard 2: unassigned since 21:14:03.512, no healthy standby
shard 3: unassigned, being assigned
`
	if got != want {
		t.Errorf("formatStatus =\n%s\nwant\n%s", got, want)
	}

	if got, err := formatStatus([]byte(`{"health": {}, "meta": {}}`), time.UTC); err != nil || !strings.Contains(got, "no masters or coreapps") {
		t.Errorf("empty cluster = %q, %v", got, err)
	}
	if _, err := formatStatus([]byte(`<html>`), time.UTC); err == nil {
		t.Error("formatStatus accepted a non-JSON answer")
	}
}

// fakeService answers login and /v1/health like the settings service.
func fakeService(t *testing.T, healthStatus int, body string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/users/login", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":1005,"title":"Access denied","details":"bad password"}],"meta":{}}`))
			return
		}
		_, _ = w.Write([]byte(`{"users":[{"token":"tok","expires_after":"x"}],"meta":{}}`))
	})
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(healthStatus)
		_, _ = w.Write([]byte(body))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func runStatus(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"status"}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestStatusCommand(t *testing.T) {
	srv := fakeService(t, http.StatusOK, healthBody)
	out, err := runStatus(t, "--url", srv.URL, "--admin-password", "pw")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 9 || !strings.HasPrefix(lines[1], "127.0.0.1:master-2") {
		t.Errorf("status printed:\n%s\nwant a header, 6 rows (the primary master first) and 2 unassigned shards", out)
	}

	out, err = runStatus(t, "--url", srv.URL, "--admin-password", "pw", "--json")
	if err != nil || !strings.Contains(out, `"primary_master"`) || !strings.Contains(out, `"health": {`) {
		t.Errorf("status --json = %v:\n%s\nwant the raw health JSON, indented", err, out)
	}

	_, err = runStatus(t, "--url", srv.URL, "--admin-password", "wrong")
	var ex *exitError
	if !errors.As(err, &ex) || ex.code != exitFailure || !strings.Contains(ex.msg, "1005") {
		t.Errorf("status with a wrong password = %v, want exit %d with the error envelope", err, exitFailure)
	}

	down := fakeService(t, http.StatusOK, "")
	down.Close()
	_, err = runStatus(t, "--url", down.URL, "--admin-password", "pw")
	if !errors.As(err, &ex) || ex.code != exitTransprt {
		t.Errorf("status against a stopped service = %v, want exit %d", err, exitTransprt)
	}
}

// A cluster restarted on the same data dir has no primary until the
// previous run's lease lapses: the table says so, with the time left.
func TestFormatStatusWaitingForTheLease(t *testing.T) {
	body := `{"health": {
	"127.0.0.1:master-1": {"role": "secondary_master", "gateway_status": "disconnected", "shards": [], "pid": 201, "pending_restart": []},
	"127.0.0.1:master-2": {"role": "secondary_master", "gateway_status": "disconnected", "shards": [], "pid": 202, "pending_restart": []}
}, "lease": {"holder": "master-1", "epoch": 3, "remaining_ms": 23400}, "meta": {}}`
	got, err := formatStatus([]byte(body), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := `NODE                ROLE              STATE  GATEWAY       SHARDS  PID  PENDING_RESTART  ERROR
127.0.0.1:master-1  secondary_master  alive  disconnected  -       201  -                -
127.0.0.1:master-2  secondary_master  alive  disconnected  -       202  -                -
no primary: waiting for the previous lease (master-1, epoch 3) to lapse, 24 s left
`
	if got != want {
		t.Errorf("formatStatus =\n%s\nwant\n%s", got, want)
	}
}

// A master the store says holds the lease is listed even when gossip does
// not know it (cut off from gossip, or started without --join).
func TestFormatStatusListsALeaseHolderOutsideGossip(t *testing.T) {
	body := `{"health": {
	"127.0.0.1:master-2": {"role": "secondary_master", "gateway_status": "disconnected", "shards": [], "pid": 202, "pending_restart": [], "state": "alive"}
}, "lease": {"holder": "master-1", "epoch": 4, "remaining_ms": 2500}, "meta": {}}`
	got, err := formatStatus([]byte(body), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := "lease:master-1      unknown           outside_gossip  disconnected  -       -    -                holds the lease by the store (epoch 4, 2.5 s left) but is not in the gossip cluster"
	if !strings.Contains(got, want) {
		t.Errorf("formatStatus =\n%s\nwant a line\n%s", got, want)
	}
}
