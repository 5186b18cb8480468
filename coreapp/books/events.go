package books

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Event is an input to Step. The set is closed: the types below.
type Event interface{ isEvent() }

// AssignAsked: a master asks the node to serve Shard at Epoch. Coreapp is
// the node the master meant ("" for any); Shards is the shard count (0:
// the sender does not know it).
type AssignAsked struct {
	Coreapp    string
	LeaseEpoch uint64
	Shard      int32
	Shards     int32
	Epoch      uint64
}

// ReleaseAsked: a master asks the node to stop serving Shard, which it
// believes the node holds at Epoch.
type ReleaseAsked struct {
	Coreapp    string
	LeaseEpoch uint64
	Shard      int32
	Epoch      uint64
}

// HeartbeatAsked: a master heartbeats the node.
type HeartbeatAsked struct {
	Coreapp    string
	LeaseEpoch uint64
}

// StopAsked: the node stops gracefully (rule 5).
type StopAsked struct{}

// SessionAccepted: the gateway accepted the session opened for Shard at
// Epoch and will ping it; SilentAfter without a ping means it no longer
// hears the node (0: it promises no pings, so silence means nothing).
type SessionAccepted struct {
	Shard       int32
	Epoch       uint64
	SilentAfter time.Duration
}

// SessionRejected: the session's first answer was not an acceptance (the
// gateway rejected it, answered something else, or could not be reached).
type SessionRejected struct {
	Shard int32
	Epoch uint64
}

// SessionReplaced: the gateway says another session took the shard.
type SessionReplaced struct {
	Shard int32
	Epoch uint64
}

// SessionEnded: the session's stream ended for any other reason.
type SessionEnded struct {
	Shard int32
	Epoch uint64
}

// GatewayPinged: the gateway pinged the session (and was answered).
type GatewayPinged struct {
	Shard int32
	Epoch uint64
}

// Tick says only that time is now; the driver steps it at NextWake.
type Tick struct{}

func (AssignAsked) isEvent()     {}
func (ReleaseAsked) isEvent()    {}
func (HeartbeatAsked) isEvent()  {}
func (StopAsked) isEvent()       {}
func (SessionAccepted) isEvent() {}
func (SessionRejected) isEvent() {}
func (SessionReplaced) isEvent() {}
func (SessionEnded) isEvent()    {}
func (GatewayPinged) isEvent()   {}
func (Tick) isEvent()            {}

// Action is an output of Step, to carry out in order.
type Action interface{ isAction() }

// Accept: the command is accepted; what it changes follows.
type Accept struct{}

// Refuse: the command is refused and changed nothing. Answer it with
// status.Error(Code, Reason).
type Refuse struct {
	Code   codes.Code
	Reason string
	// Verdict: refused by the fence or the epoch rules, a judgement on the
	// master's command that the driver records; false for a malformed or
	// misdirected request or a stopping node.
	Verdict bool
}

// OpenSession: open a gateway session for Shard at Epoch with the shard
// count Shards, and post its first answer.
type OpenSession struct {
	Shard  int32
	Shards int32
	Epoch  uint64
}

// CloseSession: close the session of Shard at Epoch (it is out of the
// books already).
type CloseSession struct {
	Shard int32
	Epoch uint64
}

// Dropped: the session of Shard at Epoch ended on its own while it was the
// shard's; the node no longer holds the shard.
type Dropped struct {
	Shard int32
	Epoch uint64
}

// SetStatus: the held shard's gateway status changed to Status because of
// the gateway's silence (CONNECTING) or a ping after one (CONNECTED).
// Silence is the time since the previous ping (or the acceptance).
type SetStatus struct {
	Shard   int32
	Epoch   uint64
	Status  mcsimv1.GatewayStatus
	Silence time.Duration
}

// Leave: the node stops; hand over Shards (what it held) and then close
// every session.
type Leave struct{ Shards []Served }

func (Accept) isAction()       {}
func (Refuse) isAction()       {}
func (OpenSession) isAction()  {}
func (CloseSession) isAction() {}
func (Dropped) isAction()      {}
func (SetStatus) isAction()    {}
func (Leave) isAction()        {}

// Served is one shard the node holds.
type Served struct {
	Shard  int32
	Epoch  uint64
	Status mcsimv1.GatewayStatus
}

// StatusName is s without its GATEWAY_STATUS_ prefix.
func StatusName(s mcsimv1.GatewayStatus) string {
	return strings.TrimPrefix(s.String(), "GATEWAY_STATUS_")
}

// FormatAction renders an action on one line; the transcripts use it.
func FormatAction(a Action) string {
	switch a := a.(type) {
	case Accept:
		return "accept"
	case Refuse:
		v := ""
		if a.Verdict {
			v = " verdict"
		}
		return fmt.Sprintf("refuse %s%s: %s", a.Code, v, a.Reason)
	case OpenSession:
		return fmt.Sprintf("open-session shard=%d epoch=%d shards=%d", a.Shard, a.Epoch, a.Shards)
	case CloseSession:
		return fmt.Sprintf("close-session shard=%d epoch=%d", a.Shard, a.Epoch)
	case Dropped:
		return fmt.Sprintf("dropped shard=%d epoch=%d", a.Shard, a.Epoch)
	case SetStatus:
		return fmt.Sprintf("set-status shard=%d epoch=%d %s silence=%s", a.Shard, a.Epoch, StatusName(a.Status), a.Silence)
	case Leave:
		s := "leave"
		for _, sv := range a.Shards {
			s += fmt.Sprintf(" %d@%d/%s", sv.Shard, sv.Epoch, StatusName(sv.Status))
		}
		return s
	}
	return fmt.Sprintf("unknown action %T", a)
}
