package service

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store/pgstore/pgtest"
)

// TestTwoServicesShareOnePostgres: two settings service processes' worth
// of service (two Runs, two stores, two pools) on one database. PATCHes
// acknowledged by A reach a Watch stream on B in revision order, ending
// at the last one, and a GET on B right after A's answer shows it.
func TestTwoServicesShareOnePostgres(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, err := start(t, testConfig(dsn))
	if err != nil {
		t.Fatal(err)
	}
	b, err := start(t, testConfig(dsn))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(b.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := mcsimv1.NewSettingsServiceClient(conn).Watch(ctx, &mcsimv1.WatchRequest{NodeId: "test"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	start := first.GetSnapshot().GetRevision()

	apiA, apiB := newAPI(a.httpAddr), newAPI(b.httpAddr)
	defer apiA.close()
	defer apiB.close()
	apiA.login(t, DefaultAdminPassword)
	apiB.login(t, DefaultAdminPassword) // a token issued by B works on A too: same tokens table
	apiA.token = apiB.token
	const patches = 20
	for i := 1; i <= patches; i++ {
		if code, body, err := apiA.setMaxBackoff(100000 + i); err != nil || code != 200 {
			t.Fatalf("PATCH %d through A: %d %s %v", i, code, body, err)
		}
	}
	if got := apiB.maxBackoff(t); got != 100000+patches {
		t.Fatalf("GET through B after A acknowledged %d = %d", 100000+patches, got)
	}
	last := start
	for last < start+patches {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("B's Watch after revision %d (want %d): %v", last, start+patches, err)
		}
		rev := m.GetSnapshot().GetRevision()
		if rev <= last {
			t.Fatalf("B's Watch went from revision %d to %d", last, rev)
		}
		last = rev
	}
	for _, r := range []*running{a, b} {
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTwoServiceProcessesShareOnePostgres: two real settings processes on
// one database. What one acknowledged, the other serves, also after the
// first was SIGKILLed; and the other way round.
func TestTwoServiceProcessesShareOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts service processes")
	}
	dsn := pgtest.Schema(t)
	logPath := filepath.Join(t.TempDir(), "service.log")
	a, b := startChild(t, dsn, logPath), startChild(t, dsn, logPath)
	apiA, apiB := newAPI(a.httpAddr), newAPI(b.httpAddr)
	defer apiA.close()
	defer apiB.close()
	apiA.login(t, DefaultAdminPassword)
	apiB.login(t, DefaultAdminPassword)
	for i, step := range []struct {
		from, to *api
		v        int
	}{{apiA, apiB, 200001}, {apiB, apiA, 200002}} {
		if code, body, err := step.from.setMaxBackoff(step.v); err != nil || code != 200 {
			t.Fatalf("step %d: PATCH: %d %s %v\nlog:\n%s", i, code, body, err, readLog(logPath))
		}
		if got := step.to.maxBackoff(t); got != step.v {
			t.Fatalf("step %d: the other process shows %d, want %d", i, got, step.v)
		}
	}
	if code, _, err := apiA.setMaxBackoff(200003); err != nil || code != 200 {
		t.Fatalf("PATCH through A: %d %v", code, err)
	}
	a.kill()
	if got := apiB.maxBackoff(t); got != 200003 {
		t.Fatalf("after A's SIGKILL, B shows %d, want A's last acknowledged 200003", got)
	}
}

// TestSecondServiceJoinsTheFirstsGossip: a second settings service on the
// same database, with its own --id and --join, is one cluster with the
// first: a node that joins only the second one's gossip sees both.
func TestSecondServiceJoinsTheFirstsGossip(t *testing.T) {
	dsn := pgtest.Schema(t)
	ca := testConfig(dsn)
	ca.GossipAddr = "127.0.0.1:0"
	a, err := start(t, ca)
	if err != nil {
		t.Fatal(err)
	}
	cb := testConfig(dsn)
	cb.GossipAddr, cb.NodeID, cb.Join = "127.0.0.1:0", "settings-2", []string{a.gossipAddr}
	b, err := start(t, cb)
	if err != nil {
		t.Fatal(err)
	}
	node, err := membership.Start(membership.Config{
		Node:     membership.Node{ID: "coreapp-1", Role: membership.RoleCoreapp, GRPCAddr: "127.0.0.1:1"},
		BindAddr: "127.0.0.1:0", Join: []string{b.gossipAddr}, Tuning: membership.TuningFor("127.0.0.1:0"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Shutdown()
	// Join returns once the seed answered with its member list (a push/pull
	// of the full state), which holds the first service since the second
	// joined it before it was ready.
	var ids []string
	for _, n := range node.Members() {
		if n.Role == membership.RoleSettings {
			ids = append(ids, n.ID)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"settings", "settings-2"}) {
		t.Errorf("settings services in the gossip of a node that joined the second: %v, want [settings settings-2]", ids)
	}
	for _, r := range []*running{b, a} {
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}
}
