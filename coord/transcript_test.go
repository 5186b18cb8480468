package coord

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/mcsim/mcsim/internal/transcript"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// t0 is time zero of every transcript (a func: no package-level vars).
func t0() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// TestTranscripts runs testdata/*.txt against a minimal backend: it keeps
// the lease and the shard map in memory and applies what the rules grant,
// exactly as a store persists it. Regenerate with
// go test ./coord -rewrite and review the diff.
//
// Vocabulary (times are offsets from t0 and always given: the rules have no
// clock, every decision is judged at the caller's now):
//
//	acquire m1 ttl=5s at=0s [inc=i1] [addr=a1]    take or renew the lease
//	release m1 epoch=1                            give it up
//	write m1 epoch=1 at=2s max_epoch=3 [shards=2] [map=(c1@3,-,1:c2@2)|nil]
//	                                              a fenced shard-map write; map
//	                                              entries are owner@epoch or -
//	                                              (unassigned), for shard = their
//	                                              position unless prefixed s:
//	lease [at=4s]                                 the lease (and, at a time,
//	                                              whether it lapsed then)
//	map                                           the stored shard map
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		b := &backend{m: &mcsimv1.ShardMap{}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return b.run(t, d)
		})
	})
}

// backend is the state a store keeps: the lease and the shard map.
type backend struct {
	lease Lease
	m     *mcsimv1.ShardMap
}

func (b *backend) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "acquire":
		id, ttl, now := who(t, d), dur(t, d, "ttl"), at(t, d)
		if err := CheckAcquire(id, ttl); err != nil {
			return "error: " + err.Error() + "\n"
		}
		res := Acquire(b.lease, id, transcript.Str(d, "inc"), transcript.Str(d, "addr"), ttl, now)
		switch {
		case !res.Granted:
			return "refused " + leaseText(res.Lease) + "\n"
		case res.Renewal:
			b.lease = res.Lease
			return "granted renewal " + leaseText(res.Lease) + "\n"
		default:
			b.lease = res.Lease
			return "granted new-term " + leaseText(res.Lease) + "\n"
		}
	case "release":
		next, ok := Release(b.lease, who(t, d), transcript.Num(t, d, "epoch"))
		if !ok {
			return "refused " + leaseText(b.lease) + "\n"
		}
		b.lease = next
		return "released " + leaseText(b.lease) + "\n"
	case "write":
		m := b.parseMap(t, d)
		err := AdmitShardMapWrite(b.lease, who(t, d), transcript.Num(t, d, "epoch"), at(t, d), b.m, m)
		switch {
		case errors.Is(err, ErrNotLeaseHolder):
			return "refused not-lease-holder: " + err.Error() + "\n"
		case errors.Is(err, ErrEpochRegression):
			return "refused epoch-regression: " + err.Error() + "\n"
		case err != nil:
			return "refused malformed: " + err.Error() + "\n"
		}
		m.Version = b.m.GetVersion() + 1
		b.m = m
		return "admitted " + mapText(b.m) + "\n"
	case "lease":
		out := "lease " + leaseText(b.lease)
		if d.HasArg("at") {
			out += fmt.Sprintf(" lapsed=%v", Lapsed(b.lease, at(t, d)))
		}
		return out + "\n"
	case "map":
		return "map " + mapText(b.m) + "\n"
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

// parseMap builds the map a write command offers.
func (b *backend) parseMap(t *testing.T, d *datadriven.TestData) *mcsimv1.ShardMap {
	if d.HasArg("nil") {
		return nil
	}
	m := &mcsimv1.ShardMap{MaxEpoch: transcript.Num(t, d, "max_epoch")}
	a, hasMap := d.Arg("map")
	if hasMap {
		for i, v := range a.Vals {
			as := &mcsimv1.ShardAssignment{Shard: int32(i)}
			if s, rest, ok := strings.Cut(v, ":"); ok {
				n, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("%s: shard in %q: %v", d.Pos, v, err)
				}
				as.Shard, v = int32(n), rest
			}
			if v != "-" {
				owner, e, ok := strings.Cut(v, "@")
				ep, err := strconv.ParseUint(e, 10, 64)
				if !ok || err != nil {
					t.Fatalf("%s: want owner@epoch or -, got %q", d.Pos, v)
				}
				as.CoreappId, as.Epoch = owner, ep
			}
			m.Assignments = append(m.Assignments, as)
		}
	}
	m.Shards = int32(len(m.Assignments))
	if d.HasArg("shards") {
		m.Shards = int32(transcript.Num(t, d, "shards"))
	}
	return m
}

func leaseText(l Lease) string {
	if l.Holder == "" {
		return fmt.Sprintf("free epoch=%d", l.Epoch)
	}
	return fmt.Sprintf("holder=%s incarnation=%s address=%s epoch=%d expires=%s",
		l.Holder, orDash(l.Incarnation), orDash(l.Address), l.Epoch, l.Expires.Sub(t0()))
}

func mapText(m *mcsimv1.ShardMap) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version=%d max_epoch=%d shards=%d", m.GetVersion(), m.GetMaxEpoch(), m.GetShards())
	for _, a := range m.GetAssignments() {
		owner := "-"
		if a.GetCoreappId() != "" {
			owner = fmt.Sprintf("%s@%d", a.GetCoreappId(), a.GetEpoch())
		}
		fmt.Fprintf(&b, " %d:%s", a.GetShard(), owner)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// who is the master named by the command's first bare word ("" if none).
func who(t *testing.T, d *datadriven.TestData) string {
	if len(d.CmdArgs) == 0 || len(d.CmdArgs[0].Vals) > 0 {
		return ""
	}
	return d.CmdArgs[0].Key
}

func at(t *testing.T, d *datadriven.TestData) time.Time {
	return t0().Add(dur(t, d, "at"))
}

func dur(t *testing.T, d *datadriven.TestData, key string) time.Duration {
	v, ok := transcript.Dur(t, d, key)
	if !ok {
		t.Fatalf("%s: missing %s=", d.Pos, key)
	}
	return v
}
