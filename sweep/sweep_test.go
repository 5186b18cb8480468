package sweep

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/scenarios"
)

func TestParseSet(t *testing.T) {
	for _, tc := range []struct {
		in, field, values, err string
	}{
		{in: "heartbeat_interval=1,2,5", field: "heartbeat_interval", values: "1 2 5"},
		{in: "log_level=debug, info", field: "log_level", values: `"debug" "info"`},
		{in: `log_level="warn"`, field: "log_level", values: `"warn"`},
		{in: "verbose_logging=true,false", field: "verbose_logging", values: "true false"},
		{in: "unhealthy_interval=", err: "empty value"},
		{in: "unhealthy_interval", err: "want FIELD=V1,V2"},
		{in: "=1,2", err: "want FIELD=V1,V2"},
		{in: "unhealthy_interval=3,,5", err: "empty value"},
		{in: "unhealthy_interval=[3]", err: "not a JSON scalar"},
		{in: `webhooks={"url":1}`, err: "not a JSON scalar"},
	} {
		s, err := ParseSet(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSet(%q) = %v, want error with %q", tc.in, err, tc.err)
			}
			continue
		}
		var vals []string
		for _, v := range s.Values {
			vals = append(vals, string(v))
		}
		if err != nil || s.Field != tc.field || strings.Join(vals, " ") != tc.values {
			t.Errorf("ParseSet(%q) = %s %v, %v; want %s %s", tc.in, s.Field, vals, err, tc.field, tc.values)
		}
	}
}

func TestProductOrder(t *testing.T) {
	a, _ := ParseSet("heartbeat_interval=1,2")
	b, _ := ParseSet("unhealthy_interval=3,5,10")
	var got []string
	for _, c := range Product([]Set{a, b}) {
		got = append(got, c.String())
	}
	want := []string{
		"heartbeat_interval=1 unhealthy_interval=3", "heartbeat_interval=1 unhealthy_interval=5", "heartbeat_interval=1 unhealthy_interval=10",
		"heartbeat_interval=2 unhealthy_interval=3", "heartbeat_interval=2 unhealthy_interval=5", "heartbeat_interval=2 unhealthy_interval=10",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Product:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(Product(nil)); n != 1 {
		t.Errorf("Product of no sets: %d combinations, want the one empty combination", n)
	}
}

func TestCheckFields(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		err  string
	}{
		{sets: []string{"heartbeat_interval=1", "unhealthy_interval=0"}}, // a bad value is a combination's problem
		{sets: []string{"heartbeat_intervl=1"}, err: "heartbeat_intervl: unknown field"},
		{sets: []string{"webhooks.nope=1"}, err: "unknown field"},
		{sets: []string{"unhealthy_interval=3", "unhealthy_interval=5"}, err: "given twice"},
	} {
		var sets []Set
		for _, s := range tc.sets {
			p, err := ParseSet(s)
			if err != nil {
				t.Fatal(err)
			}
			sets = append(sets, p)
		}
		err := CheckFields(sets)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckFields(%v) = %v, want %q", tc.sets, err, tc.err)
		}
	}
}

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		base, set, want, err string
	}{
		// PATCH semantics: the combination's field replaces, the rest stay.
		{base: `{"heartbeat_interval":1,"unhealthy_interval":3}`, set: "unhealthy_interval=10", want: `{"heartbeat_interval":1,"unhealthy_interval":10}`},
		{base: ``, set: "heartbeat_interval=2", want: `{"heartbeat_interval":2}`},
		// The service's cross-field rule, over the merged result.
		{base: `{"heartbeat_interval":5,"unhealthy_interval":30}`, set: "unhealthy_interval=3", err: "unhealthy_interval: must be greater than heartbeat_interval (5)"},
		{base: `{"heartbeat_interval":1}`, set: "heartbeat_interval=0", err: "heartbeat_interval"},
		{base: ``, set: "webhooks.url=ftp://x", err: "webhooks.url"},
	} {
		s, _ := ParseSet(tc.set)
		got, err := Merge(json.RawMessage(tc.base), Product([]Set{s})[0])
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Merge(%s, %s) = %s, %v; want error with %q", tc.base, tc.set, got, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Merge(%s, %s) = %s, %v; want %s", tc.base, tc.set, got, err, tc.want)
		}
	}
}

func TestFalseFailovers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	iv := Intervals{{At: t0, Heartbeat: time.Second, Unhealthy: 3 * time.Second}} // window 4 s
	for _, tc := range []struct {
		name   string
		decl   scenarios.Declaration
		faults []Fault
		want   int
	}{
		{"no fault at all", scenarios.Declaration{At: at(10), Master: "master-1", Coreapp: "coreapp-1"}, nil, 1},
		{"the coreapp killed before", scenarios.Declaration{At: at(10), Master: "master-1", Coreapp: "coreapp-1"}, []Fault{{Node: "coreapp-1", Start: at(7)}}, 0},
		{"the declaring master cut off", scenarios.Declaration{At: at(10), Master: "master-1", Coreapp: "coreapp-1"}, []Fault{{Node: "master-1", Start: at(5), End: at(12)}}, 0},
		{"a fault that ended within the window", scenarios.Declaration{At: at(10), Master: "master-1", Coreapp: "coreapp-1"}, []Fault{{Node: "coreapp-1", Start: at(2), End: at(6.5)}}, 0},
		{"a fault that ended before the window", scenarios.Declaration{At: at(10), Master: "master-1", Coreapp: "coreapp-1"}, []Fault{{Node: "coreapp-1", Start: at(2), End: at(5.5)}}, 1},
		{"a fault after the declaration", scenarios.Declaration{At: at(10), Master: "master-1", Coreapp: "coreapp-1"}, []Fault{{Node: "coreapp-1", Start: at(11)}}, 1},
		{"another coreapp's fault", scenarios.Declaration{At: at(10), Master: "master-1", Coreapp: "coreapp-1"}, []Fault{{Node: "coreapp-2", Start: at(8)}}, 1},
	} {
		if got := FalseFailovers([]scenarios.Declaration{tc.decl}, tc.faults, iv, 0); got != tc.want {
			t.Errorf("%s: %d false failovers, want %d", tc.name, got, tc.want)
		}
	}
}

// The window follows a live change of the intervals: a coreapp killed at
// 2 s and restarted at 6 s under unhealthy 3 s, declared at 15 s because the
// run raised unhealthy_interval to 10 s at 5 s, is explained (the largest
// intervals in force during the window count), while the same declaration
// with the change at 30 s (after it) is a false failover.
func TestFalseFailoversFollowLiveIntervals(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	decl := []scenarios.Declaration{{At: at(15), Master: "master-1", Coreapp: "coreapp-1"}}
	killed := []Fault{{Node: "coreapp-1", Start: at(2), End: at(6)}}
	start := IntervalsFrom{At: t0, Heartbeat: time.Second, Unhealthy: 3 * time.Second}
	for _, tc := range []struct {
		name string
		iv   Intervals
		want int
	}{
		{"raised at 5 s, before the declaration", Intervals{start, {At: at(5), Heartbeat: time.Second, Unhealthy: 10 * time.Second}}, 0},
		{"raised at 30 s, after it", Intervals{start, {At: at(30), Heartbeat: time.Second, Unhealthy: 10 * time.Second}}, 1},
		{"never raised", Intervals{start}, 1},
		{"lowered at 5 s", Intervals{{At: t0, Heartbeat: time.Second, Unhealthy: 10 * time.Second}, {At: at(5), Heartbeat: time.Second, Unhealthy: 3 * time.Second}}, 0},
		{"lowered at 1 s, long before", Intervals{{At: t0, Heartbeat: time.Second, Unhealthy: 10 * time.Second}, {At: at(1), Heartbeat: time.Second, Unhealthy: 3 * time.Second}}, 1},
	} {
		if got := FalseFailovers(decl, killed, tc.iv, 0); got != tc.want {
			t.Errorf("%s: %d false failovers, want %d (window %v)", tc.name, got, tc.want, tc.iv.Window(at(15), 0))
		}
	}
}

func TestPerHour(t *testing.T) {
	for _, tc := range []struct {
		n    int
		d    time.Duration
		want float64
	}{
		{0, time.Hour, 0},
		{3, 30 * time.Minute, 6},
		{1, 20 * 90 * time.Second, 2}, // 20 runs of 90 s = half an hour
		{5, 0, 0},
	} {
		if got := PerHour(tc.n, tc.d); got != tc.want {
			t.Errorf("PerHour(%d, %v) = %v, want %v", tc.n, tc.d, got, tc.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	v := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := Percentile(v, 0.5); p != 5 {
		t.Errorf("p50 = %v, want 5", p)
	}
	if p := Percentile(v, 0.99); p != 10 {
		t.Errorf("p99 = %v, want 10", p)
	}
	if p := Percentile(nil, 0.5); p != 0 {
		t.Errorf("p50 of nothing = %v, want 0", p)
	}
}
