package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/httpapi"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/shard"
)

// fakeCoreapp is a coreapp's Send: it records every request and answers
// with answer (nil: accepted). hang makes it wait for the caller to give up.
type fakeCoreapp struct {
	mcsimv1.UnimplementedCoreAppServiceServer
	mu     sync.Mutex
	got    []*mcsimv1.SendRequest
	answer error
	hang   bool
}

func (f *fakeCoreapp) Send(ctx context.Context, req *mcsimv1.SendRequest) (*mcsimv1.SendResponse, error) {
	f.mu.Lock()
	f.got = append(f.got, req)
	answer, hang := f.answer, f.hang
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if answer != nil {
		return nil, answer
	}
	return &mcsimv1.SendResponse{Shard: int32(shard.Of(req.To, int(req.Shards))), Epoch: 1}, nil
}

func (f *fakeCoreapp) requests() []*mcsimv1.SendRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*mcsimv1.SendRequest(nil), f.got...)
}

// frontDoor is the HTTP API with fake coreapps over bufconn, inside a
// synctest bubble: a Send that hangs costs no wall-clock time.
type frontDoor struct {
	t       *testing.T
	h       http.Handler
	st      *store.Store
	token   string
	reg     *prometheus.Registry
	fakes   map[string]*fakeCoreapp // by address
	timeout time.Duration
}

// newFrontDoor serves a fake coreapp at each address; a Send to any other
// address fails to connect, as to a crashed coreapp. Cleanup runs inside
// the bubble.
func newFrontDoor(t *testing.T, addrs ...string) *frontDoor {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fd := &frontDoor{t: t, st: st, fakes: map[string]*fakeCoreapp{}, reg: prometheus.NewRegistry(), timeout: 2 * time.Second}
	lis := map[string]*bufconn.Listener{}
	var servers []*grpc.Server
	for _, a := range addrs {
		l := bufconn.Listen(1 << 16)
		srv := grpc.NewServer()
		f := &fakeCoreapp{}
		mcsimv1.RegisterCoreAppServiceServer(srv, f)
		go func() { _ = srv.Serve(l) }()
		lis[a], fd.fakes[a] = l, f
		servers = append(servers, srv)
	}
	pool := httpapi.NewCoreapps(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		l, ok := lis[addr]
		if !ok {
			return nil, fmt.Errorf("dial %s: connection refused", addr)
		}
		return l.DialContext(ctx)
	}))
	h, err := httpapi.New(httpapi.Config{
		Store: st, WAID: testWAID, AdminPassword: testPassword, Logger: zerolog.Nop(),
		Metrics: fd.reg, Coreapps: pool, SendTimeout: fd.timeout,
		MessageIDs: rand.NewChaCha8([32]byte{1}),
	})
	if err != nil {
		t.Fatal(err)
	}
	fd.h = h
	t.Cleanup(func() {
		_ = pool.Close()
		for _, s := range servers {
			s.Stop()
		}
		_ = st.Close()
	})
	req := httptest.NewRequest(http.MethodPost, "/v1/users/login", nil)
	req.SetBasicAuth("admin", testPassword)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var ans struct {
		Users []struct{ Token string } `json:"users"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || len(ans.Users) != 1 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	fd.token = ans.Users[0].Token
	return fd
}

// setMap writes a shard map of n shards; owners[s] is "id@address" ("" for
// no owner, "id@" for an owner without an address).
func (fd *frontDoor) setMap(n int, owners ...string) {
	fd.t.Helper()
	res, err := fd.st.AcquireLease("master-1", "run-1", "127.0.0.1:1", time.Hour, time.Now())
	if err != nil || !res.Granted {
		fd.t.Fatalf("AcquireLease: %v %+v", err, res)
	}
	m := &mcsimv1.ShardMap{Shards: int32(n), MaxEpoch: uint64(n) + 10}
	for s, o := range owners {
		id, addr, _ := strings.Cut(o, "@")
		m.Assignments = append(m.Assignments, &mcsimv1.ShardAssignment{Shard: int32(s), CoreappId: id, CoreappAddress: addr, Epoch: uint64(s) + 1})
	}
	if _, err := fd.st.WriteShardMap("master-1", res.Lease.Epoch, m, time.Now()); err != nil {
		fd.t.Fatalf("WriteShardMap: %v", err)
	}
}

// send posts a message to "to" and returns the status and decoded answer.
func (fd *frontDoor) send(to string) (int, map[string]any) {
	fd.t.Helper()
	return fd.post(fmt.Sprintf(`{"recipient_type":"individual","to":%q,"type":"text","text":{"body":"hello"}}`, to))
}

func (fd *frontDoor) post(body string) (int, map[string]any) {
	fd.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fd.token)
	rec := httptest.NewRecorder()
	fd.h.ServeHTTP(rec, req)
	var ans map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
		fd.t.Fatalf("answer is not JSON: %s", rec.Body)
	}
	if _, ok := ans["meta"].(map[string]any); !ok {
		fd.t.Errorf("answer without meta: %s", rec.Body)
	}
	return rec.Code, ans
}

// metric returns the value of mcsim_frontdoor_messages_total{outcome}.
func (fd *frontDoor) metric(outcome string) string {
	fd.t.Helper()
	mfs, err := fd.reg.Gather()
	if err != nil {
		fd.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "mcsim_frontdoor_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == outcome {
				return fmt.Sprint(m.GetCounter().GetValue())
			}
		}
	}
	return "absent"
}

// recipientOf returns a recipient whose shard of n is s.
func recipientOf(t *testing.T, s, n int) string {
	for i := range 10000 {
		to := fmt.Sprintf("1631555%04d", i)
		if shard.Of(to, n) == s {
			return to
		}
	}
	t.Fatalf("no recipient in shard %d of %d", s, n)
	return ""
}

func oneError(t *testing.T, ans map[string]any) (code float64, details string) {
	t.Helper()
	errs, _ := ans["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("want one error, got %v", ans)
	}
	e := errs[0].(map[string]any)
	return e["code"].(float64), e["details"].(string)
}

func TestMessageReachesTheOwnerOfItsShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fd := newFrontDoor(t, "127.0.0.1:7001", "127.0.0.1:7002")
		fd.setMap(4, "coreapp-a@127.0.0.1:7001", "coreapp-b@127.0.0.1:7002", "coreapp-a@127.0.0.1:7001", "coreapp-b@127.0.0.1:7002")
		for s := range 4 {
			to := recipientOf(t, s, 4)
			code, ans := fd.send(to)
			if code != http.StatusCreated {
				t.Fatalf("shard %d: HTTP %d %v", s, code, ans)
			}
			id := ans["messages"].([]any)[0].(map[string]any)["id"].(string)
			owner, other := "127.0.0.1:7001", "127.0.0.1:7002"
			wantID := "coreapp-a"
			if s%2 == 1 {
				owner, other, wantID = other, owner, "coreapp-b"
			}
			got := fd.fakes[owner].requests()
			last := got[len(got)-1]
			if last.To != to || last.Body != "hello" || last.Shards != 4 || last.CoreappId != wantID || last.MessageId != id {
				t.Errorf("shard %d: the owner got %v, want to=%s shards=4 coreapp_id=%s id=%s", s, last, to, wantID, id)
			}
			for _, r := range fd.fakes[other].requests() {
				if r.To == to {
					t.Errorf("shard %d: %s got the message too", s, other)
				}
			}
		}
		if got := fd.metric("sent"); got != "4" {
			t.Errorf("sent metric %s, want 4", got)
		}
	})
}

func TestMessageWithoutAServingOwnerIs1018(t *testing.T) {
	refused := status.Error(codes.FailedPrecondition, "shard 1 is not served here")
	cases := []struct {
		name    string
		owners  []string // of a 2-shard map; nil: no map at all
		answer  error
		hang    bool
		mention []string
		outcome string
	}{
		{name: "no map yet", mention: []string{"no shard map"}, outcome: "no_owner"},
		{name: "no owner", owners: []string{"coreapp-a@127.0.0.1:7001", ""}, mention: []string{"shard 1 of 2", "no owner"}, outcome: "no_owner"},
		{name: "owner address unknown", owners: []string{"", "coreapp-b@"}, mention: []string{"shard 1 of 2", "coreapp-b"}, outcome: "no_owner"},
		{name: "owner refuses", owners: []string{"", "coreapp-a@127.0.0.1:7001"}, answer: refused, mention: []string{"shard 1 of 2", "coreapp-a", "not served here"}, outcome: "refused"},
		{name: "owner unreachable", owners: []string{"", "coreapp-c@127.0.0.1:7999"}, mention: []string{"shard 1 of 2", "coreapp-c", "Unavailable"}, outcome: "unknown"},
		{name: "owner does not answer in time", owners: []string{"", "coreapp-a@127.0.0.1:7001"}, hang: true, mention: []string{"shard 1 of 2", "DeadlineExceeded"}, outcome: "unknown"},
		{name: "owner answers unavailable", owners: []string{"", "coreapp-a@127.0.0.1:7001"}, answer: status.Error(codes.Unavailable, "gone"), mention: []string{"shard 1 of 2"}, outcome: "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fd := newFrontDoor(t, "127.0.0.1:7001")
				fd.fakes["127.0.0.1:7001"].answer = c.answer
				fd.fakes["127.0.0.1:7001"].hang = c.hang
				if c.owners != nil {
					fd.setMap(2, c.owners...)
				}
				start := time.Now()
				code, ans := fd.send(recipientOf(t, 1, 2))
				if code != http.StatusServiceUnavailable {
					t.Fatalf("HTTP %d %v, want 503", code, ans)
				}
				n, details := oneError(t, ans)
				if n != 1018 || ans["errors"].([]any)[0].(map[string]any)["title"] != "Not Primary Coreapp" {
					t.Errorf("error %v, want 1018 Not Primary Coreapp", ans)
				}
				for _, m := range c.mention {
					if !strings.Contains(details, m) {
						t.Errorf("details %q do not mention %q", details, m)
					}
				}
				if got := fd.metric(c.outcome); got != "1" {
					t.Errorf("outcome %s counted %s, want 1", c.outcome, got)
				}
				if c.hang {
					if took := time.Since(start); took != fd.timeout {
						t.Errorf("a hanging owner held the request %v, want the send timeout %v", took, fd.timeout)
					}
				}
			})
		})
	}
}

func TestMessageOwnerOtherErrorIs500(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fd := newFrontDoor(t, "127.0.0.1:7001")
		fd.fakes["127.0.0.1:7001"].answer = status.Error(codes.Unimplemented, "no Send here")
		fd.setMap(1, "coreapp-a@127.0.0.1:7001")
		code, ans := fd.send("16315551234")
		if n, _ := oneError(t, ans); code != http.StatusInternalServerError || n != 1014 {
			t.Errorf("HTTP %d %v, want 500/1014", code, ans)
		}
		if got := fd.metric("error"); got != "1" {
			t.Errorf("error outcome counted %s, want 1", got)
		}
	})
}

func TestMessageIDsAreUnique(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fd := newFrontDoor(t, "127.0.0.1:7001")
		fd.setMap(1, "coreapp-a@127.0.0.1:7001")
		seen := map[string]bool{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 500 {
			wg.Go(func() {
				code, ans := fd.send(fmt.Sprintf("1631555%04d", i))
				if code != http.StatusCreated {
					t.Errorf("HTTP %d %v", code, ans)
					return
				}
				id := ans["messages"].([]any)[0].(map[string]any)["id"].(string)
				mu.Lock()
				defer mu.Unlock()
				if seen[id] {
					t.Errorf("id %s given twice", id)
				}
				if !strings.HasPrefix(id, "gBEG") || len(id) != 30 {
					t.Errorf("id %q: want gBEG and 26 base32 characters", id)
				}
				seen[id] = true
			})
		}
		wg.Wait()
		if len(seen) != 500 {
			t.Errorf("%d distinct ids for 500 messages", len(seen))
		}
	})
}

func TestMessageNeedsAToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fd := newFrontDoor(t, "127.0.0.1:7001")
		fd.setMap(1, "coreapp-a@127.0.0.1:7001")
		fd.token = "not-a-token"
		code, ans := fd.send("16315551234")
		if n, _ := oneError(t, ans); code != http.StatusUnauthorized || n != 1005 {
			t.Errorf("HTTP %d %v, want 401/1005", code, ans)
		}
		if got := fd.fakes["127.0.0.1:7001"].requests(); len(got) != 0 {
			t.Errorf("an unauthenticated message reached the coreapp: %v", got)
		}
	})
}

func TestMessageBodyErrorsNameTheField(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fd := newFrontDoor(t, "127.0.0.1:7001")
		fd.setMap(1, "coreapp-a@127.0.0.1:7001")
		for _, c := range []struct{ body, field string }{
			{`{"type":"text","text":{"body":"x"}}`, "to"},
			{`{"to":"+1631","text":{"body":"x"}}`, "to"},
			{`{"to":"1","type":"image","text":{"body":"x"}}`, "type"},
			{`{"to":"1","text":{}}`, "text.body"},
			{`{"to":"1","text":{"body":"` + strings.Repeat("x", 4097) + `"}}`, "text.body"},
		} {
			code, ans := fd.post(c.body)
			if _, details := oneError(t, ans); code != http.StatusBadRequest || !strings.HasPrefix(details, c.field+": ") {
				t.Errorf("%.60s: HTTP %d %v, want 400 naming %s", c.body, code, ans, c.field)
			}
		}
		if got := fd.fakes["127.0.0.1:7001"].requests(); len(got) != 0 {
			t.Errorf("refused bodies reached the coreapp: %v", got)
		}
		if got := fd.metric("invalid"); got != "5" {
			t.Errorf("invalid outcome counted %s, want 5", got)
		}
	})
}
