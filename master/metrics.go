package master

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one master's Prometheus metrics, registered on the registry
// the caller passes (never the global one: many masters share a process in
// tests).
type metrics struct {
	heartbeatsSent     prometheus.Counter
	heartbeatsFailed   prometheus.Counter
	heartbeatRTT       prometheus.Histogram
	unhealthy          prometheus.Counter
	failovers          prometheus.Counter
	failoverDuration   prometheus.Histogram
	shardsUnassigned   prometheus.Gauge
	leaseHolder        prometheus.Gauge
	leaseEpoch         prometheus.Gauge
	settingsRevision   prometheus.Gauge
	stalls             prometheus.Counter
	leaseLostOwnClock  prometheus.Counter
	assignmentsRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	ms := []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	m := &metrics{
		heartbeatsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_master_heartbeats_sent_total", Help: "Heartbeats sent to coreapps."}),
		heartbeatsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_master_heartbeats_failed_total", Help: "Heartbeats that got an error or no answer in time."}),
		heartbeatRTT: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mcsim_master_heartbeat_rtt_seconds", Help: "Round-trip time of answered heartbeats.", Buckets: ms}),
		unhealthy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_master_unhealthy_declarations_total", Help: "Coreapps declared unhealthy (rule 1)."}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_master_failovers_total", Help: "Shards moved from a lost owner to a standby."}),
		failoverDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mcsim_master_failover_duration_seconds",
			Help:    "From the moment a shard lost its owner (rule-1 deadline or graceful leave) to the new owner's accepted assignment.",
			Buckets: ms}),
		shardsUnassigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcsim_master_shards_unassigned", Help: "Shards with no owner in the primary's map."}),
		leaseHolder: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcsim_master_lease_holder", Help: "1 while this master holds the master lease (primary), else 0."}),
		leaseEpoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcsim_master_lease_epoch", Help: "The lease epoch this master holds or last saw."}),
		settingsRevision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcsim_master_settings_revision", Help: "Revision of the last settings snapshot applied."}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_master_stalls_total", Help: "Stalls of the master's own clock detected (rule 4)."}),
		leaseLostOwnClock: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_master_lease_lost_total", Help: "Times this master stopped acting as primary (lease expired by its own clock, refused or fenced)."}),
		assignmentsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcsim_master_assignments_refused_total", Help: "Assign RPCs refused by a coreapp or failed."}),
	}
	reg.MustRegister(m.heartbeatsSent, m.heartbeatsFailed, m.heartbeatRTT, m.unhealthy, m.failovers,
		m.failoverDuration, m.shardsUnassigned, m.leaseHolder, m.leaseEpoch, m.settingsRevision,
		m.stalls, m.leaseLostOwnClock, m.assignmentsRefused)
	return m
}
