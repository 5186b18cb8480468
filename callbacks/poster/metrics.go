package poster

import "github.com/prometheus/client_golang/prometheus"

// metrics count what happened to one coreapp's callbacks, on the registry
// in Config.Registry (never the global one: many coreapps share a process
// in tests).
type metrics struct {
	queued, posts, delivered, failed, dropped, persisted, adopted prometheus.Counter
	pending, inFlight                                             prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "mcsim_coreapp_callbacks_" + name, Help: help})
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcsim_coreapp_callbacks_" + name, Help: help})
	}
	m := &metrics{
		queued:    c("queued_total", "Status callbacks queued to be posted (taken from the gateway or adopted from a shard's last owner)."),
		posts:     c("posts_total", "Callback POSTs made (every attempt)."),
		delivered: c("delivered_total", "Callbacks the receiver answered 200."),
		failed:    c("failed_attempts_total", "Callback POSTs not answered 200 in time; each is retried after the backoff."),
		dropped:   c("dropped_total", "Callbacks never posted: no webhooks.url, or their kind is off in webhooks.message."),
		persisted: c("persisted_total", "Callbacks kept in the shared store before their status was acknowledged (callback_persist)."),
		adopted:   c("adopted_total", "Kept callbacks of a shard's last owner queued by this coreapp when it was assigned the shard."),
		pending:   g("pending", "Callbacks waiting or in flight."),
		inFlight:  g("in_flight", "Callback POSTs in flight (at most webhooks.max_concurrent_requests)."),
	}
	reg.MustRegister(m.queued, m.posts, m.delivered, m.failed, m.dropped, m.persisted, m.adopted, m.pending, m.inFlight)
	return m
}
