package lease

import (
	"testing"
	"time"
)

// Table tests of the pure lease clock (rule 3): the lease is judged by the
// master's own clock from the send time of its last successful renewal.

func t0() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

func at(d time.Duration) time.Time { return t0().Add(d) }

func TestLeaseClock(t *testing.T) {
	const ttl = 3 * time.Second
	type grant struct {
		epoch  uint64
		sentAt time.Duration
		ttl    time.Duration
	}
	tests := []struct {
		name      string
		grants    []grant
		lostAfter int           // call lost() after this many grants (0: never)
		now       time.Duration // when held/remaining are asked
		held      bool
		remaining time.Duration
		epoch     uint64
	}{
		{name: "never granted", now: 0, held: false},
		{name: "from the send time, not the answer", grants: []grant{{1, 0, ttl}}, now: 2999 * time.Millisecond,
			held: true, remaining: time.Millisecond, epoch: 1},
		{name: "expired exactly at sentAt+ttl", grants: []grant{{1, 0, ttl}}, now: ttl, held: false, epoch: 1},
		{name: "renewal extends", grants: []grant{{1, 0, ttl}, {1, time.Second, ttl}}, now: 3500 * time.Millisecond,
			held: true, remaining: 500 * time.Millisecond, epoch: 1},
		{name: "an older renewal answered late never shortens", grants: []grant{{1, 2 * time.Second, ttl}, {1, time.Second, ttl}},
			now: 4500 * time.Millisecond, held: true, remaining: 500 * time.Millisecond, epoch: 1},
		// The store's expiry moved to (its receipt of the renewal) + 1s, as
		// early as t0+2s: another master may hold the lease after that.
		{name: "a shorter live TTL shortens the lease to what the store granted", grants: []grant{{1, 0, ttl}, {1, time.Second, time.Second}},
			now: 2 * time.Second, held: false, epoch: 1},
		{name: "a shorter live TTL holds until its own end", grants: []grant{{1, 0, ttl}, {1, time.Second, time.Second}},
			now: 1500 * time.Millisecond, held: true, remaining: 500 * time.Millisecond, epoch: 1},
		{name: "a longer live TTL lengthens it", grants: []grant{{1, 0, ttl}, {1, time.Second, 30 * time.Second}},
			now: 30 * time.Second, held: true, remaining: time.Second, epoch: 1},
		{name: "a new epoch replaces the old one's end", grants: []grant{{1, 2 * time.Second, ttl}, {2, time.Second, time.Second}},
			now: 2500 * time.Millisecond, held: false, epoch: 2},
		{name: "lost forgets at once", grants: []grant{{1, 0, ttl}}, lostAfter: 1, now: time.Second, held: false, epoch: 1},
		{name: "granted again after lost", grants: []grant{{1, 0, ttl}, {1, 2 * time.Second, ttl}}, lostAfter: 1, now: 4 * time.Second,
			held: true, remaining: time.Second, epoch: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l leaseClock
			for i, g := range tt.grants {
				l.granted(g.epoch, at(g.sentAt), g.ttl)
				if i+1 == tt.lostAfter {
					l.lost()
				}
			}
			now := at(tt.now)
			if got := l.held(now); got != tt.held {
				t.Errorf("held(t0+%v) = %v, want %v (validUntil %v)", tt.now, got, tt.held, l.validUntil.Sub(t0()))
			}
			want := tt.remaining
			if !tt.held {
				want = 0
			}
			if got := l.remaining(now); got != want {
				t.Errorf("remaining(t0+%v) = %v, want %v", tt.now, got, want)
			}
			if l.epoch != tt.epoch {
				t.Errorf("epoch = %d, want %d", l.epoch, tt.epoch)
			}
		})
	}
}

func TestNextAttempt(t *testing.T) {
	tests := []struct {
		name      string
		now       time.Duration
		scheduled time.Duration // -1: none
		remaining time.Duration
		want      time.Duration
	}{
		{name: "lapse before the next poll", now: 0, scheduled: time.Second, remaining: 400 * time.Millisecond, want: 401 * time.Millisecond},
		{name: "next poll before the lapse", now: 0, scheduled: time.Second, remaining: 2500 * time.Millisecond, want: time.Second},
		{name: "lapse under a millisecond away", now: 0, scheduled: time.Second, remaining: 0, want: time.Millisecond},
		{name: "negative remaining is treated as zero", now: 0, scheduled: time.Second, remaining: -time.Second, want: time.Millisecond},
		{name: "nothing scheduled", now: time.Second, scheduled: -1, remaining: 2 * time.Second, want: 3001 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sched time.Time
			if tt.scheduled >= 0 {
				sched = at(tt.scheduled)
			}
			if got := nextAttempt(at(tt.now), sched, tt.remaining); !got.Equal(at(tt.want)) {
				t.Errorf("nextAttempt = t0+%v, want t0+%v", got.Sub(t0()), tt.want)
			}
		})
	}
}

func TestTiming(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name                               string
		ttlOverride, renewOverride, hb, ui time.Duration
		wantTTL, wantRenew                 time.Duration
	}{
		{name: "from the settings", hb: 5 * s, ui: 30 * s, wantTTL: 30 * s, wantRenew: 5 * s},
		{name: "both overridden", ttlOverride: 6 * s, renewOverride: 2 * s, hb: 5 * s, ui: 30 * s, wantTTL: 6 * s, wantRenew: 2 * s},
		{name: "TTL overridden below a live heartbeat_interval: renew at a third of the TTL",
			ttlOverride: 3 * s, hb: 5 * s, ui: 30 * s, wantTTL: 3 * s, wantRenew: s},
		{name: "renewal overridden above a live unhealthy_interval", renewOverride: 10 * s, hb: s, ui: 3 * s, wantTTL: 3 * s, wantRenew: s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ttl, renew := Timing(tt.ttlOverride, tt.renewOverride, tt.hb, tt.ui)
			if ttl != tt.wantTTL || renew != tt.wantRenew {
				t.Errorf("Timing = %v, %v; want %v, %v", ttl, renew, tt.wantTTL, tt.wantRenew)
			}
		})
	}
}
