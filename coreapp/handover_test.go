package coreapp

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/gateway"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// TestHandOver stops coreapp "a" through Config.OnLeave = HandOver, as
// mcsim coreapp does, with a fake gossip cluster, and a standby "b" that
// the fake primary assigns a's shards to once it hears the goodbye (or
// never). Virtual time tells how long the stop kept a's sessions open.
func TestHandOver(t *testing.T) {
	never := time.Duration(-1)
	tests := []struct {
		name        string
		serving     bool          // a serves shards 0 and 1 when it stops
		leaveErr    error         // what the goodbye returns
		masterAlive bool          // a master is still a gossip member
		successor   time.Duration // b takes the shards this long after the goodbye (never: not at all)
		wait        time.Duration // Handover.Wait
		cancelAt    time.Duration // the stop's context ends then (0: never)

		stopTook     time.Duration // how long Stop took, in virtual time
		askedMaster  bool          // MasterAlive was asked
		handedOver   bool          // b holds both shards without a's sessions closing first
		logContains  string
		stopTookUpTo time.Duration // when > stopTook: the window Stop may end in (one poll)
	}{
		{name: "not serving: no wait", masterAlive: true, successor: never,
			stopTook: 0},
		{name: "no master alive: nobody will take over", serving: true, successor: never,
			stopTook: 0, askedMaster: true},
		{name: "goodbye failed: masters use the heartbeat rule", serving: true, leaveErr: errors.New("push failed"), masterAlive: true, successor: never,
			stopTook: 0, logContains: "gossip leave incomplete"},
		{name: "serving: waits until handed over", serving: true, masterAlive: true, successor: 300 * time.Millisecond,
			stopTook: 300 * time.Millisecond, stopTookUpTo: 300*time.Millisecond + handoverPoll,
			askedMaster: true, handedOver: true, logContains: "every shard handed over"},
		{name: "serving, no successor: waits for the default bound", serving: true, masterAlive: true, successor: never,
			stopTook: DefaultHandoverWait, askedMaster: true, logContains: "shards not handed over in time"},
		{name: "serving, no successor: waits for the given bound", serving: true, masterAlive: true, successor: never, wait: 500 * time.Millisecond,
			stopTook: 500 * time.Millisecond, askedMaster: true, logContains: "shards not handed over in time"},
		{name: "successor later than the bound", serving: true, masterAlive: true, successor: 3 * time.Second, wait: time.Second,
			stopTook: time.Second, askedMaster: true, logContains: "shards not handed over in time"},
		{name: "the stop's context ends first", serving: true, masterAlive: true, successor: never, cancelAt: 700 * time.Millisecond,
			stopTook: 700 * time.Millisecond, askedMaster: true, logContains: "shards not handed over in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				_, b, _ := h.coreapp("b", nil)
				var logs bytes.Buffer
				var leaveTimeouts []time.Duration
				askedMaster := false
				successorDone := make(chan struct{}) // closed once b has taken the shards, or at once if nobody will
				var a *Node
				var ac mcsimv1.CoreAppServiceClient
				a, ac, _ = h.coreapp("a", func(cfg *Config) {
					cfg.OnLeave = func(ctx context.Context, served []*mcsimv1.ServedShard) {
						HandOver(ctx, a, served, Handover{
							Leave: func(timeout time.Duration) error {
								leaveTimeouts = append(leaveTimeouts, timeout)
								if tt.leaveErr == nil && tt.successor != never {
									// The primary hears the goodbye and
									// assigns a's shards to b.
									go func() {
										defer close(successorDone)
										time.Sleep(tt.successor)
										for shard := range int32(2) {
											_, _ = b.Assign(context.Background(), assign(2, shard, 2))
										}
									}()
								} else {
									close(successorDone)
								}
								return tt.leaveErr
							},
							MasterAlive: func() bool { askedMaster = true; return tt.masterAlive },
							Wait:        tt.wait,
							Logger:      zerolog.New(&logs),
						})
					}
				})
				if tt.serving {
					for shard := range int32(2) {
						if _, err := ac.Assign(t.Context(), assign(1, shard, 1)); err != nil {
							t.Fatal(err)
						}
					}
				}
				ctx := t.Context()
				if tt.cancelAt > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.cancelAt)
					defer cancel()
				}

				start := time.Now()
				_ = a.Stop(ctx) // a context that ends first makes Stop say so
				took := time.Since(start)

				upTo := max(tt.stopTookUpTo, tt.stopTook)
				if took < tt.stopTook || took > upTo {
					t.Errorf("Stop took %v, want %v..%v", took, tt.stopTook, upTo)
				}
				if len(leaveTimeouts) != 1 || leaveTimeouts[0] != leaveTimeout {
					t.Errorf("Leave called with %v, want once with %v", leaveTimeouts, leaveTimeout)
				}
				if askedMaster != tt.askedMaster {
					t.Errorf("MasterAlive asked: %v, want %v", askedMaster, tt.askedMaster)
				}
				if !strings.Contains(logs.String(), tt.logContains) {
					t.Errorf("log %q does not say %q", logs.String(), tt.logContains)
				}

				<-successorDone // a late successor still takes the shards, after a closed them
				synctest.Wait()
				evs := h.gw.Log(0)
				if v := gateway.CheckLog(evs); len(v) != 0 {
					t.Fatalf("violations: %v", v)
				}
				aClosed := 0
				for _, e := range evs {
					if e.GetKind() == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT && e.GetCoreappId() == "a" {
						aClosed++
					}
				}
				holders := h.gw.Sessions()
				handedOver := tt.serving && aClosed == 0 && len(holders) == 2 &&
					holders[0].CoreappID == "b" && holders[1].CoreappID == "b"
				if handedOver != tt.handedOver {
					t.Errorf("handed over: %v (a closed %d sessions, gateway holds %v), want %v", handedOver, aClosed, holders, tt.handedOver)
				}
			})
		})
	}
}
