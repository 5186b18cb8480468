package faultnet_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/mcsim/mcsim/internal/faultnet"
	"github.com/mcsim/mcsim/internal/grpcopts"
	"github.com/mcsim/mcsim/master"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// answerHeartbeats answers heartbeats as a coreapp does (who it is, what
// it serves) and nothing else: the handler's own cost is not what the
// benchmark measures.
type answerHeartbeats struct {
	mcsimv1.UnimplementedCoreAppServiceServer
}

func (answerHeartbeats) Heartbeat(context.Context, *mcsimv1.HeartbeatRequest) (*mcsimv1.HeartbeatResponse, error) {
	return &mcsimv1.HeartbeatResponse{CoreappId: "coreapp-1", Shards: []*mcsimv1.ServedShard{{Shard: 0, Epoch: 3}}}, nil
}

// BenchmarkHeartbeatRTT is what the fault layer costs a heartbeat when no
// fault touches it: the master's dial options and the nodes' server
// options over loopback TCP, as between two node processes, with the
// layer on both ends (its table in force, naming both nodes and faulting
// another link) or with none. It reports the round trip's p50 and p99.
//
//	go test -run '^$' -bench HeartbeatRTT -benchtime 5000x -count 5 ./internal/faultnet/
func BenchmarkHeartbeatRTT(b *testing.B) {
	for _, layered := range []bool{false, true} {
		name := "layer=off"
		if layered {
			name = "layer=on"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			addr := ln.Addr().String()
			dial := master.CoreappDialOptions()
			if layered {
				table := faultnet.Table{
					Book:  map[string][]string{"master-1": {"127.0.0.1:1"}, "coreapp-1": {addr}, "coreapp-2": {"127.0.0.1:2"}},
					Links: []faultnet.Link{{From: "master-1", To: "coreapp-2", Cut: true}},
				}
				mLayer, cLayer := faultnet.New("master-1"), faultnet.New("coreapp-1")
				for _, l := range []*faultnet.Layer{mLayer, cLayer} {
					if err := l.Set(table); err != nil {
						b.Fatal(err)
					}
				}
				ln = cLayer.Listen(ln)
				dial = append(dial, grpc.WithContextDialer(mLayer.GRPCDialer()))
			}
			s := grpc.NewServer(grpcopts.Server()...)
			mcsimv1.RegisterCoreAppServiceServer(s, answerHeartbeats{})
			go func() { _ = s.Serve(ln) }()
			defer s.Stop()
			conn, err := grpc.NewClient(addr, dial...)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := mcsimv1.NewCoreAppServiceClient(conn)
			req := &mcsimv1.HeartbeatRequest{MasterId: "master-1", LeaseEpoch: 1}
			// Warm: the connection and its first stream are not the
			// heartbeat's cost.
			for range 100 {
				if _, err := client.Heartbeat(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
			rtts := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req.Seq = uint64(i)
				start := time.Now()
				if _, err := client.Heartbeat(b.Context(), req); err != nil {
					b.Fatal(err)
				}
				rtts = append(rtts, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(rtts)
			b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds()), "p99-µs")
		})
	}
}
