package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// trafficFake is fakeTarget with a scripted workload: ten messages a
// second alternating between shards 0 and 1, refused with 1018 while the
// shard has no owner; each accepted message's sent status taken by its
// shard's owner at once and posted to the receiver, which answers 200, or
// 503 while it is down, the poster retrying by the seed's rule (in
// memory: a killed coreapp's callbacks are gone).
type trafficFake struct {
	*fakeTarget
	tr       TrafficSeen
	webhooks []Webhook
	hook     Webhook
	loading  bool
	next     int
	sec      TrafficSecond
	secStart time.Time
}

func newTrafficFake() *trafficFake {
	return &trafficFake{fakeTarget: newFake(), tr: TrafficSeen{Accepted: map[string]int{}}}
}

func (f *trafficFake) StartWorkload(_ context.Context, w Workload, _ uint64) error {
	f.hook, f.loading, f.secStart = w.Webhook, true, f.now
	f.webhooks = append(f.webhooks, w.Webhook)
	f.tick()
	return nil
}

func (f *trafficFake) StopLoad(context.Context) error { f.loading = false; return nil }
func (f *trafficFake) SetWebhook(_ context.Context, w Webhook) error {
	f.hook = w
	f.webhooks = append(f.webhooks, w)
	return nil
}
func (f *trafficFake) Traffic() *TrafficSeen { return &f.tr }

func (f *trafficFake) tick() {
	f.at(100*time.Millisecond, func() {
		if !f.loading {
			return
		}
		if f.now.Sub(f.secStart) >= time.Second {
			f.sec.End = f.secStart.Add(time.Second)
			f.tr.Seconds = append(f.tr.Seconds, f.sec)
			f.sec, f.secStart = TrafficSecond{}, f.sec.End
		}
		f.next++
		id, shard := fmt.Sprintf("m%d", f.next), f.next%2
		f.sec.Sent++
		owner := f.served[shard]
		if owner == "" {
			f.tr.Refused = append(f.tr.Refused, ClientError{At: f.now, Code: "1018"})
			if f.sec.Errors == nil {
				f.sec.Errors = map[string]int{}
			}
			f.sec.Errors["1018"]++
		} else {
			f.sec.OK++
			f.tr.Acked = append(f.tr.Acked, AckedMessage{ID: id, Recipient: fmt.Sprint(shard), At: f.now})
			f.tr.Accepted[id]++
			f.tr.Taken = append(f.tr.Taken, StatusTaken{At: f.now, ID: id + "/sent", MessageID: id, Status: "sent", Coreapp: owner})
			f.post(id+"/sent", owner, 1)
		}
		f.tick()
	})
}

func (f *trafficFake) post(id, coreapp string, attempt int) {
	if f.killed[coreapp] {
		return
	}
	code := 200
	if f.hook.Down {
		code = 503
	}
	f.tr.Callbacks = append(f.tr.Callbacks, CallbackSeen{At: f.now, Answered: f.now, ID: id, Status: "sent", Attempt: attempt, Coreapp: coreapp, Code: code})
	if code != 200 {
		f.at(time.Duration(attempt)*3*time.Second, func() { f.post(id, coreapp, attempt+1) })
	}
}

func runTrafficFake(t *testing.T, f Target, yaml string) (Outcome, []map[string]any, error) {
	t.Helper()
	sc, err := Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var events, progress bytes.Buffer
	out, err := Run(t.Context(), f, sc, Options{Seed: 7, Events: &events, Progress: &progress})
	var evs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(events.String()), "\n") {
		var m map[string]any
		if line != "" && json.Unmarshal([]byte(line), &m) == nil {
			evs = append(evs, m)
		}
	}
	t.Logf("progress:\n%s", progress.String())
	return out, evs, err
}

func TestWorkloadCrashUnderLoad(t *testing.T) {
	f := newTrafficFake()
	out, evs, err := runTrafficFake(t, f, `name: t
settings: {heartbeat_interval: 1, unhealthy_interval: 3, callback_persist: false}
workload: {rate: 10/s, recipients: 2, webhook: {fail: 0%, latency: 20ms}}
steps:
  - sleep: 2s
  - kill: owner(0)
    as: crash
  - expect: errors
    after: crash
    within: rule1
  - expect: callbacks_lost
    max: 0
`)
	if err != nil {
		t.Fatal(err)
	}
	// The fake's standby serves shard 0 3.5 s after the kill: the clients
	// saw 1018 until then.
	e := out.Expectations[0]
	if !e.OK || e.Measured == nil || *e.Measured < 3300*time.Millisecond || *e.Measured > 3500*time.Millisecond {
		t.Errorf("errors = %+v (measured %v), want ok at about 3.4 s", e, e.Measured)
	}
	if !strings.Contains(e.Detail, "map[1018:") {
		t.Errorf("errors detail %q, want the codes", e.Detail)
	}
	// Nothing was in flight at the crash (the fake's receiver answers at
	// once): nothing lost.
	if lost := out.Expectations[1]; !lost.OK || lost.What != "callbacks_lost" {
		t.Errorf("callbacks_lost = %+v", lost)
	}
	var traffic, callbacks int
	for _, ev := range evs {
		switch ev["event"] {
		case "traffic":
			traffic++
			if _, ok := ev["errors"].(map[string]any); !ok {
				t.Errorf("traffic event without an errors object: %v", ev)
			}
			if _, ok := ev["ok"].(float64); !ok {
				t.Errorf("traffic event's ok is not a count: %v", ev)
			}
		case "callbacks":
			callbacks++
			if ev["lost"] != float64(0) || ev["delivered"] == nil {
				t.Errorf("callbacks event %v: want delivered and no losses", ev)
			}
		}
	}
	if traffic < 5 || callbacks != 1 {
		t.Errorf("%d traffic events and %d callbacks events; want one per second and one", traffic, callbacks)
	}
	if !out.OK {
		t.Errorf("outcome not ok: %+v", out)
	}
}

func TestWorkloadWebhookDownForRevertsAndBacksOff(t *testing.T) {
	f := newTrafficFake()
	out, _, err := runTrafficFake(t, f, `name: t
settings: {heartbeat_interval: 1, unhealthy_interval: 3}
workload: {rate: 10/s, recipients: 2}
steps:
  - webhook: {down: true}
    for: 10s
  - sleep: 15s
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.webhooks) != 3 || !f.webhooks[1].Down || f.webhooks[2].Down {
		t.Errorf("receiver states %+v, want up, down, up", f.webhooks)
	}
	retried := 0
	for _, c := range f.tr.Callbacks {
		if c.Attempt > 1 {
			retried++
		}
	}
	if retried == 0 || !out.OK {
		t.Errorf("%d retries, outcome %+v: want retries and every check passing", retried, out)
	}
}

func TestWorkloadCallbackLossesJudged(t *testing.T) {
	// The receiver is down when the owner of shard 0 is killed: the
	// callbacks it held are lost (no persistence in the fake).
	f := newTrafficFake()
	out, _, err := runTrafficFake(t, f, `name: t
settings: {heartbeat_interval: 1, unhealthy_interval: 3, callback_persist: false}
workload: {rate: 10/s, recipients: 2}
steps:
  - webhook: {down: true}
  - sleep: 2s
  - kill: owner(0)
  - webhook: {down: false}
  - sleep: 5s
  - expect: callbacks_lost
    max: 0
`)
	if err != nil {
		t.Fatal(err)
	}
	lost := out.Expectations[0]
	if lost.OK || !strings.Contains(lost.Detail, "10 lost") {
		t.Errorf("callbacks_lost = %+v, want 10 lost (coreapp-1's sent statuses of 2 s)", lost)
	}
	// Without callback_persist a loss is a figure, not a violation.
	for _, v := range out.Violations {
		if v.Invariant == "callbacks_delivered" {
			t.Errorf("violation %v without callback_persist", v)
		}
	}

	// With it, the same history breaks callbacks_delivered.
	f = newTrafficFake()
	out, _, err = runTrafficFake(t, f, `name: t
settings: {heartbeat_interval: 1, unhealthy_interval: 3, callback_persist: true}
workload: {rate: 10/s, recipients: 2}
steps:
  - webhook: {down: true}
  - sleep: 2s
  - kill: owner(0)
  - webhook: {down: false}
  - sleep: 5s
checks: [callbacks_delivered]
`)
	if err != nil {
		t.Fatal(err)
	}
	assertViolation(t, out, "callbacks_delivered", "never reached the receiver with callback_persist on")
}

func TestWorkloadNeedsATrafficTarget(t *testing.T) {
	_, _, err := runTrafficFake(t, newFake(), "name: t\nworkload: {rate: 10/s}\nsteps:\n  - sleep: 1s\n")
	if !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), "cannot run a workload") {
		t.Errorf("err = %v, want ErrStart: cannot run a workload", err)
	}
}

func TestWitnessFoldsTraffic(t *testing.T) {
	var w Witness
	ev := func(seq uint64, kind mcsimv1.GatewayEventKind, id, status string) *mcsimv1.GatewayEvent {
		return &mcsimv1.GatewayEvent{Seq: seq, Kind: kind, Shard: 0, Shards: 1, Epoch: 1, CoreappId: "coreapp-1",
			MessageId: id, RecipientId: "16315551234", Status: status, UnixNs: int64(seq) * 1e6}
	}
	w.Fold([]*mcsimv1.GatewayEvent{
		ev(1, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT, "", ""),
		ev(2, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE, "m1", ""),
		ev(3, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE, "m1", ""),
		ev(4, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE_REJECTED, "m2", ""),
		ev(5, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_STATUS, "m1", "sent"),
	})
	if got := w.Accepted(); got["m1"] != 2 || got["m2"] != 0 {
		t.Errorf("accepted %v, want m1 twice and m2 never", got)
	}
	if tk := w.Taken(); len(tk) != 1 || tk[0].ID != "m1/sent" || tk[0].Coreapp != "coreapp-1" {
		t.Errorf("taken %+v", tk)
	}
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("fencing violations %v from traffic events", v)
	}
	if s := w.Served(1); s[0] != "coreapp-1" {
		t.Errorf("served %v", s)
	}
}
