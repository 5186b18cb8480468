package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mcsim/mcsim/settings/client"
)

// frontDoor is a fake front door behind an http.RoundTripper: it answers
// the login, and each POST /v1/messages with answer(attempt time since the
// start, the recipient's attempt number), after latency. Run inside a
// synctest bubble, so its time is virtual.
type frontDoor struct {
	start   time.Time
	latency time.Duration
	answer  func(t time.Duration, to string, attempt int) (status int, body string, err error)

	mu       sync.Mutex
	attempts map[string][]time.Duration // by recipient, times since start
	n        int
}

func (f *frontDoor) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == client.LoginPath {
		return reply(200, `{"users":[{"token":"t","expires_after":"2000-01-08 00:00:00+00:00"}],"meta":{}}`), nil
	}
	b, _ := io.ReadAll(req.Body)
	_, to, _ := strings.Cut(string(b), `"to":"`)
	to, _, _ = strings.Cut(to, `"`)
	t := time.Since(f.start)
	f.mu.Lock()
	f.attempts[to] = append(f.attempts[to], t)
	attempt := len(f.attempts[to])
	f.n++
	id := f.n
	f.mu.Unlock()
	// As a real transport, it gives up when the request is cancelled.
	select {
	case <-time.After(f.latency):
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	if f.answer == nil {
		return reply(201, fmt.Sprintf(`{"messages":[{"id":"m%d"}],"meta":{}}`, id)), nil
	}
	status, body, err := f.answer(t, to, attempt)
	if err != nil {
		return nil, err
	}
	if status == 201 && body == "" {
		body = fmt.Sprintf(`{"messages":[{"id":"m%d"}],"meta":{}}`, id)
	}
	return reply(status, body), nil
}

func reply(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{}}
}

const notPrimary = `{"errors":[{"code":1018,"title":"Not Primary Coreapp","details":"shard 0 of 1 has no owner"}],"meta":{}}`

func newFrontDoor() *frontDoor {
	return &frontDoor{start: time.Now(), attempts: map[string][]time.Duration{}}
}

func (f *frontDoor) client() *client.Client {
	return client.New("http://frontdoor.test", "secret", &http.Client{Transport: f})
}

// runLoad runs cfg against f and collects the per-second reports.
func runLoad(t *testing.T, f *frontDoor, cfg Config) (Summary, []Second) {
	t.Helper()
	cfg.Client = f.client()
	var secs []Second
	sum, err := Run(t.Context(), cfg, func(s Second) { secs = append(secs, s) })
	if err != nil {
		t.Fatal(err)
	}
	return sum, secs
}

func TestRateIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFrontDoor()
		// Answers take longer than the interval: an open loop does not wait
		// for them.
		f.latency = 30 * time.Millisecond
		sum, secs := runLoad(t, f, Config{Rate: 200, Recipients: 10000, Duration: 5 * time.Second, Seed: 1, RecordAcks: true})
		if sum.Sent != 1000 || sum.OK != 1000 || len(sum.Acks) != 1000 {
			t.Fatalf("sent %d ok %d acks %d, want 1000 each", sum.Sent, sum.OK, len(sum.Acks))
		}
		if len(secs) < 5 {
			t.Fatalf("%d seconds reported, want at least 5", len(secs))
		}
		for _, s := range secs[:5] {
			if s.Sent != 200 {
				t.Errorf("second %d: sent %d, want 200", s.T, s.Sent)
			}
		}
		var times []time.Duration
		for _, ts := range f.attempts {
			times = append(times, ts...)
		}
		if len(times) != 1000 {
			t.Fatalf("%d attempts reached the front door, want 1000", len(times))
		}
		// Every start is on the 5 ms grid.
		for _, ts := range times {
			if ts%(5*time.Millisecond) != 0 {
				t.Errorf("a request started at %v, off the 5 ms grid", ts)
				break
			}
		}
		if sum.P50 != 30*time.Millisecond || sum.Max != 30*time.Millisecond {
			t.Errorf("latency p50 %v max %v, want 30ms", sum.P50, sum.Max)
		}
		if sum.Throughput < 199 || sum.Throughput > 200 {
			t.Errorf("throughput %.1f/s, want about 200", sum.Throughput)
		}
	})
}

func TestNotPrimaryIsRetriedWithTheStatedDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFrontDoor()
		f.answer = func(_ time.Duration, _ string, attempt int) (int, string, error) {
			switch {
			case attempt <= 3:
				return 503, notPrimary, nil
			case attempt == 4:
				return 0, "", errors.New("connection refused")
			}
			return 201, "", nil
		}
		var mu sync.Mutex
		var told []string
		sum, _ := runLoad(t, f, Config{Rate: 1, Recipients: 1, Duration: time.Second, Seed: 7, OnAnswer: func(a Answer) {
			mu.Lock()
			defer mu.Unlock()
			told = append(told, fmt.Sprintf("%s%s final=%v", a.Code, a.ID, a.Final))
		}})
		if got, want := strings.Join(told, ", "), "1018 final=false, 1018 final=false, 1018 final=false, network final=false, m5 final=true"; got != want {
			t.Errorf("OnAnswer told %s, want %s", got, want)
		}
		if sum.OK != 1 || sum.Retries != 4 || sum.Answers["1018"] != 3 || sum.Answers["network"] != 1 || len(sum.Errors) != 0 {
			t.Fatalf("summary %+v, want 1 ok after 4 retries (three 1018, one network)", sum)
		}
		ts := f.attempts[Recipient(0, 1)]
		nominal := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
		for i, want := range nominal {
			got := ts[i+1] - ts[i]
			if got < want*8/10 || got >= want*12/10 {
				t.Errorf("wait %d: %v, want %v ±20%%", i+1, got, want)
			}
		}
		if sum.Max != ts[4]-ts[0] {
			t.Errorf("latency %v, want first attempt to final answer %v", sum.Max, ts[4]-ts[0])
		}
	})
}

func TestGiveUpAfter30s(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFrontDoor()
		f.answer = func(time.Duration, string, int) (int, string, error) { return 503, notPrimary, nil }
		sum, secs := runLoad(t, f, Config{Rate: 1, Recipients: 1, Duration: time.Second, Seed: 3})
		if sum.OK != 0 || sum.Errors["1018"] != 1 {
			t.Fatalf("summary %+v, want one final 1018", sum)
		}
		finals := 0
		for _, s := range secs {
			if s.Final["1018"] > 0 {
				finals += s.Final["1018"]
				if s.T < 29 || s.T > 31 {
					t.Errorf("the give-up counted in second %d, want about 30", s.T)
				}
			}
		}
		if finals != 1 {
			t.Errorf("%d final errors over the seconds, want 1", finals)
		}
		ts := f.attempts[Recipient(0, 1)]
		last := ts[len(ts)-1]
		if last > 30*time.Second || last < 28*time.Second {
			t.Errorf("last attempt at %v, want the last before 30 s", last)
		}
		for i := 6; i < len(ts); i++ {
			if d := ts[i] - ts[i-1]; d < 1600*time.Millisecond || d >= 2400*time.Millisecond {
				t.Errorf("wait %d: %v, want the 2 s cap ±20%%", i, d)
			}
		}
		if sum.Retries != len(ts)-1 {
			t.Errorf("retries %d, want %d", sum.Retries, len(ts)-1)
		}
	})
}

func TestOtherErrorsAreNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFrontDoor()
		f.answer = func(time.Duration, string, int) (int, string, error) {
			return 400, `{"errors":[{"code":1009,"title":"x","details":"to: bad"}],"meta":{}}`, nil
		}
		sum, _ := runLoad(t, f, Config{Rate: 10, Recipients: 5, Duration: time.Second, Seed: 3})
		if sum.Errors["1009"] != 10 || sum.Retries != 0 || f.n != 10 {
			t.Fatalf("summary %+v after %d attempts, want 10 final 1009 and no retry", sum, f.n)
		}
	})
}

func TestAFailoverShowsAsADip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFrontDoor()
		f.answer = func(at time.Duration, _ string, _ int) (int, string, error) {
			if at >= 3*time.Second && at < 5*time.Second {
				return 503, notPrimary, nil
			}
			return 201, "", nil
		}
		sum, secs := runLoad(t, f, Config{Rate: 100, Recipients: 100, Duration: 8 * time.Second, Seed: 5})
		var lines []string
		for _, s := range secs {
			lines = append(lines, fmt.Sprintf("t=%d ok=%d 1018=%d", s.T, s.OK, s.Errors["1018"]))
		}
		got := strings.Join(lines, "\n")
		for _, s := range secs {
			switch {
			case s.T <= 3 || (s.T >= 7 && s.T <= 8):
				if s.Errors["1018"] != 0 || s.OK < 100 {
					t.Errorf("second %d should be clean:\n%s", s.T, got)
				}
			case s.T == 4 || s.T == 5:
				if s.Errors["1018"] == 0 || s.OK != 0 {
					t.Errorf("second %d should be the dip (no ok, 1018s):\n%s", s.T, got)
				}
			}
		}
		if sum.LongestErrorStretch != 2 || sum.LongestErrorEnd != 5 {
			t.Errorf("longest error stretch %d ending at %d, want 2 ending at 5:\n%s", sum.LongestErrorStretch, sum.LongestErrorEnd, got)
		}
		if sum.OK != 800 || len(sum.Errors) != 0 {
			t.Errorf("ok %d errors %v: every message should get through after retrying", sum.OK, sum.Errors)
		}
	})
}

func TestRecipientsAreFixedAndSeeded(t *testing.T) {
	if got := Recipient(7, 10000); got != "16315550007" {
		t.Errorf("Recipient(7, 10000) = %s", got)
	}
	pick := func(seed uint64) map[string]int {
		var out map[string]int
		synctest.Test(t, func(t *testing.T) {
			f := newFrontDoor()
			runLoad(t, f, Config{Rate: 50, Recipients: 10, Duration: time.Second, Seed: seed})
			out = map[string]int{}
			for to, ts := range f.attempts {
				out[to] = len(ts)
			}
		})
		return out
	}
	a, b, c := pick(1), pick(1), pick(2)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same seed, different recipients: %v vs %v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Errorf("seeds 1 and 2 picked the same recipients: %v", a)
	}
	if len(a) > 10 {
		t.Errorf("%d recipients, want at most 10", len(a))
	}
}

func TestOutstandingIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFrontDoor()
		f.latency = time.Second
		sum, _ := runLoad(t, f, Config{Rate: 100, Recipients: 10, Duration: time.Second, MaxOutstanding: 10, Seed: 1})
		if sum.Sent+sum.Skipped != 100 || sum.Sent > 20 || sum.Skipped == 0 {
			t.Errorf("sent %d skipped %d, want at most 10 in flight of 100 starts", sum.Sent, sum.Skipped)
		}
	})
}

func TestUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := client.New("http://frontdoor.test", "secret", &http.Client{Transport: roundTripperFunc(func(*http.Request) (*http.Response, error) {
			return nil, errors.New("connection refused")
		})})
		_, err := Run(context.Background(), Config{Client: c, Rate: 1, Recipients: 1, Duration: time.Second}, nil)
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("err %v, want ErrUnreachable", err)
		}
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestValidateNamesTheField(t *testing.T) {
	err := Config{Rate: 0, Recipients: 0, Duration: -1}.Validate()
	for _, f := range []string{"Client", "Rate", "Recipients", "Duration"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate: %v, want it to name %s", err, f)
		}
	}
}

// The JSON line has exactly SCENARIOS.md's fields.
func TestSecondJSONShape(t *testing.T) {
	var b strings.Builder
	err := WriteSecond(&b, Second{T: 3, Sent: 200, OK: 198, Errors: map[string]int{"1018": 2}, P50: 3.1, P99: 12, Retries: 2}, true)
	want := `{"event":"traffic","t":3,"sent":200,"ok":198,"errors":{"1018":2},"p50_ms":3.1,"p99_ms":12}` + "\n"
	if err != nil || b.String() != want {
		t.Errorf("got %q (%v), want %q", b.String(), err, want)
	}
	b.Reset()
	if err := WriteSecond(&b, Second{T: 1, Errors: map[string]int{}}, true); err != nil || !strings.Contains(b.String(), `"errors":{}`) {
		t.Errorf("a second without errors: %q, want an empty errors object", b.String())
	}
}

// Cancelling the run (Ctrl-C) ends the messages in progress at once,
// counted as cancelled, not as errors.
func TestCancelEndsMessagesInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFrontDoor()
		f.answer = func(time.Duration, string, int) (int, string, error) { return 503, notPrimary, nil }
		// Some are waiting to retry at the cancel, some wait for an answer.
		f.latency = 150 * time.Millisecond
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(2450*time.Millisecond, cancel)
		start := time.Now()
		sum, err := Run(ctx, Config{Client: f.client(), Rate: 10, Recipients: 10, Seed: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 2450*time.Millisecond {
			t.Errorf("Run returned after %v, want at the cancel (2.45s)", took)
		}
		if sum.Sent != 25 || sum.Cancelled != 25 || len(sum.Errors) != 0 || sum.Answers["network"] != 0 {
			t.Errorf("sent %d cancelled %d errors %v, want 25 sent and cancelled, no error (answers %v)", sum.Sent, sum.Cancelled, sum.Errors, sum.Answers)
		}
	})
}

// Closing Stop ends the starts; the messages in progress finish.
func TestStopLetsMessagesInProgressFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFrontDoor()
		f.latency = 300 * time.Millisecond
		stop := make(chan struct{})
		time.AfterFunc(1050*time.Millisecond, func() { close(stop) })
		start := time.Now()
		sum, _ := runLoad(t, f, Config{Rate: 10, Recipients: 10, Duration: 5 * time.Second, Seed: 1, Stop: stop})
		if sum.Sent != 11 || sum.OK != 11 || sum.Cancelled != 0 {
			t.Errorf("sent %d ok %d cancelled %d, want 11 started before the stop and all answered", sum.Sent, sum.OK, sum.Cancelled)
		}
		if took := time.Since(start); took != 1300*time.Millisecond {
			t.Errorf("Run returned after %v, want when the last answer came (1.3s)", took)
		}
	})
}
