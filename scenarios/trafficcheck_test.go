package scenarios

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var tc0 = time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)

// tcAt is tc0 plus a duration written as in the tables ("3.2s").
func tcAt(d string) time.Time {
	v, err := time.ParseDuration(d)
	if err != nil {
		panic(err)
	}
	return tc0.Add(v)
}

// cb is a callback request at the receiver: arrived at a, answered after
// 10 ms with code (0: never answered).
func cb(id, coreapp string, attempt int, a string, code int) CallbackSeen {
	c := CallbackSeen{At: tcAt(a), ID: id, Status: id[strings.Index(id, "/")+1:], Attempt: attempt, Coreapp: coreapp, Code: code}
	if code != 0 {
		c.Answered = c.At.Add(10 * time.Millisecond)
	}
	return c
}

func timeline(patch string) []callbackSettings {
	return []callbackSettings{defaultCallbackSettings(tc0).withPatch(json.RawMessage(patch), tc0)}
}

func invariantsOf(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Invariant+": "+v.Details)
	}
	return out
}

func TestBackoffCheck(t *testing.T) {
	const eps = 50 * time.Millisecond
	tests := []struct {
		name  string
		patch string
		cbs   []CallbackSeen
		want  string // "" none; else a substring of the one violation
	}{
		{"the seed's rule: 3 s, 6 s, 9 s after each failure", `{}`, []CallbackSeen{
			cb("m1/sent", "coreapp-1", 1, "0s", 503),
			cb("m1/sent", "coreapp-1", 2, "3.01s", 503),
			cb("m1/sent", "coreapp-1", 3, "9.02s", 503),
			cb("m1/sent", "coreapp-1", 4, "18.03s", 200),
		}, ""},
		{"capped at the max, forever", `{"callback_backoff_delay_ms": 1000, "max_callback_backoff_delay_ms": 2500}`, []CallbackSeen{
			cb("m1/read", "coreapp-1", 1, "0s", 500),
			cb("m1/read", "coreapp-1", 2, "1.01s", 500),
			cb("m1/read", "coreapp-1", 3, "3.02s", 500),
			cb("m1/read", "coreapp-1", 4, "5.53s", 500),
			cb("m1/read", "coreapp-1", 5, "8.04s", 200),
		}, ""},
		{"a timeout is a failure 10 s after the post", `{}`, []CallbackSeen{
			cb("m1/sent", "coreapp-1", 1, "0s", 0),
			cb("m1/sent", "coreapp-1", 2, "13s", 200),
		}, ""},
		{"a shard's next owner starts over", `{}`, []CallbackSeen{
			cb("m1/sent", "coreapp-1", 1, "0s", 503),
			cb("m1/sent", "coreapp-2", 1, "0.5s", 503),
			cb("m1/sent", "coreapp-2", 2, "3.51s", 200),
		}, ""},
		{"a constant delay is caught", `{}`, []CallbackSeen{
			cb("m1/sent", "coreapp-1", 1, "0s", 503),
			cb("m1/sent", "coreapp-1", 2, "3.01s", 503),
			cb("m1/sent", "coreapp-1", 3, "6.02s", 200),
		}, "attempt 3 came 3s after attempt 2 failed, want 6s"},
		{"an early retry is caught", `{}`, []CallbackSeen{
			cb("m1/sent", "coreapp-1", 1, "0s", 503),
			cb("m1/sent", "coreapp-1", 2, "1s", 200),
		}, "early"},
		{"no cap is caught", `{"callback_backoff_delay_ms": 1000, "max_callback_backoff_delay_ms": 1500}`, []CallbackSeen{
			cb("m1/sent", "coreapp-1", 1, "0s", 503),
			cb("m1/sent", "coreapp-1", 2, "1.01s", 503),
			cb("m1/sent", "coreapp-1", 3, "3.02s", 200),
		}, "late, with free slots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkBackoff(&TrafficSeen{Callbacks: tt.cbs}, timeline(tt.patch), eps, nil)
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("violations %q, want none", invariantsOf(got))
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0].Details, tt.want)):
				t.Errorf("violations %q, want one containing %q", invariantsOf(got), tt.want)
			}
		})
	}
}

func TestBackoffLateRetryExcusedOnlyAtTheCap(t *testing.T) {
	// coreapp-1 has max_concurrent_requests (6) in flight when m1's retry
	// falls due: it waits its turn, which is no violation.
	cbs := []CallbackSeen{cb("m1/sent", "coreapp-1", 1, "0s", 503)}
	for i := range 6 {
		c := cb("x"+string(rune('a'+i))+"/sent", "coreapp-1", 1, "2.9s", 200)
		c.Answered = tcAt("4s")
		cbs = append(cbs, c)
	}
	cbs = append(cbs, cb("m1/sent", "coreapp-1", 2, "4s", 200))
	if got := checkBackoff(&TrafficSeen{Callbacks: cbs}, timeline(`{}`), 50*time.Millisecond, nil); len(got) > 0 {
		t.Errorf("violations %q, want none: the coreapp was at its cap", invariantsOf(got))
	}
	// Five in flight at the due time, but the sixth slot taken again a
	// moment later (a poster working through a backlog: the receiver sees
	// a slot free between one answer and the next request): the cap was
	// reached during the wait, the late retry is excused.
	busy := slices.Clone(cbs)
	busy[6].At, busy[6].Answered = tcAt("2.8s"), tcAt("2.9s")
	next := cb("xz/sent", "coreapp-1", 1, "3.1s", 200)
	next.Answered = tcAt("4s")
	busy = append(busy, next)
	if got := checkBackoff(&TrafficSeen{Callbacks: busy}, timeline(`{}`), 50*time.Millisecond, nil); len(got) > 0 {
		t.Errorf("violations %q, want none: the coreapp reached its cap during the wait", invariantsOf(got))
	}
	// With five in flight a slot was free: the late retry is a violation.
	cbs = append(cbs[:1], cbs[2:]...)
	if got := checkBackoff(&TrafficSeen{Callbacks: cbs}, timeline(`{}`), 50*time.Millisecond, nil); len(got) != 1 {
		t.Errorf("violations %q, want the late retry", invariantsOf(got))
	}
}

func TestBackoffNotJudgedWhileStalled(t *testing.T) {
	// m1's retry came a second late: a violation, unless its coreapp was
	// paused (or its clock skewed) between the failure and the retry.
	cbs := []CallbackSeen{cb("m1/sent", "coreapp-1", 1, "0s", 503), cb("m1/sent", "coreapp-1", 2, "4s", 200)}
	var asked []string
	stalled := func(coreapp string, from, to time.Time) bool {
		asked = append(asked, fmt.Sprintf("%s %v %v", coreapp, from.Sub(tcAt("0s")), to.Sub(tcAt("0s"))))
		return true
	}
	if got := checkBackoff(&TrafficSeen{Callbacks: cbs}, timeline(`{}`), 50*time.Millisecond, stalled); len(got) > 0 {
		t.Errorf("violations %q, want none: the coreapp was stalled", invariantsOf(got))
	}
	if len(asked) != 1 || asked[0] != "coreapp-1 10ms 4s" {
		t.Errorf("stalled asked %q, want coreapp-1 from the failure to the retry", asked)
	}
	never := func(string, time.Time, time.Time) bool { return false }
	if got := checkBackoff(&TrafficSeen{Callbacks: cbs}, timeline(`{}`), 50*time.Millisecond, never); len(got) != 1 {
		t.Errorf("violations %q, want the late retry", invariantsOf(got))
	}
}

func TestConcurrencyCheck(t *testing.T) {
	var cbs []CallbackSeen
	for i := range 7 {
		c := cb("m"+string(rune('a'+i))+"/sent", "coreapp-1", 1, "1s", 200)
		c.Answered = tcAt("2s")
		cbs = append(cbs, c)
	}
	tr := &TrafficSeen{Callbacks: cbs}
	if got := checkConcurrency(tr, timeline(`{}`)); len(got) != 1 || !strings.Contains(got[0].Details, "7 callbacks in flight") {
		t.Errorf("violations %q, want coreapp-1 with 7 in flight over a cap of 6", invariantsOf(got))
	}
	if got := checkConcurrency(tr, timeline(`{"webhooks": {"max_concurrent_requests": 12}}`)); len(got) > 0 {
		t.Errorf("violations %q, want none under a cap of 12", invariantsOf(got))
	}
	// Back to back (one answered as the next arrives) is one in flight.
	seq := []CallbackSeen{cb("a/sent", "coreapp-1", 1, "1s", 200), cb("b/sent", "coreapp-1", 1, "1.01s", 200)}
	if got := checkConcurrency(&TrafficSeen{Callbacks: seq}, timeline(`{"webhooks": {"max_concurrent_requests": 6}}`)); len(got) > 0 {
		t.Errorf("violations %q, want none", invariantsOf(got))
	}
	// A request the receiver holds past the poster's timeout stops
	// counting at the timeout.
	var late []CallbackSeen
	for i := range 7 {
		c := cb("m"+string(rune('a'+i))+"/sent", "coreapp-1", 1, (time.Duration(i) * 11 * time.Second).String(), 200)
		c.Answered = c.At.Add(time.Minute)
		late = append(late, c)
	}
	if got := checkConcurrency(&TrafficSeen{Callbacks: late}, timeline(`{}`)); len(got) > 0 {
		t.Errorf("violations %q, want none", invariantsOf(got))
	}
}

func TestMessageChecks(t *testing.T) {
	tr := &TrafficSeen{
		Acked:    []AckedMessage{{ID: "m1", Recipient: "1"}, {ID: "m2", Recipient: "2"}, {ID: "m3", Recipient: "3"}},
		Accepted: map[string]int{"m1": 1, "m2": 2, "m4": 2},
	}
	dup := invariantsOf(checkNoDuplicateSend(tr))
	if len(dup) != 2 || !strings.Contains(dup[0], "m2 accepted 2 times") || !strings.Contains(dup[1], "m4 accepted 2 times") {
		t.Errorf("no_duplicate_send: %q", dup)
	}
	acked := invariantsOf(checkAckedReached(tr))
	if len(acked) != 2 || !strings.Contains(acked[0], "m2 to 2 was answered 201 and accepted 2 times") ||
		!strings.Contains(acked[1], "m3 to 3 was answered 201 but the gateway never accepted it") {
		t.Errorf("acked_reached: %q", acked)
	}
	good := &TrafficSeen{Acked: []AckedMessage{{ID: "m1"}}, Accepted: map[string]int{"m1": 1, "m9": 1}}
	if v := append(checkNoDuplicateSend(good), checkAckedReached(good)...); len(v) > 0 {
		t.Errorf("violations %q on a good history", invariantsOf(v))
	}
}

func TestCallbackTally(t *testing.T) {
	tr := &TrafficSeen{
		Taken: []StatusTaken{
			{At: tcAt("1s"), ID: "m1/sent", MessageID: "m1", Status: "sent", Coreapp: "coreapp-1"},
			{At: tcAt("1s"), ID: "m1/read", MessageID: "m1", Status: "read", Coreapp: "coreapp-1"},
			{At: tcAt("2s"), ID: "m2/sent", MessageID: "m2", Status: "sent", Coreapp: "coreapp-1"},
			{At: tcAt("5s"), ID: "m2/sent", MessageID: "m2", Status: "sent", Coreapp: "coreapp-2"}, // taken again after a failover
		},
		Callbacks: []CallbackSeen{
			cb("m1/sent", "coreapp-1", 1, "1.1s", 503),
			cb("m1/sent", "coreapp-1", 2, "4.2s", 200),
		},
	}
	tr.Accepted = map[string]int{"m1": 1, "m2": 1}
	persist, lossy := timeline(`{"webhooks": {"message": {"read": false}}}`), timeline(`{"callback_persist": false}`)
	got := tallyCallbacks(tr, persist)
	if got.Untaken != 3 {
		t.Errorf("untaken %d, want 3: m1's delivered, m2's delivered and read", got.Untaken)
	}
	if got.Delivered != 1 || got.Retried != 1 || got.Lost != 1 || got.lost[0].ID != "m2/sent" {
		t.Errorf("tally %+v, want 1 delivered, 1 retry, m2/sent lost (read is disabled)", got)
	}
	if v := checkCallbacksDelivered(got, persist); len(v) != 1 || !strings.Contains(v[0].Details, "m2/sent") {
		t.Errorf("callbacks_delivered: %q, want m2/sent", invariantsOf(v))
	}
	got = tallyCallbacks(tr, lossy)
	if got.Lost != 2 {
		t.Errorf("tally %+v, want m1/read and m2/sent lost", got)
	}
	if v := checkCallbacksDelivered(got, lossy); len(v) > 0 {
		t.Errorf("callbacks_delivered without callback_persist: %q, want none (losses are a figure)", invariantsOf(v))
	}
}

func TestCallbackSettingsTimeline(t *testing.T) {
	tl := timeline(`{"callback_backoff_delay_ms": "1500", "callback_persist": false}`)
	tl = append(tl, tl[0].withPatch(json.RawMessage(`{"max_callback_backoff_delay_ms": 4000, "webhooks": {"message": {"sent": false}}}`), tcAt("10s")))
	early, late := callbackSettingsAt(tl, tcAt("9s")), callbackSettingsAt(tl, tcAt("10s"))
	if early.backoff != 1500*time.Millisecond || early.maxBackoff != 900*time.Second || !early.enabled["sent"] || early.persist {
		t.Errorf("before the set: %+v", early)
	}
	if late.backoff != 1500*time.Millisecond || late.maxBackoff != 4*time.Second || late.enabled["sent"] || !late.enabled["read"] {
		t.Errorf("after the set: %+v", late)
	}
}

func TestListedCapsViolations(t *testing.T) {
	acked := make([]AckedMessage, 25)
	for i := range acked {
		acked[i] = AckedMessage{ID: "m" + string(rune('a'+i))}
	}
	got := checkAckedReached(&TrafficSeen{Acked: acked, Accepted: map[string]int{}})
	if len(got) != maxListed+1 || !strings.Contains(got[maxListed].Details, "and 15 more") {
		t.Errorf("got %d violations, last %q", len(got), got[len(got)-1].Details)
	}
}
