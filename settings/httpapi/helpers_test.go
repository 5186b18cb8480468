package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/internal/version"
	"github.com/mcsim/mcsim/settings/httpapi"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/settings/store/storetest"
)

const (
	testPassword = "s3cret-pw"
	testWAID     = "16315551019"
)

// clock is the injectable Now of one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects the access log, written from server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// envBackend is the store backend newEnv opens: bbolt, or PostgreSQL while
// TestConformancePostgres reruns the tests (none of them is parallel).
var envBackend = storetest.Bolt

// env is a settings HTTP service over a real store (envBackend).
type env struct {
	t     testing.TB
	srv   *httptest.Server
	store store.Backend
	clock *clock
	logs  *syncBuffer
	token string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with edit applied to the configuration first.
func newEnvWith(t testing.TB, edit func(*httpapi.Config)) *env {
	t.Helper()
	st, _ := envBackend.Open(t)
	// The fake clock starts at the real time, so that the store's own
	// housekeeping (pruning expired tokens by wall clock) agrees with it.
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	logs := &syncBuffer{}
	cfg := httpapi.Config{
		Store:         st,
		WAID:          testWAID,
		AdminPassword: testPassword,
		Logger:        zerolog.New(logs),
		Now:           c.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	h, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, store: st, clock: c, logs: logs}
}

// answer is one HTTP answer, checked for the rules every answer obeys.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// request sends a request with the given Authorization header ("" for
// none) and checks that the answer is JSON carrying meta.
func (e *env) request(method, path, auth string, body []byte) answer {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatalf("NewRequest: %v", err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading: %v", method, path, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: Content-Type %q, want application/json (body %s)", method, path, ct, b)
	}
	var m struct {
		Meta map[string]string `json:"meta"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Errorf("%s %s: answer is not JSON: %v: %s", method, path, err, b)
	} else if want := map[string]string{"api_status": "stable", "version": version.Version}; !reflect.DeepEqual(m.Meta, want) {
		e.t.Errorf("%s %s: meta %v, want %v", method, path, m.Meta, want)
	}
	return a
}

// login returns "Bearer <token>" for the admin.
func (e *env) login() string {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/users/login", nil)
	req.SetBasicAuth("admin", testPassword)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	var ans struct {
		Users []struct {
			Token string `json:"token"`
		} `json:"users"`
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("login: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || len(ans.Users) != 1 {
		e.t.Fatalf("login: bad answer: %v %+v", err, ans)
	}
	return "Bearer " + ans.Users[0].Token
}

// do sends an authenticated request, logging in on first use.
func (e *env) do(method, path, body string) answer {
	e.t.Helper()
	if e.token == "" {
		e.token = e.login()
	}
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	return e.request(method, path, e.token, b)
}

// application returns the settings.application object of a GET.
func (e *env) application() map[string]any {
	e.t.Helper()
	a := e.do(http.MethodGet, "/v1/settings/application", "")
	if a.status != http.StatusOK {
		e.t.Fatalf("GET application: HTTP %d: %s", a.status, a.body)
	}
	var v struct {
		Settings struct {
			Application map[string]any `json:"application"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil {
		e.t.Fatalf("GET application: %v: %s", err, a.body)
	}
	return v.Settings.Application
}

// apiError is one entry of the error envelope.
type apiError struct {
	Code    int    `json:"code"`
	Title   string `json:"title"`
	Details string `json:"details"`
}

// errorsOf decodes an error envelope, failing when it is not one.
func errorsOf(t testing.TB, a answer) []apiError {
	t.Helper()
	var env struct {
		Errors []apiError `json:"errors"`
	}
	if err := json.Unmarshal(a.body, &env); err != nil || len(env.Errors) == 0 {
		t.Fatalf("HTTP %d: not an error envelope: %s", a.status, a.body)
	}
	for _, e := range env.Errors {
		if e.Title == "" || e.Details == "" {
			t.Errorf("error entry without title or details: %+v", e)
		}
	}
	return env.Errors
}

// wantError checks an answer is one error with that status and code, whose
// details mention each of the given substrings.
func wantError(t testing.TB, a answer, status, code int, mention ...string) {
	t.Helper()
	if a.status != status {
		t.Errorf("HTTP %d, want %d: %s", a.status, status, a.body)
	}
	errs := errorsOf(t, a)
	if len(errs) != 1 {
		t.Errorf("%d errors, want 1: %s", len(errs), a.body)
	}
	if errs[0].Code != code {
		t.Errorf("code %d, want %d: %s", errs[0].Code, code, a.body)
	}
	for _, m := range mention {
		if !strings.Contains(errs[0].Details, m) {
			t.Errorf("details %q do not mention %q", errs[0].Details, m)
		}
	}
}

// mustJSON parses a JSON literal of a test.
func mustJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
