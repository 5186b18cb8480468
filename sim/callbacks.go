package sim

import (
	"time"

	"github.com/mcsim/mcsim/callbacks"
	"github.com/mcsim/mcsim/callbacks/poster"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// A coreapp's webhook callbacks, as callbacks/poster drives them on a
// real coreapp: the pure callbacks.Outbox decides every post, retry and
// drop; this adapter configures it from the settings (watched live:
// callback_persist and webhooks.max_concurrent_requests keep the values
// the process started with), takes the statuses the gateway offers a
// batch at a time (with callback_persist: the batch kept in the store
// with one write first, and only then acknowledged; without:
// acknowledged at once and gone with the process), carries its posts to
// the receiver over the network, deletes delivered callbacks from the
// store with one write per poster.DefaultDeleteWindow, and when the
// gateway accepts a session adopts what the shard's last owner kept
// (ListCallbacks).

// adoptRetry is poster.Config.AdoptRetry's default: how long an adoption
// waits before asking the store again.
const adoptRetry = time.Second

// hooks is one coreapp run's poster.
type hooks struct {
	c          *coreappNode
	run        int
	ob         *callbacks.Outbox
	configured bool
	persist    bool // callback_persist as first configured
	wakeAt     time.Time
	// forgets wait for the end of the delete window (poster.forgetLoop);
	// forgetting says a window is running.
	forgets    []string
	forgetting bool
}

// startHooks starts the run's poster: it watches the settings and
// configures its outbox with each snapshot.
func (c *coreappNode) startHooks() {
	h := &hooks{c: c, run: c.p.run, ob: callbacks.New()}
	c.traffic().hooks = h
	h.watch()
}

func (h *hooks) current() bool {
	c := h.c
	return c.p.up && c.p.run == h.run && c.tr != nil && c.tr.hooks == h
}

func (h *hooks) watch() {
	c, st := h.c, h.c.w.store
	c.w.call(c.p, st.p, time.Second, func() (any, error) {
		return st.watch(c.p, func(s settingsSnap) { h.configure(s.hooks) }), nil
	}, func(v any, err error) {
		if !h.current() {
			return
		}
		if err != nil {
			c.w.after(time.Second, func() { c.p.deliver(h.run, h.watch) })
			return
		}
		h.configure(v.(settingsSnap).hooks)
	})
}

// configure steps the outbox's settings (poster.Configure).
func (h *hooks) configure(s poster.Settings) {
	if !h.current() {
		return
	}
	if !h.configured {
		h.configured, h.persist = true, s.Persist
	}
	cfg := callbacks.Config{
		URL:           s.URL,
		Enabled:       map[callbacks.Kind]bool{callbacks.Sent: s.Sent, callbacks.Delivered: s.Delivered, callbacks.Read: s.Read},
		MaxConcurrent: s.MaxConcurrent,
		Backoff:       s.Backoff, MaxBackoff: s.MaxBackoff,
	}
	if h.c.w.sabotage.NoCallbackBackoff {
		cfg.Backoff, cfg.MaxBackoff = time.Millisecond, time.Millisecond
	}
	h.step(callbacks.Configure{Config: cfg})
}

// persisting says whether the run keeps callbacks in the store.
func (h *hooks) persisting() bool { return h.persist && !h.c.w.sabotage.NoCallbackPersist }

// step steps the outbox at the coreapp's own clock and carries out what
// it decides.
func (h *hooks) step(ev callbacks.Event) {
	c := h.c
	acts, err := h.ob.Step(c.p.local(), ev)
	if err != nil {
		return // bad input is the driver's bug; the outbox changed nothing
	}
	var forget []string
	for _, a := range acts {
		switch a := a.(type) {
		case callbacks.Post:
			c.w.traffic.recv.post(c, h, a)
		case callbacks.Dropped:
			forget = append(forget, a.ID)
		case callbacks.Done:
			forget = append(forget, a.ID)
		}
	}
	if len(forget) > 0 && h.persisting() {
		h.forgets = append(h.forgets, forget...)
		if !h.forgetting {
			h.forgetting = true
			h.forgetLater()
		}
	}
	h.arm()
}

// forgetLater deletes what was forgotten at the end of the window, in one
// store write, and goes on while each window forgets something
// (poster.forgetLoop).
func (h *hooks) forgetLater() {
	c := h.c
	c.w.after(poster.DefaultDeleteWindow, func() {
		c.p.deliver(h.run, func() {
			if !h.current() {
				return
			}
			ids := h.forgets
			h.forgets = nil
			if len(ids) == 0 {
				h.forgetting = false
				return
			}
			h.deleteKept(ids)
			h.forgetLater()
		})
	})
}

// deleteKept is one DeleteCallbacks.
func (h *hooks) deleteKept(ids []string) {
	c := h.c
	st, kept := c.w.store, c.w.traffic.kept
	c.w.callAt(c.p, st.p, 0, func() (any, time.Time, error) {
		kept.del(ids)
		return nil, st.callbackCommit(), nil
	}, func(any, error) {})
}

// flushForgets is poster.Close's last delete, on a graceful exit.
func (h *hooks) flushForgets() {
	if len(h.forgets) > 0 && h.persisting() {
		h.deleteKept(h.forgets)
	}
	h.forgets = nil
}

// arm sets the outbox's one timer at its NextWake (the earliest asked
// for is kept; every step asks again). The timer is set in global time
// at the clock rate of the moment: a clock step changing the rate
// re-times the books' wake-up (proc.setRate) but not this one, so a
// retry pending across a rate change comes when the old rate said
// (early retries are then excused by the backoff check's stall rule).
func (h *hooks) arm() {
	c := h.c
	t := h.ob.NextWake()
	if t.IsZero() {
		return
	}
	g := c.p.globalAt(t)
	if !h.wakeAt.IsZero() && !g.Before(h.wakeAt) {
		return
	}
	h.wakeAt = g
	c.w.at(g, func() {
		if !h.current() || !h.wakeAt.Equal(g) {
			return
		}
		h.wakeAt = time.Time{}
		tick := func() {
			if h.current() {
				h.step(callbacks.Tick{})
			}
		}
		if c.p.paused || c.p.busy {
			c.p.heldTimers = append(c.p.heldTimers, fn(tick))
			return
		}
		tick()
	})
}

// takeStatuses is poster.TakeStatuses: done(taken) with the ids of the
// batch whose callbacks are queued (kept in the store first, all with one
// write, with callback_persist); the others were not taken and the
// gateway must offer them again.
func (c *coreappNode) takeStatuses(us []*mcsimv1.StatusUpdate, done func(taken []string)) {
	h := c.traffic().hooks
	if h == nil || !h.configured {
		// The real poster waits for its first settings; here the statuses
		// stay unacknowledged and the gateway offers them again.
		done(nil)
		return
	}
	sts := make([]callbacks.Status, len(us))
	var keep []callbacks.Status
	seen := map[string]bool{}
	for i, u := range us {
		sts[i] = statusOf(u)
		st := sts[i]
		if seen[st.ID] {
			continue
		}
		seen[st.ID] = true
		if h.persisting() && !h.ob.Has(st.ID) && h.ob.DropReason(st.Kind) == "" {
			keep = append(keep, st)
		}
	}
	queue := func(refused map[string]bool) {
		var taken []string
		for _, st := range sts {
			if refused[st.ID] {
				continue
			}
			if !h.ob.Has(st.ID) {
				h.step(callbacks.Queue{Status: st})
			}
			taken = append(taken, st.ID)
		}
		done(taken)
	}
	if len(keep) == 0 {
		queue(nil)
		return
	}
	s, kept := c.w.store, c.w.traffic.kept
	c.w.callAt(c.p, s.p, 0, func() (any, time.Time, error) {
		for _, st := range keep {
			kept.put(st)
		}
		return nil, s.callbackCommit(), nil
	}, func(_ any, err error) {
		if !h.current() {
			return
		}
		var refused map[string]bool
		if err != nil {
			refused = map[string]bool{}
			for _, st := range keep {
				refused[st.ID] = true
			}
		}
		queue(refused)
	})
}

// adoptCallbacks is poster.Adopt: when the gateway accepts a session, a
// run that keeps its callbacks queues what the shard's last owner kept
// and did not deliver.
func (c *coreappNode) adoptCallbacks(sh, shards int32) {
	if c.tr == nil || c.tr.hooks == nil {
		return
	}
	h := c.tr.hooks
	if !h.configured {
		c.w.after(adoptRetry, func() { c.p.deliver(h.run, func() { c.adoptCallbacks(sh, shards) }) })
		return
	}
	if !h.persisting() {
		return
	}
	s, kept := c.w.store, c.w.traffic.kept
	c.w.call(c.p, s.p, time.Second, func() (any, error) { return kept.list(int(sh), int(shards)), nil }, func(v any, err error) {
		if !h.current() {
			return
		}
		if err != nil {
			c.w.after(adoptRetry, func() { c.p.deliver(h.run, func() { c.adoptCallbacks(sh, shards) }) })
			return
		}
		for _, st := range v.([]callbacks.Status) {
			if !h.ob.Has(st.ID) {
				h.step(callbacks.Queue{Status: st})
			}
		}
	})
}

// keptCallbacks are the store's pending callbacks (PutCallbacks,
// DeleteCallbacks, ListCallbacks), in the order first kept.
type keptCallbacks struct {
	order []*keptCallback
	byID  map[string]*keptCallback
	gone  int
}

type keptCallback struct {
	st   callbacks.Status
	gone bool
}

func newKeptCallbacks() *keptCallbacks { return &keptCallbacks{byID: map[string]*keptCallback{}} }

// put keeps st, in its place if kept already.
func (k *keptCallbacks) put(st callbacks.Status) {
	if kc, ok := k.byID[st.ID]; ok {
		kc.st = st
		return
	}
	kc := &keptCallback{st: st}
	k.byID[st.ID] = kc
	k.order = append(k.order, kc)
}

// del forgets ids; ids not kept are ignored.
func (k *keptCallbacks) del(ids []string) {
	for _, id := range ids {
		if kc, ok := k.byID[id]; ok {
			kc.gone = true
			delete(k.byID, id)
			k.gone++
		}
	}
	if k.gone > len(k.order)/2 {
		live := k.order[:0]
		for _, kc := range k.order {
			if !kc.gone {
				live = append(live, kc)
			}
		}
		clear(k.order[len(live):])
		k.order, k.gone = live, 0
	}
}

// list is what is kept for shard sh of shards, in order.
func (k *keptCallbacks) list(sh, shards int) []callbacks.Status {
	var out []callbacks.Status
	for _, kc := range k.order {
		if !kc.gone && shard.Of(kc.st.Recipient, shards) == sh {
			out = append(out, kc.st)
		}
	}
	return out
}
