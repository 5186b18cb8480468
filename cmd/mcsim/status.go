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

	"github.com/spf13/cobra"

	"github.com/mcsim/mcsim/cluster/health"
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
A node that did not answer its Status call in time is listed with role
"unknown" and the reason. --json prints the /v1/health answer unchanged.`,
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
			table, err := formatStatus(body)
			if err != nil {
				return &exitError{code: exitFailure, msg: "mcsim: " + err.Error()}
			}
			_, err = io.WriteString(cmd.OutOrStdout(), table)
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the raw /v1/health JSON")
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

// formatStatus renders a /v1/health answer as an aligned table.
func formatStatus(body []byte) (string, error) {
	entries, err := health.Decode(body)
	if err != nil {
		return "", fmt.Errorf("the service's /v1/health answer is not a health object: %.200q", bytes.TrimSpace(body))
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
	fmt.Fprintln(tw, "NODE\tROLE\tGATEWAY\tSHARDS\tPID\tPENDING_RESTART\tERROR")
	for _, k := range keys {
		e := entries[k]
		errText := e.Error
		if errText == "" {
			errText = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			k, e.Role, e.GatewayStatus, health.FormatShards(e.Shards), pidText(e.PID), strList(e.PendingRestart), errText)
	}
	if len(keys) == 0 {
		fmt.Fprintln(tw, "(no masters or coreapps have joined the cluster)")
	}
	if err := tw.Flush(); err != nil {
		return "", err
	}
	if lease, err := health.DecodeLease(body); err == nil {
		if note := health.PrimaryNote(entries, lease); note != "" {
			fmt.Fprintln(&buf, note)
		}
	}
	return buf.String(), nil
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
