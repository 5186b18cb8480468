package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcsim/mcsim/webhook"
)

// parsePercent reads 30% or 30.
func parsePercent(flag, s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, usageErr("--%s: must be a percentage 0%%–100%% (for example 30%%), got %q", flag, s)
	}
	return v, nil
}

func newWebhookSinkCommand() *cobra.Command {
	var (
		listen, fail string
		cfg          webhook.Config
	)
	c := &cobra.Command{
		Use:   "webhook-sink",
		Short: "A webhook receiver that records every status callback and can be told to fail",
		Long: `Serve HTTP on --listen and take the status callbacks a cluster posts to
webhooks.url (set webhooks.url to the printed URL; a query string such as
?auth=secret is kept and recorded). Each callback is printed on stdout as
one JSON line: time, t (seconds since the sink started), id, status,
recipient_id, attempt (the n-th post of the same status of the same
message the sink took is attempt n), coreapp and coreapp_attempt (the
poster's X-Mcsim-Coreapp and X-Mcsim-Attempt headers: its id and its own
attempt number, which its backoff follows), answered and code (when and
what the sink answered; 0: the poster hung up first) and query, once the
callback is answered. GET /records serves the same lines.

--fail answers that share of callbacks 500 (drawn from --seed), --latency
waits before every answer, --down-for answers 503 to everything for that
long after the start: ways to watch the seed's backoff (3 s, 6 s, 9 s, …
capped at max_callback_backoff_delay_ms) and max_concurrent_requests from
outside. Ctrl-C stops it and prints how many callbacks got which answer
on stderr.

Every coreapp posts its status callbacks to webhooks.url; the sink takes
any client's statuses callbacks as well.`,
		Example: `  mcsim webhook-sink
  mcsim webhook-sink --listen 127.0.0.1:9191 --fail 30% --latency 200ms --down-for 20s --seed 7
  curl -s -XPOST 'http://127.0.0.1:9091/?auth=secret' -H 'X-Mcsim-Coreapp: coreapp-1' -H 'X-Mcsim-Attempt: 1' \
    -d '{"statuses":[{"id":"m1","recipient_id":"16315551234","status":"sent","timestamp":"1764623400"}]}'
  curl -s http://127.0.0.1:9091/records`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkHostPort("--listen", listen, false); err != nil {
				return usageErr("%v", err)
			}
			p, err := parsePercent("fail", fail)
			if err != nil {
				return err
			}
			cfg.FailPercent = p
			if err := cfg.Validate(); err != nil {
				return usageErr("--%v", err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: exitTransprt, msg: fmt.Sprintf("mcsim webhook-sink: --listen %s: %v", listen, err)}
			}
			sink := webhook.New(cfg, cmd.OutOrStdout())
			srv := &http.Server{Handler: sink, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.ErrOrStderr(), "webhook sink on http://%s/ (set webhooks.url to it; Ctrl-C stops)\n", ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				if !errors.Is(err, http.ErrServerClosed) {
					return err
				}
			case <-cmd.Context().Done():
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = srv.Shutdown(ctx)
				cancel()
			}
			sum := sink.Summary()
			codes := make([]int, 0, len(sum))
			for code := range sum {
				codes = append(codes, code)
			}
			sort.Ints(codes)
			var parts []string
			for _, code := range codes {
				parts = append(parts, fmt.Sprintf("%d×%d", sum[code], code))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "webhook sink stopped: %d callbacks (%s)\n", len(sink.Records()), strings.Join(parts, ", "))
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:9191", "address to serve on (the default is clear of mcsim up's 9090–9092)")
	fl.StringVar(&fail, "fail", "0%", "share of callbacks to answer 500, e.g. 30%")
	durationFlag(fl, &cfg.Latency, "latency", 0, "wait this long before every answer")
	durationFlag(fl, &cfg.DownFor, "down-for", 0, "answer 503 to everything for this long after the start")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed of which callbacks --fail fails")
	return c
}
