package webhook

import (
	"bytes"
	"context"
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
		if len(rs) == 2 && rs[0].Answered.Sub(rs[0].At) != 200*time.Millisecond {
			t.Errorf("answered %v after it arrived, want the 200ms latency", rs[0].Answered.Sub(rs[0].At))
		}
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

// A poster that hangs up before the answer (its timeout is shorter than
// the latency) is recorded as not answered: code 0.
func TestSinkRecordsAPosterThatHungUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Config{Latency: 15 * time.Second}, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/cb", strings.NewReader(delivered))
		s.ServeHTTP(httptest.NewRecorder(), r)
		rs := s.Records()
		if len(rs) != 1 || rs[0].Code != 0 || rs[0].Answered.Sub(rs[0].At) != 10*time.Second {
			t.Fatalf("records %+v, want one with code 0 ended at the poster's 10 s", rs)
		}
	})
}

// Records come in the order the callbacks arrived, even when a later one
// ends first (its poster hung up).
func TestSinkRecordsInOrderOfArrival(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Config{Latency: 10 * time.Second}, nil)
		postAt := func(id string, patience time.Duration) {
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			body := strings.Replace(delivered, `"m1"`, `"`+id+`"`, 1)
			s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, http.MethodPost, "/cb", strings.NewReader(body)))
		}
		done := make(chan struct{})
		go func() { defer close(done); postAt("first", time.Minute) }() // answered at 10 s
		time.Sleep(time.Second)
		postAt("second", time.Second) // hung up at 2 s
		<-done
		var got []string
		for _, r := range s.Records() {
			got = append(got, fmt.Sprintf("%s:%d", r.ID, r.Code))
		}
		if want := "first:200 second:0"; strings.Join(got, " ") != want {
			t.Fatalf("records %v, want %s", got, want)
		}
	})
}

func TestSetLatencyAndRecordsFrom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Config{}, nil)
		post := func(id string) {
			req := httptest.NewRequest(http.MethodPost, "/cb", strings.NewReader(`{"statuses":[{"id":"`+id+`","recipient_id":"1","status":"sent"}]}`))
			s.ServeHTTP(httptest.NewRecorder(), req)
		}
		post("m1")
		if err := s.SetLatency(300 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		post("m2")
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Errorf("answered after %v, want the new latency, 300ms", d)
		}
		if got := s.RecordsFrom(1); len(got) != 1 || got[0].ID != "m2" {
			t.Errorf("RecordsFrom(1) = %+v, want m2 only", got)
		}
		if got := s.RecordsFrom(2); got != nil {
			t.Errorf("RecordsFrom(2) = %+v, want none", got)
		}
		if err := s.SetLatency(-time.Second); err == nil {
			t.Error("SetLatency(-1s) accepted")
		}
	})
}
