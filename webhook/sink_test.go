package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func post(s *Sink, query, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/cb"+query, strings.NewReader(body))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

const delivered = `{"statuses":[{"id":"m1","recipient_id":"16315551234","status":"delivered","timestamp":"1764623400"}]}`

// Each post of the same status of the same message is its next attempt;
// the query string (?auth=…) is recorded as posted; the down window
// answers 503, then 200; the latency is waited before the answer.
func TestSinkRecordsAttemptsAndMisbehaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		s := New(Config{DownFor: 20 * time.Second, Latency: 200 * time.Millisecond}, &out)
		start := time.Now()
		if w := post(s, "?auth=secret", delivered); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("while down: %d, want 503", w.Code)
		}
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Fatalf("answered after %v, want the 200ms latency", d)
		}
		time.Sleep(20 * time.Second)
		if w := post(s, "?auth=secret", delivered); w.Code != http.StatusOK {
			t.Fatalf("after the down window: %d, want 200", w.Code)
		}
		rs := s.Records()
		if len(rs) != 2 || rs[0].Attempt != 1 || rs[1].Attempt != 2 || rs[0].Code != 503 || rs[1].Code != 200 ||
			rs[1].Query != "auth=secret" || rs[1].ID != "m1" || rs[1].Status != "delivered" {
			t.Fatalf("records %+v", rs)
		}
		if got := strings.Count(out.String(), "\n"); got != 2 || !strings.Contains(out.String(), `"attempt":2`) {
			t.Fatalf("JSON lines:\n%s", out.String())
		}
	})
}

// --fail N% fails about that share, drawn from the seed: the same seed
// fails the same callbacks.
func TestSinkFailsASeededShare(t *testing.T) {
	codes := func(seed uint64) string {
		s := New(Config{FailPercent: 30, Seed: seed}, nil)
		var b strings.Builder
		for range 1000 {
			if post(s, "", delivered).Code == http.StatusOK {
				b.WriteByte('.')
			} else {
				b.WriteByte('x')
			}
		}
		return b.String()
	}
	a, b := codes(7), codes(7)
	if a != b {
		t.Fatal("the same seed failed different callbacks")
	}
	if n := strings.Count(a, "x"); n < 250 || n > 350 {
		t.Fatalf("%d of 1000 failed, want about 300", n)
	}
}

// What is not a statuses callback is refused, and not recorded.
func TestSinkRefusesWhatIsNotACallback(t *testing.T) {
	s := New(Config{}, nil)
	if w := post(s, "", `{"nope":1}`); w.Code != http.StatusBadRequest {
		t.Errorf("no statuses: %d, want 400", w.Code)
	}
	r := httptest.NewRequest(http.MethodGet, "/cb", nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", w.Code)
	}
	if len(s.Records()) != 0 {
		t.Errorf("recorded %v", s.Records())
	}
	for _, c := range []Config{{FailPercent: 101}, {Latency: -1}, {DownFor: -time.Second}} {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
	}
}

// The coreapp's headers are recorded per callback: its id and its own
// attempt number, next to the sink's count of posts.
func TestSinkRecordsTheCoreappHeaders(t *testing.T) {
	var out bytes.Buffer
	s := New(Config{}, &out)
	for _, h := range []struct{ coreapp, attempt string }{{"coreapp-1", "1"}, {"coreapp-1", "2"}, {"coreapp-2", "1"}} {
		r := httptest.NewRequest(http.MethodPost, "/cb", strings.NewReader(delivered))
		r.Header.Set(HeaderCoreapp, h.coreapp)
		r.Header.Set(HeaderAttempt, h.attempt)
		s.ServeHTTP(httptest.NewRecorder(), r)
	}
	var got []string
	for _, r := range s.Records() {
		got = append(got, fmt.Sprintf("%s#%d attempt=%d", r.Coreapp, r.CoreappAttempt, r.Attempt))
	}
	if want := "coreapp-1#1 attempt=1,coreapp-1#2 attempt=2,coreapp-2#1 attempt=3"; strings.Join(got, ",") != want {
		t.Fatalf("records %q, want %q", got, want)
	}
	line := strings.SplitN(out.String(), "\n", 2)[0]
	for _, field := range []string{`"time":`, `"id":"m1"`, `"status":"delivered"`, `"attempt":1`, `"coreapp":"coreapp-1"`, `"coreapp_attempt":1`, `"code":200`} {
		if !strings.Contains(line, field) {
			t.Errorf("JSON line %s has no %s", line, field)
		}
	}
	// GET /records serves the same lines.
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/records", nil))
	if w.Code != http.StatusOK || strings.Count(w.Body.String(), "\n") != 3 || !strings.Contains(w.Body.String(), `"coreapp":"coreapp-2"`) {
		t.Fatalf("GET /records: %d\n%s", w.Code, w.Body.String())
	}
}

// A scenario turns the sink down and failing while it runs.
func TestSinkSetDownAndSetFail(t *testing.T) {
	s := New(Config{}, nil)
	var codes []int
	code := func() { codes = append(codes, post(s, "", delivered).Code) }
	code()
	s.SetDown(true)
	code()
	s.SetDown(false)
	code()
	if err := s.SetFail(100); err != nil {
		t.Fatal(err)
	}
	code()
	if err := s.SetFail(0); err != nil {
		t.Fatal(err)
	}
	code()
	if got, want := fmt.Sprint(codes), "[200 503 200 500 200]"; got != want {
		t.Fatalf("answers %s, want %s", got, want)
	}
	if err := s.SetFail(101); err == nil || !strings.Contains(err.Error(), "fail") {
		t.Fatalf("SetFail(101) = %v, want an error naming fail", err)
	}
}
