package webhook

import (
	"bytes"
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
