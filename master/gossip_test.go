package master

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/membership"
)

// recordedCalls is a gossipTarget that writes down every call.
type recordedCalls []string

func (r *recordedCalls) CoreappJoined(id, addr string) {
	*r = append(*r, fmt.Sprintf("CoreappJoined(%s, %s)", id, addr))
}
func (r *recordedCalls) CoreappLeft(id string) { *r = append(*r, fmt.Sprintf("CoreappLeft(%s)", id)) }
func (r *recordedCalls) MasterLeft(id string)  { *r = append(*r, fmt.Sprintf("MasterLeft(%s)", id)) }

// TestGossipMeaning is the table of what each gossip event means to a
// master: which call it makes, and which events only log (a failure: rules
// 1 and 4) or mean nothing.
func TestGossipMeaning(t *testing.T) {
	coreapp := func(kind membership.EventKind, addr string) membership.Event {
		return membership.Event{Kind: kind, Node: membership.Node{ID: "coreapp-1", Role: membership.RoleCoreapp, GRPCAddr: addr}}
	}
	other := func(kind membership.EventKind, role membership.Role) membership.Event {
		return membership.Event{Kind: kind, Node: membership.Node{ID: string(role) + "-1", Role: role, GRPCAddr: "10.0.0.9:1"}}
	}
	tests := []struct {
		name   string
		ev     membership.Event
		calls  []string
		logged bool // the failure line
	}{
		{"coreapp joined", coreapp(membership.Joined, "10.0.0.1:1"), []string{"CoreappJoined(coreapp-1, 10.0.0.1:1)"}, false},
		{"coreapp updated (restarted elsewhere)", coreapp(membership.Updated, "10.0.0.1:2"), []string{"CoreappJoined(coreapp-1, 10.0.0.1:2)"}, false},
		{"coreapp joined without an address yet", coreapp(membership.Joined, ""), nil, false},
		{"coreapp updated without an address", coreapp(membership.Updated, ""), nil, false},
		{"coreapp left gracefully: rule 5", coreapp(membership.LeftGracefully, "10.0.0.1:1"), []string{"CoreappLeft(coreapp-1)"}, false},
		{"coreapp failed: only logged", coreapp(membership.Failed, "10.0.0.1:1"), nil, true},
		{"master left gracefully", other(membership.LeftGracefully, membership.RoleMaster), []string{"MasterLeft(master-1)"}, false},
		{"master joined", other(membership.Joined, membership.RoleMaster), nil, false},
		{"master updated", other(membership.Updated, membership.RoleMaster), nil, false},
		{"master failed: the lease expires", other(membership.Failed, membership.RoleMaster), nil, false},
		{"settings service joined", other(membership.Joined, membership.RoleSettings), nil, false},
		{"settings service left", other(membership.LeftGracefully, membership.RoleSettings), nil, false},
		{"gateway joined", other(membership.Joined, membership.RoleGateway), nil, false},
		{"gateway failed", other(membership.Failed, membership.RoleGateway), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got recordedCalls
			var buf bytes.Buffer
			hear(&got, zerolog.New(&buf), tt.ev)
			if !slices.Equal(got, tt.calls) {
				t.Errorf("%v: calls %q, want %q", tt.ev, got, tt.calls)
			}
			logged := strings.Contains(buf.String(), "gossip reports coreapp failed")
			if logged != tt.logged {
				t.Errorf("%v: logged %v (%q), want %v", tt.ev, logged, buf.String(), tt.logged)
			}
			if logged && !strings.Contains(buf.String(), `"coreapp":"coreapp-1"`) {
				t.Errorf("the failure line does not name the coreapp: %s", buf.String())
			}
		})
	}
}
