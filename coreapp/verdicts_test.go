package coreapp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/rs/zerolog"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// lockedBuffer is a log sink written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The scenario checkers read the coreapp's verdicts on master commands from
// its log (scenarios/procstarget): these exact messages with node_id,
// master_id and lease_epoch, one per verdict, none for a request that was
// malformed or meant for another coreapp.
func TestVerdictLogLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		var logs lockedBuffer
		_, c, _ := h.coreapp("a", func(cfg *Config) { cfg.Logger = zerolog.New(&logs) })
		ctx := t.Context()
		req := func(lease uint64, shard int32, epoch uint64) *mcsimv1.AssignRequest {
			r := assign(lease, shard, epoch)
			r.MasterId = fmt.Sprintf("m%d", lease)
			return r
		}
		rel := func(lease uint64, shard int32, epoch uint64) *mcsimv1.ReleaseRequest {
			return &mcsimv1.ReleaseRequest{MasterId: fmt.Sprintf("m%d", lease), LeaseEpoch: lease, Shard: shard, Epoch: epoch}
		}
		if _, err := c.Assign(ctx, req(3, 0, 5)); err != nil {
			t.Fatal(err)
		}
		_, _ = c.Assign(ctx, req(2, 1, 1))
		_, _ = c.Assign(ctx, req(3, -1, 1))
		bad := req(3, 1, 1)
		bad.CoreappId = "b"
		_, _ = c.Assign(ctx, bad)
		_, _ = c.Release(ctx, rel(3, 0, 4))
		_, _ = c.Release(ctx, rel(3, 1, 1))
		_, _ = c.Release(ctx, rel(4, 0, 5))
		synctest.Wait()

		verdicts := map[string]bool{
			"assigned: opening gateway session": true, "assign refused": true, "released: session closed": true,
			"release of a shard not held: nothing to do": true, "release refused": true,
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var l struct {
				Message    string `json:"message"`
				NodeID     string `json:"node_id"`
				MasterID   string `json:"master_id"`
				LeaseEpoch uint64 `json:"lease_epoch"`
			}
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if verdicts[l.Message] {
				got = append(got, fmt.Sprintf("%s %s %s@%d", l.NodeID, l.Message, l.MasterID, l.LeaseEpoch))
			}
		}
		want := []string{
			"a assigned: opening gateway session m3@3",
			"a assign refused m2@2",
			"a release refused m3@3",
			"a release of a shard not held: nothing to do m3@3",
			"a released: session closed m4@4",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("verdict lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
