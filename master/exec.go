package master

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// leaseStep steps the lease machine at now and carries out what it
// decides.
func (n *Node) leaseStep(ctx context.Context, wg *sync.WaitGroup, now time.Time, ev lease.Event) {
	acts, err := n.lease.Step(now, ev)
	n.publishLease()
	if err != nil {
		n.log.Error().Err(err).Str("event", fmt.Sprintf("%T", ev)).Msg("lease machine refused an event")
		return
	}
	n.leaseExecute(ctx, wg, acts)
}

// leaseExecute carries out the lease machine's actions in order.
// BecomePrimary and WriteMap are carried out where they are asked for
// (becomePrimary, persist), which hold the map they need.
func (n *Node) leaseExecute(ctx context.Context, wg *sync.WaitGroup, acts []lease.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case lease.SendAcquire:
			n.renew(ctx, wg, a)
		case lease.StepDown:
			n.stepDown(a)
		case lease.LoadShardMap:
			n.becomePrimary(ctx, wg, a)
		case lease.StaySecondary:
			// The load outlasted the lease: acting now would be acting
			// after its end (rule 3).
			n.log.Warn().Msg("lease ran out while loading the shard map; staying secondary")
		case lease.RenewFailed:
			// Not fatal by itself: the lease runs out by our own clock if
			// the store stays unreachable, and the machine steps down then.
			n.log.Warn().Err(a.Err).Msg("lease renewal failed")
		case lease.TimingChanged:
			n.log.Info().Dur("lease_ttl_ms", a.TTL).Dur("lease_renew_ms", a.Every).Bool("renewal_in_flight", a.InFlight).
				Msg("lease timing changed; renewing the lease now")
		case lease.TryNow:
			n.log.Info().Str("master", a.Master).Msg("a master left gracefully; trying for the lease now")
		case lease.ReleaseLease:
			n.releaseLease(a)
		}
	}
}

// renew sends one lease acquire/renew request in the background, giving
// up after the machine's timeout by our own clock. sentAt is read from our
// own clock just before the request goes out: rule 3 measures the lease
// from it, and a slow clock makes that lease last longer in real time than
// the store's TTL (what the coreapps' lease-epoch fencing and the gateway
// must survive).
func (n *Node) renew(ctx context.Context, wg *sync.WaitGroup, a lease.SendAcquire) {
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

// onLease delivers an acquire/renew answer to the lease machine.
func (n *Node) onLease(ctx context.Context, wg *sync.WaitGroup, now time.Time, r leaseResult) {
	ev := lease.Answered{SentAt: r.sentAt, TTL: r.ttl, Err: r.err}
	if r.err == nil {
		n.m.leaseEpoch.Set(float64(r.resp.GetLeaseEpoch()))
		ev.Granted, ev.Epoch, ev.Holder = r.resp.GetGranted(), r.resp.GetLeaseEpoch(), r.resp.GetHolder()
		ev.Remaining = time.Duration(r.resp.GetRemainingMs()) * time.Millisecond
	}
	n.leaseStep(ctx, wg, now, ev)
}

// becomePrimary carries out LoadShardMap: it loads the shard map from the
// store (for as long as the lease lasts by our own clock) and, if the
// machine then says BecomePrimary, starts a fresh core from it.
func (n *Node) becomePrimary(ctx context.Context, wg *sync.WaitGroup, a lease.LoadShardMap) {
	gctx, cancel := clock.WithTimeout(ctx, n.clk, a.Timeout)
	resp, err := n.cfg.Coordination.GetShardMap(gctx, &mcsimv1.GetShardMapRequest{})
	cancel()
	if err != nil {
		n.log.Error().Err(err).Msg("took the lease but cannot load the shard map; staying secondary")
	}
	acts, serr := n.lease.Step(n.clk.Now(), lease.ShardMapLoaded{MaxEpoch: resp.GetShardMap().GetMaxEpoch(), Err: err})
	n.publishLease()
	if serr != nil {
		n.log.Error().Err(serr).Msg("lease machine refused an event")
		return
	}
	for _, act := range acts {
		if bp, ok := act.(lease.BecomePrimary); ok {
			n.startTerm(ctx, wg, bp, resp.GetShardMap())
			continue
		}
		n.leaseExecute(ctx, wg, []lease.Action{act})
	}
}

// startTerm carries out BecomePrimary: a fresh core from the stored map m.
func (n *Node) startTerm(ctx context.Context, wg *sync.WaitGroup, a lease.BecomePrimary, m *mcsimv1.ShardMap) {
	hb, ui := n.intervals()
	core, err := failover.New(failover.Config{
		HeartbeatInterval: hb,
		UnhealthyInterval: ui,
		Shards:            int(n.snap.GetShards()),
		StallThreshold:    n.cfg.StallThreshold,
		StartupCoreapps:   n.cfg.ExpectCoreapps,
	}, shardMapFromProto(m), n.clk.Now())
	if err != nil {
		n.log.Error().Err(err).Msg("took the lease but cannot build the failover core; staying secondary")
		n.leaseStep(ctx, wg, n.clk.Now(), lease.PrimaryAborted{})
		return
	}
	n.core = core
	n.term++
	n.startMapWriter(wg)
	n.m.leaseHolder.Set(1)
	n.log.Info().Uint64("lease_epoch", a.Epoch).Uint64("max_epoch", a.MaxEpoch).
		Msg("became primary master")
	n.dialStoredOwners(m)
	now := n.clk.Now()
	for _, id := range slices.Sorted(maps.Keys(n.peers)) {
		n.step(ctx, wg, now, failover.CoreappJoined{ID: id})
	}
	n.step(ctx, wg, now, failover.Tick{})
}

// releaseLease carries out ReleaseLease (a graceful stop of a primary).
func (n *Node) releaseLease(a lease.ReleaseLease) {
	if n.core == nil {
		return
	}
	// A cap on how long a graceful stop may take, for whoever waits on
	// it: real time. The lease is guarded inside the write itself (see
	// startMapWriter).
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	// The last background map write must land before the lease goes:
	// the next primary starts from the stored map.
	if err := n.flushMap(ctx); err != nil {
		n.log.Warn().Err(err).Msg("last shard map write failed; the next primary starts from an older map")
	}
	_, err := n.cfg.Coordination.ReleaseLease(ctx, &mcsimv1.ReleaseLeaseRequest{MasterId: n.cfg.ID, LeaseEpoch: a.Epoch})
	cancel()
	n.log.Info().Err(err).Uint64("lease_epoch", a.Epoch).Msg("master stopping; lease released")
	n.core = nil
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

// execute carries out a batch of the core's actions in order.
func (n *Node) execute(ctx context.Context, wg *sync.WaitGroup, now time.Time, actions []failover.Action) {
	for _, a := range actions {
		if n.core == nil {
			return // stepped down mid-batch: nothing more may be sent
		}
		if n.cfg.Observe != nil {
			// Only actions that are carried out are observed, so a test that
			// sees none knows none went out.
			n.cfg.Observe(now, a)
		}
		switch a := a.(type) {
		case failover.SendHeartbeat:
			n.sendHeartbeat(ctx, wg, a)
		case failover.PersistShardMap:
			if !n.persist(ctx, wg, now, a.Map) {
				return
			}
		case failover.Assign:
			delete(n.unassigned, a.Shard)
			n.sendAssign(ctx, wg, a)
		case failover.Release:
			n.sendRelease(ctx, wg, a)
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
	if n.core != nil {
		n.m.shardsUnassigned.Set(float64(n.core.Unassigned()))
	} else {
		n.m.shardsUnassigned.Set(0)
	}
}

// persist makes the epochs of the batch's assignments durable, fenced by
// the lease, before any of them goes out: the lease machine decides
// whether the map goes out in the background (within the reserved epoch
// block) or waits for the write that reserves the next block, and whether
// the term ends. It reports whether the batch may go on.
func (n *Node) persist(ctx context.Context, wg *sync.WaitGroup, now time.Time, m failover.ShardMap) bool {
	acts, err := n.lease.Step(now, lease.PersistMap{MaxEpoch: m.MaxEpoch})
	n.publishLease()
	if err != nil {
		n.log.Error().Err(err).Msg("lease machine refused an event")
		return false
	}
	for _, act := range acts {
		w, ok := act.(lease.WriteMap)
		if !ok {
			n.leaseExecute(ctx, wg, []lease.Action{act})
			continue
		}
		p := shardMapToProto(m, n.peers)
		p.MaxEpoch = w.MaxEpoch
		if !w.Wait {
			n.writer.background(p)
		} else {
			pctx, cancel := clock.WithTimeout(ctx, n.clk, w.Timeout)
			err := n.writer.wait(pctx, p)
			cancel()
			if err != nil {
				f := lease.MapWriteFailed{Err: err.Error()}
				if status.Code(err) == codes.FailedPrecondition {
					f.Fenced, f.Err = true, status.Convert(err).Message()
				}
				n.leaseStep(ctx, wg, n.clk.Now(), f)
				return false
			}
		}
		// The write may have blocked: the machine checks the lease by our
		// clock now, not at the batch's now.
		n.leaseStep(ctx, wg, n.clk.Now(), lease.MapPersisted{MaxEpoch: w.MaxEpoch, Waited: w.Wait})
		return n.core != nil
	}
	return false
}

// startMapWriter starts this term's shard-map writer; the lease epoch and
// id it writes with are fixed for the term. It lives until stopMapWriter,
// not until Run's context ends: a graceful stop flushes the last map
// after that.
func (n *Node) startMapWriter(wg *sync.WaitGroup) {
	wctx, cancel := context.WithCancel(context.Background())
	n.stopWriter = cancel
	term, epoch := n.term, n.lease.Epoch()
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

// flushMap writes the core's current map and waits for it (graceful stop).
func (n *Node) flushMap(ctx context.Context) error {
	if n.writer == nil || n.core == nil {
		return nil
	}
	p := shardMapToProto(n.core.ShardMap(), n.peers)
	p.MaxEpoch = max(p.MaxEpoch, n.lease.Reserved())
	return n.writer.wait(ctx, p)
}

func (n *Node) sendHeartbeat(ctx context.Context, wg *sync.WaitGroup, a failover.SendHeartbeat) {
	n.m.heartbeatsSent.Inc()
	p := n.peers[a.Coreapp]
	term := n.term
	if p == nil || p.client == nil {
		// A coreapp the map names but membership never showed us: its
		// heartbeat fails now and rule 1 decides.
		n.postAsync(wg, heartbeatResult{term: term, id: a.Coreapp, seq: a.Seq, err: errors.New("no address known for coreapp")})
		return
	}
	_, ui := n.intervals()
	req := &mcsimv1.HeartbeatRequest{MasterId: n.cfg.ID, LeaseEpoch: n.lease.Epoch(), Seq: a.Seq, CoreappId: a.Coreapp}
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

// applyHeartbeat applies a heartbeat outcome to the core without stepping
// it (see handleQueued); the caller Steps a Tick at the same now after it.
// It reports whether the core took it.
func (n *Node) applyHeartbeat(now time.Time, r heartbeatResult) bool {
	if n.core == nil || r.term != n.term {
		return false // an answer to a heartbeat of an earlier term as primary
	}
	var ev failover.Event
	if r.err != nil {
		n.m.heartbeatsFailed.Inc()
		n.log.Debug().Err(r.err).Str("coreapp", r.id).Uint64("seq", r.seq).Msg("heartbeat failed")
		ev = failover.HeartbeatFailed{ID: r.id, Seq: r.seq}
	} else {
		n.m.heartbeatRTT.Observe(r.rtt.Seconds())
		served := make([]failover.ServedShard, 0, len(r.resp.GetShards()))
		for _, s := range r.resp.GetShards() {
			served = append(served, failover.ServedShard{Shard: int(s.GetShard()), Epoch: s.GetEpoch()})
		}
		ev = failover.HeartbeatAnswered{ID: r.id, Seq: r.seq, Shards: served}
	}
	if err := n.core.Apply(now, ev); err != nil {
		n.log.Error().Err(err).Str("event", fmt.Sprintf("%T", ev)).Msg("core refused an event")
		return false
	}
	return true
}

func (n *Node) sendAssign(ctx context.Context, wg *sync.WaitGroup, a failover.Assign) {
	p := n.peers[a.Coreapp]
	term := n.term
	if p == nil || p.client == nil {
		n.postAsync(wg, assignResult{term: term, a: a, err: errors.New("no address known for coreapp")})
		return
	}
	_, ui := n.intervals()
	req := &mcsimv1.AssignRequest{MasterId: n.cfg.ID, LeaseEpoch: n.lease.Epoch(), Shard: int32(a.Shard),
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

func (n *Node) onAssign(ctx context.Context, wg *sync.WaitGroup, now time.Time, r assignResult) {
	if n.core == nil || r.term != n.term {
		return
	}
	ok := r.err == nil
	if ok {
		if f, found := n.failingOver[r.a.Shard]; found && f.epoch == r.a.Epoch {
			d := now.Sub(f.lostAt)
			n.m.failoverDuration.Observe(d.Seconds())
			delete(n.failingOver, r.a.Shard)
			n.log.Info().Int("shard", r.a.Shard).Str("coreapp", r.a.Coreapp).Uint64("epoch", r.a.Epoch).
				Dur("failover_ms", d).Msg("shard served again")
		} else {
			n.log.Info().Int("shard", r.a.Shard).Str("coreapp", r.a.Coreapp).Uint64("epoch", r.a.Epoch).Msg("shard assigned")
		}
	} else {
		n.m.assignmentsRefused.Inc()
		n.log.Warn().Err(r.err).Int("shard", r.a.Shard).Str("coreapp", r.a.Coreapp).Uint64("epoch", r.a.Epoch).Msg("assignment refused or failed")
	}
	n.step(ctx, wg, now, failover.AssignDone{Shard: r.a.Shard, Coreapp: r.a.Coreapp, Epoch: r.a.Epoch, OK: ok})
}

func (n *Node) sendRelease(ctx context.Context, wg *sync.WaitGroup, a failover.Release) {
	p := n.peers[a.Coreapp]
	if p == nil || p.client == nil {
		return // best effort: fencing makes a missed release harmless
	}
	_, ui := n.intervals()
	req := &mcsimv1.ReleaseRequest{MasterId: n.cfg.ID, LeaseEpoch: n.lease.Epoch(), Shard: int32(a.Shard), Epoch: a.Epoch, CoreappId: a.Coreapp}
	until := n.lease.ValidUntil()
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
