package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/mcsim/mcsim/internal/transcript"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// TestTranscripts runs testdata/*.txt against a Log with the default
// status delays (sent 50ms, delivered 300ms, read 1s, resend 1s).
// Regenerate with go test ./gateway -run TestTranscripts -rewrite and
// review the diff.
//
// Vocabulary (at= is an offset from t0 and defaults to the time of the
// previous command; times never go back):
//
//	open coreapp=a shard=0 shards=2 epoch=1 [at=]   Open: the decision and its events
//	close session=1 [at=]                           Close
//	heard session=1 [at=]                           Heard (a pong)
//	send session=1 id=m1 to=15550000100 [at=]       Message: the ack and its event
//	due [at=]                                       Due (default at NextWake): the offers
//	ack session=1 ids=m1/sent,m1/read [at=]         Ack: the STATUS events
//
// Every command but due prints next-wake (NextWake) and pending (the
// statuses not yet acknowledged) after its output. Recipients used:
// 15550000100 is in bucket 20 (shard 0 of 2, 0 of 4), 15550000101 in
// bucket 7 (1 of 2, 3 of 4), 15550000102 in bucket 26 (0 of 2, 2 of 4).
func TestTranscripts(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		l, now := NewLog(t0), t0
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var lines []string
			session := func() SessionID { return SessionID(transcript.Num(t, d, "session")) }
			switch d.Cmd {
			case "due":
				transcript.Wake(d, l.NextWake(), &now)
			default:
				transcript.Advance(t, d, t0, &now)
			}
			lines = append(lines, "at "+now.Sub(t0).String())
			switch d.Cmd {
			case "open":
				dec := l.Open(now, transcript.Str(d, "coreapp"), int32(transcript.Num(t, d, "shard")),
					int32(transcript.Num(t, d, "shards")), transcript.Num(t, d, "epoch"))
				if dec.Accepted {
					lines = append(lines, fmt.Sprintf("accepted session=%d", dec.Session.ID))
				}
				lines = append(lines, eventLines(t0, dec.Events...)...)
			case "close":
				if ev, ok := l.Close(now, session()); ok {
					lines = append(lines, eventLines(t0, ev)...)
				}
			case "heard":
				if ev, ok := l.Heard(now, session()); ok {
					lines = append(lines, eventLines(t0, ev)...)
				}
			case "send":
				dec := l.Message(now, session(), &mcsimv1.OutboundMessage{Id: transcript.Str(d, "id"), To: transcript.Str(d, "to")})
				lines = append(lines, fmt.Sprintf("ack id=%s accepted=%v reason=%q", dec.Ack.GetId(), dec.Ack.GetAccepted(), dec.Ack.GetReason()))
				if dec.Event != nil {
					lines = append(lines, eventLines(t0, dec.Event)...)
				}
			case "due":
				for _, o := range l.Due(now) {
					u := o.Update
					lines = append(lines, fmt.Sprintf("offer session=%d %s message=%s to=%s status=%s ts=%d",
						o.Session, u.GetId(), u.GetMessageId(), u.GetRecipientId(), u.GetStatus(), u.GetTimestampUnix()))
				}
			case "ack":
				lines = append(lines, eventLines(t0, l.Ack(now, session(), strings.Split(transcript.Str(d, "ids"), ","))...)...)
			default:
				t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			}
			if len(lines) == 1 {
				lines = append(lines, "(nothing)")
			}
			wake := "none"
			if w := l.NextWake(); !w.IsZero() {
				wake = w.Sub(t0).String()
			}
			lines = append(lines, fmt.Sprintf("next-wake %s pending %d", wake, l.PendingStatuses()))
			return strings.Join(lines, "\n") + "\n"
		})
	})
}

// eventLines renders events one a line, with the fields their kind uses.
func eventLines(t0 time.Time, evs ...*mcsimv1.GatewayEvent) []string {
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("event %d %s coreapp=%s shard=%d/%d epoch=%d", e.GetSeq(),
			strings.TrimPrefix(e.GetKind().String(), "GATEWAY_EVENT_KIND_"), e.GetCoreappId(), e.GetShard(), e.GetShards(), e.GetEpoch())
		if e.GetReplacedCoreappId() != "" {
			s += fmt.Sprintf(" replaced=%s:%d/%d@%d", e.GetReplacedCoreappId(), e.GetReplacedShard(), e.GetReplacedShards(), e.GetReplacedEpoch())
		}
		if e.GetMessageId() != "" {
			s += fmt.Sprintf(" message=%s to=%s", e.GetMessageId(), e.GetRecipientId())
		}
		if e.GetStatus() != "" {
			s += " status=" + e.GetStatus()
		}
		if e.GetReason() != "" {
			s += fmt.Sprintf(" reason=%q", e.GetReason())
		}
		out = append(out, s)
	}
	return out
}
