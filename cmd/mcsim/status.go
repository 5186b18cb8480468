package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcsim/mcsim/health"
)

// healthPath is the settings service's cluster health endpoint.
const healthPath = "/v1/health"

func newStatusCommand() *cobra.Command {
	var cf clientFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Print the cluster table: every master and coreapp, its role, gateway status and shards (GET /v1/health)",
		Long: `Print one line per cluster node, as the settings service sees it at this
moment: masters first (primary, then secondary), then coreapps, by node id.
STATE is "alive" for a node that answered; a node in gossip that did not
answer its Status call in time is "unreachable" (role "unknown", with the
reason); a node gossip lost is "failed" and one that left gracefully (SIGTERM)
"left", each with the time it happened, listed until it joins again; a
master the store says holds the lease but gossip does not list is the row
"lease:<id>", state "outside_gossip". Below
the table, every shard the primary has no owner for: since when and why. --json prints the /v1/health answer re-indented
(the same content, two-space indent, for people and jq).`,
		Example: `  mcsim status
  mcsim status --json | jq '.health | to_entries[] | select(.value.shards | index(0)) | .key'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd)
			if err != nil {
				return err
			}
			body, err := c.Do(cmd.Context(), http.MethodGet, healthPath, nil)
			if err != nil || asJSON {
				return printResult(cmd.OutOrStdout(), body, err)
			}
			table, err := formatStatus(body, time.Local)
			if err != nil {
				return &exitError{code: exitFailure, msg: "mcsim: " + err.Error()}
			}
			_, err = io.WriteString(cmd.OutOrStdout(), table)
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the /v1/health answer as JSON (re-indented, same content)")
	cf.register(c)
	return c
}

// roleOrder puts masters first, the primary on top; nodes that did not
// answer go last, whatever they are.
func roleOrder(role string) int {
	switch role {
	case health.RolePrimaryMaster:
		return 0
	case health.RoleSecondaryMaster:
		return 1
	case health.RoleCoreapp:
		return 2
	}
	return 3
}

// formatStatus renders a /v1/health answer as an aligned table, times in
// loc.
func formatStatus(body []byte, loc *time.Location) (string, error) {
	entries, err := health.Decode(body)
	if err != nil {
		return "", fmt.Errorf("the service's /v1/health answer is not a health object: %.200q", bytes.TrimSpace(body))
	}
	lease, leaseErr := health.DecodeLease(body)
	if leaseErr == nil {
		health.AddLeaseHolder(entries, lease)
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(
			cmp.Compare(roleOrder(entries[a].Role), roleOrder(entries[b].Role)),
			cmp.Compare(health.NodeID(a), health.NodeID(b)),
			cmp.Compare(a, b))
	})

	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tSTATE\tGATEWAY\tSHARDS\tPID\tPENDING_RESTART\tERROR")
	var unassigned []health.UnassignedShard
	for _, k := range keys {
		e := entries[k]
		errText := e.Error
		if errText == "" {
			errText = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			k, e.Role, stateText(e, loc), e.GatewayStatus, health.FormatShards(e.Shards), pidText(e.PID), strList(e.PendingRestart), errText)
		if e.Role == health.RolePrimaryMaster {
			unassigned = append(unassigned, e.UnassignedShards...)
		}
	}
	if len(keys) == 0 {
		fmt.Fprintln(tw, "(no masters or coreapps have joined the cluster)")
	}
	if err := tw.Flush(); err != nil {
		return "", err
	}
	for _, u := range unassigned {
		since := ""
		if u.Since != "" {
			since = " since " + clockText(u.Since, loc)
		}
		fmt.Fprintf(&buf, "shard %d: unassigned%s, %s\n", u.Shard, since, u.Reason)
	}
	if leaseErr == nil {
		if note := health.PrimaryNote(entries, lease); note != "" {
			fmt.Fprintln(&buf, note)
		}
	}
	return buf.String(), nil
}

// stateText is the STATE column: "alive", or what went wrong and since
// when ("failed since 21:14:03.512"). Entries of older services carry no
// state: an entry that answered is alive.
func stateText(e health.Entry, loc *time.Location) string {
	switch {
	case e.State == "" && e.Error != "":
		return health.StateUnreachable
	case e.State == "":
		return health.StateAlive
	case e.Since == "":
		return e.State
	}
	return e.State + " since " + clockText(e.Since, loc)
}

// clockText shows an RFC 3339 time as the wall clock of loc with
// milliseconds, as the live view of mcsim up does.
func clockText(rfc3339 string, loc *time.Location) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	return t.In(loc).Format("15:04:05.000")
}

func strList(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ",")
}

func pidText(pid int) string {
	if pid == 0 {
		return "-"
	}
	return strconv.Itoa(pid)
}
