package coreapp

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/internal/clock"
)

// Rule 7 by the coreapp's own clock: it stops claiming service when it has
// not heard the gateway for SilentAfter as its clock measures it, so a
// slow clock notices a cut later in real time and a fast one sooner. The
// rate changes at the cut, while the silence timer is armed.
func TestGatewaySilenceTimedByOwnClock(t *testing.T) {
	tests := []struct {
		rate float64
		want time.Duration // real time from the cut to CONNECTING
	}{
		{rate: 1, want: gateway.SilentAfter},
		{rate: 0.5, want: 2 * gateway.SilentAfter},
		{rate: 2, want: gateway.SilentAfter / 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rate=%v", tt.rate), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				clk := clock.NewSkewed(clock.Real())
				var cut atomic.Bool
				_, c, _ := h.coreapp("a", func(cfg *Config) {
					cfg.Clock = clk
					cfg.GatewayClient = cutGateway{h.gc, &cut}
				})
				if _, err := c.Assign(t.Context(), assign(1, 2, 1)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second) // a ping comes now
				synctest.Wait()
				wantServed(t, statusOf(t, c), stConnected, "2/1/CONNECTED")
				cut.Store(true)
				if err := clk.SetRate(tt.rate); err != nil {
					t.Fatal(err)
				}
				time.Sleep(tt.want - time.Millisecond)
				synctest.Wait()
				wantServed(t, statusOf(t, c), stConnected, "2/1/CONNECTED") // not yet
				time.Sleep(time.Millisecond)
				synctest.Wait()
				wantServed(t, statusOf(t, c), stConnecting, "2/1/CONNECTING")
				cut.Store(false)
			})
		})
	}
}
