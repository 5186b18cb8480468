package coreapp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one coreapp's Prometheus metrics, registered on the registry
// in Config.Registry (never the global one: many coreapps share a process in
// tests). They count what the node itself did; the gateway's log stays the
// impartial record of sessions.
type metrics struct {
	heartbeats      prometheus.Counter
	assignsAccepted prometheus.Counter
	assignsRefused  prometheus.Counter
	shardsServed    prometheus.Gauge
	sessionsOpened  prometheus.Counter
	sessionsEnded   prometheus.Counter
	releases        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_heartbeats_answered_total", Help: "Heartbeats answered to a master."}),
		assignsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_assignments_accepted_total", Help: "Assign RPCs that ended with the gateway accepting the shard's session."}),
		assignsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_assignments_refused_total", Help: "Assign RPCs refused (fenced, stale epoch, stopping, bad request) or whose session the gateway did not accept."}),
		shardsServed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcsim_coreapp_shards_served", Help: "Shards this node serves: their gateway session is accepted and the gateway pings it (not those still opening or cut off from the gateway)."}),
		sessionsOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_gateway_sessions_opened_total", Help: "Gateway sessions the gateway accepted."}),
		sessionsEnded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_gateway_sessions_ended_total", Help: "Accepted gateway sessions that ended (released, replaced, broken or stopped)."}),
		releases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_releases_total", Help: "Release RPCs that closed a held session."}),
	}
	reg.MustRegister(m.heartbeats, m.assignsAccepted, m.assignsRefused, m.shardsServed,
		m.sessionsOpened, m.sessionsEnded, m.releases)
	return m
}
