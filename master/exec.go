package master

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/internal/clock"
	"github.com/mcsim/mcsim/internal/logging"
	"github.com/mcsim/mcsim/master/failover"
	"github.com/mcsim/mcsim/master/lease"
	"github.com/mcsim/mcsim/master/primary"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// stepMachine steps the master's machine at now and carries out what it
// decides.
func (n *Node) stepMachine(ctx context.Context, wg *sync.WaitGroup, now time.Time, ev primary.Event) {
	n.stepWith(ctx, wg, now, now, ev, nil)
}

// stepWith steps the machine at now; the core's actions it carries out are
// observed at batch (the batch's now, also when it goes on after a map
// write); taken is told which of the event's results went to the core.
func (n *Node) stepWith(ctx context.Context, wg *sync.WaitGroup, now, batch time.Time, ev primary.Event, taken func(int)) {
	acts, err := n.mc.Step(now, ev)
	n.publishLease()
	if err != nil {
		n.log.Error().Err(err).Str("event", fmt.Sprintf("%T", ev)).Msg("master machine refused an event")
		return
	}
	n.carry(ctx, wg, batch, acts, taken)
}

// carry carries out the machine's actions in order.
func (n *Node) carry(ctx context.Context, wg *sync.WaitGroup, now time.Time, acts []primary.Action, taken func(int)) {
	coreActs := false
	for _, a := range acts {
		if fa := primary.CoreAction(a); fa != nil {
			coreActs = true
			if n.cfg.Observe != nil {
				// Only actions that are carried out are observed, so a test
				// that sees none knows none went out.
				n.cfg.Observe(now, fa)
			}
		}
		switch a := a.(type) {
		case primary.SendAcquire:
			n.renew(ctx, wg, a)
		case primary.LoadShardMap:
			n.loadShardMap(ctx, wg, a)
		case primary.BecomePrimary:
			n.startTerm(wg, a)
		case primary.PrimaryAborted:
			n.log.Error().Err(a.Err).Msg("took the lease but cannot build the failover core; staying secondary")
		case primary.StepDown:
			n.stepDown(a)
		case primary.ReleaseLease:
			n.releaseLease(a)
		case primary.LeaseReport:
			n.leaseReport(a.A)
		case primary.ResultTaken:
			if taken != nil {
				taken(a.Index)
			}
		case primary.CoreRefused:
			n.log.Error().Err(a.Err).Str("event", a.Event).Msg("core refused an event")
		case primary.SendHeartbeat:
			n.sendHeartbeat(ctx, wg, a)
		case primary.WriteMap:
			n.writeMap(ctx, wg, now, a)
		case primary.Assign:
			delete(n.unassigned, a.Shard)
			n.sendAssign(ctx, wg, a)
		case primary.Release:
			n.sendRelease(ctx, wg, a)
		case primary.Report:
			n.report(now, a.A)
		}
	}
	if !coreActs {
		return
	}
	if c := n.mc.Core(); c != nil {
		n.m.shardsUnassigned.Set(float64(c.Unassigned()))
	} else {
		n.m.shardsUnassigned.Set(0)
	}
}

// leaseReport logs the lease's reports.
func (n *Node) leaseReport(a lease.Action) {
	switch a := a.(type) {
	case lease.StaySecondary:
		// The load outlasted the lease: acting now would be acting after
		// its end (rule 3).
		n.log.Warn().Msg("lease ran out while loading the shard map; staying secondary")
	case lease.RenewFailed:
		// Not fatal by itself: the lease runs out by our own clock if the
		// store stays unreachable, and the machine steps down then.
		n.log.Warn().Err(a.Err).Msg("lease renewal failed")
	case lease.TimingChanged:
		n.log.Info().Dur("lease_ttl_ms", a.TTL).Dur("lease_renew_ms", a.Every).Bool("renewal_in_flight", a.InFlight).
			Msg("lease timing changed; renewing the lease now")
	case lease.TryNow:
		n.log.Info().Str("master", a.Master).Msg("a master left gracefully; trying for the lease now")
	}
}

// renew sends one lease acquire/renew request in the background, giving
// up after the machine's timeout by our own clock. sentAt is read from our
// own clock just before the request goes out: rule 3 measures the lease
// from it, and a slow clock makes that lease last longer in real time than
// the store's TTL (what the coreapps' lease-epoch fencing and the gateway
// must survive).
func (n *Node) renew(ctx context.Context, wg *sync.WaitGroup, a primary.SendAcquire) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		rctx, cancel := clock.WithTimeout(ctx, n.clk, a.Timeout)
		defer cancel()
		sentAt := n.clk.Now()
		resp, err := n.cfg.Coordination.AcquireLease(rctx, &mcsimv1.AcquireLeaseRequest{
			MasterId: n.cfg.ID, Incarnation: n.incarnation, TtlMs: a.TTL.Milliseconds(), Address: n.cfg.Address})
		n.post(leaseResult{sentAt: sentAt, ttl: a.TTL, resp: resp, err: err})
	}()
}

// onLease delivers an acquire/renew answer to the machine.
func (n *Node) onLease(ctx context.Context, wg *sync.WaitGroup, now time.Time, r leaseResult) {
	ev := primary.Answered{SentAt: r.sentAt, TTL: r.ttl, Err: r.err}
	if r.err == nil {
		n.m.leaseEpoch.Set(float64(r.resp.GetLeaseEpoch()))
		ev.Granted, ev.Epoch, ev.Holder = r.resp.GetGranted(), r.resp.GetLeaseEpoch(), r.resp.GetHolder()
		ev.Remaining = time.Duration(r.resp.GetRemainingMs()) * time.Millisecond
	}
	n.stepMachine(ctx, wg, now, ev)
}

// loadShardMap carries out LoadShardMap: it loads the shard map from the
// store (for as long as the lease lasts by our own clock); the machine
// then builds a fresh core from it, if the lease still holds.
func (n *Node) loadShardMap(ctx context.Context, wg *sync.WaitGroup, a primary.LoadShardMap) {
	gctx, cancel := clock.WithTimeout(ctx, n.clk, a.Timeout)
	resp, err := n.cfg.Coordination.GetShardMap(gctx, &mcsimv1.GetShardMapRequest{})
	cancel()
	if err != nil {
		n.log.Error().Err(err).Msg("took the lease but cannot load the shard map; staying secondary")
	}
	n.loaded = resp.GetShardMap()
	n.stepMachine(ctx, wg, n.clk.Now(), primary.MapLoaded{Map: shardMapFromProto(resp.GetShardMap()), Err: err})
	n.loaded = nil
}

// startTerm carries out BecomePrimary: the machine built the core from
// the loaded map; the term's map writer starts, and the stored owners
// gossip has not shown yet are dialed before the core's first heartbeats
// (which follow in the same batch) go out.
func (n *Node) startTerm(wg *sync.WaitGroup, a primary.BecomePrimary) {
	n.startMapWriter(wg, a.Term, a.Epoch)
	n.m.leaseHolder.Set(1)
	n.log.Info().Uint64("lease_epoch", a.Epoch).Uint64("max_epoch", a.MaxEpoch).
		Msg("became primary master")
	n.dialStoredOwners(n.loaded)
}

// releaseLease carries out ReleaseLease (a graceful stop of a primary).
func (n *Node) releaseLease(a primary.ReleaseLease) {
	if a.Map == nil {
		return
	}
	// A cap on how long a graceful stop may take, for whoever waits on
	// it: real time. The lease is guarded inside the write itself (see
	// startMapWriter).
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	// The last background map write must land before the lease goes:
	// the next primary starts from the stored map.
	if err := n.flushMap(ctx, *a.Map, a.MaxEpoch); err != nil {
		n.log.Warn().Err(err).Msg("last shard map write failed; the next primary starts from an older map")
	}
	_, err := n.cfg.Coordination.ReleaseLease(ctx, &mcsimv1.ReleaseLeaseRequest{MasterId: n.cfg.ID, LeaseEpoch: a.Epoch})
	cancel()
	n.log.Info().Err(err).Uint64("lease_epoch", a.Epoch).Msg("master stopping; lease released")
}

// dialStoredOwners dials every owner in the stored map that gossip has not
// shown us yet, at the address the previous primary stored. Gossip can lag
// a takeover by a push-pull interval or more (a secondary that joined
// before a coreapp may not have heard of it); without an address the new
// primary's heartbeats to a live owner would fail and rule 1 would move its
// shards: a failover caused by the takeover alone.
func (n *Node) dialStoredOwners(m *mcsimv1.ShardMap) {
	for _, a := range m.GetAssignments() {
		id, addr := a.GetCoreappId(), a.GetCoreappAddress()
		if id == "" || addr == "" || n.peers[id] != nil {
			continue
		}
		n.log.Info().Str("coreapp", id).Str("addr", addr).Msg("dialing a shard owner at its stored address; gossip has not shown it yet")
		n.setPeer(id, addr)
	}
}

// report logs and counts one of the core's reports.
func (n *Node) report(now time.Time, a failover.Action) {
	switch a := a.(type) {
	case failover.DeclaredUnhealthy:
		n.m.unhealthy.Inc()
		n.log.Warn().Str("coreapp", a.Coreapp).Str("deadline", a.Deadline.UTC().Format(logging.TimeFormat)).
			Str("earliest_unanswered_sent_at", a.EarliestUnansweredSentAt.UTC().Format(logging.TimeFormat)).Msg("coreapp declared unhealthy")
	case failover.Recovered:
		n.log.Info().Str("coreapp", a.Coreapp).Msg("coreapp recovered; it is a standby now")
	case failover.ShardLost:
		n.unassigned[a.Shard] = unassignedShard{since: now}
		n.log.Warn().Int("shard", a.Shard).Str("coreapp", a.Coreapp).Uint64("epoch", a.Epoch).
			Str("reason", string(a.Reason)).Msg("shard lost its owner")
	case failover.ShardUnassigned:
		u := n.unassigned[a.Shard]
		if u.since.IsZero() {
			u.since = a.At
		}
		u.noStandby = true
		n.unassigned[a.Shard] = u
		n.log.Error().Int("shard", a.Shard).Msg("shard unassigned: no healthy standby")
	case failover.FirstAssignmentWait:
		n.log.Info().Int("coreapps_joined", a.Joined).Int("coreapps_wanted", a.Want).Dur("wait_ms", a.Until.Sub(now)).
			Msg("fresh cluster: the first assignment waits for coreapps to join")
	case failover.Failover:
		n.m.failovers.Inc()
		n.failingOver[a.Shard] = failoverStart{lostAt: a.LostAt, epoch: a.Epoch}
		n.log.Info().Int("shard", a.Shard).Str("from", a.From).Str("to", a.To).Uint64("epoch", a.Epoch).Msg("failing shard over")
	case failover.ShardAdopted:
		n.log.Warn().Int("shard", a.Shard).Str("coreapp", a.Coreapp).Uint64("epoch", a.Epoch).
			Str("from", a.From).Uint64("from_epoch", a.FromEpoch).Msg("stored map was behind: adopting the newer owner a coreapp reports")
	case failover.StallDetected:
		n.m.stalls.Inc()
		n.log.Warn().Dur("gap_ms", a.Gap).Str("source", a.Source).Msg("master was stalled; unhealthy clocks restart now (rule 4)")
	}
}

// writeMap carries out WriteMap: the machine decided whether the map goes
// out in the background (within the reserved epoch block) or the batch
// waits for it (the write that reserves the next block). A waited write
// blocks the loop, as the batch's assignments must not go out before it;
// the machine then judges the lease by our clock after the write, not at
// the batch's now, and the batch goes on (observed at its own now).
func (n *Node) writeMap(ctx context.Context, wg *sync.WaitGroup, batch time.Time, a primary.WriteMap) {
	p := shardMapToProto(a.Map, n.peers)
	p.MaxEpoch = a.MaxEpoch
	if !a.Wait {
		n.writer.background(p)
		return
	}
	pctx, cancel := clock.WithTimeout(ctx, n.clk, a.Timeout)
	err := n.writer.wait(pctx, p)
	cancel()
	ev := primary.MapWritten{Term: a.Term}
	if err != nil {
		ev.Err = err.Error()
		if status.Code(err) == codes.FailedPrecondition {
			ev.Fenced, ev.Err = true, status.Convert(err).Message()
		}
	}
	n.stepWith(ctx, wg, n.clk.Now(), batch, ev, nil)
}

// startMapWriter starts this term's shard-map writer; the lease epoch and
// id it writes with are fixed for the term. It lives until stopMapWriter,
// not until Run's context ends: a graceful stop flushes the last map
// after that.
func (n *Node) startMapWriter(wg *sync.WaitGroup, term, epoch uint64) {
	wctx, cancel := context.WithCancel(context.Background())
	n.stopWriter = cancel
	_, ui := n.intervals()
	write := func(ctx context.Context, m *mcsimv1.ShardMap) error {
		// Rule 3: the writer runs on its own, so it checks the lease by our
		// own clock itself; a write queued in time may still wait behind a
		// slow one past the lease's end, and must then not go out.
		// until is a time of our clock: the context's deadline is converted,
		// or a fast clock would let the write run past the lease's end.
		until := n.leaseEnd()
		if !n.clk.Now().Before(until) {
			return status.Error(codes.FailedPrecondition, "lease ended by the master's own clock; shard map not written")
		}
		ctx, cancel := clock.WithTimeout(ctx, n.clk, ui)
		defer cancel()
		ctx, cancelAtEnd := clock.WithDeadline(ctx, n.clk, until)
		defer cancelAtEnd()
		_, err := n.cfg.Coordination.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{
			LeaseEpoch: epoch, MasterId: n.cfg.ID, ShardMap: m})
		return err
	}
	n.writer = runMapWriter(wctx, wg, write, func(err error) { n.post(mapWriteFailed{term: term, err: err}) })
}

func (n *Node) stopMapWriter() {
	if n.stopWriter != nil {
		n.stopWriter()
	}
	n.writer, n.stopWriter = nil, nil
}

// flushMap writes the term's last map and waits for it (graceful stop).
func (n *Node) flushMap(ctx context.Context, m failover.ShardMap, maxEpoch uint64) error {
	if n.writer == nil {
		return nil
	}
	p := shardMapToProto(m, n.peers)
	p.MaxEpoch = maxEpoch
	return n.writer.wait(ctx, p)
}

func (n *Node) sendHeartbeat(ctx context.Context, wg *sync.WaitGroup, a primary.SendHeartbeat) {
	n.m.heartbeatsSent.Inc()
	p := n.peers[a.Coreapp]
	term := a.Term
	if p == nil || p.client == nil {
		// A coreapp the map names but membership never showed us: its
		// heartbeat fails now and rule 1 decides.
		n.postAsync(wg, heartbeatResult{term: term, id: a.Coreapp, seq: a.Seq, err: errors.New("no address known for coreapp")})
		return
	}
	_, ui := n.intervals()
	req := &mcsimv1.HeartbeatRequest{MasterId: n.cfg.ID, LeaseEpoch: a.LeaseEpoch, Seq: a.Seq, CoreappId: a.Coreapp}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The heartbeat waits as long as the core's deadline for it, both by
		// our own clock (rule 4: an answer within unhealthy_interval by our
		// clock counts, so a slow clock must not cut the wait short).
		hctx, cancel := clock.WithTimeout(ctx, n.clk, ui)
		defer cancel()
		start := n.clk.Now()
		// Wait for a connection in reconnect backoff (rule 4): failing at
		// once would blame the coreapp for a heartbeat never sent, and after
		// a short partition heals gRPC may still be backing off when the
		// next heartbeats are due. The deadline still bounds the wait.
		resp, err := p.client.Heartbeat(hctx, req, grpc.WaitForReady(true))
		if err == nil && resp.GetCoreappId() != a.Coreapp {
			// Belt and braces for a coreapp that does not check
			// HeartbeatRequest.coreapp_id: an answer from another coreapp
			// says nothing about this one.
			err = fmt.Errorf("answer from coreapp %q, not %q: the address changed hands", resp.GetCoreappId(), a.Coreapp)
			resp = nil
		}
		n.post(heartbeatResult{term: term, id: a.Coreapp, seq: a.Seq, rtt: clock.Since(n.clk, start), resp: resp, err: err})
	}()
}

// heartbeatsDone steps heartbeat outcomes that were all queued when the
// loop woke as one event (see primary.HeartbeatsDone), counting and
// logging those the machine takes: the answers of earlier terms are not.
func (n *Node) heartbeatsDone(ctx context.Context, wg *sync.WaitGroup, now time.Time, rs []heartbeatResult) {
	ev := primary.HeartbeatsDone{Results: make([]primary.HeartbeatResult, len(rs))}
	for i, r := range rs {
		hr := primary.HeartbeatResult{Term: r.term, Coreapp: r.id, Seq: r.seq, Failed: r.err != nil}
		if r.err == nil {
			hr.Shards = make([]failover.ServedShard, 0, len(r.resp.GetShards()))
			for _, s := range r.resp.GetShards() {
				hr.Shards = append(hr.Shards, failover.ServedShard{Shard: int(s.GetShard()), Epoch: s.GetEpoch()})
			}
		}
		ev.Results[i] = hr
	}
	n.stepWith(ctx, wg, now, now, ev, func(i int) {
		r := rs[i]
		if r.err != nil {
			n.m.heartbeatsFailed.Inc()
			n.log.Debug().Err(r.err).Str("coreapp", r.id).Uint64("seq", r.seq).Msg("heartbeat failed")
			return
		}
		n.m.heartbeatRTT.Observe(r.rtt.Seconds())
	})
}

func (n *Node) sendAssign(ctx context.Context, wg *sync.WaitGroup, pa primary.Assign) {
	a := pa.Assign
	p := n.peers[a.Coreapp]
	term := pa.Term
	if p == nil || p.client == nil {
		n.postAsync(wg, assignResult{term: term, a: a, err: errors.New("no address known for coreapp")})
		return
	}
	_, ui := n.intervals()
	req := &mcsimv1.AssignRequest{MasterId: n.cfg.ID, LeaseEpoch: pa.LeaseEpoch, Shard: int32(a.Shard),
		Epoch: a.Epoch, Shards: int32(a.Shards), CoreappId: a.Coreapp}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !n.readyWithinLease(ctx, p.conn) {
			n.post(assignResult{term: term, a: a, err: errors.New("connection not up before the lease ended by our own clock; assign not sent")})
			return
		}
		actx, cancel := clock.WithTimeout(ctx, n.clk, ui)
		defer cancel()
		// No WaitForReady here, unlike heartbeats: a standby whose
		// connection is down is most likely dead, and failing at once
		// hands the shard to the next standby instead of after the deadline.
		_, err := p.client.Assign(actx, req)
		n.post(assignResult{term: term, a: a, err: err})
	}()
}

// readyWithinLease waits while conn is still connecting and reports
// whether an RPC may go out on it: not once the lease has ended by our own
// clock (rule 3; a renewal meanwhile extends the wait) or ctx has ended. A
// connection in transient failure is reported usable so that the RPC
// fails at once, as it would without the wait.
func (n *Node) readyWithinLease(ctx context.Context, conn *grpc.ClientConn) bool {
	for {
		until := n.leaseEnd()
		if ctx.Err() != nil || !n.clk.Now().Before(until) {
			return false
		}
		st := conn.GetState()
		switch st {
		case connectivity.Ready, connectivity.TransientFailure, connectivity.Shutdown:
			return true
		case connectivity.Idle:
			conn.Connect()
		}
		wctx, cancel := clock.WithDeadline(ctx, n.clk, until)
		conn.WaitForStateChange(wctx, st)
		cancel()
	}
}

// onAssign steps an assign outcome; the machine ignores one of an earlier
// term, and only one it takes is logged and counted.
func (n *Node) onAssign(ctx context.Context, wg *sync.WaitGroup, now time.Time, r assignResult) {
	ok := r.err == nil
	ev := primary.AssignDone{Term: r.term, Shard: r.a.Shard, Coreapp: r.a.Coreapp, Epoch: r.a.Epoch, OK: ok}
	n.stepWith(ctx, wg, now, now, ev, func(int) {
		if !ok {
			n.m.assignmentsRefused.Inc()
			n.log.Warn().Err(r.err).Int("shard", r.a.Shard).Str("coreapp", r.a.Coreapp).Uint64("epoch", r.a.Epoch).Msg("assignment refused or failed")
			return
		}
		if f, found := n.failingOver[r.a.Shard]; found && f.epoch == r.a.Epoch {
			d := now.Sub(f.lostAt)
			n.m.failoverDuration.Observe(d.Seconds())
			delete(n.failingOver, r.a.Shard)
			n.log.Info().Int("shard", r.a.Shard).Str("coreapp", r.a.Coreapp).Uint64("epoch", r.a.Epoch).
				Dur("failover_ms", d).Msg("shard served again")
			return
		}
		n.log.Info().Int("shard", r.a.Shard).Str("coreapp", r.a.Coreapp).Uint64("epoch", r.a.Epoch).Msg("shard assigned")
	})
}

func (n *Node) sendRelease(ctx context.Context, wg *sync.WaitGroup, pa primary.Release) {
	a := pa.Release
	p := n.peers[a.Coreapp]
	if p == nil || p.client == nil {
		return // best effort: fencing makes a missed release harmless
	}
	_, ui := n.intervals()
	req := &mcsimv1.ReleaseRequest{MasterId: n.cfg.ID, LeaseEpoch: pa.LeaseEpoch, Shard: int32(a.Shard), Epoch: a.Epoch, CoreappId: a.Coreapp}
	until := n.mc.Lease().ValidUntil()
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Rule 3: a Release still waiting for a connection when the lease
		// ends by our own clock must not go out after it.
		rctx, cancel := clock.WithTimeout(ctx, n.clk, ui)
		defer cancel()
		rctx, cancelAtEnd := clock.WithDeadline(rctx, n.clk, until)
		defer cancelAtEnd()
		if _, err := p.client.Release(rctx, req); err != nil {
			n.log.Debug().Err(err).Int("shard", a.Shard).Str("coreapp", a.Coreapp).Msg("release failed (harmless: fenced)")
		}
	}()
}

// postAsync posts an outcome from the loop to itself without blocking
// it: a direct send would deadlock once the queue is full.
func (n *Node) postAsync(wg *sync.WaitGroup, ev any) {
	wg.Add(1)
	go func() { defer wg.Done(); n.post(ev) }()
}
