package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mcsim/mcsim/settings/store/storetest"
)

// Latency benchmarks through a real loopback listener, reporting the p50 and
// p99 of single requests (the targets: GET p99 < 1 ms, PATCH with fsync p99
// < 10 ms). Run: go test -run '^$' -bench . -benchtime 2000x ./settings/httpapi/

func benchRequests(b *testing.B, method string, body func(i int) []byte) {
	e := newEnv(b)
	tok := e.login()
	hc := e.srv.Client()
	url := e.srv.URL + appPath
	durs := make([]time.Duration, 0, 1024)
	i := 0
	for b.Loop() {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body(i))
		}
		i++
		req, err := http.NewRequest(method, url, rd)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", tok)
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		// Reading the body to EOF keeps the connection reusable.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		durs = append(durs, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: HTTP %d", method, resp.StatusCode)
		}
	}
	slices.Sort(durs)
	pct := func(p float64) float64 { return float64(durs[int(p*float64(len(durs)-1))].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}

// perBackend runs bench once per store backend (postgres needs
// MCSIM_TEST_POSTGRES).
func perBackend(b *testing.B, bench func(*testing.B)) {
	for _, be := range storetest.Backends {
		b.Run(be.Name, func(b *testing.B) {
			envBackend = be
			defer func() { envBackend = storetest.Bolt }()
			bench(b)
		})
	}
}

func BenchmarkGet(b *testing.B) {
	perBackend(b, func(b *testing.B) { benchRequests(b, http.MethodGet, nil) })
}

// BenchmarkPatch changes a value every time, so every PATCH is a real write
// (a bbolt commit with fsync).
func BenchmarkPatch(b *testing.B) {
	perBackend(b, func(b *testing.B) {
		benchRequests(b, http.MethodPatch, func(i int) []byte {
			return fmt.Appendf(nil, `{"heartbeat_interval":%d}`, 1+i%20)
		})
	})
}
