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

	messagesSent     prometheus.Counter
	messagesRefused  prometheus.Counter
	statusesReceived prometheus.Counter
	statusesDropped  prometheus.Counter
	statusesFailed   prometheus.Counter
	statusesDeclined prometheus.Counter
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
		messagesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_messages_sent_total", Help: "Send RPCs whose message the gateway accepted."}),
		messagesRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_messages_refused_total", Help: "Send RPCs that failed: not primary for the recipient's shard, refused by the gateway, bad request, or outcome unknown (session ended, deadline)."}),
		statusesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_statuses_received_total", Help: "Status updates the gateway offered (offers repeated after a failed handler count again)."}),
		statusesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_statuses_dropped_total", Help: "Status updates taken and dropped because the node has no status handler."}),
		statusesFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_statuses_failed_total", Help: "Status updates the status handler did not take (left unacknowledged for the gateway to offer again)."}),
		statusesDeclined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_coreapp_statuses_declined_total", Help: "Status updates offered while the node was stopping, left unacknowledged so that the gateway offers them to the shard's successor."}),
	}
	reg.MustRegister(m.heartbeats, m.assignsAccepted, m.assignsRefused, m.shardsServed,
		m.sessionsOpened, m.sessionsEnded, m.releases,
		m.messagesSent, m.messagesRefused, m.statusesReceived, m.statusesDropped, m.statusesFailed, m.statusesDeclined)
	return m
}
