package coreapp

import (
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

func TestMetricsCountWhatTheNodeDid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		reg := prometheus.NewRegistry()
		_, c, _ := h.coreapp("a", func(cfg *Config) { cfg.Registry = reg })
		_, c2, _ := h.coreapp("b", nil)

		if _, err := c.Heartbeat(t.Context(), &mcsimv1.HeartbeatRequest{LeaseEpoch: 1}); err != nil {
			t.Fatal(err)
		}
		for _, shard := range []int32{0, 1} {
			if _, err := c.Assign(t.Context(), assign(1, shard, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Assign(t.Context(), assign(1, 0, 1)); err == nil {
			t.Fatal("re-assign of the same epoch was accepted")
		}
		if _, err := c.Release(t.Context(), &mcsimv1.ReleaseRequest{Shard: 1, Epoch: 1, LeaseEpoch: 1}); err != nil {
			t.Fatal(err)
		}
		// b takes shard 0 with a newer epoch: the gateway replaces a's session.
		if _, err := c2.Assign(t.Context(), assign(1, 0, 2)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		want := map[string]float64{
			"mcsim_coreapp_heartbeats_answered_total":     1,
			"mcsim_coreapp_assignments_accepted_total":    2,
			"mcsim_coreapp_assignments_refused_total":     1,
			"mcsim_coreapp_gateway_sessions_opened_total": 2,
			"mcsim_coreapp_gateway_sessions_ended_total":  2,
			"mcsim_coreapp_releases_total":                1,
			"mcsim_coreapp_shards_served":                 0,
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range families {
			m := f.GetMetric()[0]
			got[f.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		for name, v := range want {
			if got[name] != v {
				t.Errorf("%s = %v, want %v", name, got[name], v)
			}
		}
	})
}
