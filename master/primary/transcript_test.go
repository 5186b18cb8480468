package primary

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/mcsim/mcsim/internal/transcript"
	"github.com/mcsim/mcsim/master/failover"
)

func t0() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// TestTranscripts runs testdata/*.txt, each against a fresh Machine of
// master m1. Regenerate with go test ./master/primary -rewrite and review
// the diff.
//
// Vocabulary (at= is an offset from t0 and defaults to the time of the
// previous command; times never go back; term= defaults to the current
// term):
//
//	config [ttl=1h] [renew=30m] [startup=2]         a fresh Machine with this Config
//	settings hb=1s ui=3s shards=2 [at=]             Settings
//	tick [at=]                                      Tick (default at NextWake, or now if that passed)
//	check [at=]                                     Check
//	granted epoch=1 [sent=] [ttl=] [at=]            Answered, granted (sent=, ttl=: the last send-acquire's)
//	refused epoch=2 holder=m2 remaining=3s [at=]    Answered, refused
//	renew-failed err=x [at=]                        Answered with an error
//	loaded max_epoch=6 [map=c1@5,c2@6,-] [err=x]    MapLoaded; map= names shard i's owner@epoch, - for none
//	joined c1 / left c1 [at=]                       CoreappJoined / CoreappLeft
//	hb [at=]                                        HeartbeatsDone; one result per input line:
//	  c1 seq=1 [term=] [failed] [shards=0@3,1@4]
//	assigned shard=0 to=c1 epoch=3 [refused] [term=] [at=]   AssignDone
//	written [err=x] [fenced] [term=] [at=]          MapWritten
//	write-failed err=x [fenced] [term=] [at=]       MapWriteFailed (a background write)
//	master-left m2 [at=]                            MasterLeft
//	shutdown [crashed] [at=]                        Shutdown
//
// Every command prints the actions, then the state: primary, term, the
// lease's end by the own clock, the lease epoch, the reserved max_epoch,
// whether a batch waits for its write, and NextWake.
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{mc: New(Config{ID: "m1"}), now: t0()}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(t, d)
		})
	})
}

type harness struct {
	mc       *Machine
	now      time.Time
	lastSent time.Time
	lastTTL  time.Duration
}

func (h *harness) term(t *testing.T, d *datadriven.TestData) uint64 {
	if d.HasArg("term") {
		return transcript.Num(t, d, "term")
	}
	return h.mc.Term()
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
		cfg := Config{ID: "m1", LeaseTTL: ttl, RenewInterval: renew}
		if d.HasArg("startup") {
			cfg.StartupCoreapps = int(transcript.Num(t, d, "startup"))
		}
		h.mc = New(cfg)
		return "ok\n"
	case "settings":
		hb, _ := transcript.Dur(t, d, "hb")
		ui, _ := transcript.Dur(t, d, "ui")
		ev = Settings{HeartbeatInterval: hb, UnhealthyInterval: ui, Shards: int(transcript.Num(t, d, "shards"))}
	case "tick":
		transcript.Wake(d, h.mc.NextWake(), &h.now)
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
	case "renew-failed":
		a := answer()
		a.Err = errors.New(transcript.Str(d, "err"))
		ev = a
	case "loaded":
		l := MapLoaded{Map: parseMap(t, d)}
		if d.HasArg("err") {
			l.Err = errors.New(transcript.Str(d, "err"))
		}
		ev = l
	case "joined":
		ev = CoreappJoined{ID: d.CmdArgs[0].Key}
	case "left":
		ev = CoreappLeft{ID: d.CmdArgs[0].Key}
	case "hb":
		var rs []HeartbeatResult
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			rs = append(rs, h.result(t, d, line))
		}
		ev = HeartbeatsDone{Results: rs}
	case "assigned":
		ev = AssignDone{Term: h.term(t, d), Shard: int(transcript.Num(t, d, "shard")), Coreapp: transcript.Str(d, "to"),
			Epoch: transcript.Num(t, d, "epoch"), OK: !d.HasArg("refused")}
	case "written":
		ev = MapWritten{Term: h.term(t, d), Fenced: d.HasArg("fenced"), Err: transcript.Str(d, "err")}
	case "write-failed":
		ev = MapWriteFailed{Term: h.term(t, d), Fenced: d.HasArg("fenced"), Err: transcript.Str(d, "err")}
	case "master-left":
		ev = MasterLeft{ID: d.CmdArgs[0].Key}
	case "shutdown":
		ev = Shutdown{Crashed: d.HasArg("crashed")}
	default:
		t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	}
	acts, err := h.mc.Step(h.now, ev)
	var lines []string
	if err != nil {
		lines = append(lines, "error: "+err.Error())
	}
	for _, a := range acts {
		if s, ok := a.(SendAcquire); ok {
			h.lastSent, h.lastTTL = h.now, s.TTL
		}
		lines = append(lines, FormatAction(a, t0()))
	}
	if len(acts) == 0 && err == nil {
		lines = append(lines, "(nothing)")
	}
	return strings.Join(append(lines, h.state()), "\n") + "\n"
}

// result parses one input line of hb: "c1 seq=1 [term=1] [failed] [shards=0@3]".
func (h *harness) result(t *testing.T, d *datadriven.TestData, line string) HeartbeatResult {
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("%s: bad result line %q", d.Pos, line)
	}
	r := HeartbeatResult{Term: h.mc.Term(), Coreapp: f[0]}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "seq":
			r.Seq = atou(t, d, v)
		case "term":
			r.Term = atou(t, d, v)
		case "failed":
			r.Failed = true
		case "shards":
			for _, se := range strings.Split(v, ",") {
				s, e, _ := strings.Cut(se, "@")
				r.Shards = append(r.Shards, failover.ServedShard{Shard: int(atou(t, d, s)), Epoch: atou(t, d, e)})
			}
		default:
			t.Fatalf("%s: unknown key %q in %q", d.Pos, k, line)
		}
	}
	if r.Shards == nil && !r.Failed {
		r.Shards = []failover.ServedShard{}
	}
	return r
}

func parseMap(t *testing.T, d *datadriven.TestData) failover.ShardMap {
	m := failover.ShardMap{MaxEpoch: transcript.Num(t, d, "max_epoch")}
	v := transcript.Str(d, "map")
	if v == "" {
		return m
	}
	for i, o := range strings.Split(v, ",") {
		a := failover.Assignment{Shard: i}
		if o != "-" {
			c, e, _ := strings.Cut(o, "@")
			a.Coreapp, a.Epoch = c, atou(t, d, e)
		}
		m.Assignments = append(m.Assignments, a)
	}
	return m
}

func atou(t *testing.T, d *datadriven.TestData, s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", d.Pos, s, err)
	}
	return v
}

// state is one line: the time, then what the queries say.
func (h *harness) state() string {
	l := h.mc.Lease()
	until := "-"
	if u := l.ValidUntil(); !u.IsZero() {
		until = u.Sub(t0()).String()
	}
	wake := "none"
	if w := h.mc.NextWake(); !w.IsZero() {
		wake = w.Sub(t0()).String()
	}
	return fmt.Sprintf("> at=%s primary=%v term=%d until=%s epoch=%d reserved=%d waiting=%v next-wake=%s",
		h.now.Sub(t0()), h.mc.Primary(), h.mc.Term(), until, l.Epoch(), l.Reserved(), h.mc.Waiting(), wake)
}
