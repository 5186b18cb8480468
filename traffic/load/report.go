package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

func unmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Second is one second of a run, reported when it ends.
type Second struct {
	// T is the second's end, in whole seconds since the start (1, 2, …);
	// the last report of a run may cover less than a second.
	T int `json:"t"`
	// Sent is messages first started in the second (not retries).
	Sent int `json:"sent"`
	// OK is messages answered 201 in the second.
	OK int `json:"ok"`
	// Errors is every error answer received in the second, retried or
	// final, by code.
	Errors map[string]int `json:"errors"`
	// Final is the messages that ended in an error in the second, by
	// code (not in the JSON line).
	Final map[string]int `json:"-"`
	// P50 and P99 are latency percentiles of the messages answered 201 in
	// the second, in milliseconds (0 when none was).
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	// Retries is retries started in the second (not in the JSON line, whose
	// shape SCENARIOS.md fixes).
	Retries int `json:"-"`
}

// Summary is a whole run.
type Summary struct {
	// Elapsed is from the start to the last answer.
	Elapsed time.Duration
	// Sent counts messages started, OK those answered 201.
	Sent, OK int
	// Throughput is OK per second of Elapsed.
	Throughput float64
	// Latency percentiles of the messages answered 201.
	P50, P90, P99, Max time.Duration
	// Errors counts messages that ended in an error, by their last code.
	Errors map[string]int
	// Retries counts retries; Answers counts error answers by code,
	// retried ones included.
	Retries int
	Answers map[string]int
	// Skipped counts starts not made because MaxOutstanding messages were
	// in progress; Cancelled, messages cut off by the run's cancellation.
	Skipped, Cancelled int
	// LongestErrorStretch is the longest run of consecutive seconds with
	// error answers, ending at second LongestErrorEnd (T of its last
	// Second): a failover shows as such a stretch.
	LongestErrorStretch, LongestErrorEnd int
	// Acks are the messages answered 201, in answer order (with
	// Config.RecordAcks).
	Acks []Ack
}

// stats collects a run's answers; every method is safe for concurrent use.
// Each event counts in the second its time falls in ([k-1 s, k s) is second
// k), so a start or answer at exactly k s belongs to second k+1 whichever
// goroutine wakes first; one that comes in after its second was reported
// counts in the first second not reported yet.
type stats struct {
	mu         sync.Mutex
	start      time.Time
	recordAcks bool
	open       map[int]*bucket // by second, from 1
	reported   int             // seconds reported so far
	lat        []time.Duration
	sum        Summary
	stretch    int
}

type bucket struct {
	s   Second
	lat []time.Duration
}

func newStats(start time.Time, recordAcks bool) *stats {
	return &stats{
		start: start, recordAcks: recordAcks, open: map[int]*bucket{},
		sum: Summary{Errors: map[string]int{}, Answers: map[string]int{}},
	}
}

// at returns the bucket of an event at t; s.mu is held.
func (s *stats) at(t time.Time) *bucket {
	k := max(int(t.Sub(s.start)/time.Second)+1, s.reported+1)
	b := s.open[k]
	if b == nil {
		b = &bucket{s: Second{T: k, Errors: map[string]int{}, Final: map[string]int{}}}
		s.open[k] = b
	}
	return b
}

func (s *stats) started(t time.Time) {
	s.mu.Lock()
	s.at(t).s.Sent++
	s.sum.Sent++
	s.mu.Unlock()
}

func (s *stats) skip() {
	s.mu.Lock()
	s.sum.Skipped++
	s.mu.Unlock()
}

func (s *stats) ok(a Ack) {
	d := a.Acked.Sub(a.Started)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.at(a.Acked)
	b.s.OK++
	b.lat = append(b.lat, d)
	s.sum.OK++
	s.lat = append(s.lat, d)
	if s.recordAcks {
		s.sum.Acks = append(s.sum.Acks, a)
	}
}

func (s *stats) errorAnswer(t time.Time, code string, final bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.at(t)
	b.s.Errors[code]++
	s.sum.Answers[code]++
	if final {
		b.s.Final[code]++
		s.sum.Errors[code]++
	}
}

func (s *stats) retry(t time.Time) {
	s.mu.Lock()
	s.at(t).s.Retries++
	s.sum.Retries++
	s.mu.Unlock()
}

func (s *stats) cancelled() {
	s.mu.Lock()
	s.sum.Cancelled++
	s.mu.Unlock()
}

// pending reports whether anything happened in second t or later.
func (s *stats) pending(t int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.open {
		if k >= t {
			return true
		}
	}
	return false
}

// second reports second t (the next one not reported).
func (s *stats) second(t int) Second {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.open[t]
	if b == nil {
		b = &bucket{s: Second{T: t, Errors: map[string]int{}, Final: map[string]int{}}}
	}
	delete(s.open, t)
	s.reported = t
	out := b.s
	slices.Sort(b.lat)
	out.P50 = ms(percentile(b.lat, 50))
	out.P99 = ms(percentile(b.lat, 99))
	if len(out.Errors) > 0 {
		s.stretch++
		if s.stretch > s.sum.LongestErrorStretch {
			s.sum.LongestErrorStretch, s.sum.LongestErrorEnd = s.stretch, t
		}
	} else {
		s.stretch = 0
	}
	return out
}

func (s *stats) summary(end time.Time) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := s.sum
	sum.Elapsed = end.Sub(s.start)
	if sum.Elapsed > 0 {
		sum.Throughput = float64(sum.OK) / sum.Elapsed.Seconds()
	}
	lat := slices.Clone(s.lat)
	slices.Sort(lat)
	sum.P50, sum.P90, sum.P99 = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99)
	if len(lat) > 0 {
		sum.Max = lat[len(lat)-1]
	}
	return sum
}

// report calls onSecond at the end of every second until stop closes, then
// once more for the part-second since the last report (if any).
func (r *run) report(stop <-chan struct{}, onSecond func(Second)) {
	t := 1
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			sec := r.stats.second(t)
			if onSecond != nil {
				onSecond(sec)
			}
			t++
			timer.Reset(r.start.Add(time.Duration(t) * time.Second).Sub(time.Now()))
		case <-stop:
			// The part-second since the last report, if the run lasted
			// into it.
			if time.Since(r.start) > time.Duration(t-1)*time.Second && r.stats.pending(t) {
				sec := r.stats.second(t)
				if onSecond != nil {
					onSecond(sec)
				}
			}
			return
		}
	}
}

// percentile is the nearest-rank percentile of sorted durations (0 for
// none).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(k, 0)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// codes renders counts by code as "1018:3 network:1", sorted; "-" when none.
func codes(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// WriteSecond writes s as one human line, or with asJSON as SCENARIOS.md's
// {"event":"traffic",…} line.
func WriteSecond(w io.Writer, s Second, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(struct {
			Event string `json:"event"`
			Second
		}{"traffic", s})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(w, "t=%ds sent=%d ok=%d errors=%s retries=%d p50=%.1fms p99=%.1fms\n",
		s.T, s.Sent, s.OK, codes(s.Errors), s.Retries, s.P50, s.P99)
	return err
}

// summaryLine is the JSON summary, "event" first like the traffic lines.
type summaryLine struct {
	Event      string         `json:"event"`
	ElapsedS   float64        `json:"elapsed_s"`
	Sent       int            `json:"sent"`
	OK         int            `json:"ok"`
	Throughput float64        `json:"throughput"`
	P50        float64        `json:"p50_ms"`
	P90        float64        `json:"p90_ms"`
	P99        float64        `json:"p99_ms"`
	Max        float64        `json:"max_ms"`
	Errors     map[string]int `json:"errors"`
	Answers    map[string]int `json:"answers"`
	Retries    int            `json:"retries"`
	Skipped    int            `json:"skipped"`
	Cancelled  int            `json:"cancelled"`
	Stretch    int            `json:"longest_error_stretch_s"`
	StretchEnd int            `json:"longest_error_stretch_end"`
}

// WriteSummary writes sum as a few human lines, or with asJSON as one
// {"event":"summary",…} line.
func WriteSummary(w io.Writer, sum Summary, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(summaryLine{
			Event: "summary", ElapsedS: math.Round(sum.Elapsed.Seconds()*1000) / 1000,
			Sent: sum.Sent, OK: sum.OK, Throughput: math.Round(sum.Throughput*10) / 10,
			P50: ms(sum.P50), P90: ms(sum.P90), P99: ms(sum.P99), Max: ms(sum.Max),
			Errors: sum.Errors, Answers: sum.Answers, Retries: sum.Retries,
			Skipped: sum.Skipped, Cancelled: sum.Cancelled,
			Stretch: sum.LongestErrorStretch, StretchEnd: sum.LongestErrorEnd,
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	stretch := "none"
	if sum.LongestErrorStretch > 0 {
		stretch = fmt.Sprintf("%ds (t=%d to t=%d)", sum.LongestErrorStretch, sum.LongestErrorEnd-sum.LongestErrorStretch+1, sum.LongestErrorEnd)
	}
	_, err := fmt.Fprintf(w, `sent %d messages in %.1fs: %d ok (%.1f/s)
latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f
final errors: %s
error answers: %s  retries: %d  skipped: %d  cancelled: %d
longest stretch of seconds with errors: %s
`, sum.Sent, sum.Elapsed.Seconds(), sum.OK, sum.Throughput,
		ms(sum.P50), ms(sum.P90), ms(sum.P99), ms(sum.Max),
		codes(sum.Errors), codes(sum.Answers), sum.Retries, sum.Skipped, sum.Cancelled, stretch)
	return err
}
