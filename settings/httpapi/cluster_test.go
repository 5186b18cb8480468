package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcsim/mcsim/settings/httpapi"
	"github.com/mcsim/mcsim/settings/store"
)

func TestHealth(t *testing.T) {
	calls := 0
	e := newEnvWith(t, func(c *httpapi.Config) {
		c.Health = func(context.Context) (map[string]httpapi.HealthEntry, error) {
			calls++
			return map[string]httpapi.HealthEntry{
				"127.0.0.1:coreapp-1": {Role: "coreapp", GatewayStatus: "connected", Shards: []int{0, 1}, PID: 1234,
					PendingRestart: []string{"log_level"}, Metrics: "http://127.0.0.1:9100/metrics"},
				"127.0.0.1:master-1": {Role: "primary_master", GatewayStatus: "disconnected", PID: 1235},
				"127.0.0.1:coreapp-2": {Role: "unknown", GatewayStatus: "disconnected", PID: 1236,
					Error: "unreachable: context deadline exceeded"},
			}, nil
		}
	})
	if a := e.request(http.MethodGet, "/v1/health", "", nil); a.status != http.StatusUnauthorized {
		t.Fatalf("GET /v1/health without a token = %d, want 401: %s", a.status, a.body)
	} else {
		wantError(t, a, http.StatusUnauthorized, 1005, "Bearer")
	}
	if calls != 0 {
		t.Fatalf("health source asked %d times for unauthenticated requests, want 0", calls)
	}

	a := e.do(http.MethodGet, "/v1/health", "")
	if a.status != http.StatusOK {
		t.Fatalf("GET /v1/health = %d: %s", a.status, a.body)
	}
	want := mustJSON(t, `{
		"127.0.0.1:coreapp-1": {"role": "coreapp", "gateway_status": "connected", "shards": [0, 1], "pid": 1234,
			"pending_restart": ["log_level"], "metrics": "http://127.0.0.1:9100/metrics"},
		"127.0.0.1:master-1": {"role": "primary_master", "gateway_status": "disconnected", "shards": [], "pid": 1235,
			"pending_restart": []},
		"127.0.0.1:coreapp-2": {"role": "unknown", "gateway_status": "disconnected", "shards": [], "pid": 1236,
			"pending_restart": [], "error": "unreachable: context deadline exceeded"}
	}`)
	var got struct {
		Health any `json:"health"`
	}
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Health, want) {
		t.Errorf("health =\n%s\nwant\n%s", pretty(got.Health), pretty(want))
	}
	e.do(http.MethodGet, "/v1/health", "")
	if calls != 2 {
		t.Errorf("health source asked %d times for 2 requests, want 2 (no caching)", calls)
	}
}

func TestHealthSourceFailure(t *testing.T) {
	e := newEnvWith(t, func(c *httpapi.Config) {
		c.Health = func(context.Context) (map[string]httpapi.HealthEntry, error) {
			return nil, errors.New("membership at /secret/path is gone")
		}
	})
	a := e.do(http.MethodGet, "/v1/health", "")
	wantError(t, a, http.StatusInternalServerError, 1014, "cluster health")
	if strings.Contains(string(a.body), "/secret/path") {
		t.Errorf("the internal error leaked to the client: %s", a.body)
	}
	if !strings.Contains(e.logs.String(), "/secret/path") {
		t.Errorf("the internal error was not logged: %s", e.logs.String())
	}
}

func TestHealthWithoutSourceIsEmpty(t *testing.T) {
	e := newEnv(t)
	a := e.do(http.MethodGet, "/v1/health", "")
	if a.status != http.StatusOK || !strings.Contains(string(a.body), `"health":{}`) {
		t.Fatalf("GET /v1/health without a source = %d %s, want 200 with an empty health object", a.status, a.body)
	}
}

func (e *env) shards() int {
	e.t.Helper()
	a := e.do(http.MethodGet, "/v1/account/shards", "")
	if a.status != http.StatusOK {
		e.t.Fatalf("GET /v1/account/shards = %d: %s", a.status, a.body)
	}
	var v struct {
		Account struct {
			Shards *int `json:"shards"`
		} `json:"account"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || v.Account.Shards == nil {
		e.t.Fatalf("GET /v1/account/shards: %v: %s", err, a.body)
	}
	return *v.Account.Shards
}

func TestAccountShards(t *testing.T) {
	e := newEnv(t)
	if got := e.shards(); got != 1 {
		t.Fatalf("shards of a new store = %d, want 1", got)
	}
	if a := e.request(http.MethodPost, "/v1/account/shards", "", []byte(`{"shards": 2}`)); a.status != http.StatusUnauthorized {
		t.Fatalf("POST without a token = %d, want 401", a.status)
	}
	if a := e.request(http.MethodGet, "/v1/account/shards", "", nil); a.status != http.StatusUnauthorized {
		t.Fatalf("GET without a token = %d, want 401", a.status)
	}
	// testWAID is "16315551019": cc "1", phone_number "6315551019".
	for _, tc := range []struct {
		body   string
		status int // 201 when the count changed, 200 when it did not
		shards int
	}{
		{`{"shards": 2}`, http.StatusCreated, 2},
		{`{"shards": 2}`, http.StatusOK, 2},
		{`{"cc": "1", "phone_number": "6315551019", "shards": 32}`, http.StatusCreated, 32},
		{`{"cc": "1", "phone_number": "6315551019", "shards": 32, "pin": "123456", "cert": "Q2VydA=="}`, http.StatusOK, 32},
		{`{"cc": "1", "phone_number": "6315551019", "shards": 1, "cert": "anything, unchecked"}`, http.StatusCreated, 1},
		{`{"cc": "16", "phone_number": "315551019", "shards": 4, "pin": ""}`, http.StatusCreated, 4},
		{`{"shards": 4, "pin": "000000"}`, http.StatusOK, 4},
	} {
		a := e.do(http.MethodPost, "/v1/account/shards", tc.body)
		if a.status != tc.status {
			t.Fatalf("POST %s = %d, want %d: %s", tc.body, a.status, tc.status, a.body)
		}
		if !bytes.Contains(a.body, []byte(`"meta"`)) || bytes.Contains(a.body, []byte(`"errors"`)) {
			t.Fatalf("POST %s answered %s, want only meta", tc.body, a.body)
		}
		if got := e.shards(); got != tc.shards {
			t.Fatalf("after POST %s: GET = %d, want %d", tc.body, got, tc.shards)
		}
	}
	rev := e.store.State().Revision

	const realForm = `"cc": "1", "phone_number": "6315551019", `
	for _, tc := range []struct {
		body    string
		code    int
		mention []string
	}{
		{`{"shards": 3}`, 1009, []string{"shards", "1, 2, 4, 8, 16, 32", "got 3"}},
		{`{"shards": 0}`, 1009, []string{"shards", "got 0"}},
		{`{"shards": -2}`, 1009, []string{"shards", "got -2"}},
		{`{"shards": 64}`, 1009, []string{"shards", "got 64"}},
		{`{"shards": 2.0}`, 1009, []string{"shards", "got 2.0"}},
		{`{"shards": 2.5}`, 1009, []string{"shards"}},
		{`{"shards": "2"}`, 1009, []string{"shards", `got "2"`}},
		{`{"shards": null}`, 1009, []string{"shards", "got null"}},
		{`{"shards": true}`, 1009, []string{"shards"}},
		{`{"shards": [2]}`, 1009, []string{"shards"}},
		{`{"shards": 99999999999999999999}`, 1009, []string{"shards"}},
		{`{}`, 1008, []string{"shards"}},
		{`{"shards": 2, "extra": 1}`, 1010, []string{"extra", "unknown field", `"cc", "phone_number"`}},
		{`{` + realForm + `"shards": 2, "extra": 1}`, 1010, []string{"extra", "unknown field"}},
		{`{"cc": "1", "phone_number": "6315550000", "shards": 2}`, 1009,
			[]string{`cc, phone_number: together must be this account's wa_id "16315551019", got "1" + "6315550000"`}},
		{`{"cc": "44", "phone_number": "6315551019", "shards": 2}`, 1009, []string{"cc, phone_number:", `"44" + "6315551019"`}},
		{`{"cc": "1", "shards": 2}`, 1008, []string{"phone_number: required parameter is missing", "cc was given"}},
		{`{"phone_number": "6315551019", "shards": 2}`, 1008, []string{"cc: required parameter is missing", "phone_number was given"}},
		{`{"cc": 1, "phone_number": "6315551019", "shards": 2}`, 1009, []string{"cc: must be the country code as a string", "got 1"}},
		{`{"cc": "+1", "phone_number": "6315551019", "shards": 2}`, 1009, []string{"cc:", `got "+1"`}},
		{`{"cc": "1", "phone_number": "631-555-1019", "shards": 2}`, 1009, []string{"phone_number: must be", `got "631-555-1019"`}},
		{`{"cc": "1", "phone_number": 6315551019, "shards": 2}`, 1009, []string{"phone_number: must be", "got 6315551019"}},
		{`{` + realForm + `"shards": 2, "pin": 123456}`, 1009, []string{"pin: must be a string", "got 123456"}},
		{`{` + realForm + `"shards": 2, "cert": null}`, 1009, []string{"cert: must be a string", "got null"}},
		{`not json`, 1025, []string{"request body is not valid JSON"}},
		{`[2]`, 1025, []string{`must be a JSON object like {"shards": 2}, got an array`}},
		{`null`, 1025, []string{"must be a JSON object", "got null"}},
		{``, 1025, []string{"request body is empty"}},
		{`{"shards": 2, "shards": 4}`, 1025, []string{`duplicate key "shards"`}},
	} {
		t.Run(tc.body, func(t *testing.T) {
			a := e.do(http.MethodPost, "/v1/account/shards", tc.body)
			wantError(t, a, http.StatusBadRequest, tc.code, tc.mention...)
			if got := e.shards(); got != 4 {
				t.Errorf("shards after a refused POST = %d, want 4 unchanged", got)
			}
			if got := e.store.State().Revision; got != rev {
				t.Errorf("revision after a refused POST = %d, want %d unchanged", got, rev)
			}
		})
	}

	// Several problems are reported together, sorted by field.
	a := e.do(http.MethodPost, "/v1/account/shards", `{"shards": 3, "b": 1, "a": 2, "cc": "1"}`)
	errs := errorsOf(t, a)
	var codes []int
	for _, x := range errs {
		codes = append(codes, x.Code)
	}
	if a.status != http.StatusBadRequest || !reflect.DeepEqual(codes, []int{1010, 1010, 1008, 1009}) {
		t.Errorf("POST with four problems = %d %v, want 400 with 1010, 1010, 1008, 1009: %s", a.status, codes, a.body)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnvWith(t, func(c *httpapi.Config) { c.Metrics = reg })
	e.do(http.MethodPost, "/v1/account/shards", `{"shards": 2}`)
	e.do(http.MethodGet, "/v1/account/shards", "")
	e.request(http.MethodGet, "/no/such/path", "", nil)
	if _, err := e.store.AcquireLease("master-1", "", "127.0.0.1:1", 3600e9, e.clock.Now()); err != nil {
		t.Fatal(err)
	}

	resp, err := e.srv.Client().Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", resp.StatusCode, b)
	}
	text := string(b)
	for _, want := range []string{
		`mcsim_settings_revision 1`,
		`mcsim_settings_shards 2`,
		`mcsim_settings_http_requests_total{route="POST /v1/account/shards",status="201"} 1`,
		`mcsim_settings_http_requests_total{route="GET /v1/account/shards",status="200"} 1`,
		`mcsim_settings_http_requests_total{route="none",status="404"} 1`,
		`mcsim_settings_http_request_duration_seconds_count{route="GET /v1/account/shards"} 1`,
		`mcsim_settings_lease_epoch 1`,
		`mcsim_settings_lease_holder{holder="master-1"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
	// The caller's registry is the one served (the service adds its own
	// metrics to it).
	if mfs, err := reg.Gather(); err != nil || len(mfs) == 0 {
		t.Errorf("caller's registry gathered %d families, %v", len(mfs), err)
	}
}

// The health answer carries the master lease as the store holds it, timed
// by the service's clock, so a client can tell "no primary because the
// previous run's lease still runs" from "no primary yet".
func TestHealthCarriesTheLease(t *testing.T) {
	e := newEnv(t)
	lease := func() map[string]any {
		t.Helper()
		a := e.do(http.MethodGet, "/v1/health", "")
		var got struct {
			Lease map[string]any `json:"lease"`
		}
		if err := json.Unmarshal(a.body, &got); err != nil || a.status != http.StatusOK {
			t.Fatalf("GET /v1/health = %d %s (%v)", a.status, a.body, err)
		}
		return got.Lease
	}
	if got, want := lease(), map[string]any{"holder": "", "epoch": 0.0, "remaining_ms": 0.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("lease never taken = %v, want %v", got, want)
	}
	if _, err := e.store.AcquireLease("master-1", "run-1", "127.0.0.1:7001", 30*time.Second, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(6 * time.Second)
	if got, want := lease(), map[string]any{"holder": "master-1", "epoch": 1.0, "remaining_ms": 24000.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("lease 6 s into a 30 s TTL = %v, want %v", got, want)
	}
	e.clock.Advance(24 * time.Second)
	if got, want := lease(), map[string]any{"holder": "master-1", "epoch": 1.0, "remaining_ms": 0.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("lapsed lease = %v, want %v", got, want)
	}
}

// aheadStore is a store judging leases by a clock of its own
// (store.LeaseClock), ahead of the service's by ahead, as PostgreSQL's
// clock may be ahead of a settings process's.
type aheadStore struct {
	store.Backend
	local func() time.Time
	ahead time.Duration
}

func (s aheadStore) CurrentLeaseAt() (store.Lease, time.Time) {
	return s.Backend.CurrentLease(), s.local().Add(s.ahead)
}

// The health answer times the lease by the clock of the store that granted
// it, not the service's: 30 s granted on the store's clock are 30 s left
// there, whatever the service's clock says.
func TestHealthTimesTheLeaseByTheStoresClock(t *testing.T) {
	const ahead = 4 * time.Second
	e := newEnvWith(t, func(c *httpapi.Config) { c.Store = aheadStore{c.Store, c.Now, ahead} })
	if _, err := e.store.AcquireLease("master-1", "run-1", "127.0.0.1:7001", 30*time.Second, e.clock.Now().Add(ahead)); err != nil {
		t.Fatal(err)
	}
	a := e.do(http.MethodGet, "/v1/health", "")
	var got struct {
		Lease map[string]any `json:"lease"`
	}
	if err := json.Unmarshal(a.body, &got); err != nil || a.status != http.StatusOK {
		t.Fatalf("GET /v1/health = %d %s (%v)", a.status, a.body, err)
	}
	if want := (map[string]any{"holder": "master-1", "epoch": 1.0, "remaining_ms": 30000.0}); !reflect.DeepEqual(got.Lease, want) {
		t.Errorf("lease just granted for 30 s by the store's clock = %v, want %v", got.Lease, want)
	}
}
