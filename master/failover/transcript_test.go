package failover

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/mcsim/mcsim/internal/transcript"
)

// TestTranscripts runs testdata/*.txt. Regenerate with
// go test ./master/failover -rewrite and review the diff.
//
// Vocabulary (times are offsets from t=0; at= defaults to the current time,
// tick's to NextWake). Before an event at T the harness lets the cluster run
// normally (queued replies, ticks at NextWake) up to just before T, so a
// transcript only jumps time with pause:
//
//	new hb=5s ui=30s shards=2 [stall=1s] [expect=3] [max_epoch=4 map=(c1@3,-)] [at=0s] [verbose]
//	join c1 c2 [at=]            leave c1 [at=]
//	answer c1 seq=1 [serves=(0@3,1@4)|serves=none] [at=]   (default serves: what the simulated c1 serves)
//	fail c1 seq=2 [at=]         assign-done c1 shard=0 epoch=3 [refused] [at=]
//	settings hb=5s ui=30s [at=] shard-count n=4 [at=]   stalled gap=40s [at=]
//	tick [at=]                  status
//	behave c1 up|silent|failing [rtt=10ms]   crash c1 [at=]   (simulated coreapps only)
//	pause until=60s             (the master is stopped: nothing is stepped)
//	run until=60s [verbose]     (auto-drive: coreapps reply, ticks at NextWake;
//	                             heartbeats and their answers hidden unless verbose)
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var h *harness
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "new" && h == nil {
				t.Fatalf("%s: run new first", d.Pos)
			}
			out, err := runCmd(t, &h, d)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

// ids are the bare words of a command (c1 c2 …).
func ids(d *datadriven.TestData) []string {
	var out []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 && strings.HasPrefix(a.Key, "c") {
			out = append(out, a.Key)
		}
	}
	return out
}

func parseEpochPair(t *testing.T, s string) (string, uint64) {
	k, v, ok := strings.Cut(s, "@")
	if !ok {
		t.Fatalf("want x@epoch, got %q", s)
	}
	e, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("epoch in %q: %v", s, err)
	}
	return k, e
}

func runCmd(t *testing.T, hp **harness, d *datadriven.TestData) (string, error) {
	h := *hp
	at := func(def time.Time) time.Time {
		if v, ok := transcript.Dur(t, d, "at"); ok {
			return base.Add(v)
		}
		return def
	}
	var lines []string
	// stepAll first lets the cluster run normally up to when (replies and
	// wake-ups strictly before it), then steps the events at when.
	stepAll := func(when time.Time, evs ...Event) error {
		lines = append(lines, h.run(when, false)...)
		for _, ev := range evs {
			l, err := h.step(when, ev, false)
			if err != nil {
				return err
			}
			lines = append(lines, l...)
		}
		return nil
	}
	var err error
	switch d.Cmd {
	case "new":
		cfg := Config{}
		cfg.HeartbeatInterval, _ = transcript.Dur(t, d, "hb")
		cfg.UnhealthyInterval, _ = transcript.Dur(t, d, "ui")
		cfg.StallThreshold, _ = transcript.Dur(t, d, "stall")
		cfg.Shards = int(transcript.Num(t, d, "shards"))
		if d.HasArg("expect") {
			cfg.StartupCoreapps = int(transcript.Num(t, d, "expect"))
		}
		var m ShardMap
		if a, ok := d.Arg("map"); ok {
			m.MaxEpoch = transcript.Num(t, d, "max_epoch")
			for i, v := range a.Vals {
				as := Assignment{Shard: i}
				if v != "-" {
					as.Coreapp, as.Epoch = parseEpochPair(t, v)
				}
				m.Assignments = append(m.Assignments, as)
			}
		}
		nh, err := newHarness(t, cfg, m, at(base))
		if err != nil {
			return "", err
		}
		nh.verbose = d.HasArg("verbose")
		*hp = nh
		return nh.status(), nil
	case "join":
		when := at(h.now)
		lines = append(lines, h.run(when, false)...)
		var evs []Event
		for _, id := range ids(d) {
			evs = append(evs, CoreappJoined{ID: id})
			if b := h.behaviourOf(id); b.crashed {
				b.down, b.crashed = false, false // it restarted
			}
		}
		err = stepAll(when, evs...)
	case "leave":
		when := at(h.now)
		for _, id := range ids(d) {
			if err = stepAll(when, CoreappLeft{ID: id}); err != nil {
				break
			}
			h.crash(id)
		}
	case "answer":
		ev := HeartbeatAnswered{ID: ids(d)[0], Seq: transcript.Num(t, d, "seq"), Shards: h.served(ids(d)[0])}
		if a, ok := d.Arg("serves"); ok {
			ev.Shards = []ServedShard{}
			for _, v := range a.Vals {
				if v == "none" {
					continue
				}
				s, e := parseEpochPair(t, v)
				n, _ := strconv.Atoi(s)
				ev.Shards = append(ev.Shards, ServedShard{Shard: n, Epoch: e})
			}
		}
		err = stepAll(at(h.now), ev)
	case "fail":
		err = stepAll(at(h.now), HeartbeatFailed{ID: ids(d)[0], Seq: transcript.Num(t, d, "seq")})
	case "assign-done":
		err = stepAll(at(h.now), AssignDone{Coreapp: ids(d)[0], Shard: int(transcript.Num(t, d, "shard")), Epoch: transcript.Num(t, d, "epoch"), OK: !d.HasArg("refused")})
	case "settings":
		hb, _ := transcript.Dur(t, d, "hb")
		ui, _ := transcript.Dur(t, d, "ui")
		err = stepAll(at(h.now), SettingsChanged{HeartbeatInterval: hb, UnhealthyInterval: ui})
	case "shard-count":
		err = stepAll(at(h.now), ShardCountChanged{N: int(transcript.Num(t, d, "n"))})
	case "stalled":
		gap, _ := transcript.Dur(t, d, "gap")
		err = stepAll(at(h.now), Stalled{Gap: gap})
	case "tick":
		when, ok := transcript.Dur(t, d, "at")
		if !ok {
			lines = append(lines, h.run(h.c.NextWake(), false)...)
			err = stepAll(h.c.NextWake(), Tick{})
		} else {
			err = stepAll(base.Add(when), Tick{})
		}
	case "pause":
		until, _ := transcript.Dur(t, d, "until")
		h.pause(base.Add(until))
		return "ok\n", nil
	case "behave":
		lines = append(lines, h.run(at(h.now), false)...)
		for _, id := range ids(d) {
			b := h.behaviourOf(id)
			b.silent, b.failing = d.HasArg("silent"), d.HasArg("failing")
			if v, ok := transcript.Dur(t, d, "rtt"); ok {
				b.rtt = v
			}
		}
		lines = append(lines, "ok")
		return strings.Join(lines, "\n") + "\n", nil
	case "crash":
		lines = append(lines, h.run(at(h.now), false)...)
		for _, id := range ids(d) {
			h.crash(id)
		}
		lines = append(lines, "ok")
		return strings.Join(lines, "\n") + "\n", nil
	case "run":
		until, _ := transcript.Dur(t, d, "until")
		v := h.verbose
		h.verbose = v || d.HasArg("verbose")
		lines = h.run(base.Add(until), true)
		h.verbose = v
	case "status":
		return h.status(), nil
	default:
		t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	}
	if err != nil {
		return "", err
	}
	w := "none"
	if nw := h.c.NextWake(); !nw.IsZero() {
		w = nw.Sub(base).String()
	}
	lines = append(lines, "next-wake "+w)
	return strings.Join(lines, "\n") + "\n", nil
}
