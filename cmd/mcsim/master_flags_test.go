package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// A master's lease flags are checked before anything is connected: the
// settings address is unreachable, so a check made after dialing would
// exit 3 (or wait); each refusal exits 2 at once and names the flag.
func TestMasterRefusesBadLeaseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"--lease-ttl", "2s", "--lease-renew", "5s"}, "--lease-renew 5s: must be shorter than --lease-ttl 2s"},
		{[]string{"--lease-ttl", "2s", "--lease-renew", "2s"}, "--lease-renew 2s: must be shorter than --lease-ttl 2s"},
		{[]string{"--lease-ttl", "-1s"}, `invalid argument "-1s" for "--lease-ttl" flag: must not be negative`},
		{[]string{"--lease-renew", "-500ms"}, `invalid argument "-500ms" for "--lease-renew" flag: must not be negative`},
		{[]string{"--expect-coreapps", "-1"}, "--expect-coreapps -1: must be >= 0"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			start := time.Now()
			root := newRootCommand()
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			root.SetArgs(append([]string{"master", "--id", "master-1", "--settings", "127.0.0.1:1"}, tc.args...))
			err := root.ExecuteContext(t.Context())
			var ex *exitError
			if !errors.As(err, &ex) || ex.code != exitUsage {
				t.Errorf("error %v, want exit %d", err, exitUsage)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v does not say %q", err, tc.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("refused after %v: it waited for the settings service first", d)
			}
		})
	}
}

// One lease flag given alone is checked against the settings the master
// starts with: the other side of the comparison is live.
func TestLeaseFlagAgainstSettings(t *testing.T) {
	snap := &mcsimv1.Snapshot{HeartbeatIntervalSeconds: 5, UnhealthyIntervalSeconds: 30}
	for _, tc := range []struct {
		ttl, renew time.Duration
		want       string // "" when accepted
	}{
		{ttl: 10 * time.Second},
		{renew: 10 * time.Second},
		{ttl: 2 * time.Second, renew: time.Second},
		{ttl: 5 * time.Second, want: "--lease-ttl 5s: must be longer than the renewal interval, heartbeat_interval 5s"},
		{renew: 30 * time.Second, want: "--lease-renew 30s: must be shorter than the lease TTL, unhealthy_interval 30s"},
	} {
		err := checkLeaseFlagAgainst(tc.ttl, tc.renew, snap)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("--lease-ttl %v --lease-renew %v: %v, want %q", tc.ttl, tc.renew, err, tc.want)
		}
	}
}
