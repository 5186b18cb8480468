package sim

import (
	"context"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/shard"
	"github.com/mcsim/mcsim/traffic/load"
)

// The traffic of a scenario's workload, in virtual time: the load
// generator (the clients), the front door on the settings node, and what
// the runner reads back (Traffic). The coreapp's side of a message is in
// messages.go, the callbacks in callbacks.go and receiver.go.
//
// The load mirrors `mcsim load` (traffic/load), so a seed means the same
// clients on both targets:
//   - Open loop with uniform spacing: message i starts at start + i/rate,
//     whatever became of the earlier ones, as the real generator does. A
//     Poisson process would be the textbook model of many independent
//     clients, but the real generator spaces evenly, and the simulator is
//     there to predict what the real cluster does under that generator:
//     the same arrivals make the two targets' error windows comparable.
//     Nothing about arrivals is drawn, so the world's PCG serves only the
//     cluster (latencies, ids, the receiver's failures).
//   - Recipients: message i goes to load.Recipient(k, n) with k drawn from
//     PCG(seed, 0), the jitter of message i's retries from PCG(seed, i+1),
//     the real generator's two sources.
//   - Retries: 1018 (the only error the front door answers here) after
//     load.DefaultRetry's wait (100 ms doubling to 2 s, × [0.8, 1.2)); a
//     retry that would start more than 30 s after the first attempt is not
//     made. At most maxOutstanding messages are in progress; a start that
//     finds the bound reached is skipped (counted), never queued.
//   - Per second, bucketed by time ([k-1 s, k s) is second k): messages
//     first started, answered 201, and every error answer by code, retried
//     or final (so a failover shows even when every retry succeeds), with
//     the nearest-rank p50/p99 of the latencies (first attempt to the 201)
//     of the messages answered in it.
//
// The clients and the front door are outside the modelled network: a
// request reaches the front door and its answer the client after the
// loopback latency (they are one process in `mcsim scenario run`). The
// front door's Send to a coreapp is a call over the network from the
// settings node, so partitions and delays between them apply.

// frontDoorTimeout is the front door's deadline on one Send
// (settings/httpapi.DefaultSendTimeout).
const frontDoorTimeout = 5 * time.Second

// maxOutstanding is load.Config.MaxOutstanding's default.
const maxOutstanding = 1000

// receiverURL is the webhooks.url the workload sets: the built-in
// receiver (receiver.go). Any loopback URL passes the settings' check.
const receiverURL = "http://127.0.0.1/sim-receiver"

// traffic is the world's workload; nil when the scenario has none, and
// then nothing in this file runs.
type traffic struct {
	w     *World
	seed  uint64
	rate  float64
	recip int
	retry load.Retry
	picks *rand.Rand

	start    time.Time
	interval time.Duration
	next     uint64 // the next message to start
	stopped  bool
	// outstanding are messages started and not finally answered.
	outstanding int
	skipped     int

	// The clients' record.
	seconds  []scenarios.TrafficSecond // complete
	open     map[int]*secondBucket     // by second, from 1
	reported int                       // seconds moved to seconds
	last     int                       // the last second, once the load stopped and drained (0: not yet)
	acked    []scenarios.AckedMessage
	refused  []scenarios.ClientError

	recv *receiver
	// kept are the pending callbacks the store keeps (callback_persist).
	kept *keptCallbacks
	seen scenarios.TrafficSeen
}

type secondBucket struct {
	s   scenarios.TrafficSecond
	lat []time.Duration
}

// clientMessage is one message in progress at a client.
type clientMessage struct {
	i      uint64
	to     string
	first  time.Time
	tries  int
	jitter *rand.Rand // made at its first error, as the real one draws only then
}

func newTraffic(w *World, wl scenarios.Workload, seed uint64) *traffic {
	return &traffic{
		w: w, seed: seed, rate: wl.Rate, recip: wl.Recipients, retry: load.DefaultRetry(),
		picks: rand.New(rand.NewPCG(seed, 0)), open: map[int]*secondBucket{},
		start: w.now, interval: time.Duration(float64(time.Second) / wl.Rate),
		recv: newReceiver(w, wl.Webhook), kept: newKeptCallbacks(),
	}
}

// begin starts message 0 now.
func (tr *traffic) begin() { tr.w.at(tr.start, tr.startNext) }

// startNext starts the next message, due now, and schedules the one after.
func (tr *traffic) startNext() {
	if tr.stopped {
		return
	}
	i := tr.next
	tr.next++
	to := load.Recipient(tr.picks.IntN(tr.recip), tr.recip)
	tr.w.at(tr.start.Add(time.Duration(tr.next)*tr.interval), tr.startNext)
	if tr.outstanding >= maxOutstanding {
		tr.skipped++
		return
	}
	tr.outstanding++
	tr.bucket(tr.w.now).s.Sent++
	m := &clientMessage{i: i, to: to, first: tr.w.now}
	tr.attempt(m)
}

// attempt POSTs m to the front door.
func (tr *traffic) attempt(m *clientMessage) {
	m.tries++
	tr.w.after(baseLatency, func() { tr.frontDoor(m) })
}

// answered is the front door's answer reaching the client: a message id
// (201) or an error code.
func (tr *traffic) answered(m *clientMessage, id, code string) {
	now := tr.w.now
	if code == "" {
		b := tr.bucket(now)
		b.s.OK++
		b.lat = append(b.lat, now.Sub(m.first))
		tr.acked = append(tr.acked, scenarios.AckedMessage{ID: id, Recipient: m.to, At: now})
		tr.done()
		return
	}
	tr.bucket(now).s.Errors[code]++
	tr.refused = append(tr.refused, scenarios.ClientError{At: now, Code: code})
	if m.jitter == nil {
		m.jitter = rand.New(rand.NewPCG(tr.seed, m.i+1))
	}
	r := tr.retry
	wait := time.Duration(float64(retryWait(r, m.tries)) * (1 - r.Jitter + 2*r.Jitter*m.jitter.Float64()))
	if now.Sub(m.first)+wait > r.GiveUp {
		tr.done() // a final error
		return
	}
	tr.w.after(wait, func() { tr.attempt(m) })
}

// retryWait is load.Retry's wait before retry n (1: the first): First,
// doubling, capped at Max.
func retryWait(r load.Retry, n int) time.Duration {
	d := r.First
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// done ends one message; the last one after the load stopped ends the
// seconds.
func (tr *traffic) done() {
	tr.outstanding--
	if tr.stopped && tr.outstanding == 0 {
		tr.last = tr.secondOf(tr.w.now)
	}
}

func (tr *traffic) secondOf(t time.Time) int { return int(t.Sub(tr.start)/time.Second) + 1 }

// bucket is the second an event at t counts in (never one already
// reported).
func (tr *traffic) bucket(t time.Time) *secondBucket {
	k := max(tr.secondOf(t), tr.reported+1)
	b := tr.open[k]
	if b == nil {
		b = &secondBucket{s: scenarios.TrafficSecond{End: tr.start.Add(time.Duration(k) * time.Second), Errors: map[string]int{}}}
		tr.open[k] = b
	}
	return b
}

// closeSeconds moves every second that has ended to seconds: all of them
// while the load runs or messages are in progress, up to the last one's
// after.
func (tr *traffic) closeSeconds() {
	for {
		k := tr.reported + 1
		if tr.last > 0 && k > tr.last {
			return
		}
		end := tr.start.Add(time.Duration(k) * time.Second)
		if end.After(tr.w.now) {
			return
		}
		b := tr.open[k]
		if b == nil {
			b = &secondBucket{s: scenarios.TrafficSecond{End: end, Errors: map[string]int{}}}
		}
		delete(tr.open, k)
		slices.Sort(b.lat)
		b.s.P50, b.s.P99 = percentile(b.lat, 50), percentile(b.lat, 99)
		tr.seconds = append(tr.seconds, b.s)
		tr.reported = k
	}
}

// percentile is load's nearest-rank percentile of sorted durations (0 for
// none).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := (p*len(sorted)+99)/100 - 1
	return sorted[max(k, 0)]
}

// frontDoor is POST /v1/messages arriving at the settings node: the shard
// of the recipient by the stored map, a message id, and a Send to the
// owner (settings/httpapi.postMessage). Every failure is 1018: no map, no
// owner, the owner refused (not sent), or no answer in time or the link
// broke (the outcome is unknown: the client retries with a new id, as
// the real front door makes one per request). The simulator's map has no
// addresses, so "owner's address unknown" never happens here.
func (tr *traffic) frontDoor(m *clientMessage) {
	w := tr.w
	reply := func(id, code string) {
		w.after(baseLatency, func() { tr.answered(m, id, code) })
	}
	sm := w.store.smap
	n := int(sm.GetShards())
	if !shard.ValidCount(n) {
		reply("", "1018")
		return
	}
	sh := shard.Of(m.to, n)
	var owner string
	for _, a := range sm.GetAssignments() {
		if int(a.GetShard()) == sh {
			owner = a.GetCoreappId()
			break
		}
	}
	c := w.coreappByID(owner)
	if c == nil {
		reply("", "1018")
		return
	}
	id := tr.messageID()
	send := sendRequest{id: id, to: m.to, shards: int32(n), coreapp: owner}
	w.callAsync(w.store.p, c.p, frontDoorTimeout, func(respond func(any, error)) { c.send(send, respond) }, func(_ any, err error) {
		if err != nil {
			reply("", "1018")
			return
		}
		reply(id, "")
	})
}

// messageID is a front door's id: "gBEG" and 16 random bytes in unpadded
// base32, the bytes from the world's source.
func (tr *traffic) messageID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], tr.w.rng.Uint64())
	binary.LittleEndian.PutUint64(b[8:], tr.w.rng.Uint64())
	return "gBEG" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// sendRequest is CoreAppService.Send's request.
type sendRequest struct {
	id, to  string
	shards  int32
	coreapp string
}

var _ scenarios.TrafficTarget = (*Target)(nil)

// StartWorkload implements scenarios.TrafficTarget: the receiver, then
// webhooks.url pointed at it (a PATCH, as the runner of real processes
// does), every running coreapp's callbacks, and the load from now.
func (t *Target) StartWorkload(_ context.Context, wl scenarios.Workload, seed uint64) error {
	if t.w == nil {
		return errors.New("workload: the cluster is not started")
	}
	if t.w.traffic != nil {
		return errors.New("workload: already started")
	}
	if !(wl.Rate > 0) || wl.Recipients < 1 || wl.Recipients > load.MaxRecipients {
		return fmt.Errorf("workload: rate must be > 0 and recipients 1 to %d, got %g and %d", load.MaxRecipients, wl.Rate, wl.Recipients)
	}
	tr := newTraffic(t.w, wl, seed)
	t.w.traffic = tr
	if err := t.w.store.patch([]byte(fmt.Sprintf(`{"webhooks":{"url":%q}}`, receiverURL))); err != nil {
		return err
	}
	for _, c := range t.w.coreapps {
		if c.p.up {
			c.startHooks()
		}
	}
	tr.begin()
	return nil
}

// StopLoad implements scenarios.TrafficTarget: no message starts from
// now; those in progress run to their final answer.
func (t *Target) StopLoad(context.Context) error {
	tr := t.w.traffic
	if tr == nil {
		return errors.New("workload: not started")
	}
	if !tr.stopped {
		tr.stopped = true
		if tr.outstanding == 0 {
			tr.last = tr.secondOf(t.w.now)
		}
	}
	return nil
}

// SetWebhook implements scenarios.TrafficTarget.
func (t *Target) SetWebhook(_ context.Context, wh scenarios.Webhook) error {
	if t.w.traffic == nil {
		return errors.New("workload: not started")
	}
	return t.w.traffic.recv.set(wh)
}

// Traffic implements scenarios.TrafficTarget. The record is the target's:
// the caller reads it until the next call.
func (t *Target) Traffic() *scenarios.TrafficSeen {
	tr := t.w.traffic
	if tr == nil {
		return &scenarios.TrafficSeen{}
	}
	t.refresh()
	tr.closeSeconds()
	tr.seen = scenarios.TrafficSeen{
		Seconds: capped(tr.seconds), Acked: capped(tr.acked), Refused: capped(tr.refused),
		Accepted: t.witness.Accepted(), Taken: t.witness.Taken(), Callbacks: capped(tr.recv.seen),
	}
	return &tr.seen
}
