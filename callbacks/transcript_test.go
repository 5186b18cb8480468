package callbacks

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/mcsim/mcsim/internal/transcript"
)

func t0() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// TestTranscripts runs testdata/*.txt, each against a fresh Outbox.
// Regenerate with go test ./callbacks -rewrite and review the diff.
//
// Vocabulary (at= is an offset from t0 and defaults to the time of the
// previous command; times never go back):
//
//	configure [url=] [kinds=sent,delivered,read] [max=1] [backoff=3s] [maxbackoff=15m] [timeout=10s] [at=]
//	queue id=m1:sent kind=sent [at=]            Queue (message m1, recipient 16315551234)
//	answer id=m1:sent attempt=1 [ok] [at=]      Answered (without ok: not 200)
//	tick [at=]                                  Tick (default at NextWake)
//
// Every command prints the actions, then what is in flight and pending
// and NextWake.
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		o, now := New(), t0()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd == "tick" {
				transcript.Wake(d, o.NextWake(), &now)
			}
			transcript.Advance(t, d, t0(), &now)
			var ev Event
			switch d.Cmd {
			case "configure":
				cfg := Config{URL: transcript.Str(d, "url"), Enabled: map[Kind]bool{}, MaxConcurrent: 1,
					Backoff: 3 * time.Second, MaxBackoff: 15 * time.Minute}
				for _, k := range strings.Split(transcript.Str(d, "kinds"), ",") {
					if k != "" {
						cfg.Enabled[Kind(k)] = true
					}
				}
				if d.HasArg("max") {
					cfg.MaxConcurrent = int(transcript.Num(t, d, "max"))
				}
				if v, ok := transcript.Dur(t, d, "backoff"); ok {
					cfg.Backoff = v
				}
				if v, ok := transcript.Dur(t, d, "maxbackoff"); ok {
					cfg.MaxBackoff = v
				}
				if v, ok := transcript.Dur(t, d, "timeout"); ok {
					cfg.Timeout = v
				}
				ev = Configure{Config: cfg}
			case "queue":
				id := transcript.Str(d, "id")
				msg, _, _ := strings.Cut(id, ":")
				ev = Queue{Status: Status{ID: id, MessageID: msg, Recipient: "16315551234", Kind: Kind(transcript.Str(d, "kind")), At: now}}
			case "answer":
				ev = Answered{ID: transcript.Str(d, "id"), Attempt: int(transcript.Num(t, d, "attempt")), OK: d.HasArg("ok")}
			case "tick":
				ev = Tick{}
			default:
				t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			}
			acts, err := o.Step(now, ev)
			var b strings.Builder
			if err != nil {
				fmt.Fprintf(&b, "error: %v\n", err)
			}
			for _, a := range acts {
				fmt.Fprintf(&b, "%s\n", FormatAction(a, t0()))
			}
			wake := "none"
			if w := o.NextWake(); !w.IsZero() {
				wake = w.Sub(t0()).String()
			}
			fmt.Fprintf(&b, "state: in_flight=%d waiting=%d wake=%s\n", o.InFlight(), o.Pending()-o.InFlight(), wake)
			return b.String()
		})
	})
}
