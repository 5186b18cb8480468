package poster

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/mcsim/mcsim/callbacks"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings"
)

// Settings are the callback settings of the seed, as the poster takes them.
type Settings struct {
	// URL is webhooks.url ("" drops every callback).
	URL string
	// Sent, Delivered and Read are webhooks.message.*.
	Sent, Delivered, Read bool
	// MaxConcurrent is webhooks.max_concurrent_requests; restart-required.
	MaxConcurrent int
	// Backoff and MaxBackoff are callback_backoff_delay_ms and
	// max_callback_backoff_delay_ms.
	Backoff, MaxBackoff time.Duration
	// Persist is callback_persist; restart-required.
	Persist bool
}

// The restart-required keys the poster reads, as settings names them.
const (
	keyPersist       = "callback_persist"
	keyMaxConcurrent = "webhooks.max_concurrent_requests"
)

// FromApplication takes the callback settings out of a settings document.
func FromApplication(a settings.Application) Settings {
	return Settings{
		URL:  a.Webhooks.URL,
		Sent: a.Webhooks.Message.Sent, Delivered: a.Webhooks.Message.Delivered, Read: a.Webhooks.Message.Read,
		MaxConcurrent: int(a.Webhooks.MaxConcurrentRequests),
		Backoff:       a.CallbackBackoffDelay(), MaxBackoff: a.MaxCallbackBackoffDelay(),
		Persist: a.CallbackPersist,
	}
}

// Defaults are the callback settings of a new cluster (no URL: every
// callback is dropped until webhooks.url is set).
func Defaults() Settings { return FromApplication(settings.Defaults("")) }

// FromSnapshot reads the callback settings from a settings snapshot's
// application_json, validated as the settings service validates a stored
// document ("" is the defaults).
func FromSnapshot(snap *mcsimv1.Snapshot) (Settings, error) {
	if snap.GetApplicationJson() == "" {
		return Defaults(), nil // nothing stored yet
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(snap.GetApplicationJson()), &doc); err != nil {
		return Settings{}, fmt.Errorf("snapshot %d: application_json: %w", snap.GetRevision(), err)
	}
	// wa_id is the service's, shown but refused in a stored document.
	delete(doc, "wa_id")
	b, err := json.Marshal(doc)
	if err != nil {
		return Settings{}, fmt.Errorf("snapshot %d: application_json: %w", snap.GetRevision(), err)
	}
	a, err := settings.Decode(b, "")
	if err != nil {
		return Settings{}, fmt.Errorf("snapshot %d: application_json: %w", snap.GetRevision(), err)
	}
	return FromApplication(a), nil
}

// StartedWith replaces the restart-required settings by the values a
// process started with (Snapshot.restart_required as the coreapp kept it;
// compact JSON by key): a running coreapp keeps them until it restarts,
// whatever the settings say now. Keys missing from started are left as
// they are.
func (s Settings) StartedWith(started map[string]string) (Settings, error) {
	if v, ok := started[keyPersist]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return s, fmt.Errorf("restart_required[%s]: want true or false, got %q", keyPersist, v)
		}
		s.Persist = b
	}
	if v, ok := started[keyMaxConcurrent]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return s, fmt.Errorf("restart_required[%s]: want an integer ≥ 1, got %q", keyMaxConcurrent, v)
		}
		s.MaxConcurrent = n
	}
	return s, nil
}

// outbox is the outbox's configuration.
func (s Settings) outbox(timeout time.Duration) callbacks.Config {
	return callbacks.Config{
		URL: s.URL,
		Enabled: map[callbacks.Kind]bool{
			callbacks.Sent: s.Sent, callbacks.Delivered: s.Delivered, callbacks.Read: s.Read,
		},
		MaxConcurrent: s.MaxConcurrent,
		Backoff:       s.Backoff, MaxBackoff: s.MaxBackoff,
		Timeout: timeout,
	}
}
