package scenarios

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

// event is one line of `mcsim scenario run --json` (SCENARIOS.md "--json
// output"). Fields that do not apply are left out.
type event struct {
	Run   int     `json:"run"`
	T     float64 `json:"t"`
	Event string  `json:"event"`

	Scenario string  `json:"scenario,omitempty"`
	Target   string  `json:"target,omitempty"`
	Seed     *uint64 `json:"seed,omitempty"`

	Index  *int   `json:"index,omitempty"`
	Action string `json:"action,omitempty"`
	Node   string `json:"node,omitempty"`
	Phase  string `json:"phase,omitempty"`

	Shard      *int   `json:"shard,omitempty"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	Epoch      uint64 `json:"epoch,omitempty"`
	DowntimeMS *int64 `json:"downtime_ms,omitempty"`
	LeaseEpoch uint64 `json:"lease_epoch,omitempty"`

	What       string   `json:"what,omitempty"`
	MeasuredMS *float64 `json:"measured_ms,omitempty"`
	Bound      string   `json:"bound,omitempty"`
	// OK is a *bool (a verdict) or, on traffic events, a *int (messages
	// answered 201): one key, two shapes, as SCENARIOS.md has it.
	OK     any    `json:"ok,omitempty"`
	Detail string `json:"detail,omitempty"`

	Invariant string `json:"invariant,omitempty"`
	Details   string `json:"details,omitempty"`

	// traffic (one per second of the load) and callbacks (in the summary).
	Sent      *int            `json:"sent,omitempty"`
	Errors    *map[string]int `json:"errors,omitempty"`
	P50MS     *float64        `json:"p50_ms,omitempty"`
	P99MS     *float64        `json:"p99_ms,omitempty"`
	Delivered *int            `json:"delivered,omitempty"`
	Retried   *int            `json:"retried,omitempty"`
	Lost      *int            `json:"lost,omitempty"`

	DurationS    *float64 `json:"duration_s,omitempty"`
	Expectations *int     `json:"expectations,omitempty"`
	Failed       *int     `json:"failed,omitempty"`
	Violations   *int     `json:"violations,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// ms is a duration in milliseconds with microsecond digits, as --json
// reports measured times.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// seconds is the "t" of an event: seconds since the run's start, to the
// millisecond.
func seconds(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)) / 1000
}

func writeEvent(w io.Writer, ev event) {
	if w == nil {
		return
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("scenarios: event %+v: %v", ev, err)) // a programming error: every field marshals
	}
	_, _ = w.Write(append(b, '\n'))
}
