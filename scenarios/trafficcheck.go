package scenarios

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// callbackSettings are the callback settings in force from a time on, as
// the checks judge them (SETTINGS.md; the seed's defaults).
type callbackSettings struct {
	from                time.Time
	backoff, maxBackoff time.Duration
	// enabled: webhooks.message.{sent,delivered,read}.
	enabled map[string]bool
	// persist and maxConcurrent are restart-required: the checks use the
	// values the run started with (persist) or the largest ever set
	// (maxConcurrent), since a restarted coreapp takes the new one.
	persist       bool
	maxConcurrent int
}

// defaultCallbackSettings are the seed's defaults.
func defaultCallbackSettings(at time.Time) callbackSettings {
	return callbackSettings{from: at, backoff: 3 * time.Second, maxBackoff: 900 * time.Second,
		enabled: map[string]bool{"sent": true, "delivered": true, "read": true}, persist: true, maxConcurrent: 6}
}

// withPatch returns c after a settings PATCH body (only the callback
// fields; the body was validated by the parser).
func (c callbackSettings) withPatch(body json.RawMessage, at time.Time) callbackSettings {
	var s struct {
		Backoff    json.RawMessage `json:"callback_backoff_delay_ms"`
		MaxBackoff json.RawMessage `json:"max_callback_backoff_delay_ms"`
		Persist    *bool           `json:"callback_persist"`
		Webhooks   struct {
			MaxConcurrent *int            `json:"max_concurrent_requests"`
			Message       map[string]bool `json:"message"`
		} `json:"webhooks"`
	}
	_ = json.Unmarshal(body, &s)
	out := c
	out.from = at
	out.enabled = maps.Clone(c.enabled)
	if ms, ok := millis(s.Backoff); ok {
		out.backoff = ms
	}
	if ms, ok := millis(s.MaxBackoff); ok {
		out.maxBackoff = ms
	}
	if s.Persist != nil {
		out.persist = *s.Persist
	}
	if s.Webhooks.MaxConcurrent != nil {
		out.maxConcurrent = max(out.maxConcurrent, *s.Webhooks.MaxConcurrent)
	}
	for k, v := range s.Webhooks.Message {
		out.enabled[k] = v
	}
	return out
}

// millis reads the seed's "integer or numeric string" milliseconds.
func millis(raw json.RawMessage) (time.Duration, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		return time.Duration(n) * time.Millisecond, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Duration(v) * time.Millisecond, true
		}
	}
	return 0, false
}

// callbackSettingsAt returns the settings in force at t.
func callbackSettingsAt(timeline []callbackSettings, t time.Time) callbackSettings {
	cur := timeline[0]
	for _, c := range timeline[1:] {
		if c.from.After(t) {
			break
		}
		cur = c
	}
	return cur
}

// callbackTimeout is how long a poster waits for an answer (TRAFFIC.md:
// decided, 10 s; callbacks.DefaultTimeout).
const callbackTimeout = 10 * time.Second

// maxListed is how many violations of one invariant are listed one by
// one; the rest are summed up in one more.
const maxListed = 10

// listed caps vs at maxListed, adding one violation that counts the rest.
func listed(inv string, vs []Violation) []Violation {
	if len(vs) <= maxListed {
		return vs
	}
	rest := len(vs) - maxListed
	out := slices.Clone(vs[:maxListed])
	return append(out, Violation{Invariant: inv, At: vs[len(vs)-1].At, Details: fmt.Sprintf("… and %d more like these", rest)})
}

// checkNoDuplicateSend: the gateway accepted no message id twice.
func checkNoDuplicateSend(tr *TrafficSeen) []Violation {
	var out []Violation
	for _, id := range slices.Sorted(maps.Keys(tr.Accepted)) {
		if n := tr.Accepted[id]; n > 1 {
			out = append(out, Violation{Invariant: "no_duplicate_send", Details: fmt.Sprintf("gateway: message %s accepted %d times", id, n)})
		}
	}
	return listed("no_duplicate_send", out)
}

// checkAckedReached: every message answered 201 reached the gateway
// exactly once.
func checkAckedReached(tr *TrafficSeen) []Violation {
	var out []Violation
	for _, m := range tr.Acked {
		switch n := tr.Accepted[m.ID]; {
		case n == 0:
			out = append(out, Violation{Invariant: "acked_reached", At: m.At,
				Details: fmt.Sprintf("message %s to %s was answered 201 but the gateway never accepted it", m.ID, m.Recipient)})
		case n > 1:
			out = append(out, Violation{Invariant: "acked_reached", At: m.At,
				Details: fmt.Sprintf("message %s to %s was answered 201 and accepted %d times", m.ID, m.Recipient, n)})
		}
	}
	return listed("acked_reached", out)
}

// callbackTally is what became of the status callbacks the coreapps took
// charge of: delivered (answered 200 at least once), retried (attempts
// after the first) and lost (taken, of a kind enabled when taken, never
// delivered), with the lost ones listed.
type callbackTally struct {
	Delivered, Retried, Lost int
	lost                     []StatusTaken
	// Untaken counts the status updates of accepted messages (three each:
	// sent, delivered, read) no coreapp has taken charge of yet: the
	// gateway still holds them. They are no callback yet, so not lost,
	// but the drain waits for them.
	Untaken int
}

// statusesPerMessage is how many status updates the gateway produces for
// each message it accepts (sent, delivered, read).
const statusesPerMessage = 3

func tallyCallbacks(tr *TrafficSeen, timeline []callbackSettings) callbackTally {
	var t callbackTally
	delivered := map[string]bool{}
	for _, c := range tr.Callbacks {
		if c.Code == 200 {
			delivered[c.ID] = true
		}
		if c.Attempt > 1 {
			t.Retried++
		}
	}
	t.Delivered = len(delivered)
	seen := map[string]bool{}
	t.Untaken = statusesPerMessage * len(tr.Accepted)
	for _, s := range tr.Taken {
		if seen[s.ID] {
			continue // taken again by a later owner (callback_persist): one callback
		}
		seen[s.ID] = true
		if tr.Accepted[s.MessageID] > 0 {
			t.Untaken--
		}
		if !callbackSettingsAt(timeline, s.At).enabled[s.Status] || delivered[s.ID] {
			continue
		}
		t.Lost++
		t.lost = append(t.lost, s)
	}
	return t
}

// checkCallbacksDelivered: with callback_persist (as the run started),
// every status callback a coreapp took charge of reached the receiver
// (answered 200) by the end of the drain. Without it, losses are a
// figure (the callbacks event, expect: callbacks_lost), not a violation.
func checkCallbacksDelivered(t callbackTally, timeline []callbackSettings) []Violation {
	if !timeline[0].persist {
		return nil
	}
	var out []Violation
	for _, s := range t.lost {
		out = append(out, Violation{Invariant: "callbacks_delivered", At: s.At,
			Details: fmt.Sprintf("callback %s (taken by %s) never reached the receiver with callback_persist on", s.ID, s.Coreapp)})
	}
	return listed("callbacks_delivered", out)
}

// inFlightEnd is when a callback request stopped counting against its
// coreapp's cap: its answer, or the poster's timeout if that came first.
func inFlightEnd(c CallbackSeen) time.Time {
	end := c.At.Add(callbackTimeout)
	if c.Code != 0 && c.Answered.Before(end) {
		return c.Answered
	}
	return end
}

// inFlightAt counts coreapp's callback requests in flight at the receiver
// at t.
func inFlightAt(cbs []CallbackSeen, coreapp string, t time.Time) int {
	n := 0
	for _, c := range cbs {
		if c.Coreapp == coreapp && !c.At.After(t) && inFlightEnd(c).After(t) {
			n++
		}
	}
	return n
}

// checkConcurrency: never more callback requests from one coreapp in
// flight at the receiver than webhooks.max_concurrent_requests.
func checkConcurrency(tr *TrafficSeen, timeline []callbackSettings) []Violation {
	limit := 0
	for _, c := range timeline {
		limit = max(limit, c.maxConcurrent)
	}
	type edge struct {
		at    time.Time
		delta int
	}
	byCoreapp := map[string][]edge{}
	for _, c := range tr.Callbacks {
		byCoreapp[c.Coreapp] = append(byCoreapp[c.Coreapp], edge{c.At, 1}, edge{inFlightEnd(c), -1})
	}
	var out []Violation
	for _, id := range slices.Sorted(maps.Keys(byCoreapp)) {
		es := byCoreapp[id]
		// Ends before starts at the same instant: a slot freed and taken
		// at once is not two in flight.
		slices.SortStableFunc(es, func(a, b edge) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.delta - b.delta
		})
		n, worst, at := 0, 0, time.Time{}
		for _, e := range es {
			n += e.delta
			if n > worst {
				worst, at = n, e.at
			}
		}
		if worst > limit {
			out = append(out, Violation{Invariant: "concurrency", At: at,
				Details: fmt.Sprintf("%s had %d callbacks in flight at the receiver, webhooks.max_concurrent_requests is %d", id, worst, limit)})
		}
	}
	return out
}

// checkBackoff: after the n-th failed attempt of a callback (any answer
// but 200, or none within the timeout), the coreapp tries again
// callback_backoff_delay_ms × n later, capped at
// max_callback_backoff_delay_ms (the settings in force at the failure),
// within eps: never early, and late only if the coreapp had its whole
// cap of requests in flight at some moment between the retry's due time
// (less eps) and the retry (what is due waits its turn). The receiver
// sees a poster's slot free for a moment between one request's answer
// and the next request's arrival (two network trips), so a poster
// working through a backlog at its cap shows one slot short at most
// instants: the cap is judged over the wait, not at one instant. Attempts are paired per callback and coreapp: a
// shard's next owner starts a callback over at attempt 1.
//
// A retry timed by a coreapp that was paused or had a skewed clock
// between the failure and the retry is not judged (stalled excuses it):
// the rule is kept by the coreapp's own clock, and a process that does
// not run cannot keep time at all.
func checkBackoff(tr *TrafficSeen, timeline []callbackSettings, eps time.Duration, stalled func(coreapp string, from, to time.Time) bool) []Violation {
	type key struct{ id, coreapp string }
	byKey := map[key][]CallbackSeen{}
	var keys []key
	for _, c := range tr.Callbacks {
		k := key{c.ID, c.Coreapp}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], c)
	}
	limit := 0
	for _, c := range timeline {
		limit = max(limit, c.maxConcurrent)
	}
	levels := inFlightLevels(tr.Callbacks)
	var out []Violation
	for _, k := range keys {
		cs := byKey[k]
		for i := 1; i < len(cs); i++ {
			prev, next := cs[i-1], cs[i]
			if next.Attempt != prev.Attempt+1 || prev.Code == 200 {
				continue // not consecutive attempts of one run of the poster
			}
			failed := inFlightEnd(prev)
			set := callbackSettingsAt(timeline, failed)
			want := min(set.backoff*time.Duration(prev.Attempt), set.maxBackoff)
			due := failed.Add(want)
			got := next.At.Sub(failed)
			if stalled != nil && stalled(k.coreapp, failed, next.At) {
				continue
			}
			switch {
			case next.At.Before(due.Add(-eps)):
				out = append(out, Violation{Invariant: "backoff", At: next.At, Details: fmt.Sprintf(
					"%s from %s: attempt %d came %v after attempt %d failed, want %v (callback_backoff_delay_ms × %d, cap %v): early",
					k.id, k.coreapp, next.Attempt, got, prev.Attempt, want, prev.Attempt, set.maxBackoff)})
			case next.At.After(due.Add(eps)) && !levels.reached(k.coreapp, limit, due.Add(-eps), next.At):
				out = append(out, Violation{Invariant: "backoff", At: next.At, Details: fmt.Sprintf(
					"%s from %s: attempt %d came %v after attempt %d failed, want %v (callback_backoff_delay_ms × %d, cap %v): late, with free slots",
					k.id, k.coreapp, next.Attempt, got, prev.Attempt, want, prev.Attempt, set.maxBackoff)})
			}
		}
	}
	return listed("backoff", out)
}

// levels are, per coreapp, its callback requests in flight at the
// receiver after each start or end (ends first at one instant), in time
// order.
type levels map[string][]level

type level struct {
	at time.Time
	n  int
}

func inFlightLevels(cbs []CallbackSeen) levels {
	type edge struct {
		at    time.Time
		delta int
	}
	edges := map[string][]edge{}
	for _, c := range cbs {
		edges[c.Coreapp] = append(edges[c.Coreapp], edge{c.At, 1}, edge{inFlightEnd(c), -1})
	}
	out := levels{}
	for id, es := range edges {
		slices.SortStableFunc(es, func(a, b edge) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.delta - b.delta
		})
		ls := make([]level, len(es))
		n := 0
		for i, e := range es {
			n += e.delta
			ls[i] = level{e.at, n}
		}
		out[id] = ls
	}
	return out
}

// reached says whether coreapp had limit requests in flight at some
// moment in [from, to].
func (l levels) reached(coreapp string, limit int, from, to time.Time) bool {
	ls := l[coreapp]
	// The level at from is the last one at or before it.
	i, _ := slices.BinarySearchFunc(ls, from, func(x level, t time.Time) int {
		if x.at.After(t) {
			return 1
		}
		return -1
	})
	if i > 0 && ls[i-1].n >= limit {
		return true
	}
	for ; i < len(ls) && !ls[i].at.After(to); i++ {
		if ls[i].n >= limit {
			return true
		}
	}
	return false
}
