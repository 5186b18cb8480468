package failover

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func at(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }

func TestUnhealthyAt(t *testing.T) {
	for _, tc := range []struct {
		from time.Time
		ui   time.Duration
		want time.Time
	}{
		{at(5), 30 * time.Second, at(35)},
		{at(0), time.Second, at(1)},
		{at(12.5), 10 * time.Second, at(22.5)},
	} {
		if got := UnhealthyAt(tc.from, tc.ui); !got.Equal(tc.want) {
			t.Errorf("UnhealthyAt(%v, %v) = %v, want %v", tc.from.Sub(base), tc.ui, got.Sub(base), tc.want.Sub(base))
		}
	}
}

func TestClockFrom(t *testing.T) {
	for _, tc := range []struct {
		earliest, resumed, want time.Time
	}{
		{at(5), time.Time{}, at(5)}, // no stall yet
		{at(5), at(3), at(5)},       // stall before the heartbeat: irrelevant
		{at(5), at(60), at(60)},     // stall after it: clock restarts at resume
		{at(5), at(5), at(5)},
	} {
		if got := ClockFrom(tc.earliest, tc.resumed); !got.Equal(tc.want) {
			t.Errorf("ClockFrom(%v, %v) = %v, want %v", tc.earliest, tc.resumed, got, tc.want)
		}
	}
}

func TestPendingDeadline(t *testing.T) {
	for _, tc := range []struct {
		from time.Time
		ui   time.Duration
		now  time.Time
		want time.Time
	}{
		{at(5), 60 * time.Second, at(20), at(65)}, // raised: later
		{at(5), 20 * time.Second, at(20), at(25)}, // lowered, still ahead
		{at(5), 10 * time.Second, at(20), at(20)}, // lowered into the past: now
		{at(5), 15 * time.Second, at(20), at(20)}, // exactly now
	} {
		if got := PendingDeadline(tc.from, tc.ui, tc.now); !got.Equal(tc.want) {
			t.Errorf("PendingDeadline(%v, %v, %v) = %v, want %v", tc.from.Sub(base), tc.ui, tc.now.Sub(base), got.Sub(base), tc.want.Sub(base))
		}
	}
}

func TestNextHeartbeatAt(t *testing.T) {
	for _, tc := range []struct {
		last time.Time
		hi   time.Duration
		now  time.Time
		want time.Time
	}{
		{at(5), 5 * time.Second, at(6), at(10)},
		{at(5), time.Second, at(5.5), at(6)},
		{at(5), time.Second, at(7), at(7)}, // already past: at once
	} {
		if got := NextHeartbeatAt(tc.last, tc.hi, tc.now); !got.Equal(tc.want) {
			t.Errorf("NextHeartbeatAt(%v, %v, %v) = %v, want %v", tc.last.Sub(base), tc.hi, tc.now.Sub(base), got.Sub(base), tc.want.Sub(base))
		}
	}
}

func TestServedAgainBound(t *testing.T) {
	for _, tc := range []struct {
		crash         time.Time
		hb, ui        time.Duration
		early, latest time.Time
	}{
		{at(12), 5 * time.Second, 30 * time.Second, at(42), at(47)},
		{at(0), time.Second, 3 * time.Second, at(3), at(4)},
	} {
		e, l := ServedAgainBound(tc.crash, Config{HeartbeatInterval: tc.hb, UnhealthyInterval: tc.ui})
		if !e.Equal(tc.early) || !l.Equal(tc.latest) {
			t.Errorf("ServedAgainBound(%v, hb=%v ui=%v) = %v..%v, want %v..%v", tc.crash.Sub(base), tc.hb, tc.ui, e.Sub(base), l.Sub(base), tc.early.Sub(base), tc.latest.Sub(base))
		}
	}
}

func TestIsStall(t *testing.T) {
	th := 2500 * time.Millisecond
	for _, tc := range []struct {
		wanted, actual time.Time
		want           bool
	}{
		{at(15), at(15), false},
		{at(15), at(17.5), false}, // exactly the threshold: not a stall
		{at(15), at(17.6), true},
		{at(15), at(60), true},
		{at(15), at(10), false},       // early (an event before the wake)
		{time.Time{}, at(100), false}, // nothing was pending
	} {
		if got := IsStall(tc.wanted, tc.actual, th); got != tc.want {
			t.Errorf("IsStall(%v, %v, %v) = %v, want %v", tc.wanted, tc.actual, th, got, tc.want)
		}
	}
}

func TestChooseStandby(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cands []Candidate
		want  string
	}{
		{"none", nil, ""},
		{"smallest id among never troubled", []Candidate{{ID: "c3"}, {ID: "c2"}, {ID: "c9"}}, "c2"},
		{"never troubled beats troubled", []Candidate{{ID: "c1", TroubleAt: at(5)}, {ID: "c7"}}, "c7"},
		{"least recently troubled", []Candidate{{ID: "c1", TroubleAt: at(50)}, {ID: "c2", TroubleAt: at(10)}}, "c2"},
		{"tie on trouble: smallest id", []Candidate{{ID: "c4", TroubleAt: at(10)}, {ID: "c3", TroubleAt: at(10)}}, "c3"},
	} {
		got, ok := ChooseStandby(tc.cands)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: ChooseStandby = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}

func TestValidation(t *testing.T) {
	good := Config{HeartbeatInterval: 5 * time.Second, UnhealthyInterval: 30 * time.Second, Shards: 2}
	for _, tc := range []struct {
		name string
		cfg  Config
		m    ShardMap
		want []string
	}{
		{"bad config lists every field", Config{Shards: 3, StallThreshold: -1}, ShardMap{},
			[]string{"HeartbeatInterval: must be > 0, got 0s", "UnhealthyInterval: must be > 0, got 0s", "Shards: must be one of 1, 2, 4, 8, 16, 32, got 3", "StallThreshold: must be >= 0, got -1ns"}},
		{"map epoch above max", good, ShardMap{MaxEpoch: 1, Assignments: []Assignment{{0, "c1", 2}, {1, "", 0}}},
			[]string{"ShardMap.Assignments[0].Epoch: must be <= MaxEpoch 1, got 2"}},
		{"map shard index", good, ShardMap{MaxEpoch: 3, Assignments: []Assignment{{1, "c1", 2}, {1, "", 0}}},
			[]string{"ShardMap.Assignments[0].Shard: must equal its index 0, got 1"}},
		{"map length", good, ShardMap{MaxEpoch: 3, Assignments: []Assignment{{0, "c1", 2}, {1, "", 0}, {2, "", 0}}},
			[]string{"ShardMap.Assignments: length must be one of"}},
		{"assigned with epoch 0", good, ShardMap{Assignments: []Assignment{{0, "c1", 0}, {1, "", 0}}},
			[]string{"ShardMap.Assignments[0].Epoch: an assigned shard needs an epoch >= 1, got 0"}},
	} {
		_, err := New(tc.cfg, tc.m, base)
		if err == nil {
			t.Errorf("%s: New succeeded", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, w)
			}
		}
	}
}

func TestStepRejectsBadInputAndChangesNothing(t *testing.T) {
	cfg := Config{HeartbeatInterval: 5 * time.Second, UnhealthyInterval: 30 * time.Second, Shards: 1}
	c, err := New(cfg, ShardMap{}, base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Step(at(1), CoreappJoined{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	before := c.ShardMap()
	wake := c.NextWake()
	for _, tc := range []struct {
		now  time.Time
		ev   Event
		want string
	}{
		{at(0), Tick{}, "now: must not go backwards"},
		{at(2), nil, "event: must not be nil"},
		{at(2), CoreappJoined{}, "CoreappJoined.ID: must be a coreapp id"},
		{at(2), CoreappLeft{ID: "c9"}, `CoreappLeft.ID: unknown coreapp "c9"`},
		{at(2), HeartbeatAnswered{ID: "c1", Seq: 2}, `HeartbeatAnswered.Seq: must be a sent heartbeat seq in 1..1 for "c1", got 2`},
		{at(2), HeartbeatAnswered{ID: "c1", Seq: 1, Shards: []ServedShard{{Shard: -1}}}, "HeartbeatAnswered.Shards[0].Shard: must be >= 0, got -1"},
		{at(2), HeartbeatFailed{ID: "c1", Seq: 0}, "HeartbeatFailed.Seq"},
		{at(2), AssignDone{Shard: 0, Coreapp: "c1"}, "AssignDone.Epoch: must be >= 1, got 0"},
		{at(2), SettingsChanged{HeartbeatInterval: time.Second}, "SettingsChanged.UnhealthyInterval: must be > 0, got 0s"},
		{at(2), ShardCountChanged{N: 64}, "ShardCountChanged.N: must be one of 1, 2, 4, 8, 16, 32, got 64"},
		{at(2), Stalled{Gap: -time.Second}, "Stalled.Gap: must be >= 0, got -1s"},
	} {
		acts, err := c.Step(tc.now, tc.ev)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Step(%#v) = %v, %v; want error containing %q", tc.ev, acts, err, tc.want)
		}
	}
	if _, err := c.Step(at(2), HeartbeatFailed{ID: "gone", Seq: 1}); !errors.Is(err, ErrUnknownCoreapp) {
		t.Errorf("unknown coreapp: got %v, want ErrUnknownCoreapp", err)
	}
	if !equalMaps(before, c.ShardMap()) || !c.NextWake().Equal(wake) {
		t.Errorf("bad input changed the core: map %v -> %v, wake %v -> %v", before, c.ShardMap(), wake, c.NextWake())
	}
}

// TestNewWithDifferentShardCount: a persisted map for 2 shards resumed with
// Shards=4 is re-mapped on the first Step, persist first.
func TestNewWithDifferentShardCount(t *testing.T) {
	cfg := Config{HeartbeatInterval: 5 * time.Second, UnhealthyInterval: 30 * time.Second, Shards: 4}
	c, err := New(cfg, ShardMap{MaxEpoch: 5, Assignments: []Assignment{{0, "c1", 4}, {1, "c2", 5}}}, base)
	if err != nil {
		t.Fatal(err)
	}
	if !c.NextWake().Equal(base) {
		t.Fatalf("NextWake = %v, want now", c.NextWake())
	}
	acts, err := c.Step(base, Tick{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acts {
		got = append(got, FormatAction(a, base))
	}
	want := []string{
		"send-heartbeat c1 seq=1",
		"send-heartbeat c2 seq=1",
		"shard-unassigned shard=2 (no healthy standby)",
		"shard-unassigned shard=3 (no healthy standby)",
		"persist max_epoch=7 0:c1@6 1:c2@7 2:- 3:-",
		"assign shard=0 to=c1 epoch=6 shards=4",
		"assign shard=1 to=c2 epoch=7 shards=4",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
