// Package webhook is a webhook receiver for tests and scenarios (`mcsim
// webhook-sink`): it takes the status callbacks a cluster posts to
// webhooks.url, records each with its time and attempt number, and can be
// told to fail a share of them, answer slowly, or be down for a while, so
// that the seed's backoff and concurrency rules can be seen from outside.
//
// A coreapp names itself and counts its attempts in two headers of every
// post (X-Mcsim-Coreapp, X-Mcsim-Attempt; see HeaderCoreapp): the sink
// records both, so the backoff can be judged per coreapp and attempt even
// when a shard's next owner takes a callback over and starts counting
// again at 1, while Record.Attempt counts every post the sink took.
//
// The scenario runner starts one in-process (New, then serve it with
// net/http), reads Records, and turns it down or failing at run time
// (SetDown, SetFail). `mcsim webhook-sink` prints each record as one JSON
// line on stdout; GET /records serves the same lines.
package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The headers a coreapp adds to every callback post (decided: the On-Premises
// payload does not say who posted or which attempt it is).
const (
	// HeaderAttempt is the coreapp's attempt number of this callback: 1 for
	// the first post, n for the n-th.
	HeaderAttempt = "X-Mcsim-Attempt"
	// HeaderCoreapp is the id of the coreapp that posted.
	HeaderCoreapp = "X-Mcsim-Coreapp"
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

// Record is one status callback as the sink took it; its JSON is one line
// of `mcsim webhook-sink`'s output. At (JSON time) and T are when the
// request arrived.
type Record struct {
	At        time.Time `json:"time"`
	T         float64   `json:"t"` // seconds since the sink started
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Recipient string    `json:"recipient_id"`
	// Attempt counts the posts of this status of this message the sink
	// took (1: the first), whoever posted them.
	Attempt int `json:"attempt"`
	// Coreapp and CoreappAttempt are the poster's HeaderCoreapp and
	// HeaderAttempt ("" and 0 when absent or not a number): the attempt
	// as the posting coreapp counts it, which its backoff follows.
	Coreapp        string `json:"coreapp,omitempty"`
	CoreappAttempt int    `json:"coreapp_attempt,omitempty"`
	// Answered is when the sink answered; Code what (0: the poster hung
	// up before the answer, e.g. its timeout was shorter than the
	// latency). A record is kept, and printed, once answered.
	Answered time.Time `json:"answered"`
	Code     int       `json:"code"`
	Query    string    `json:"query,omitempty"` // e.g. auth=secret, as posted
}

// Sink is the receiver; it is an http.Handler.
type Sink struct {
	cfg   Config
	start time.Time
	out   io.Writer // one JSON line per record (nil: none)

	mu       sync.Mutex
	down     bool          // SetDown
	fail     float64       // FailPercent, changed by SetFail
	latency  time.Duration // Latency, changed by SetLatency
	rng      *rand.Rand
	attempts map[string]int
	records  []Record
}

// New returns a sink started now that writes each record to out.
func New(cfg Config, out io.Writer) *Sink {
	return &Sink{cfg: cfg, start: time.Now(), out: out, fail: cfg.FailPercent, latency: cfg.Latency,
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
	if r.Method == http.MethodGet && r.URL.Path == "/records" {
		s.serveRecords(w)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a statuses callback here (GET /records lists those taken)", http.StatusMethodNotAllowed)
		return
	}
	attempt, _ := strconv.Atoi(r.Header.Get(HeaderAttempt))
	coreapp := r.Header.Get(HeaderCoreapp)
	var p payload
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil || len(p.Statuses) == 0 {
		http.Error(w, "want a JSON body {\"statuses\": [...]}", http.StatusBadRequest)
		return
	}
	now := time.Now()
	s.mu.Lock()
	code := http.StatusOK
	switch {
	case s.down || now.Sub(s.start) < s.cfg.DownFor:
		code = http.StatusServiceUnavailable
	case s.fail > 0 && s.rng.Float64()*100 < s.fail:
		code = http.StatusInternalServerError
	}
	var recs []Record
	for _, st := range p.Statuses {
		key := st.ID + "/" + st.Status
		s.attempts[key]++
		recs = append(recs, Record{At: now, T: now.Sub(s.start).Seconds(), ID: st.ID, Status: st.Status, Recipient: st.RecipientID,
			Attempt: s.attempts[key], Coreapp: coreapp, CoreappAttempt: attempt, Code: code, Query: r.URL.RawQuery})
	}
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The poster gave up first (its timeout): nothing was answered.
			t.Stop()
			code = 0
		}
	}
	if code != 0 {
		w.WriteHeader(code)
	}
	s.record(recs, code, time.Now())
}

// record keeps and prints the records of one request once it is answered
// (code 0: the poster hung up first), so that a record says how it ended.
func (s *Sink) record(recs []Record, code int, answered time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range recs {
		rec.Code, rec.Answered = code, answered
		s.records = append(s.records, rec)
		if s.out != nil {
			b, _ := json.Marshal(rec)
			fmt.Fprintln(s.out, string(b))
		}
	}
}

// SetDown makes the sink answer 503 to every callback (true) until it is
// set false again; the DownFor window at the start still applies.
func (s *Sink) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetFail changes the share of callbacks answered 500 (0–100), drawn from
// the same seeded source.
func (s *Sink) SetFail(percent float64) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("fail: must be 0%%–100%%, got %g%%", percent)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = percent
	return nil
}

// SetLatency changes how long the sink waits before every answer, from
// the next callback on.
func (s *Sink) SetLatency(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("latency: must be ≥ 0, got %v", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
	return nil
}

// RecordsFrom are the records from the i-th on (0: all) in the order they
// were answered, for a reader that keeps what it read before: a long run
// is not copied and sorted on every look.
func (s *Sink) RecordsFrom(i int) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.records) {
		return nil
	}
	return append([]Record(nil), s.records[i:]...)
}

// serveRecords writes every record so far as JSON lines.
func (s *Sink) serveRecords(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, rec := range s.Records() {
		_ = enc.Encode(rec)
	}
}

// Records are the callbacks answered so far (or hung up on), in the order
// they arrived; one still waiting out the latency is not among them yet.
func (s *Sink) Records() []Record {
	s.mu.Lock()
	out := append([]Record(nil), s.records...)
	s.mu.Unlock()
	// Kept in the order answered; a slow answer may end after a later
	// request's.
	slices.SortStableFunc(out, func(a, b Record) int { return a.At.Compare(b.At) })
	return out
}

// Summary counts the records by answer code.
func (s *Sink) Summary() map[int]int {
	out := map[int]int{}
	for _, r := range s.Records() {
		out[r.Code]++
	}
	return out
}
