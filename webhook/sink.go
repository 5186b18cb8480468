// Package webhook is a webhook receiver for tests and scenarios (`mcsim
// webhook-sink`): it takes the status callbacks a cluster posts to
// webhooks.url, records each with its time and attempt number, and can be
// told to fail a share of them, answer slowly, or be down for a while, so
// that the seed's backoff and concurrency rules can be seen from outside.
package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Config is how the sink misbehaves; the zero value answers 200 at once.
type Config struct {
	// FailPercent of the callbacks (0–100, drawn from Seed) are answered
	// 500.
	FailPercent float64
	// Latency is waited before every answer.
	Latency time.Duration
	// DownFor: for this long after the sink starts, every callback is
	// answered 503.
	DownFor time.Duration
	// Seed seeds the failures.
	Seed uint64
}

// Validate names the field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.FailPercent < 0 || c.FailPercent > 100:
		return fmt.Errorf("fail: must be 0%%–100%%, got %g%%", c.FailPercent)
	case c.Latency < 0:
		return fmt.Errorf("latency: must be ≥ 0, got %v", c.Latency)
	case c.DownFor < 0:
		return fmt.Errorf("down-for: must be ≥ 0, got %v", c.DownFor)
	}
	return nil
}

// Record is one status callback as the sink took it.
type Record struct {
	At        time.Time `json:"-"`
	T         float64   `json:"t"` // seconds since the sink started
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Recipient string    `json:"recipient_id"`
	// Attempt counts the posts of this status of this message (1: the
	// first): the n-th post of the same callback is its n-th attempt.
	Attempt int    `json:"attempt"`
	Code    int    `json:"code"`
	Query   string `json:"query,omitempty"` // e.g. auth=secret, as posted
}

// Sink is the receiver; it is an http.Handler.
type Sink struct {
	cfg   Config
	start time.Time
	out   io.Writer // one JSON line per record (nil: none)

	mu       sync.Mutex
	rng      *rand.Rand
	attempts map[string]int
	records  []Record
}

// New returns a sink started now that writes each record to out.
func New(cfg Config, out io.Writer) *Sink {
	return &Sink{cfg: cfg, start: time.Now(), out: out,
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x7765626b)), attempts: map[string]int{}}
}

// payload is the On-Premises statuses callback (TRAFFIC.md).
type payload struct {
	Statuses []struct {
		ID          string `json:"id"`
		RecipientID string `json:"recipient_id"`
		Status      string `json:"status"`
	} `json:"statuses"`
}

// ServeHTTP takes one callback: decide its answer (down, failed or 200),
// record every status in it with its attempt number, wait the latency,
// answer.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a statuses callback here", http.StatusMethodNotAllowed)
		return
	}
	var p payload
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil || len(p.Statuses) == 0 {
		http.Error(w, "want a JSON body {\"statuses\": [...]}", http.StatusBadRequest)
		return
	}
	now := time.Now()
	s.mu.Lock()
	code := http.StatusOK
	switch {
	case now.Sub(s.start) < s.cfg.DownFor:
		code = http.StatusServiceUnavailable
	case s.cfg.FailPercent > 0 && s.rng.Float64()*100 < s.cfg.FailPercent:
		code = http.StatusInternalServerError
	}
	for _, st := range p.Statuses {
		key := st.ID + "/" + st.Status
		s.attempts[key]++
		rec := Record{At: now, T: now.Sub(s.start).Seconds(), ID: st.ID, Status: st.Status, Recipient: st.RecipientID,
			Attempt: s.attempts[key], Code: code, Query: r.URL.RawQuery}
		s.records = append(s.records, rec)
		if s.out != nil {
			b, _ := json.Marshal(rec)
			fmt.Fprintln(s.out, string(b))
		}
	}
	s.mu.Unlock()
	if s.cfg.Latency > 0 {
		t := time.NewTimer(s.cfg.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.WriteHeader(code)
}

// Records are the callbacks taken so far, in order.
func (s *Sink) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.records...)
}

// Summary counts the records by answer code.
func (s *Sink) Summary() map[int]int {
	out := map[int]int{}
	for _, r := range s.Records() {
		out[r.Code]++
	}
	return out
}
