package lease

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/mcsim/mcsim/internal/transcript"
)

// TestTranscripts runs testdata/*.txt, each against a fresh Term of master
// m1. Regenerate with go test ./master/lease -rewrite and review the diff.
//
// Vocabulary (at= is an offset from t0 and defaults to the time of the
// previous command; times never go back):
//
//	config [ttl=6s] [renew=2s]                     a Term with these overrides (first command only)
//	settings hb=5s ui=30s [at=]                    Settings
//	tick [at=]                                     Tick (default at NextWake, or now if that passed)
//	check [at=]                                    Check
//	granted epoch=1 [sent=] [ttl=] [at=]           Answered, granted; sent= and ttl= default to
//	                                               the last send-acquire's time and TTL
//	refused epoch=1 holder=m2 remaining=3s [sent=] [ttl=] [at=]
//	failed err=unavailable [sent=] [ttl=] [at=]    Answered with an error
//	loaded max_epoch=5 [err=x] [at=]               ShardMapLoaded
//	aborted [at=]                                  PrimaryAborted
//	persist max_epoch=3 [at=]                      PersistMap
//	persisted max_epoch=67 [waited] [at=]          MapPersisted
//	write-failed err=x [background] [fenced] [at=] MapWriteFailed
//	master-left m2 [at=]                           MasterLeft
//	shutdown [crashed] [at=]                       Shutdown
//
// Every command prints the actions, then the state: primary, the lease's
// end by the own clock, the epoch, the reserved max_epoch and NextWake.
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{term: New(Config{ID: "m1"}), now: t0()}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(t, d)
		})
	})
}

type harness struct {
	term     *Term
	now      time.Time
	lastSent time.Time     // the last send-acquire's time
	lastTTL  time.Duration // and TTL
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	transcript.Advance(t, d, t0(), &h.now)
	answer := func() Answered {
		sent, ttl := transcript.SentTTL(t, d, t0(), h.lastSent, h.lastTTL)
		return Answered{SentAt: sent, TTL: ttl}
	}
	var ev Event
	switch d.Cmd {
	case "config":
		ttl, _ := transcript.Dur(t, d, "ttl")
		renew, _ := transcript.Dur(t, d, "renew")
		h.term = New(Config{ID: "m1", TTL: ttl, RenewInterval: renew})
		return "ok\n"
	case "settings":
		hb, _ := transcript.Dur(t, d, "hb")
		ui, _ := transcript.Dur(t, d, "ui")
		ev = Settings{HeartbeatInterval: hb, UnhealthyInterval: ui}
	case "tick":
		transcript.Wake(d, h.term.NextWake(), &h.now)
		ev = Tick{}
	case "check":
		ev = Check{}
	case "granted":
		a := answer()
		a.Granted, a.Epoch, a.Holder = true, transcript.Num(t, d, "epoch"), "m1"
		ev = a
	case "refused":
		a := answer()
		a.Epoch, a.Holder = transcript.Num(t, d, "epoch"), transcript.Str(d, "holder")
		a.Remaining, _ = transcript.Dur(t, d, "remaining")
		ev = a
	case "failed":
		a := answer()
		a.Err = errors.New(transcript.Str(d, "err"))
		ev = a
	case "loaded":
		l := ShardMapLoaded{MaxEpoch: transcript.Num(t, d, "max_epoch")}
		if d.HasArg("err") {
			l.Err = errors.New(transcript.Str(d, "err"))
		}
		ev = l
	case "aborted":
		ev = PrimaryAborted{}
	case "persist":
		ev = PersistMap{MaxEpoch: transcript.Num(t, d, "max_epoch")}
	case "persisted":
		ev = MapPersisted{MaxEpoch: transcript.Num(t, d, "max_epoch"), Waited: d.HasArg("waited")}
	case "write-failed":
		ev = MapWriteFailed{Background: d.HasArg("background"), Fenced: d.HasArg("fenced"), Err: transcript.Str(d, "err")}
	case "master-left":
		ev = MasterLeft{ID: d.CmdArgs[0].Key}
	case "shutdown":
		ev = Shutdown{Crashed: d.HasArg("crashed")}
	default:
		t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	}
	acts, err := h.term.Step(h.now, ev)
	var lines []string
	if err != nil {
		lines = append(lines, "error: "+err.Error())
	}
	for _, a := range acts {
		if s, ok := a.(SendAcquire); ok {
			h.lastSent, h.lastTTL = h.now, s.TTL
		}
		lines = append(lines, FormatAction(a))
	}
	if len(acts) == 0 && err == nil {
		lines = append(lines, "(nothing)")
	}
	return strings.Join(append(lines, h.state()), "\n") + "\n"
}

// state is one line: the time, then what the queries say.
func (h *harness) state() string {
	tm := h.term
	until := "-"
	if u := tm.ValidUntil(); !u.IsZero() {
		until = u.Sub(t0()).String()
	}
	wake := "none"
	if w := tm.NextWake(); !w.IsZero() {
		wake = w.Sub(t0()).String()
	}
	return fmt.Sprintf("> at=%s primary=%v until=%s epoch=%d reserved=%d renewing=%v next-wake=%s",
		h.now.Sub(t0()), tm.Primary(), until, tm.Epoch(), tm.Reserved(), tm.Renewing(), wake)
}
