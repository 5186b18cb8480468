package books

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRandomRuns steps the books through seeded random runs (three
// masters' commands at random lease epochs, sessions answering, pinging
// and ending in any order, ticks at random times) and checks after every
// Step what the coreapp's fencing rests on: the lease epochs of accepted
// commands never go down, a refused command changes nothing, every shard
// held has its session open, and no shard ever has two accepted sessions
// open at once. Each run is done twice and must give the same transcript.
func TestRandomRuns(t *testing.T) {
	for seed := range uint64(200) {
		if a, b := randomRun(t, seed), randomRun(t, seed); a != b {
			t.Fatalf("seed %d: two runs differ", seed)
		}
	}
}

func randomRun(t *testing.T, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0xb00c5))
	b, now := New("c1"), t0()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d at %s: %s", seed, now.Sub(t0()), fmt.Sprintf(format, args...))
	}
	// What a driver knows of its sessions: open (not closed, not ended),
	// awaiting their first answer, and accepted by the gateway.
	open, unanswered, accepted := map[key]bool{}, map[key]bool{}, map[key]bool{}
	// lastAccepted is the highest lease epoch the coreapp has heard from
	// a master it listened to: accepted commands and every heartbeat
	// (heartbeats are never refused, but raise the bar for commands).
	var lastAccepted uint64
	var out []string
	for range 400 {
		now = now.Add(time.Duration(r.IntN(2000)) * time.Millisecond)
		sh := int32(r.IntN(3))
		lease, epoch := uint64(1+r.IntN(5)), uint64(1+r.IntN(12))
		var ev Event
		switch k := r.IntN(12); {
		case k < 3:
			ev = AssignAsked{LeaseEpoch: lease, Shard: sh, Shards: 4, Epoch: epoch}
		case k < 5:
			if held := b.Served(); len(held) > 0 && r.IntN(2) == 0 {
				s := held[r.IntN(len(held))]
				sh, epoch = s.Shard, s.Epoch
			}
			ev = ReleaseAsked{LeaseEpoch: lease, Shard: sh, Epoch: epoch}
		case k < 6:
			ev = HeartbeatAsked{LeaseEpoch: lease}
		case k < 7:
			ev = Tick{}
		case k < 8 && r.IntN(10) == 0:
			ev = StopAsked{}
		default:
			// A session event the driver could post: a first answer for one
			// awaiting it, else a ping or an end for an accepted one.
			var ks []key
			for k := range unanswered {
				ks = append(ks, k)
			}
			for k := range accepted {
				if open[k] {
					ks = append(ks, k)
				}
			}
			if len(ks) == 0 {
				continue
			}
			sortKeys(ks)
			k := ks[r.IntN(len(ks))]
			switch n := r.IntN(4); {
			case unanswered[k] && n < 2:
				ev = SessionAccepted{Shard: k.shard, Epoch: k.epoch, SilentAfter: time.Duration(r.IntN(4)) * time.Second}
			case unanswered[k]:
				ev = SessionRejected{Shard: k.shard, Epoch: k.epoch}
			case n < 2:
				ev = GatewayPinged{Shard: k.shard, Epoch: k.epoch}
			case n < 3:
				ev = SessionReplaced{Shard: k.shard, Epoch: k.epoch}
			default:
				ev = SessionEnded{Shard: k.shard, Epoch: k.epoch}
			}
		}
		before := clone(b)
		acts, err := b.Step(now, ev)
		if err != nil {
			fail("%T: %v", ev, err)
		}
		line := fmt.Sprintf("%s %+v:", now.Sub(t0()), ev)
		for _, a := range acts {
			line += " " + FormatAction(a) + ";"
		}
		out = append(out, line)

		switch ev := ev.(type) {
		case SessionAccepted:
			delete(unanswered, key{ev.Shard, ev.Epoch})
			accepted[key{ev.Shard, ev.Epoch}] = true
		case SessionRejected:
			delete(unanswered, key{ev.Shard, ev.Epoch})
			delete(open, key{ev.Shard, ev.Epoch})
		case SessionReplaced:
			delete(open, key{ev.Shard, ev.Epoch})
		case SessionEnded:
			delete(open, key{ev.Shard, ev.Epoch})
		}
		for i, a := range acts {
			switch a := a.(type) {
			case Refuse:
				if len(acts) != 1 || !reflect.DeepEqual(before, clone(b)) {
					fail("%+v refused with %v but changed the books", ev, acts)
				}
			case Accept:
				if i != 0 {
					fail("accept not first: %v", acts)
				}
				var le uint64
				switch ev := ev.(type) {
				case AssignAsked:
					le = ev.LeaseEpoch
				case ReleaseAsked:
					le = ev.LeaseEpoch
				case HeartbeatAsked:
					lastAccepted = max(lastAccepted, ev.LeaseEpoch)
					continue
				default:
					continue
				}
				if le < lastAccepted {
					fail("accepted %+v at lease epoch %d after one at %d", ev, le, lastAccepted)
				}
				lastAccepted = le
			case OpenSession:
				k := key{a.Shard, a.Epoch}
				if open[k] || accepted[k] {
					fail("opened %v twice", k)
				}
				open[k], unanswered[k] = true, true
			case CloseSession:
				delete(open, key{a.Shard, a.Epoch})
			}
		}
		if b.LeaseEpoch() < before.leaseEpoch {
			fail("lease epoch went down: %d -> %d", before.leaseEpoch, b.LeaseEpoch())
		}
		perShard := map[int32]int{}
		for k := range open {
			if accepted[k] {
				perShard[k.shard]++
				if perShard[k.shard] > 1 {
					fail("shard %d has two accepted sessions open: %v", k.shard, open)
				}
			}
		}
		for _, s := range b.Served() {
			if !open[key{s.Shard, s.Epoch}] {
				fail("books hold %d@%d whose session is closed", s.Shard, s.Epoch)
			}
		}
		// A deadline may pass between ticks, but a Tick fires every due one.
		if w := b.NextWake(); isTick(ev) && !w.IsZero() && !w.After(now) {
			fail("a Tick at %s left NextWake at %s", now.Sub(t0()), w.Sub(t0()))
		}
	}
	return strings.Join(out, "\n")
}

func isTick(ev Event) bool { _, ok := ev.(Tick); return ok }

func sortKeys(ks []key) {
	slices.SortFunc(ks, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.shard, b.shard), cmp.Compare(a.epoch, b.epoch))
	})
}

// clone copies b deeply, to compare before and after a Step.
func clone(b *Books) *Books {
	c := *b
	c.seen = maps.Clone(b.seen)
	c.closeOnAnswer = maps.Clone(b.closeOnAnswer)
	c.held = nil
	for _, s := range b.held {
		cp := *s
		c.held = append(c.held, &cp)
	}
	return &c
}
