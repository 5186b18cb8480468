package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/traffic/load"
)

// The traffic scenarios of testdata/traffic: each states what it shows.
func loadTraffic(t testing.TB, name string) *scenarios.Scenario {
	t.Helper()
	sc, err := scenarios.LoadFile("testdata/traffic/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// runTraffic runs sc and returns its --json bytes, its outcome and the
// target (to read its traffic).
func runTraffic(t testing.TB, sc *scenarios.Scenario, seed uint64, sab Sabotage) ([]byte, scenarios.Outcome, *Target) {
	t.Helper()
	var buf bytes.Buffer
	tg := New(Config{Seed: seed, Sabotage: sab})
	out, err := scenarios.Run(context.Background(), tg, sc, scenarios.Options{Seed: seed, Epsilon: DefaultEpsilon, Events: &buf})
	if err != nil {
		t.Fatalf("%s seed %d: %v", sc.Name, seed, err)
	}
	return buf.Bytes(), out, tg
}

// violated lists the invariants out broke.
func violated(out scenarios.Outcome) []string {
	var vs []string
	for _, v := range out.Violations {
		vs = append(vs, v.Invariant)
	}
	return vs
}

// TestTrafficSameBytesTwice: a workload keeps the run deterministic.
func TestTrafficSameBytesTwice(t *testing.T) {
	sc := loadTraffic(t, "crash-under-load")
	for _, seed := range []uint64{1, 2} {
		a, _, _ := runTraffic(t, sc, seed, Sabotage{})
		b, _, _ := runTraffic(t, sc, seed, Sabotage{})
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: two runs printed different bytes:\n%s", seed, firstDiff(a, b))
		}
		if !bytes.Contains(a, []byte(`"event":"traffic"`)) {
			t.Fatalf("seed %d: no traffic lines", seed)
		}
	}
}

// TestCrashUnderLoad: the clients' error window after a crash closes
// within rule 1, next to the failover; every 201 reached the gateway
// once; nothing is lost with callback_persist.
func TestCrashUnderLoad(t *testing.T) {
	sc := loadTraffic(t, "crash-under-load")
	for _, seed := range []uint64{1, 2, 3} {
		_, out, tg := runTraffic(t, sc, seed, Sabotage{})
		if !out.OK {
			t.Fatalf("seed %d: %+v %+v %s", seed, out.Expectations, out.Violations, out.Aborted)
		}
		var failover, errs *scenarios.ExpectResult
		for i := range out.Expectations {
			switch e := &out.Expectations[i]; e.What {
			case "failover":
				failover = e
			case "errors":
				errs = e
			}
		}
		if failover == nil || errs == nil || errs.Measured == nil || failover.Measured == nil {
			t.Fatalf("seed %d: expectations %+v", seed, out.Expectations)
		}
		// The clients see 1018 for as long as the shard is unserved: the
		// window ends with the failover, give or take a retry's wait.
		if d := *errs.Measured - *failover.Measured; d < -50*time.Millisecond || d > 2500*time.Millisecond {
			t.Errorf("seed %d: last client error %v after the crash, failover after %v", seed, *errs.Measured, *failover.Measured)
		}
		tr := tg.Traffic()
		if len(tr.Acked) < 2000 || len(tr.Refused) == 0 {
			t.Errorf("seed %d: %d acked, %d refused: want a load with errors in the window", seed, len(tr.Acked), len(tr.Refused))
		}
		for _, r := range tr.Refused {
			if r.Code != "1018" {
				t.Fatalf("seed %d: client error %+v, want only 1018", seed, r)
			}
		}
		// The seconds account for every message: started at the rate, every
		// 201 and every error answer once, each in the second it came in.
		sent, ok, nerr := 0, 0, 0
		for i, s := range tr.Seconds {
			if want := tg.started.Add(time.Duration(i+1) * time.Second); !s.End.Equal(want) {
				t.Fatalf("seed %d: second %d ends at %v, want %v", seed, i+1, s.End, want)
			}
			sent, ok, nerr = sent+s.Sent, ok+s.OK, nerr+s.Errors["1018"]
			if i > 0 && i < len(tr.Seconds)-1 && s.Sent != 200 {
				t.Errorf("seed %d: second %d started %d messages, want 200", seed, i+1, s.Sent)
			}
		}
		if ok != len(tr.Acked) || nerr != len(tr.Refused) || sent < ok {
			t.Errorf("seed %d: seconds count %d sent, %d ok, %d errors; the run %d acked, %d refused", seed, sent, ok, nerr, len(tr.Acked), len(tr.Refused))
		}
	}
}

// TestCallbackPersist: the owner crashes while the receiver is down.
// With callback_persist its pending callbacks are in the store and the
// shard's next owner delivers them (0 lost); without, they are gone with
// the process (lost > 0, a figure, not a violation).
func TestCallbackPersist(t *testing.T) {
	for _, c := range []struct {
		persist bool
		lost    func(int) bool
	}{
		{true, func(n int) bool { return n == 0 }},
		{false, func(n int) bool { return n > 0 }},
	} {
		sc := loadTraffic(t, "crash-receiver-down")
		sc.Settings = setting(t, sc.Settings, "callback_persist", c.persist)
		for _, seed := range []uint64{1, 2} {
			b, out, _ := runTraffic(t, sc, seed, Sabotage{})
			lost := callbacksLost(t, b)
			if !c.lost(lost) {
				t.Errorf("callback_persist %v seed %d: %d callbacks lost", c.persist, seed, lost)
			}
			if len(out.Violations) > 0 {
				t.Errorf("callback_persist %v seed %d: %+v", c.persist, seed, out.Violations)
			}
		}
	}
}

// TestCallbackPersistSabotaged: a poster that ignores callback_persist
// loses callbacks in a crash, and callbacks_delivered says so.
func TestCallbackPersistSabotaged(t *testing.T) {
	sc := loadTraffic(t, "crash-receiver-down")
	_, out, _ := runTraffic(t, sc, 1, Sabotage{NoCallbackPersist: true})
	if !strings.Contains(strings.Join(violated(out), " "), "callbacks_delivered") {
		t.Fatalf("violations %v, want callbacks_delivered", violated(out))
	}
}

// TestReceiverDownBackoff: a receiver down for a minute sees every
// callback retried by the seed's rule (callback_backoff_delay_ms × n),
// judged by the backoff invariant, and every one delivered after.
func TestReceiverDownBackoff(t *testing.T) {
	sc := loadTraffic(t, "receiver-down")
	_, out, tg := runTraffic(t, sc, 1, Sabotage{})
	if !out.OK {
		t.Fatalf("%+v %+v %s", out.Expectations, out.Violations, out.Aborted)
	}
	// One callback's attempts: 3 s, 6 s, 9 s, … apart (here 1 s × n).
	tr := tg.Traffic()
	first := tr.Callbacks[0]
	var at []time.Time
	for _, c := range tr.Callbacks {
		if c.ID == first.ID && c.Coreapp == first.Coreapp {
			at = append(at, c.At)
		}
	}
	if len(at) < 5 {
		t.Fatalf("callback %s: %d attempts, want the retries of a minute down", first.ID, len(at))
	}
	for n := 1; n < len(at); n++ {
		got, want := at[n].Sub(at[n-1]), time.Duration(n)*time.Second
		if got < want || got > want+50*time.Millisecond {
			t.Errorf("attempt %d came %v after attempt %d, want %v", n+1, got, n, want)
		}
	}
}

// TestBackoffSabotaged: a poster that ignores the backoff is caught by
// the backoff invariant.
func TestBackoffSabotaged(t *testing.T) {
	sc := loadTraffic(t, "receiver-down")
	_, out, _ := runTraffic(t, sc, 1, Sabotage{NoCallbackBackoff: true})
	if !strings.Contains(strings.Join(violated(out), " "), "backoff") {
		t.Fatalf("violations %v, want backoff", violated(out))
	}
}

// setting returns the settings body with key set to v.
func setting(t *testing.T, body json.RawMessage, key string, v any) json.RawMessage {
	t.Helper()
	m := map[string]any{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
	}
	m[key] = v
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// callbacksLost reads the callbacks line of a run's --json.
func callbacksLost(t *testing.T, out []byte) int {
	t.Helper()
	for _, line := range bytes.Split(out, []byte("\n")) {
		var ev struct {
			Event string `json:"event"`
			Lost  *int   `json:"lost"`
		}
		if json.Unmarshal(line, &ev) == nil && ev.Event == "callbacks" && ev.Lost != nil {
			return *ev.Lost
		}
	}
	t.Fatalf("no callbacks line in:\n%s", out)
	return 0
}

// TestPausedPosterNotBlamed: a poster paused while its retries fall due
// sends them late; the backoff invariant excuses the stall.
func TestPausedPosterNotBlamed(t *testing.T) {
	sc := loadTraffic(t, "pause-backoff")
	for _, seed := range []uint64{1, 2} {
		_, out, tg := runTraffic(t, sc, seed, Sabotage{})
		if !out.OK {
			t.Errorf("seed %d: %+v %+v", seed, out.Expectations, out.Violations)
		}
		if len(tg.Traffic().Callbacks) == 0 {
			t.Errorf("seed %d: no callbacks", seed)
		}
	}
}

// TestLiveWebhookSettings: webhooks.message.* applies live (no read
// callback for a message accepted after the change reached the
// coreapps), callback_persist and webhooks.max_concurrent_requests only
// after a restart.
func TestLiveWebhookSettings(t *testing.T) {
	sc := loadTraffic(t, "live-webhook-settings")
	_, out, tg := runTraffic(t, sc, 1, Sabotage{})
	if !out.OK {
		t.Fatalf("%+v %+v", out.Expectations, out.Violations)
	}
	set := tg.started.Add(2 * time.Second)
	reads, before := 0, 0
	for _, c := range tg.Traffic().Callbacks {
		if c.Status != "read" {
			continue
		}
		// A message's read is due a second after it was accepted.
		if c.At.After(set.Add(time.Second + 100*time.Millisecond)) {
			reads++
		} else {
			before++
		}
	}
	if reads > 0 || before == 0 {
		t.Errorf("%d read callbacks after webhooks.message.read went off, %d before: want none after, some before", reads, before)
	}
	for _, c := range tg.w.coreapps {
		h := c.tr.hooks
		restarted := c.p.run > 0
		if h.persist != restarted {
			t.Errorf("%s (run %d): callback_persist %v, want %v: restart-required", c.p.id, c.p.run, h.persist, restarted)
		}
	}
}

// TestStopUnderLoad: a graceful stop (rule 5) under load hands the shard
// over before any client sees an error.
func TestStopUnderLoad(t *testing.T) {
	sc := loadTraffic(t, "stop-under-load")
	for _, seed := range []uint64{1, 2} {
		_, out, tg := runTraffic(t, sc, seed, Sabotage{})
		if !out.OK {
			t.Fatalf("seed %d: %+v %+v", seed, out.Expectations, out.Violations)
		}
		if n := len(tg.Traffic().Refused); n > 0 {
			t.Errorf("seed %d: %d client errors, want none", seed, n)
		}
		// The statuses the stopping coreapp took during its handover are
		// gone with it: the drain does not wait for them (the load stops
		// after 6 s; a drain waits at least 3 s, at most 60).
		if out.Duration > 15*time.Second {
			t.Errorf("seed %d: the run lasted %v: the drain waited for callbacks lost in the stop", seed, out.Duration)
		}
	}
}

// TestClientMirrorsLoad: the simulated clients wait and measure as
// traffic/load does: 100 ms doubling to a 2 s cap, nearest-rank
// percentiles.
func TestClientMirrorsLoad(t *testing.T) {
	r := load.DefaultRetry()
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, retryWait(r, n))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 2 * time.Second, 2 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	lat := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p50, p99 := percentile(lat, 50), percentile(lat, 99); p50 != 5 || p99 != 10 {
		t.Errorf("p50 %v p99 %v of 1..10, want 5 and 10", p50, p99)
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing, want 0")
	}
}
