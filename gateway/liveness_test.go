package gateway

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

const (
	kSilent = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT
	kHeard  = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_HEARD
)

// render prints an event as a transcript line: time since the log's start,
// kind, coreapp, shard/count, epoch, and the last-heard time of a SILENT.
func render(e *mcsimv1.GatewayEvent) string {
	kind := strings.TrimPrefix(e.GetKind().String(), "GATEWAY_EVENT_KIND_")
	s := fmt.Sprintf("%v %s %s %d/%d e%d", time.Duration(e.GetMonoNs()), kind, e.GetCoreappId(), e.GetShard(), e.GetShards(), e.GetEpoch())
	if e.GetKind() == kReplace {
		s += fmt.Sprintf(" replaced %s e%d", e.GetReplacedCoreappId(), e.GetReplacedEpoch())
	}
	if e.GetKind() == kSilent {
		s += fmt.Sprintf(" last_heard %v", time.Duration(e.GetLastHeardMonoNs()))
	}
	return s
}

// TestLogLiveness steps the pure Log through a paused owner and a failover
// by hand: the script is what the gateway's server would feed it (opens,
// pongs, ticks at the Log's deadlines), the transcript is the log. The
// owner a answers pings until 500ms, then stops (SIGSTOP, or a cut): it is
// logged SILENT once SilentAfter has passed, still holds its keys, and is
// replaced by b at 3.5s. The failover's downtime runs from 500ms, when a
// was last heard, not from the REPLACE (which the old log, with no notion
// of hearing, reported as 0 ms).
func TestLogLiveness(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLog(start)
	ids := map[string]SessionID{}
	script := []struct {
		at time.Duration
		do string // "open COREAPP EPOCH", "pong COREAPP", "tick"
	}{
		{0, "open a 1"},
		{250 * time.Millisecond, "pong a"},
		{500 * time.Millisecond, "pong a"},
		{1249 * time.Millisecond, "tick"}, // 749ms unheard: not yet
		{1250 * time.Millisecond, "tick"}, // SilentAfter: silent
		{2 * time.Second, "tick"},
		{3500 * time.Millisecond, "open b 2"},
		{3750 * time.Millisecond, "pong a"}, // a replaced: nothing to hear
		{3750 * time.Millisecond, "pong b"},
		{4 * time.Second, "tick"},
	}
	for _, st := range script {
		now := start.Add(st.at)
		f := strings.Fields(st.do)
		switch f[0] {
		case "open":
			var epoch uint64
			fmt.Sscan(f[2], &epoch)
			d := l.Open(now, f[1], 0, 4, epoch)
			ids[f[1]] = d.Session.ID
		case "pong":
			l.Heard(now, ids[f[1]])
		case "tick":
			l.Tick(now)
		}
	}
	var got []string
	for _, e := range l.Since(0) {
		got = append(got, render(e))
	}
	want := []string{
		"0s CONNECT a 0/4 e1",
		"1.25s SILENT a 0/4 e1 last_heard 500ms",
		"3.5s REPLACE b 0/4 e2 replaced a e1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("log:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if at, ok := l.Deadline(ids["b"]); !ok || at != start.Add(3750*time.Millisecond+SilentAfter) {
		t.Errorf("b's deadline = %v %v, want SilentAfter after its last pong", at.Sub(start), ok)
	}
	fs := Failovers(l.Since(0))
	if len(fs) != 1 || fs[0].From != "a" || fs[0].To != "b" || fs[0].Downtime() != 3*time.Second {
		t.Fatalf("failovers = %+v, want a → b after 3s (from a's last pong at 500ms to b's open at 3.5s)", fs)
	}
}

// A silent session heard again serves again: HEARD is logged, its deadline
// runs from the new pong, and a second silence is logged on time.
func TestLogSilentThenHeard(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLog(start)
	id := l.Open(start, "a", 1, 2, 1).Session.ID
	at := func(d time.Duration) time.Time { return start.Add(d) }
	if evs := l.Tick(at(SilentAfter)); len(evs) != 1 || evs[0].GetKind() != kSilent {
		t.Fatalf("tick at SilentAfter = %v, want one SILENT", evs)
	}
	if _, ok := l.Deadline(id); ok {
		t.Error("a silent session has a deadline; only a pong can end its silence")
	}
	if evs := l.Tick(at(time.Minute)); len(evs) != 0 {
		t.Errorf("silent twice: %v", evs)
	}
	ev, ok := l.Heard(at(2*time.Minute), id)
	if !ok || ev.GetKind() != kHeard || ev.GetShard() != 1 || ev.GetShards() != 2 {
		t.Fatalf("heard = %v %v, want HEARD of 1/2", ev, ok)
	}
	if _, ok := l.Heard(at(2*time.Minute+time.Second), id); ok {
		t.Error("a pong of a session that was not silent logged an event")
	}
	if d, ok := l.Deadline(id); !ok || d != at(2*time.Minute+time.Second+SilentAfter) {
		t.Errorf("deadline after heard = %v", d.Sub(start))
	}
	if evs := l.Tick(at(2*time.Minute + time.Second + SilentAfter)); len(evs) != 1 || evs[0].GetLastHeardMonoNs() != int64(2*time.Minute+time.Second) {
		t.Errorf("second silence = %v", evs)
	}
}

// sil and heard build hand-written SILENT and HEARD events (count 4).
func sil(shard int32, coreapp string, epoch uint64, lastHeard time.Duration) *mcsimv1.GatewayEvent {
	e := ev(kSilent, shard, coreapp, epoch)
	e.LastHeardMonoNs, e.LastHeardUnixNs = int64(lastHeard), int64(lastHeard)
	return e
}

// at sets an event's time (both clocks, from 0).
func at(d time.Duration, e *mcsimv1.GatewayEvent) *mcsimv1.GatewayEvent {
	e.MonoNs, e.UnixNs = int64(d), int64(d)
	return e
}

// TestFailoversDowntime: the downtime of each failover runs from the last
// moment the old owner was heard to the first moment the new one was. A
// crash breaks the stream at once (DISCONNECT while heard: service ended
// there); a pause or a partition leaves the stream open and silent, so
// service ended at the last pong, however late the REPLACE or DISCONNECT.
func TestFailoversDowntime(t *testing.T) {
	s := time.Second
	ms := time.Millisecond
	tests := []struct {
		name string
		log  []*mcsimv1.GatewayEvent
		want []string // "FROM→TO DOWNTIME"
	}{
		{
			name: "crash: the stream breaks while heard",
			log: logOf(
				at(0, ev(kConnect, 0, "a", 1)),
				at(10*s, ev(kDisconnect, 0, "a", 1)),
				at(13500*ms, ev(kConnect, 0, "b", 2)),
			),
			want: []string{"a→b 3.5s"},
		},
		{
			name: "pause: silent, then superseded",
			log: logOf(
				at(0, ev(kConnect, 0, "a", 1)),
				at(10600*ms, sil(0, "a", 1, 10*s)),
				at(13500*ms, replace(0, "b", 2, "a", 1)),
			),
			want: []string{"a→b 3.5s"},
		},
		{
			name: "partition: silent, then the stream breaks, then another connects",
			log: logOf(
				at(0, ev(kConnect, 0, "a", 1)),
				at(10600*ms, sil(0, "a", 1, 10*s)),
				at(12*s, ev(kDisconnect, 0, "a", 1)),
				at(13500*ms, ev(kConnect, 0, "b", 2)),
			),
			want: []string{"a→b 3.5s"},
		},
		{
			name: "silent, heard again, then handed over live",
			log: logOf(
				at(0, ev(kConnect, 0, "a", 1)),
				at(10600*ms, sil(0, "a", 1, 10*s)),
				at(11*s, ev(kHeard, 0, "a", 1)),
				at(13500*ms, replace(0, "b", 2, "a", 1)),
			),
			want: []string{"a→b 0s"},
		},
		{
			name: "graceful handover: replaced while heard",
			log: logOf(
				at(0, ev(kConnect, 0, "a", 1)),
				at(5*s, replace(0, "b", 2, "a", 1)),
			),
			want: []string{"a→b 0s"},
		},
		{
			name: "a silent session elsewhere does not count",
			log: logOf(
				at(0, ev(kConnect, 0, "a", 1)),
				at(0, ev(kConnect, 1, "c", 1)),
				at(5*s, sil(1, "c", 1, 4*s)),
				at(6*s, ev(kDisconnect, 0, "a", 1)),
				at(9*s, ev(kConnect, 0, "b", 2)),
			),
			want: []string{"a→b 3s"},
		},
		{
			name: "the same coreapp back is no failover",
			log: logOf(
				at(0, ev(kConnect, 0, "a", 1)),
				at(1*s, sil(0, "a", 1, 400*ms)),
				at(2*s, ev(kDisconnect, 0, "a", 1)),
				at(3*s, ev(kConnect, 0, "a", 2)),
			),
		},
		{
			name: "a re-map across counts is no failover",
			log: logOf(
				at(0, evN(kConnect, 0, 2, "a", 1)),
				at(1*s, replaceN(2, 4, "c", 5, 0, 2, "a", 1)),
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range Failovers(tt.log) {
				got = append(got, fmt.Sprintf("%s→%s %v", f.From, f.To, f.Downtime()))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("failovers = %q, want %q", got, tt.want)
			}
		})
	}
}

// A silent session is not serving but it is still open: it holds its keys
// until its session ends, so a second session on them is still a double
// session (fencing is judged as before, rule 2).
func TestCheckLogSilentStillOpen(t *testing.T) {
	log := logOf(
		ev(kConnect, 0, "a", 1),
		sil(0, "a", 1, 0),
		ev(kConnect, 0, "b", 2),
	)
	v := CheckLog(log)
	if len(v) != 1 || v[0].Kind != DoubleSession || v[0].Seq != 3 {
		t.Fatalf("violations = %v, want one double_session at seq 3", v)
	}
}

// A session ended after SilentAfter without a pong is logged SILENT first,
// whether or not a timer ticked: its service ended when it was last heard.
// After a shard-count decrease the silences come before the REPLACE events,
// which stay consecutive (CheckLog reads them as one acceptance).
func TestLogEndsOverdueSessionsSilent(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLog(start)
	l.Open(start, "a", 0, 4, 1)
	l.Open(start, "b", 2, 4, 2)
	c := l.Open(start.Add(time.Second), "c", 1, 4, 3)
	l.Heard(start.Add(1500*time.Millisecond), c.Session.ID)
	d := l.Open(start.Add(3*time.Second), "d", 0, 2, 4) // covers 0-of-4 and 2-of-4
	l.Close(start.Add(4*time.Second), c.Session.ID)
	var got []string
	for _, e := range l.Since(0) {
		got = append(got, render(e))
	}
	want := []string{
		"0s CONNECT a 0/4 e1",
		"0s CONNECT b 2/4 e2",
		"1s CONNECT c 1/4 e3",
		"3s SILENT a 0/4 e1 last_heard 0s",
		"3s SILENT b 2/4 e2 last_heard 0s",
		"3s REPLACE d 0/2 e4 replaced a e1",
		"3s REPLACE d 0/2 e4 replaced b e2",
		"4s SILENT c 1/4 e3 last_heard 1.5s",
		"4s DISCONNECT c 1/4 e3",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("log:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if len(d.Replaced) != 2 {
		t.Errorf("decision = %+v", d)
	}
	if v := CheckLog(l.Since(0)); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
}
