package clock

import (
	"context"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The tests run in testing/synctest bubbles: the base clock (Real) is the
// bubble's virtual clock, so every duration below is exact.

type rateChange struct {
	at   time.Duration // base time since the timer was set
	rate float64
}

func TestSkewedTimerFiresWhenSkewedClockReachesDeadline(t *testing.T) {
	tests := []struct {
		name    string
		rate    float64
		changes []rateChange
		d       time.Duration // the timer, on the skewed clock
		// wantBase is when it fires by the base clock.
		wantBase time.Duration
	}{
		{name: "rate 1", rate: 1, d: time.Second, wantBase: time.Second},
		{name: "slow: rate 0.5 doubles it", rate: 0.5, d: time.Second, wantBase: 2 * time.Second},
		{name: "fast: rate 2 halves it", rate: 2, d: time.Second, wantBase: 500 * time.Millisecond},
		{name: "slowed mid-wait: 0.5s at 1, the other 0.5s at 0.25 take 2s", rate: 1, d: time.Second,
			changes: []rateChange{{500 * time.Millisecond, 0.25}}, wantBase: 2500 * time.Millisecond},
		{name: "sped up mid-wait: 1s at 0.5 is 0.5s, the other 0.5s at 4 take 125ms", rate: 0.5, d: time.Second,
			changes: []rateChange{{time.Second, 4}}, wantBase: 1125 * time.Millisecond},
		// 1s at 1, 1s at 0.5 (2s of base), 0.5s at 2 (0.25s), 0.5s at 1.
		{name: "several changes", rate: 1, d: 3 * time.Second,
			changes: []rateChange{{time.Second, 0.5}, {3 * time.Second, 2}, {3250 * time.Millisecond, 1}}, wantBase: 3750 * time.Millisecond},
		{name: "zero duration fires at once", rate: 0.1, d: 0, wantBase: 0},
	}
	for _, tt := range tests {
		for _, kind := range []string{"NewTimer", "AfterFunc"} {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := NewSkewed(Real())
					if err := s.SetRate(tt.rate); err != nil {
						t.Fatal(err)
					}
					baseStart, skewStart := time.Now(), s.Now()
					var fired <-chan time.Time
					if kind == "NewTimer" {
						fired = s.NewTimer(tt.d).C()
					} else {
						ch := make(chan time.Time, 1)
						s.AfterFunc(tt.d, func() { ch <- s.Now() })
						fired = ch
					}
					for _, c := range tt.changes {
						time.Sleep(time.Until(baseStart.Add(c.at)))
						select {
						case <-fired:
							t.Fatalf("fired before the rate change at base +%v", c.at)
						default:
						}
						if err := s.SetRate(c.rate); err != nil {
							t.Fatal(err)
						}
					}
					got := <-fired
					if d := time.Since(baseStart); d != tt.wantBase {
						t.Errorf("fired after %v of base time, want %v", d, tt.wantBase)
					}
					if d := got.Sub(skewStart); d != tt.d {
						t.Errorf("delivered skewed time +%v, want +%v (the deadline)", d, tt.d)
					}
					if d := s.Now().Sub(skewStart); d != tt.d {
						t.Errorf("skewed clock advanced %v, want %v", d, tt.d)
					}
				})
			})
		}
	}
}

func TestSkewedNowIsAnchored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSkewed(Real())
		if d := s.Now().Sub(time.Now()); d != 0 {
			t.Fatalf("a new skewed clock reads base %+v", d)
		}
		start := s.Now()
		steps := []struct {
			rate  float64
			sleep time.Duration // base
			want  time.Duration // skewed time since start after the sleep
		}{
			{0.5, 2 * time.Second, time.Second},
			{3, time.Second, 4 * time.Second},
			{0.25, 4 * time.Second, 5 * time.Second},
			{1, time.Second, 6 * time.Second},
		}
		for _, st := range steps {
			before := s.Now()
			if err := s.SetRate(st.rate); err != nil {
				t.Fatal(err)
			}
			if after := s.Now(); !after.Equal(before) {
				t.Fatalf("SetRate(%v) made the clock jump by %v", st.rate, after.Sub(before))
			}
			time.Sleep(st.sleep)
			if got := s.Now().Sub(start); got != st.want {
				t.Errorf("after rate %v for %v of base: +%v, want +%v", st.rate, st.sleep, got, st.want)
			}
		}
	})
}

func TestSkewedKeepsMonotonicReading(t *testing.T) {
	s := NewSkewed(Real())
	if err := s.SetRate(0.5); err != nil {
		t.Fatal(err)
	}
	if now := s.Now(); !strings.Contains(now.String(), " m=") {
		t.Errorf("skewed time %v has no monotonic reading", now)
	}
}

func TestSkewedRefusesBadRates(t *testing.T) {
	s := NewSkewed(Real())
	if err := s.SetRate(0.5); err != nil {
		t.Fatal(err)
	}
	for _, r := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		err := s.SetRate(r)
		if err == nil || !strings.Contains(err.Error(), "rate") {
			t.Errorf("SetRate(%v): err %v, want an error naming rate", r, err)
		}
		if got := s.Rate(); got != 0.5 {
			t.Errorf("after SetRate(%v) the rate is %v, want the old 0.5", r, got)
		}
	}
}

// The semantics of time.Timer since Go 1.23, for a Skewed channel timer:
// Stop and Reset report whether the timer was pending (fired but not
// received counts as pending) and leave no stale value on C.
func TestSkewedTimerStopReset(t *testing.T) {
	received := func(c <-chan time.Time) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	t.Run("Stop before it fires", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSkewed(Real())
			_ = s.SetRate(0.5)
			tm := s.NewTimer(time.Second)
			time.Sleep(time.Second)
			if !tm.Stop() {
				t.Error("Stop of a pending timer returned false")
			}
			time.Sleep(10 * time.Second)
			if received(tm.C()) {
				t.Error("a stopped timer delivered")
			}
			if tm.Stop() {
				t.Error("a second Stop returned true")
			}
		})
	})
	t.Run("Stop after it fired, unreceived: drained", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSkewed(Real())
			tm := s.NewTimer(time.Second)
			time.Sleep(2 * time.Second)
			if !tm.Stop() {
				t.Error("Stop of a fired but unreceived timer returned false")
			}
			if received(tm.C()) {
				t.Error("a stale value was left on C after Stop")
			}
		})
	})
	t.Run("Stop after it was received", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSkewed(Real())
			tm := s.NewTimer(time.Second)
			<-tm.C()
			if tm.Stop() {
				t.Error("Stop of an expired, received timer returned true")
			}
		})
	})
	t.Run("Reset a pending timer counts from the reset", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSkewed(Real())
			_ = s.SetRate(2)
			tm := s.NewTimer(time.Second)
			time.Sleep(250 * time.Millisecond)
			start := time.Now()
			if !tm.Reset(time.Second) {
				t.Error("Reset of a pending timer returned false")
			}
			<-tm.C()
			if d := time.Since(start); d != 500*time.Millisecond {
				t.Errorf("reset timer fired %v after the Reset, want 500ms (1s at rate 2)", d)
			}
		})
	})
	t.Run("Reset after it fired, unreceived: no stale value", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSkewed(Real())
			tm := s.NewTimer(time.Second)
			time.Sleep(2 * time.Second)
			start := s.Now()
			if !tm.Reset(time.Second) {
				t.Error("Reset of a fired but unreceived timer returned false")
			}
			if got := <-tm.C(); got.Sub(start) != time.Second {
				t.Errorf("received +%v after Reset, want the new deadline +1s (a stale value?)", got.Sub(start))
			}
			if tm.Reset(time.Second) {
				t.Error("Reset of an expired, received timer returned true")
			}
			<-tm.C()
		})
	})
	t.Run("AfterFunc Stop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSkewed(Real())
			ran := make(chan struct{}, 2)
			tm := s.AfterFunc(time.Second, func() { ran <- struct{}{} })
			if tm.C() != nil {
				t.Error("an AfterFunc timer has a channel")
			}
			if !tm.Stop() {
				t.Error("Stop of a pending AfterFunc returned false")
			}
			time.Sleep(5 * time.Second)
			if len(ran) != 0 {
				t.Error("a stopped AfterFunc ran")
			}
			if tm.Reset(time.Second) {
				t.Error("Reset of a stopped AfterFunc returned true")
			}
			time.Sleep(time.Second)
			synctest.Wait()
			if len(ran) != 1 {
				t.Errorf("the reset AfterFunc ran %d times, want 1", len(ran))
			}
			if tm.Stop() {
				t.Error("Stop of an AfterFunc that ran returned true")
			}
		})
	})
}

func TestRealTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := Real()
		start := c.Now()
		<-c.NewTimer(time.Second).C()
		if d := Since(c, start); d != time.Second {
			t.Errorf("real timer fired after %v, want 1s", d)
		}
		ran := make(chan time.Time, 1)
		if tm := c.AfterFunc(time.Second, func() { ran <- c.Now() }); tm.C() != nil {
			t.Error("a real AfterFunc timer has a channel")
		}
		if d := (<-ran).Sub(start); d != 2*time.Second {
			t.Errorf("real AfterFunc ran at +%v, want +2s", d)
		}
	})
}

// A deadline on a skewed clock lasts d/rate of real time, through every
// layer of skew.
func TestContextDeadlinesFollowTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := NewSkewed(Real())
		_ = slow.SetRate(0.5)
		fastOverSlow := NewSkewed(slow)
		_ = fastOverSlow.SetRate(4) // 2 in real terms
		for _, tt := range []struct {
			name string
			c    Clock
			want time.Duration
		}{
			{"real", Real(), time.Second},
			{"rate 0.5", slow, 2 * time.Second},
			{"rate 4 over rate 0.5", fastOverSlow, 500 * time.Millisecond},
		} {
			if got := RealDuration(tt.c, time.Second); got != tt.want {
				t.Errorf("%s: RealDuration(1s) = %v, want %v", tt.name, got, tt.want)
			}
			start := time.Now()
			ctx, cancel := WithTimeout(context.Background(), tt.c, time.Second)
			<-ctx.Done()
			cancel()
			if d := time.Since(start); d != tt.want {
				t.Errorf("%s: WithTimeout(1s) ended after %v, want %v", tt.name, d, tt.want)
			}
			start = time.Now()
			ctx, cancel = WithDeadline(context.Background(), tt.c, tt.c.Now().Add(time.Second))
			<-ctx.Done()
			cancel()
			if d := time.Since(start); d != tt.want {
				t.Errorf("%s: WithDeadline(now+1s) ended after %v, want %v", tt.name, d, tt.want)
			}
		}
	})
}
