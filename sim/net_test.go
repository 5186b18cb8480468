package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/scenarios"
)

// The network model, message by message: what arrives when on a stream
// (held by a cut, retransmitted under loss, re-timed when a delay heals,
// in order).
func TestNetworkModel(t *testing.T) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }
	type send struct{ at time.Duration }
	cases := []struct {
		name   string
		sends  []send
		tables map[time.Duration][]scenarios.NetLink // the table from a time on
		want   string
	}{
		{"no fault: loopback latency", []send{{0}, {10 * time.Millisecond}}, nil,
			"m0@0.1ms m1@10.1ms"},
		{"a cut holds a stream until the heal, in order",
			[]send{{0}, {10 * time.Millisecond}},
			map[time.Duration][]scenarios.NetLink{0: {{From: "a", To: "b", Cut: true}}, 500 * time.Millisecond: nil},
			"m0@500.1ms m1@500.1ms"},
		{"delay keeps a stream in order",
			[]send{{0}, {1 * time.Millisecond}},
			map[time.Duration][]scenarios.NetLink{0: {{From: "a", To: "b", Latency: 100 * time.Millisecond, Jitter: 50 * time.Millisecond}}},
			"m0@~ m1@~"},
		{"a lost stream message is retransmitted; a heal lets the retransmission through",
			[]send{{0}, {50 * time.Millisecond}},
			map[time.Duration][]scenarios.NetLink{0: {{From: "a", To: "b", LossPercent: 100}}, 500 * time.Millisecond: nil},
			// retransmissions at 200 and 600 ms: the second is after the heal
			"m0@600.1ms m1@600.1ms"},
		{"a heal of a delay releases what is in flight at once",
			[]send{{0}, {10 * time.Millisecond}},
			map[time.Duration][]scenarios.NetLink{0: {{From: "a", To: "b", Latency: 400 * time.Millisecond}}, 100 * time.Millisecond: nil},
			"m0@100.0ms m1@100.0ms"},
		{"a cut during a delay holds what is in flight until the heal",
			[]send{{0}},
			map[time.Duration][]scenarios.NetLink{0: {{From: "a", To: "b", Latency: 400 * time.Millisecond}},
				100 * time.Millisecond: {{From: "a", To: "b", Cut: true}}, 2 * time.Second: nil},
			"m0@2000.1ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(1, Sabotage{})
			var got []string
			var times []time.Duration
			for at, table := range c.tables {
				w.at(epoch().Add(at), func() { w.net.set(table) })
			}
			for i, s := range c.sends {
				w.at(epoch().Add(s.at), func() {
					arrive := func() {
						got = append(got, fmt.Sprintf("m%d", i))
						times = append(times, w.now.Sub(epoch()))
					}
					w.net.stream("a", "b", arrive)
				})
			}
			w.runUntil(epoch().Add(10 * time.Second))
			var out []string
			for i := range got {
				out = append(out, got[i]+"@"+ms(times[i]))
			}
			res := strings.Join(out, " ")
			if strings.Contains(c.want, "~") {
				// Jittered: only the order and the range are fixed.
				if len(got) != 2 || got[0] != "m0" || got[1] != "m1" || times[0] < 50*time.Millisecond || times[1] > 160*time.Millisecond || times[1] < times[0] {
					t.Fatalf("got %s, want m0 then m1, each 50–151 ms", res)
				}
				return
			}
			if res != c.want {
				t.Fatalf("got %q, want %q", res, c.want)
			}
		})
	}
}
