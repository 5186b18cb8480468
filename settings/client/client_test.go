package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/settings/client"
	"github.com/mcsim/mcsim/settings/httpapi"
	"github.com/mcsim/mcsim/settings/store"
)

const password = "pw-for-tests"

// service is the real settings HTTP API over a real store, with a log of the
// requests that reached it and a clock the test moves.
type service struct {
	srv *httptest.Server

	mu    sync.Mutex
	calls []string // "METHOD /path" in arrival order
	now   time.Time
}

func (s *service) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *service) advance(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

func (s *service) takeCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

func newService(t *testing.T) *service {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := &service{now: time.Now()}
	h, err := httpapi.New(httpapi.Config{Store: st, WAID: "1555", AdminPassword: password, Logger: zerolog.Nop(), Now: s.Now})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls = append(s.calls, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func TestLazyLoginAndRelogin(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	c := client.New(s.srv.URL+"/", password, s.srv.Client())
	if got := s.takeCalls(); len(got) != 0 {
		t.Fatalf("New made calls: %v", got)
	}

	// First call logs in, then the token is reused.
	body, err := c.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !bytes.Contains(body, []byte(`"heartbeat_interval":5`)) {
		t.Errorf("Get body: %s", body)
	}
	if _, err := c.Patch(ctx, []byte(`{"heartbeat_interval":8}`)); err != nil {
		t.Fatalf("Patch: %v", err)
	}
	want := []string{"POST /v1/users/login", "GET /v1/settings/application", "PATCH /v1/settings/application"}
	if got := s.takeCalls(); !equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}

	// The token expires: one 401, a new login, the call again.
	s.advance(httpapi.TokenTTL)
	body, err = c.Get(ctx)
	if err != nil || !bytes.Contains(body, []byte(`"heartbeat_interval":8`)) {
		t.Fatalf("Get after expiry: %v %s", err, body)
	}
	want = []string{"GET /v1/settings/application", "POST /v1/users/login", "GET /v1/settings/application"}
	if got := s.takeCalls(); !equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}

	// Reset and the generic Do.
	if _, err := c.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	body, err = c.Do(ctx, http.MethodGet, "/v1/settings/application/media/providers", nil)
	if err != nil || !bytes.Contains(body, []byte(`"providers":[]`)) {
		t.Fatalf("Do: %v %s", err, body)
	}
	body, _ = c.Get(ctx)
	if !bytes.Contains(body, []byte(`"heartbeat_interval":5`)) {
		t.Errorf("Get after Reset: %s", body)
	}
}

func TestAPIErrorCarriesTheEnvelope(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	c := client.New(s.srv.URL, password, s.srv.Client())
	_, err := c.Patch(ctx, []byte(`{"log_level":"loud","bogus":1}`))
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("Patch error %v (%T), want *APIError", err, err)
	}
	if ae.Status != http.StatusBadRequest {
		t.Errorf("Status %d, want 400", ae.Status)
	}
	// Body is the service's answer byte for byte: compare with a direct call.
	direct := rawPatch(t, s, `{"log_level":"loud","bogus":1}`)
	if !bytes.Equal(ae.Body, direct) {
		t.Errorf("APIError.Body\n%s\nwant the envelope\n%s", ae.Body, direct)
	}
	msg := err.Error()
	for _, part := range []string{"400", "1009", "log_level", "1010", "bogus"} {
		if !strings.Contains(msg, part) {
			t.Errorf("Error() %q does not mention %q", msg, part)
		}
	}
}

// rawPatch PATCHes without the client and returns the answer body.
func rawPatch(t *testing.T, s *service, body string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/v1/users/login", nil)
	req.SetBasicAuth("admin", password)
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		Users []struct{ Token string } `json:"users"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodPatch, s.srv.URL+"/v1/settings/application", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+login.Users[0].Token)
	resp, err = s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func TestBadPassword(t *testing.T) {
	s := newService(t)
	c := client.New(s.srv.URL, "wrong", s.srv.Client())
	_, err := c.Get(context.Background())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || !bytes.Contains(ae.Body, []byte(`"code":1005`)) {
		t.Fatalf("Get with a bad password: %v", err)
	}
	// The settings call itself was never made.
	if got := s.takeCalls(); !equal(got, []string{"POST /v1/users/login"}) {
		t.Errorf("calls %v", got)
	}
}

// TestRetriesOnlyOnce: a service that refuses every token gets one re-login
// and one retry, then the 401 envelope comes back.
func TestRetriesOnlyOnce(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/users/login" {
			_, _ = io.WriteString(w, `{"users":[{"token":"t","expires_after":"x"}],"meta":{}}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errors":[{"code":1005,"title":"Access denied","details":"no"}],"meta":{}}`)
	}))
	defer srv.Close()
	c := client.New(srv.URL, password, srv.Client())
	_, err := c.Get(context.Background())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("err %v, want a 401 APIError", err)
	}
	want := []string{"POST /v1/users/login", "GET /v1/settings/application", "POST /v1/users/login", "GET /v1/settings/application"}
	mu.Lock()
	defer mu.Unlock()
	if !equal(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := client.New(url, password, nil)
	_, err := c.Get(context.Background())
	var ae *client.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("err %v, want a transport error", err)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("error %q does not name %s", err, url)
	}
}

func TestBareHostPort(t *testing.T) {
	s := newService(t)
	c := client.New(strings.TrimPrefix(s.srv.URL, "http://"), password, nil)
	if _, err := c.Get(context.Background()); err != nil {
		t.Fatalf("Get via host:port: %v", err)
	}
}
