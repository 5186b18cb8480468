package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcsim/mcsim/settings/client"
	"github.com/mcsim/mcsim/traffic/load"
)

// parseRate reads a message rate: "200/s", "12000/m" or a bare "200" (per
// second), as messages per second.
func parseRate(s string) (float64, error) {
	num, unit, hasUnit := strings.Cut(strings.TrimSpace(s), "/")
	per := 1.0
	if hasUnit {
		switch unit {
		case "s":
		case "m":
			per = 60
		default:
			return 0, usageErr(`--rate: the unit must be /s or /m (for example 200/s), got %q`, s)
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v > 0) || v/per > 1e6 {
		return 0, usageErr(`--rate: must be a positive number of messages per second or minute, at most 1000000/s (for example 200/s), got %q`, s)
	}
	return v / per, nil
}

func newLoadCommand() *cobra.Command {
	var (
		cf         clientFlags
		rate       string
		recipients int
		duration   time.Duration
		seed       uint64
		maxOut     int
		asJSON     bool
	)
	c := &cobra.Command{
		Use:   "load",
		Short: "Send messages through the front door (POST /v1/messages) at a steady rate and report what a client sees",
		Long: `Log in as admin at --url (the settings service; every settings process is a
front door) and send text messages, open loop: one started every 1/rate,
without waiting for answers (at most --max-outstanding in progress; starts
beyond it are skipped and counted). Recipients are drawn from --seed among
--recipients fixed wa ids (1631555 and a zero-padded index).

A 1018 Not Primary Coreapp answer (a shard without a serving owner, as
during a failover) or a connection error is retried like a well-behaved
client: after 100 ms, then doubling up to 2 s, each wait ±20 % (seeded),
giving up 30 s after the first attempt, when the message counts as an
error with its last code. Other error answers are not retried. A
message's latency is from its first attempt to its final answer.

Every second, one line on stdout: the messages started in that second
(sent), those answered 201 (ok), every error answer received (errors, by
code, retried ones included, so a failover shows as a dip even when the
retries succeed), and the latency p50/p99 of that second's oks. With
--json each is {"event":"traffic","t","sent","ok","errors","p50_ms","p99_ms"}.
At the end (after --duration and the last answers, or at Ctrl-C) a
summary: throughput, latency p50/p90/p99/max, final errors by code,
retries, and the longest stretch of seconds with errors.

Exit status: 0 when the run completed (whatever the cluster answered), 1
when the login was refused, 2 on bad flags, 3 when the front door could
not be reached at all (as every client command of mcsim).`,
		Example: `  mcsim load --duration 10s
  mcsim load --rate 200/s --recipients 10000 --duration 1m --seed 7
  mcsim load --rate 50/s --duration 5s --json | jq -c 'select(.event=="traffic") | [.t, .ok, .errors]'
  mcsim load --url http://127.0.0.1:9090 --admin-password secret --rate 12000/m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := parseRate(rate)
			if err != nil {
				return err
			}
			if recipients < 1 || recipients > load.MaxRecipients {
				return usageErr("--recipients: must be 1 to %d, got %d", load.MaxRecipients, recipients)
			}
			if maxOut < 1 {
				return usageErr("--max-outstanding: must be at least 1, got %d", maxOut)
			}
			if _, err := cf.client(cmd); err != nil { // validates --url
				return err
			}
			// One idle connection per message in progress: the default
			// two would open and close a connection per request at
			// hundreds per second.
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = maxOut
			tr.MaxIdleConns = maxOut
			hc := &http.Client{Timeout: cf.timeout, Transport: tr}
			defer tr.CloseIdleConnections()
			cl := client.New(cf.url, flagOrEnv(cmd, "admin-password", cf.password, passwordEnv), hc)
			out := cmd.OutOrStdout()
			var werr error
			sum, err := load.Run(cmd.Context(), load.Config{
				Client: cl, Rate: r, Recipients: recipients, Duration: duration, Seed: seed, MaxOutstanding: maxOut,
			}, func(s load.Second) {
				if werr == nil {
					werr = load.WriteSecond(out, s, asJSON)
				}
			})
			if err != nil {
				var apiErr *client.APIError
				if errors.As(err, &apiErr) {
					return &exitError{code: exitFailure, msg: "mcsim: load: the login was refused: " + strings.TrimSpace(string(apiErr.Body))}
				}
				if errors.Is(err, load.ErrUnreachable) {
					return &exitError{code: exitTransprt, msg: fmt.Sprintf("mcsim: %v (is the cluster up? mcsim up serves it at http://127.0.0.1:9090)", err)}
				}
				return &exitError{code: exitFailure, msg: "mcsim: " + err.Error()}
			}
			if werr == nil {
				werr = load.WriteSummary(out, sum, asJSON)
			}
			if werr != nil {
				return &exitError{code: exitFailure, msg: "mcsim: load: writing the report: " + werr.Error()}
			}
			return nil
		},
	}
	cf.register(c)
	fs := c.Flags()
	fs.Lookup("timeout").Usage = "each request's timeout (an attempt that times out is retried as a connection error)"
	fs.StringVar(&rate, "rate", "200/s", "messages started per second (200/s) or minute (12000/m)")
	fs.IntVar(&recipients, "recipients", 10000, "distinct recipients: wa ids 1631555 and a zero-padded index")
	durationFlag(fs, &duration, "duration", 0, "how long to start messages; 0 runs until Ctrl-C")
	fs.Uint64Var(&seed, "seed", 1, "seed of the recipients and the retry jitter")
	fs.IntVar(&maxOut, "max-outstanding", 1000, "messages in progress at most (retries included); starts beyond are skipped and counted")
	fs.BoolVar(&asJSON, "json", false, `one JSON line per second ({"event":"traffic",…}) and a {"event":"summary",…} line`)
	return c
}
