package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcsim/mcsim/gateway"
)

// durationValue is a duration flag that refuses negative values at parse
// time, so every command's durations share one rule and one message
// ("invalid argument "-1s" for "--timeout" flag: must not be negative").
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (for example 500ms, 3s, 1m)")
	}
	if v < 0 {
		return fmt.Errorf("must not be negative")
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Type() string   { return "duration" }

// durationFlag defines a non-negative duration flag.
func durationFlag(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var((*durationValue)(p), name, usage)
}

// checkHostPort checks an address flag: host:port with a numeric port. A
// listen address may have port 0 (pick one) and an empty host (every
// interface); an address to dial needs both.
func checkHostPort(flag, addr string, dial bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: must be host:port (for example 127.0.0.1:9300), got %q", flag, addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("%s: port must be a number 0-65535, got %q in %q", flag, port, addr)
	}
	if dial && (host == "" || n == 0) {
		return fmt.Errorf("%s: must name a host and a non-zero port to connect to, got %q", flag, addr)
	}
	return nil
}

// refuseUnknownSubcommands makes every command that only groups others
// (mcsim settings, mcsim completion) fail with exit 2 on an unknown
// subcommand, as the README promises, instead of cobra's default of
// printing help and exiting 0. With no argument such a command still
// prints its help (exit 0).
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() || !c.HasParent() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		return usageErr("%s (want one of: %s)", msg, strings.Join(names, ", "))
	}
}

// completeValues registers shell completion of a flag's enumerated values.
func completeValues(c *cobra.Command, flag string, values ...string) {
	_ = c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// statusDelayFlags defines the gateway's status delays (mcsim gateway and
// mcsim up run the same gateway, so they share the flags and defaults).
func statusDelayFlags(fs *pflag.FlagSet, d *gateway.StatusDelays) {
	def := gateway.DefaultStatusDelays()
	durationFlag(fs, &d.Sent, "status-sent", def.Sent, "the gateway's status update sent falls due this long after it accepts a message")
	durationFlag(fs, &d.Delivered, "status-delivered", def.Delivered, "the status update delivered falls due this long after acceptance (≥ --status-sent)")
	durationFlag(fs, &d.Read, "status-read", def.Read, "the status update read falls due this long after acceptance (≥ --status-delivered)")
	durationFlag(fs, &d.Resend, "status-resend", def.Resend, "a status update offered to a shard's session and not acknowledged is offered again this long after (> 0; a new owner of the shard is offered it at once)")
}
