package gateway

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// TestStatusIndexChangesNothing: the index of pending statuses by wake
// time only saves walks; a log with it and a log walking every pending
// status (statusQueue.scan) decide the same random runs of sessions
// opened, replaced and closed, messages, offers and acks, offer for offer
// and event for event, with the same NextWake after every step.
func TestStatusIndexChangesNothing(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		indexed, scanned := randomStatusRun(seed, false), randomStatusRun(seed, true)
		if indexed != scanned {
			t.Fatalf("seed %d: the log with the index differs from the one that walks every status:\n%s", seed, firstDiff(indexed, scanned))
		}
	}
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d:\n  indexed: %s\n  scans:   %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("%d lines against %d", len(la), len(lb))
}

// randomStatusRun drives a log at random for seed and renders what it
// decided. Short resends and delays make offers, re-offers and offers to a
// new holder frequent; a few recipients spread over the buckets.
func randomStatusRun(seed uint64, scan bool) string {
	r := rand.New(rand.NewPCG(seed, 0x57a7))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	delays := StatusDelays{Sent: 50 * time.Millisecond, Delivered: 300 * time.Millisecond, Read: time.Second, Resend: 400 * time.Millisecond}
	if seed%3 == 0 {
		delays = StatusDelays{Resend: 100 * time.Millisecond} // all due at once
	}
	l, now := NewLogWith(t0, delays), t0
	l.statuses.scan = scan
	var out []string
	emit := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	var offered []Offer // the offers made so far, some to ack
	epoch := uint64(0)
	coreapps := []string{"a", "b", "c"}
	msg := 0
	for step := range 400 {
		switch k := r.IntN(20); {
		case k < 3: // a session for a shard, mostly newer
			shards := []int32{1, 2, 4}[r.IntN(3)]
			if r.IntN(5) > 0 || epoch == 0 {
				epoch++
			}
			d := l.Open(now, coreapps[r.IntN(len(coreapps))], int32(r.IntN(int(shards))), shards, epoch-uint64(r.IntN(2)))
			emit("open accepted=%v session=%d", d.Accepted, d.Session.ID)
			out = append(out, eventLines(t0, d.Events...)...)
			if r.IntN(2) == 0 { // as the server does behind an ACCEPTED
				for _, o := range l.Due(now) {
					emit("offer session=%d %s", o.Session, o.Update.GetId())
					offered = append(offered, o)
				}
			}
		case k < 4:
			if ev, ok := l.Close(now, SessionID(1+r.IntN(int(l.nextID)+1))); ok {
				out = append(out, eventLines(t0, ev)...)
			}
		case k < 9: // a message on some session, maybe not the holder
			msg++
			to := fmt.Sprint(15550000100 + r.IntN(40))
			d := l.Message(now, SessionID(1+r.IntN(int(l.nextID)+1)), &mcsimv1.OutboundMessage{Id: fmt.Sprint("m", msg%50), To: to})
			emit("message accepted=%v", d.Ack.GetAccepted())
		case k < 14: // time passes: to the next wake or at random
			if r.IntN(2) == 0 {
				if w := l.NextWake(); !w.IsZero() {
					now = later(now, w)
				}
			} else {
				now = now.Add(time.Duration(r.IntN(700)) * time.Millisecond)
			}
			for _, o := range l.Due(now) {
				emit("offer session=%d %s", o.Session, o.Update.GetId())
				offered = append(offered, o)
			}
		default: // some offers acknowledged, by their session or another
			var ids []string
			id := SessionID(1 + r.IntN(int(l.nextID)+1))
			for range 1 + r.IntN(6) {
				if len(offered) == 0 {
					break
				}
				o := offered[r.IntN(len(offered))]
				ids = append(ids, o.Update.GetId())
				if r.IntN(4) > 0 {
					id = o.Session
				}
			}
			out = append(out, eventLines(t0, l.Ack(now, id, ids)...)...)
		}
		if r.IntN(3) > 0 { // not always: Due must not rely on a NextWake before it
			wake := "none"
			if w := l.NextWake(); !w.IsZero() {
				wake = w.Sub(t0).String()
			}
			emit("step %d at %v next-wake %s pending %d", step, now.Sub(t0), wake, l.PendingStatuses())
		}
	}
	return strings.Join(out, "\n")
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
