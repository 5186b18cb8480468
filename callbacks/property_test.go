package callbacks

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRandomRuns drives outboxes with random statuses, answers, timeouts
// and settings changes, and checks after every Step what the seed's
// settings promise: never more posts in flight than
// max_concurrent_requests; every retry delay is callback_backoff_delay_ms
// × failures so far, capped at max_callback_backoff_delay_ms; attempts of
// a callback count up by one; a callback is done once, and a dropped one
// is never posted.
func TestRandomRuns(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		randomRun(t, seed)
	}
}

func randomRun(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0xcb))
	o, now := New(), t0()
	cfg := Config{URL: "http://sink/cb", Enabled: map[Kind]bool{Sent: true, Delivered: true, Read: r.IntN(2) == 0},
		MaxConcurrent: 1 + r.IntN(4), Backoff: time.Duration(1+r.IntN(5)) * time.Second}
	cfg.MaxBackoff = cfg.Backoff * time.Duration(1+r.IntN(6))
	maxInFlight := cfg.MaxConcurrent // restart-required: the first one holds
	type book struct {
		attempts, failures int
		done, dropped      bool
		inFlight           int // attempt in flight (0: none)
	}
	books := map[string]*book{}
	step := func(ev Event) {
		acts, err := o.Step(now, ev)
		if err != nil {
			t.Fatalf("seed %d: %T: %v", seed, ev, err)
		}
		for _, a := range acts {
			switch a := a.(type) {
			case Post:
				b := books[a.Status.ID]
				if b == nil || b.done || b.dropped || b.inFlight != 0 || a.Attempt != b.attempts+1 {
					t.Fatalf("seed %d: %+v of a callback in state %+v", seed, a, b)
				}
				b.attempts, b.inFlight = a.Attempt, a.Attempt
			case Retry:
				b := books[a.ID]
				b.failures++
				b.inFlight = 0
				if want := min(cfg.Backoff*time.Duration(b.failures), cfg.MaxBackoff); a.Delay != want || !a.At.Equal(now.Add(want)) {
					t.Fatalf("seed %d: %s failure %d: retry in %v at %v, want %v", seed, a.ID, b.failures, a.Delay, a.At, want)
				}
			case Done:
				b := books[a.ID]
				if b.done || a.Attempts != b.attempts {
					t.Fatalf("seed %d: %+v of a callback in state %+v", seed, a, b)
				}
				b.done, b.inFlight = true, 0
			case Dropped:
				books[a.ID].dropped = true
			}
		}
		if o.InFlight() > maxInFlight {
			t.Fatalf("seed %d: %d posts in flight, max %d", seed, o.InFlight(), maxInFlight)
		}
	}
	step(Configure{Config: cfg})
	kinds := []Kind{Sent, Delivered, Read, Failed}
	for i := range 400 {
		switch k := r.IntN(10); {
		case k < 3:
			id := fmt.Sprintf("m%d:%d", i, r.IntN(4))
			books[id] = &book{}
			step(Queue{Status: Status{ID: id, MessageID: fmt.Sprint(i), Kind: kinds[r.IntN(len(kinds))], At: now}})
		case k < 7:
			// Answer something in flight (or a stale attempt).
			for id, b := range books {
				if b.inFlight != 0 {
					attempt := b.inFlight
					if r.IntN(10) == 0 {
						attempt-- // too late: an attempt that failed already
					}
					step(Answered{ID: id, Attempt: attempt, OK: r.IntN(3) == 0})
					break
				}
			}
		case k < 9:
			if w := o.NextWake(); !w.IsZero() {
				now = w
			}
			now = now.Add(time.Duration(r.IntN(2000)) * time.Millisecond)
			step(Tick{})
		default:
			// A live change of the settings: backoff and kinds apply from
			// now on; max_concurrent_requests is restart-required.
			cfg.MaxConcurrent = 1 + r.IntN(4)
			cfg.Enabled[Read] = r.IntN(2) == 0
			step(Configure{Config: cfg})
		}
	}
}
