package primary

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mcsim/mcsim/master/failover"
)

// TestNeverActsUnheldOrUndurable drives a Machine with random runs
// (seeded) as a driver would: a store that grants, refuses and fails,
// answers that come back late or never, coreapps that die and come back,
// map loads and writes that are slow or fail, live setting changes,
// membership changes, ticks at NextWake and late. After every Step it
// checks:
//
//   - no SendHeartbeat, Assign, Release or WriteMap is emitted unless the
//     lease is held by the own clock at the Step's now (the send time plus
//     TTL of the last successful grant, or earlier if a renewal with a
//     shorter TTL went out since), with the lease epoch of that grant;
//   - no Assign is emitted with an epoch above the store's durable
//     max_epoch (what a load returned or a waited write made durable);
//   - while a batch waits for its write, every other event is refused and
//     nothing more is emitted;
//   - a primary wants to be woken no later than its lease's end.
func TestNeverActsUnheldOrUndurable(t *testing.T) {
	for seed := range uint64(300) {
		propertyRun(t, seed)
	}
}

type queued struct {
	at time.Time
	ev Event
}

type fakeCoreapp struct {
	alive  bool
	served map[int]uint64
}

func propertyRun(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x9e1))
	cfg := Config{ID: "m1"}
	if r.IntN(3) == 0 {
		cfg.LeaseTTL = time.Duration(2+r.IntN(4)) * time.Second
	}
	mc := New(cfg)
	now := t0()
	var (
		queue    []queued
		lastEnd  time.Time // send time + TTL of the last successful grant
		capEnd   time.Time // the earliest end of a request sent since (zero: none)
		grantEp  uint64    // the epoch of that grant
		epoch    uint64    = 1
		stored   failover.ShardMap
		durable  uint64 // the stored max_epoch: loaded or written and waited for
		coreapps = map[string]*fakeCoreapp{}
		ids      = []string{"c1", "c2", "c3", "c4"}
		set      = Settings{HeartbeatInterval: time.Second, UnhealthyInterval: 3 * time.Second, Shards: 2}
	)
	for _, id := range ids {
		coreapps[id] = &fakeCoreapp{alive: true, served: map[int]uint64{}}
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d at +%v: %s", seed, now.Sub(t0()), fmt.Sprintf(format, args...))
	}
	end := func() time.Time {
		if !capEnd.IsZero() && capEnd.Before(lastEnd) {
			return capEnd
		}
		return lastEnd
	}
	later := func(d time.Duration, ev Event) { queue = append(queue, queued{at: now.Add(d), ev: ev}) }
	var step func(ev Event)
	carry := func(acts []Action) {
		for i, a := range acts {
			switch a.(type) {
			case SendHeartbeat, Assign, Release, WriteMap:
				if !now.Before(end()) {
					fail("%s emitted at or after the lease's end by the own clock (+%v)", FormatAction(a, t0()), end().Sub(t0()))
				}
			}
			if w, ok := a.(WriteMap); ok && w.Wait && i < len(acts)-1 {
				fail("%s emitted after the batch began to wait", FormatAction(acts[i+1], t0()))
			}
			switch a := a.(type) {
			case SendAcquire:
				if end := now.Add(a.TTL); capEnd.IsZero() || end.Before(capEnd) {
					capEnd = end
				}
				ans := Answered{SentAt: now, TTL: a.TTL}
				switch k := r.IntN(12); {
				case k < 8:
					ans.Granted, ans.Epoch = true, epoch
				case k < 9:
					epoch++
					ans.Granted, ans.Epoch = true, epoch
				case k < 10:
					epoch++
					ans.Epoch, ans.Holder, ans.Remaining = epoch, "m2", time.Duration(r.IntN(3000))*time.Millisecond
				default:
					ans.Err = errors.New("unavailable")
				}
				if r.IntN(8) > 0 {
					later(time.Duration(r.Int64N(int64(a.Timeout)*2)), ans)
				} else {
					later(a.Timeout, Answered{SentAt: now, TTL: a.TTL, Err: errors.New("deadline exceeded")})
				}
			case LoadShardMap:
				now = now.Add(time.Duration(r.Int64N(int64(a.Timeout)/2 + int64(100*time.Millisecond))))
				var err error
				if r.IntN(8) == 0 {
					err = errors.New("unavailable")
				}
				durable = stored.MaxEpoch
				step(MapLoaded{Map: stored.Clone(), Err: err})
			case SendHeartbeat:
				if a.LeaseEpoch != grantEp {
					fail("heartbeat at lease epoch %d, the grant is %d", a.LeaseEpoch, grantEp)
				}
				c := coreapps[a.Coreapp]
				res := HeartbeatResult{Term: a.Term, Coreapp: a.Coreapp, Seq: a.Seq, Failed: true}
				lat := set.UnhealthyInterval
				if c != nil && c.alive && r.IntN(10) > 0 {
					res.Failed = false
					res.Shards = []failover.ServedShard{}
					for s, e := range c.served {
						res.Shards = append(res.Shards, failover.ServedShard{Shard: s, Epoch: e})
					}
					lat = time.Duration(r.IntN(300)) * time.Millisecond
				}
				later(lat, HeartbeatsDone{Results: []HeartbeatResult{res}})
			case Assign:
				if a.Epoch > durable {
					fail("%s before its epoch is durable (stored max_epoch %d)", FormatAction(a, t0()), durable)
				}
				if a.LeaseEpoch != grantEp {
					fail("assign at lease epoch %d, the grant is %d", a.LeaseEpoch, grantEp)
				}
				c := coreapps[a.Coreapp]
				ok := c != nil && c.alive && r.IntN(10) > 0
				if ok {
					c.served[a.Shard] = a.Epoch
				}
				later(time.Duration(r.IntN(200))*time.Millisecond, AssignDone{Term: a.Term, Shard: a.Shard, Coreapp: a.Coreapp, Epoch: a.Epoch, OK: ok})
			case Release:
				if c := coreapps[a.Coreapp]; c != nil && c.served[a.Shard] == a.Epoch {
					delete(c.served, a.Shard)
				}
			case WriteMap:
				m := a.Map.Clone()
				m.MaxEpoch = a.MaxEpoch
				if !a.Wait {
					if r.IntN(15) == 0 {
						later(time.Duration(r.IntN(300))*time.Millisecond, MapWriteFailed{Term: a.Term, Err: "unavailable"})
					} else {
						stored = m
					}
					continue
				}
				// The loop blocks on the write; another event is refused.
				if _, err := mc.Step(now, Check{}); !errors.Is(err, ErrWaiting) {
					fail("an event while a batch waits: %v, want ErrWaiting", err)
				}
				now = now.Add(time.Duration(r.Int64N(int64(a.Timeout) + int64(time.Second))))
				if r.IntN(5) == 0 {
					step(MapWritten{Term: a.Term, Fenced: r.IntN(2) == 0, Err: "unavailable"})
				} else {
					stored, durable = m, max(durable, m.MaxEpoch)
					step(MapWritten{Term: a.Term})
				}
			}
		}
	}
	step = func(ev Event) {
		if a, ok := ev.(Answered); ok && a.Err == nil && a.Granted {
			lastEnd, capEnd, grantEp = a.SentAt.Add(a.TTL), time.Time{}, a.Epoch
		}
		acts, err := mc.Step(now, ev)
		if err != nil {
			fail("%T: %v", ev, err)
		}
		carry(acts)
		if mc.Primary() && !now.Before(end()) {
			fail("primary at or past the lease's end (+%v) after %T", end().Sub(t0()), ev)
		}
		if w := mc.NextWake(); mc.Primary() && (w.IsZero() || w.After(end())) {
			fail("primary, lease ends at +%v, but NextWake is %v", end().Sub(t0()), w)
		}
	}
	step(set)
	for range 500 {
		switch k := r.IntN(24); {
		case k < 10 && len(queue) > 0:
			i := 0
			for j := range queue {
				if queue[j].at.Before(queue[i].at) {
					i = j
				}
			}
			q := queue[i]
			queue = append(queue[:i], queue[i+1:]...)
			if q.at.After(now) {
				now = q.at
			}
			step(q.ev)
		case k < 16:
			if w := mc.NextWake(); w.After(now) {
				now = w
			}
			if r.IntN(10) == 0 {
				now = now.Add(time.Duration(r.IntN(4000)) * time.Millisecond)
			}
			step(Tick{})
		case k < 18:
			now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
			c := coreapps[ids[r.IntN(len(ids))]]
			c.alive = !c.alive
			if c.alive {
				c.served = map[int]uint64{} // restarted as a standby
			}
		case k < 20:
			now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
			id := ids[r.IntN(len(ids))]
			if r.IntN(4) == 0 {
				step(CoreappLeft{ID: id})
			} else {
				step(CoreappJoined{ID: id})
			}
		case k < 21:
			now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
			hb := time.Duration(1+r.IntN(2)) * time.Second
			set = Settings{HeartbeatInterval: hb, UnhealthyInterval: hb + time.Duration(1+r.IntN(3))*time.Second, Shards: 1 + r.IntN(3)}
			step(set)
		case k < 22:
			now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
			step(MasterLeft{ID: "m2"})
		default:
			now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
			step(Check{})
		}
	}
	step(Shutdown{Crashed: r.IntN(2) == 0})
	if mc.Primary() {
		t.Fatalf("seed %d: primary after Shutdown", seed)
	}
}
