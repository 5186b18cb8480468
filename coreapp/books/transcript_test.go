package books

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/mcsim/mcsim/internal/transcript"
)

// t0 is time zero of every transcript (a func: no package-level vars).
func t0() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// TestTranscripts runs testdata/*.txt against the books of coreapp c1.
// Regenerate with go test ./coreapp/books -rewrite and review the diff.
//
// Vocabulary (at= is an offset from t0 and defaults to the time of the
// previous command; times never go back):
//
//	assign lease=3 shard=0 epoch=5 [shards=4] [to=c1] [at=]   AssignAsked
//	release lease=3 shard=0 epoch=5 [to=c1] [at=]             ReleaseAsked
//	heartbeat lease=3 [to=c1] [at=]                           HeartbeatAsked
//	stop [at=]                                                StopAsked
//	accepted shard=0 epoch=5 [silent=3s] [at=]                SessionAccepted
//	rejected|replaced|ended shard=0 epoch=5 [at=]             the session's end
//	ping shard=0 epoch=5 [at=]                                GatewayPinged
//	tick [at=]                                                Tick (default at NextWake)
//	books                                                     what the queries say
//	route rcpt=15550000100 shards=2 [to=c1] [at=]             the Route query (a Send)
//
// Every stepping command prints the actions, then next-wake.
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		b, now := New("c1"), t0()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if v, ok := transcript.Dur(t, d, "at"); ok {
				now = t0().Add(v)
			}
			var ev Event
			switch d.Cmd {
			case "assign":
				ev = AssignAsked{Coreapp: transcript.Str(d, "to"), LeaseEpoch: num(t, d, "lease"), Shard: int32(num(t, d, "shard")),
					Shards: int32(optNum(t, d, "shards")), Epoch: num(t, d, "epoch")}
			case "release":
				ev = ReleaseAsked{Coreapp: transcript.Str(d, "to"), LeaseEpoch: num(t, d, "lease"), Shard: int32(num(t, d, "shard")), Epoch: num(t, d, "epoch")}
			case "heartbeat":
				ev = HeartbeatAsked{Coreapp: transcript.Str(d, "to"), LeaseEpoch: num(t, d, "lease")}
			case "stop":
				ev = StopAsked{}
			case "accepted":
				silent, _ := transcript.Dur(t, d, "silent")
				ev = SessionAccepted{Shard: int32(num(t, d, "shard")), Epoch: num(t, d, "epoch"), SilentAfter: silent}
			case "rejected":
				ev = SessionRejected{Shard: int32(num(t, d, "shard")), Epoch: num(t, d, "epoch")}
			case "replaced":
				ev = SessionReplaced{Shard: int32(num(t, d, "shard")), Epoch: num(t, d, "epoch")}
			case "ended":
				ev = SessionEnded{Shard: int32(num(t, d, "shard")), Epoch: num(t, d, "epoch")}
			case "ping":
				ev = GatewayPinged{Shard: int32(num(t, d, "shard")), Epoch: num(t, d, "epoch")}
			case "tick":
				transcript.Wake(d, b.NextWake(), &now)
				ev = Tick{}
			case "books":
				return booksText(b)
			case "route":
				r, refuse := b.Route(transcript.Str(d, "to"), transcript.Str(d, "rcpt"), int32(optNum(t, d, "shards")))
				if refuse != nil {
					return FormatAction(*refuse) + "\n"
				}
				return fmt.Sprintf("route shard=%d of %d epoch=%d\n", r.Shard, r.Shards, r.Epoch)
			default:
				t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			}
			acts, err := b.Step(now, ev)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			var lines []string
			for _, a := range acts {
				lines = append(lines, FormatAction(a))
			}
			if len(acts) == 0 {
				lines = append(lines, "(nothing)")
			}
			return strings.Join(append(lines, "next-wake "+wakeText(b)), "\n") + "\n"
		})
	})
}

func wakeText(b *Books) string {
	if w := b.NextWake(); !w.IsZero() {
		return w.Sub(t0()).String()
	}
	return "none"
}

// booksText is what the node reports: its shards, lease epoch and status.
func booksText(b *Books) string {
	var s strings.Builder
	fmt.Fprintf(&s, "lease_epoch=%d status=%s stopped=%v served=%d", b.LeaseEpoch(), StatusName(b.GatewayStatus()), b.Stopped(), b.ServedCount())
	for _, sv := range b.Served() {
		fmt.Fprintf(&s, " %d@%d/%s", sv.Shard, sv.Epoch, StatusName(sv.Status))
	}
	return s.String() + "\n"
}

func num(t *testing.T, d *datadriven.TestData, key string) uint64 {
	if !d.HasArg(key) {
		t.Fatalf("%s: missing %s=", d.Pos, key)
	}
	return optNum(t, d, key)
}

// optNum is key's value, 0 when absent; a negative value wraps, so a
// transcript can give shard=-1.
func optNum(t *testing.T, d *datadriven.TestData, key string) uint64 {
	a, ok := d.Arg(key)
	if !ok {
		return 0
	}
	v, err := strconv.ParseInt(a.SingleVal(t), 10, 64)
	if err != nil {
		t.Fatalf("%s: %s: %v", d.Pos, key, err)
	}
	return uint64(v)
}
