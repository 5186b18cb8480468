package health

import (
	"errors"
	"reflect"
	"testing"

	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		n    membership.Node
		want string
	}{
		{membership.Node{ID: "coreapp-2", GRPCAddr: "127.0.0.1:7001", GossipAddr: "10.0.0.1:1"}, "127.0.0.1:coreapp-2"},
		{membership.Node{ID: "m1", GRPCAddr: "[::1]:7001"}, "::1:m1"},
		{membership.Node{ID: "m1", GossipAddr: "10.0.0.1:7946"}, "10.0.0.1:m1"},
		{membership.Node{ID: "m1", GRPCAddr: "garbage"}, "unknown:m1"},
	} {
		if got := Key(tc.n); got != tc.want {
			t.Errorf("Key(%+v) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestGatewayStatusName(t *testing.T) {
	for in, want := range map[mcsimv1.GatewayStatus]string{
		mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED:     "connected",
		mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING:    "connecting",
		mcsimv1.GatewayStatus_GATEWAY_STATUS_DISCONNECTED:  "disconnected",
		mcsimv1.GatewayStatus_GATEWAY_STATUS_UNINITIALIZED: "uninitialized",
		mcsimv1.GatewayStatus_GATEWAY_STATUS_UNSPECIFIED:   "uninitialized",
		mcsimv1.GatewayStatus(99):                          "uninitialized",
	} {
		if got := GatewayStatusName(in); got != want {
			t.Errorf("GatewayStatusName(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestMasterRoleName(t *testing.T) {
	for in, want := range map[mcsimv1.MasterRole]string{
		mcsimv1.MasterRole_MASTER_ROLE_PRIMARY:     "primary_master",
		mcsimv1.MasterRole_MASTER_ROLE_SECONDARY:   "secondary_master",
		mcsimv1.MasterRole_MASTER_ROLE_UNSPECIFIED: "secondary_master",
	} {
		if got := MasterRoleName(in); got != want {
			t.Errorf("MasterRoleName(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestEntries(t *testing.T) {
	node := membership.Node{ID: "n", GRPCAddr: "127.0.0.1:1", PID: 77, MetricsAddr: "127.0.0.1:9100"}
	bare := membership.Node{ID: "n", GRPCAddr: "127.0.0.1:1"}
	const metrics = "http://127.0.0.1:9100/metrics"
	for _, tc := range []struct {
		name string
		got  Entry
		want Entry
	}{
		{"primary master", FromMaster(node, &mcsimv1.MasterServiceStatusResponse{
			Role: mcsimv1.MasterRole_MASTER_ROLE_PRIMARY, Pid: 1234, PendingRestart: []string{"verbose_logging", "log_level"},
			HealthyCoreapps: []string{"c1"},
		}), Entry{Role: "primary_master", GatewayStatus: "disconnected", Shards: []int{}, PID: 1234,
			PendingRestart: []string{"log_level", "verbose_logging"}, Metrics: metrics, State: "alive"}},
		{"secondary master without pid uses gossip pid", FromMaster(node, &mcsimv1.MasterServiceStatusResponse{
			Role: mcsimv1.MasterRole_MASTER_ROLE_SECONDARY,
		}), Entry{Role: "secondary_master", GatewayStatus: "disconnected", Shards: []int{}, PID: 77,
			PendingRestart: []string{}, Metrics: metrics, State: "alive"}},
		{"serving coreapp, shards sorted", FromCoreapp(bare, &mcsimv1.StatusResponse{
			Shards:        []*mcsimv1.ServedShard{{Shard: 3, Epoch: 9}, {Shard: 0, Epoch: 2}},
			GatewayStatus: mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED, Pid: 55, PendingRestart: []string{"log_level"},
		}), Entry{Role: "coreapp", GatewayStatus: "connected", Shards: []int{0, 3}, PID: 55, PendingRestart: []string{"log_level"}, State: "alive"}},
		{"standby coreapp", FromCoreapp(bare, &mcsimv1.StatusResponse{
			GatewayStatus: mcsimv1.GatewayStatus_GATEWAY_STATUS_DISCONNECTED, Pid: 56,
		}), Entry{Role: "coreapp", GatewayStatus: "disconnected", Shards: []int{}, PID: 56, PendingRestart: []string{}, State: "alive"}},
		{"nil response", FromCoreapp(bare, nil),
			Entry{Role: "coreapp", GatewayStatus: "uninitialized", Shards: []int{}, PendingRestart: []string{}, State: "alive"}},
		{"unreachable", Unreachable(node, errors.New("context deadline exceeded")),
			Entry{Role: "unknown", GatewayStatus: "disconnected", Shards: []int{}, PID: 77, PendingRestart: []string{},
				Metrics: metrics, Error: "unreachable: context deadline exceeded", State: "unreachable"}},
		{"primary master with a shard without owner", FromMaster(node, &mcsimv1.MasterServiceStatusResponse{
			Role: mcsimv1.MasterRole_MASTER_ROLE_PRIMARY, Pid: 1,
			UnassignedShards: []*mcsimv1.UnassignedShard{{Shard: 1, SinceUnixMs: 1796000043512, Reason: "no healthy standby"}, {Shard: 2, Reason: "being assigned"}},
		}), Entry{Role: "primary_master", GatewayStatus: "disconnected", Shards: []int{}, PID: 1, PendingRestart: []string{}, Metrics: metrics, State: "alive",
			UnassignedShards: []UnassignedShard{{Shard: 1, Since: "2026-11-30T00:54:03.512Z", Reason: "no healthy standby"}, {Shard: 2, Reason: "being assigned"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", tc.got, tc.want)
			}
		})
	}
}
