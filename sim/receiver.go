package sim

import (
	"fmt"
	"net/http"
	"time"

	"github.com/mcsim/mcsim/callbacks"
	"github.com/mcsim/mcsim/scenarios"
)

// receiverID is the webhook receiver's node id on the network model: a
// scenario's network faults name nodes, and none names it, so its links
// are the loopback's.
const receiverID = "webhook"

// receiver is the built-in webhook receiver, modelled after webhook.Sink:
// while down it answers 503; otherwise a share of the posts (drawn from
// the world's source) are answered 500, the rest 200; each answer leaves
// Latency after the post arrived. It records every post as it arrives,
// with the poster's attempt and coreapp (X-Mcsim-Attempt, X-Mcsim-Coreapp).
type receiver struct {
	w    *World
	cfg  scenarios.Webhook
	seen []scenarios.CallbackSeen
}

func newReceiver(w *World, cfg scenarios.Webhook) *receiver { return &receiver{w: w, cfg: cfg} }

// set changes how the receiver answers, from now on.
func (r *receiver) set(cfg scenarios.Webhook) error {
	if cfg.FailPercent < 0 || cfg.FailPercent > 100 {
		return fmt.Errorf("webhook: fail: must be 0%%–100%%, got %g%%", cfg.FailPercent)
	}
	if cfg.Latency < 0 {
		return fmt.Errorf("webhook: latency: must be ≥ 0, got %v", cfg.Latency)
	}
	r.cfg = cfg
	return nil
}

// post carries out one callbacks.Post of coreapp c's poster h: the
// request crosses the network, the receiver answers, the answer crosses
// back and is stepped into the outbox. A post whose answer would come
// after the poster's timeout is recorded unanswered (code 0): the poster
// cancelled it, and its outbox counts it failed at the timeout.
func (r *receiver) post(c *coreappNode, h *hooks, p callbacks.Post) {
	w := r.w
	w.net.stream(c.p.id, receiverID, func() {
		code := http.StatusOK
		switch {
		case r.cfg.Down:
			code = http.StatusServiceUnavailable
		case w.chance(r.cfg.FailPercent / 100):
			code = http.StatusInternalServerError
		}
		now := w.now
		rec := scenarios.CallbackSeen{At: now, Answered: now.Add(r.cfg.Latency), ID: p.Status.ID, Status: string(p.Status.Kind),
			Attempt: p.Attempt, Coreapp: c.p.id, Code: code}
		if r.cfg.Latency >= p.Timeout {
			rec.Answered, rec.Code = time.Time{}, 0
		}
		r.seen = append(r.seen, rec)
		if rec.Code == 0 {
			return
		}
		answer := answered(c, h, p, code == http.StatusOK)
		if r.cfg.Latency == 0 {
			w.net.stream(receiverID, c.p.id, answer)
			return
		}
		w.after(r.cfg.Latency, func() { w.net.stream(receiverID, c.p.id, answer) })
	})
}

// answered is the receiver's answer reaching the poster.
func answered(c *coreappNode, h *hooks, p callbacks.Post, ok bool) func() {
	return func() {
		c.p.deliver(h.run, func() {
			if h.current() {
				h.step(callbacks.Answered{ID: p.Status.ID, Attempt: p.Attempt, OK: ok})
			}
		})
	}
}
