package lease

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestNeverPrimaryPastOwnLease drives a Term with random runs (seeded) as
// the driver would: answers that come back late or never, refusals, new
// epochs, map loads and writes that are slow or fail, live interval
// changes, masters leaving, ticks at NextWake and at random times. After
// every Step it checks rule 3: the Term acts as primary (between
// BecomePrimary and StepDown) only while now is before the send time plus
// TTL of its last successful renewal, by its own clock; and while primary
// it wants to be woken no later than that end, so a driver that sleeps
// until NextWake cannot oversleep it.
func TestNeverPrimaryPastOwnLease(t *testing.T) {
	for seed := range uint64(300) {
		randomRun(t, seed)
	}
}

type pending struct {
	at time.Time
	ev Event
}

func randomRun(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x1ea5e))
	cfg := Config{ID: "m1"}
	if r.IntN(3) == 0 {
		cfg.TTL = time.Duration(1+r.IntN(5)) * time.Second
	}
	term := New(cfg)
	now := t0()
	var (
		queue   []pending // answers and background failures, in time order
		primary bool      // what the actions said
		lastEnd time.Time // send time + TTL of the last successful grant
		// capEnd is the earliest end a request sent since that grant may
		// have set in the store (its send time + TTL; zero: none): a
		// renewal with a shorter TTL that the store applied but whose
		// answer was lost moves the store's expiry earlier.
		capEnd   time.Time
		inFlight bool
		epoch    uint64 = 1
	)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d at +%v: %s", seed, now.Sub(t0()), fmt.Sprintf(format, args...))
	}
	settings := func() Settings {
		hb := time.Duration(1+r.IntN(4)) * time.Second
		return Settings{HeartbeatInterval: hb, UnhealthyInterval: hb + time.Duration(1+r.IntN(6))*time.Second}
	}
	var step func(ev Event)
	// carry out what the Term decided, as the driver does.
	carry := func(acts []Action) {
		for _, a := range acts {
			switch a := a.(type) {
			case SendAcquire:
				if inFlight {
					fail("a second acquire while one is in flight")
				}
				inFlight = true
				if end := now.Add(a.TTL); capEnd.IsZero() || end.Before(capEnd) {
					capEnd = end
				}
				sent := now.Add(time.Duration(r.IntN(20)) * time.Millisecond)
				ans := Answered{SentAt: sent, TTL: a.TTL}
				switch k := r.IntN(10); {
				case k < 6:
					ans.Granted, ans.Epoch = true, epoch
				case k < 7:
					epoch++ // it lapsed in the store and was granted again
					ans.Granted, ans.Epoch = true, epoch
				case k < 8:
					epoch++
					ans.Epoch, ans.Holder, ans.Remaining = epoch, "m2", time.Duration(r.IntN(4000))*time.Millisecond
				default:
					ans.Err = errors.New("unavailable")
				}
				// Answered within the timeout, or late, or never.
				if r.IntN(8) > 0 {
					lat := time.Duration(r.Int64N(int64(a.Timeout) * 2))
					queue = append(queue, pending{at: sent.Add(lat), ev: ans})
				} else {
					queue = append(queue, pending{at: sent.Add(a.Timeout), ev: Answered{SentAt: sent, TTL: a.TTL, Err: errors.New("deadline exceeded")}})
				}
			case LoadShardMap:
				// The driver blocks on the load: nothing else is stepped.
				now = now.Add(time.Duration(r.Int64N(int64(a.Timeout) + int64(time.Second))))
				var err error
				if r.IntN(6) == 0 {
					err = errors.New("unavailable")
				}
				step(ShardMapLoaded{MaxEpoch: uint64(r.IntN(200)), Err: err})
			case BecomePrimary:
				if primary {
					fail("became primary twice")
				}
				primary = true
				if r.IntN(20) == 0 {
					step(PrimaryAborted{})
				}
			case StepDown:
				if !primary {
					fail("stepped down while not primary: %s", a.Reason)
				}
				primary = false
			case ReleaseLease:
				if !primary {
					fail("released while not primary")
				}
				primary = false
			case WriteMap:
				if !a.Wait {
					if r.IntN(10) == 0 {
						queue = append(queue, pending{at: now.Add(time.Duration(r.IntN(500)) * time.Millisecond), ev: MapWriteFailed{Background: true, Err: "unavailable"}})
					}
					step(MapPersisted{MaxEpoch: a.MaxEpoch})
					continue
				}
				now = now.Add(time.Duration(r.Int64N(int64(a.Timeout) + int64(time.Second))))
				if r.IntN(5) == 0 {
					step(MapWriteFailed{Fenced: r.IntN(2) == 0, Err: "unavailable"})
				} else {
					step(MapPersisted{MaxEpoch: a.MaxEpoch, Waited: true})
				}
			}
		}
	}
	step = func(ev Event) {
		if a, ok := ev.(Answered); ok {
			inFlight = false
			if a.Err == nil && a.Granted {
				lastEnd, capEnd = a.SentAt.Add(a.TTL), time.Time{}
			}
		}
		acts, err := term.Step(now, ev)
		if err != nil {
			fail("%T: %v", ev, err)
		}
		carry(acts)
		switch ev.(type) {
		case PrimaryAborted, Shutdown:
			primary = false // the driver drops its core (a crash drops everything)
		}
		// Rule 3, after the Step and everything it led to.
		if primary != term.Primary() {
			fail("actions say primary=%v, the Term says %v", primary, term.Primary())
		}
		end := lastEnd
		if !capEnd.IsZero() && capEnd.Before(end) {
			end = capEnd
		}
		if primary && !now.Before(end) {
			fail("primary at or past the end of its last grant or of a shorter request since (+%v) after %T", end.Sub(t0()), ev)
		}
		if w := term.NextWake(); primary && (w.IsZero() || w.After(end)) {
			fail("primary, lease ends at +%v, but NextWake is %v", end.Sub(t0()), w)
		}
	}
	step(settings())
	for range 400 {
		switch k := r.IntN(20); {
		case k < 8 && len(queue) > 0:
			// The earliest pending outcome arrives (late, if time moved on).
			i := 0
			for j := range queue {
				if queue[j].at.Before(queue[i].at) {
					i = j
				}
			}
			p := queue[i]
			queue = append(queue[:i], queue[i+1:]...)
			if p.at.After(now) {
				now = p.at
			}
			step(p.ev)
		case k < 13:
			// The timer at NextWake fires, on time or late (a pause).
			if w := term.NextWake(); w.After(now) {
				now = w
			}
			if r.IntN(8) == 0 {
				now = now.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
			}
			step(Tick{})
		case k < 15:
			now = now.Add(time.Duration(r.IntN(1500)) * time.Millisecond)
			if term.Primary() {
				step(PersistMap{MaxEpoch: term.Reserved() + uint64(r.IntN(3))})
			} else {
				step(Check{})
			}
		case k < 16:
			now = now.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
			step(settings())
		case k < 17:
			now = now.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
			step(MasterLeft{ID: []string{"m1", "m2"}[r.IntN(2)]})
		default:
			now = now.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
			step(Check{})
		}
	}
	step(Shutdown{Crashed: r.IntN(2) == 0})
	if term.Primary() {
		t.Fatalf("seed %d: primary after Shutdown", seed)
	}
}
