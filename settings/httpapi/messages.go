package httpapi

import (
	"context"
	"encoding/base32"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings"
	"github.com/mcsim/mcsim/shard"
)

// DefaultSendTimeout bounds one Send to the shard's owner. The owner answers
// once the gateway accepted the message, a loopback round trip or two; 5 s
// is far beyond that and still short of a client's patience, and of the
// server's 30 s write timeout.
const DefaultSendTimeout = 5 * time.Second

// messageIDPrefix starts every message id, as the real API's ids start with
// "gBEG"; the rest is messageIDBytes random bytes in unpadded base32.
const (
	messageIDPrefix = "gBEG"
	messageIDBytes  = 16
)

// The outcomes of POST /v1/messages, the label of
// mcsim_frontdoor_messages_total.
const (
	outcomeSent     = "sent"      // 201: the owner answered, the gateway accepted it
	outcomeInvalid  = "invalid"   // 4xx: the body was refused, nothing routed
	outcomeNoOwner  = "no_owner"  // 1018: the map names no owner or no address
	outcomeRefused  = "refused"   // 1018: the owner answered FAILED_PRECONDITION: not sent
	outcomeUnknown  = "unknown"   // 1018: no answer in time or the link broke: it may have been sent
	outcomeError    = "error"     // 500: anything else (a bug, a closed pool, an old coreapp)
	outcomeCanceled = "cancelled" // the client went away before the answer
)

// messageIDs draws message ids from one random source, one reader at a time
// (a seeded test source is not safe for concurrent use).
type messageIDs struct {
	mu  sync.Mutex
	src io.Reader
}

func (m *messageIDs) next() (string, error) {
	b := make([]byte, messageIDBytes)
	m.mu.Lock()
	_, err := io.ReadFull(m.src, b)
	m.mu.Unlock()
	if err != nil {
		return "", err
	}
	return messageIDPrefix + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b), nil
}

type messageAnswer struct {
	Messages []messageID `json:"messages"`
	Meta     meta        `json:"meta"`
}

type messageID struct {
	ID string `json:"id"`
}

// postMessage is the front door: it validates the message, finds its
// shard's owner in the stored shard map and has the owner send it.
func (s *server) postMessage(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		s.metrics.message(outcomeInvalid)
		return
	}
	msg, errs := settings.ParseMessageRequest(body)
	if errs != nil {
		s.metrics.message(outcomeInvalid)
		s.writeErrors(w, errs)
		return
	}
	m, err := s.store.ShardMap()
	if err != nil {
		s.metrics.message(outcomeError)
		s.writeInternal(w, r, "could not read the shard map", err)
		return
	}
	n := int(m.GetShards())
	if !shard.ValidCount(n) {
		// No master has written a map yet (a cluster still starting).
		s.notPrimary(w, outcomeNoOwner, "no shard map has been written yet: no shard has an owner")
		return
	}
	sh := shard.Of(msg.To, n)
	var owner *mcsimv1.ShardAssignment
	for _, a := range m.GetAssignments() {
		if int(a.GetShard()) == sh {
			owner = a
			break
		}
	}
	switch {
	case owner.GetCoreappId() == "":
		s.notPrimary(w, outcomeNoOwner, fmt.Sprintf("shard %d of %d has no owner", sh, n))
		return
	case owner.GetCoreappAddress() == "":
		s.notPrimary(w, outcomeNoOwner, fmt.Sprintf("shard %d of %d: the address of its owner %s is not known", sh, n, owner.GetCoreappId()))
		return
	}
	inMap := func(addr string) bool {
		for _, a := range m.GetAssignments() {
			if a.GetCoreappAddress() == addr {
				return true
			}
		}
		return false
	}
	client, err := s.coreapps.client(owner.GetCoreappAddress(), inMap)
	if err != nil {
		s.metrics.message(outcomeError)
		s.writeInternal(w, r, "could not open a connection to the shard's owner", err)
		return
	}
	id, err := s.ids.next()
	if err != nil {
		s.metrics.message(outcomeError)
		s.writeInternal(w, r, "could not create a message id", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.sendTimeout)
	defer cancel()
	_, err = client.Send(ctx, &mcsimv1.SendRequest{
		MessageId: id, To: msg.To, Body: msg.Body, Shards: int32(n), CoreappId: owner.GetCoreappId(),
	})
	if err == nil {
		s.metrics.message(outcomeSent)
		s.writeJSON(w, http.StatusCreated, messageAnswer{Messages: []messageID{{ID: id}}, Meta: newMeta()})
		return
	}
	where := fmt.Sprintf("shard %d of %d, owner %s at %s", sh, n, owner.GetCoreappId(), owner.GetCoreappAddress())
	st := status.Convert(err)
	switch {
	case r.Context().Err() != nil:
		// Nobody is left to read an answer; count it and write one anyway.
		s.metrics.message(outcomeCanceled)
		s.writeErrors(w, settings.Errors{settings.NotPrimaryCoreapp(where + ": the request was cancelled")})
	case st.Code() == codes.FailedPrecondition:
		s.notPrimary(w, outcomeRefused, fmt.Sprintf("%s: refused: %s", where, st.Message()))
	case st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded:
		s.log.Warn().Str("message_id", id).Int("shard", sh).Str("coreapp", owner.GetCoreappId()).
			Str("code", st.Code().String()).Str("error", st.Message()).Msg("message outcome unknown")
		s.notPrimary(w, outcomeUnknown, fmt.Sprintf("%s: no answer (%s); retry", where, st.Code()))
	default:
		// The code and the owner are no secret and tell an operator what
		// broke (Unimplemented: a coreapp older than the front door).
		s.metrics.message(outcomeError)
		s.log.Error().Err(err).Str("message_id", id).Int("shard", sh).Str("coreapp", owner.GetCoreappId()).Msg("send failed")
		s.writeErrors(w, settings.Errors{settings.Internal(fmt.Sprintf("the shard's owner could not send the message (%s: %s)", where, st.Code()))})
	}
}

// notPrimary answers 1018 and counts the outcome.
func (s *server) notPrimary(w http.ResponseWriter, outcome, details string) {
	s.metrics.message(outcome)
	s.writeErrors(w, settings.Errors{settings.NotPrimaryCoreapp(details)})
}
