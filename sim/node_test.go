package sim

import (
	"strings"
	"testing"
	"time"
)

// A paused process runs nothing; at its resume its expired timers run
// before the messages that came meanwhile (a resumed Go process finds
// its timers ready at once; socket reads take a goroutine hop), each in
// order; a crash forgets both.
func TestPausedProcessTimersFirst(t *testing.T) {
	w := newWorld(1, Sabotage{})
	p := newProc(w, "x")
	p.start()
	var log []string
	note := func(s string) func() { return func() { log = append(log, s+"@"+w.now.Sub(epoch()).String()) } }
	w.at(epoch().Add(100*time.Millisecond), func() { p.paused = true })
	w.at(epoch().Add(200*time.Millisecond), func() { p.deliver(p.run, note("msg1")) })
	p.wake(epoch().Add(300*time.Millisecond), note("timer"))
	w.at(epoch().Add(400*time.Millisecond), func() { p.deliver(p.run, note("msg2")) })
	w.at(epoch().Add(1*time.Second), p.resume)
	w.at(epoch().Add(1100*time.Millisecond), func() { p.deliver(p.run, note("msg3")) })
	w.runUntil(epoch().Add(2 * time.Second))
	if got, want := strings.Join(log, " "), "timer@1s msg1@1s msg2@1s msg3@1.1s"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}

	log = nil
	w.at(w.now.Add(100*time.Millisecond), func() { p.paused = true; p.deliver(p.run, note("lost")) })
	w.at(w.now.Add(200*time.Millisecond), p.crash)
	w.runUntil(w.now.Add(time.Second))
	if len(log) != 0 {
		t.Fatalf("a crashed process ran %v", log)
	}
}

// A process's clock runs at its rate from the moment it is set, never
// jumping; its timers fire when its own clock reaches them.
func TestProcessClockRate(t *testing.T) {
	w := newWorld(1, Sabotage{})
	p := newProc(w, "x")
	p.start()
	w.runUntil(epoch().Add(time.Second))
	p.setRate(0.5)
	w.runUntil(epoch().Add(3 * time.Second))
	if got := p.local().Sub(epoch()); got != 2*time.Second {
		t.Fatalf("own clock after 1 s at rate 1 and 2 s at rate 0.5: %v, want 2s", got)
	}
	var fired time.Duration
	p.wake(p.local().Add(time.Second), func() { fired = w.now.Sub(epoch()) })
	w.runUntil(epoch().Add(10 * time.Second))
	if fired < 5*time.Second || fired > 5*time.Second+time.Microsecond {
		t.Fatalf("a timer 1 s ahead on a half-speed clock fired at %v, want 5s", fired)
	}
}
