package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcsim/mcsim/settings/store"
)

// metrics are the HTTP side's own metrics plus the store's view of the
// settings revision and the master lease, read at scrape time so they
// cannot drift from the store.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	messages *prometheus.CounterVec
	handler  http.Handler
}

// routeNone labels requests no route matched, so probing unknown paths
// cannot create unbounded label values.
const routeNone = "none"

func newMetrics(reg *prometheus.Registry, st store.Backend, now func() time.Time) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcsim_settings_http_requests_total",
			Help: "HTTP requests to the settings API, by route pattern and status code.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mcsim_settings_http_request_duration_seconds",
			Help: "Time to answer an HTTP request of the settings API, by route pattern.",
			// Reads answer in microseconds, writes wait for fsync (ms),
			// health waits for the slowest node (up to its timeout).
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
		}, []string{"route"}),
	}
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcsim_frontdoor_messages_total",
		Help: "POST /v1/messages by outcome: sent (201), invalid (4xx body), no_owner, refused and unknown (the three 1018s; unknown may still have reached the gateway), error (500), cancelled (client gone).",
	}, []string{"outcome"})
	// Every outcome shows from the start, at 0, so a rate() over a failover
	// does not miss the first 1018s.
	for _, o := range []string{outcomeSent, outcomeInvalid, outcomeNoOwner, outcomeRefused, outcomeUnknown, outcomeError, outcomeCanceled} {
		m.messages.WithLabelValues(o)
	}
	collectors := []prometheus.Collector{
		m.requests, m.duration, m.messages,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mcsim_settings_revision",
			Help: "Revision of the stored settings (grows with every accepted change of settings or shard count).",
		}, func() float64 { return float64(st.State().Revision) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mcsim_settings_shards",
			Help: "The account's shard count.",
		}, func() float64 { return float64(st.State().Shards) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mcsim_settings_lease_epoch",
			Help: "Epoch of the master lease as the store sees it.",
		}, func() float64 { return float64(st.CurrentLease().Epoch) }),
		leaseHolder{st: st, now: now, desc: prometheus.NewDesc("mcsim_settings_lease_holder",
			"1 for the master holding the lease as the store sees it (absent when free or expired).",
			[]string{"holder"}, nil)},
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m, nil
}

func (m *metrics) observe(route string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(took.Seconds())
}

func (m *metrics) message(outcome string) { m.messages.WithLabelValues(outcome).Inc() }

// leaseHolder reports the current holder as a label, which a plain gauge
// cannot do without remembering (and deleting) the previous holder.
type leaseHolder struct {
	st   store.Backend
	now  func() time.Time
	desc *prometheus.Desc
}

func (l leaseHolder) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

func (l leaseHolder) Collect(ch chan<- prometheus.Metric) {
	lease, now := store.LeaseNow(l.st, l.now)
	if lease.Holder == "" || !now.Before(lease.Expires) {
		return
	}
	ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, 1, lease.Holder)
}
