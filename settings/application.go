package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Application is the whole application settings document (SETTINGS.md
// "Fields"). Field names carry their unit where the JSON name does not, and
// differ from the JSON name where an accessor method already has it
// (LogLevel, VerboseLogging, HeartbeatInterval, UnhealthyInterval).
//
// Construct one with Defaults, Decode or Patch; a hand-built value skips
// validation.
type Application struct {
	// WaID is read-only: it comes from the service's configuration, is not
	// stored by Encode and is refused in a PATCH.
	WaID string

	AxolotlContextStripingDisabled bool
	CallbackBackoffDelayMS         int64
	MaxCallbackBackoffDelayMS      int64
	CallbackPersist                bool
	// DBGarbageCollectorEnable is deprecated (v2.49): nil until set, and
	// only then stored and shown.
	DBGarbageCollectorEnable  *bool
	GarbageCollectorEnable    GarbageCollectorEnable
	HeartbeatIntervalSeconds  int64
	UnhealthyIntervalSeconds  int64
	Media                     Media
	NotifyUserChangeNumber    bool
	PassThrough               bool
	ShowSecurityNotifications bool
	SkipReferralMediaDownload bool
	// WebhookPayloadConversationPricingModelDisabled is deprecated (v2.39):
	// nil until set, and only then stored and shown.
	WebhookPayloadConversationPricingModelDisabled *bool
	Webhooks                                       Webhooks
	VerboseLoggingEnabled                          bool
	LogLevelName                                   string
}

// GarbageCollectorEnable is garbagecollector_enable.
type GarbageCollectorEnable struct {
	Messages bool
	Media    bool
}

// Media is media (the providers live behind their own endpoint, see Provider).
type Media struct {
	// AutoDownload is never nil once built by this package.
	AutoDownload []string
}

// Webhooks is webhooks.
type Webhooks struct {
	URL                   string
	MaxConcurrentRequests int64
	Message               WebhookMessages
}

// WebhookMessages is webhooks.message: which message status callbacks are sent.
type WebhookMessages struct {
	Sent      bool
	Delivered bool
	Read      bool
}

// Defaults is the document after a DELETE: every field at its default,
// deprecated fields unset.
func Defaults(waID string) Application {
	a := Application{WaID: waID}
	for _, f := range schema() {
		f.reset(&a)
	}
	return a
}

// Decode loads a document previously produced by Encode. It runs the same
// validation as a PATCH on top of the defaults, so a corrupt or hand-edited
// store is reported, not loaded; fields missing from the stored form (an
// older version wrote it) take their defaults. An empty document is the
// defaults. waID is set from the service's configuration.
func Decode(stored []byte, waID string) (Application, error) {
	if len(bytes.TrimSpace(stored)) == 0 {
		return Defaults(waID), nil
	}
	a, errs := Patch(Defaults(waID), stored)
	if errs != nil {
		return Application{}, fmt.Errorf("settings: stored document is invalid: %w", errs)
	}
	return a, nil
}

// Encode is the stored form: the JSON document without wa_id, deprecated
// fields only when set. Keys are sorted, so equal documents encode equally.
func (a Application) Encode() []byte { return a.marshal(false) }

// JSON is the object GET /v1/settings/application shows under
// settings.application: wa_id included, deprecated fields only once set,
// arrays never null, callback delays as integers, keys sorted.
func (a Application) JSON() []byte { return a.marshal(true) }

func (a Application) marshal(withWaID bool) []byte {
	root := map[string]any{}
	if withWaID {
		root["wa_id"] = a.WaID
	}
	for _, f := range schema() {
		v, set := f.get(&a)
		if f.deprecated && !set {
			continue
		}
		obj := root
		parts := strings.Split(f.path, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := obj[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				obj[p] = sub
			}
			obj = sub
		}
		obj[parts[len(parts)-1]] = v
	}
	return compactJSON(root)
}

// compactJSON marshals v without HTML escaping (webhook URLs keep their &).
func compactJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only maps, strings, bools, int64s and string slices reach here.
		panic(fmt.Sprintf("settings: marshal: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// clone is a deep copy: the result shares no slice or pointer with a.
func (a Application) clone() Application {
	c := a
	c.Media.AutoDownload = slices.Clone(a.Media.AutoDownload)
	if a.Media.AutoDownload != nil && c.Media.AutoDownload == nil {
		c.Media.AutoDownload = []string{}
	}
	if a.DBGarbageCollectorEnable != nil {
		v := *a.DBGarbageCollectorEnable
		c.DBGarbageCollectorEnable = &v
	}
	if a.WebhookPayloadConversationPricingModelDisabled != nil {
		v := *a.WebhookPayloadConversationPricingModelDisabled
		c.WebhookPayloadConversationPricingModelDisabled = &v
	}
	return c
}

// HeartbeatInterval is how often the primary master heartbeats each coreapp.
func (a Application) HeartbeatInterval() time.Duration {
	return time.Duration(a.HeartbeatIntervalSeconds) * time.Second
}

// UnhealthyInterval is how long the master waits for a heartbeat answer
// before the coreapp is unhealthy and its shards fail over.
func (a Application) UnhealthyInterval() time.Duration {
	return time.Duration(a.UnhealthyIntervalSeconds) * time.Second
}

// CallbackBackoffDelay is the step by which the callback retry delay grows.
func (a Application) CallbackBackoffDelay() time.Duration {
	return time.Duration(a.CallbackBackoffDelayMS) * time.Millisecond
}

// MaxCallbackBackoffDelay is where the callback retry delay stops growing.
func (a Application) MaxCallbackBackoffDelay() time.Duration {
	return time.Duration(a.MaxCallbackBackoffDelayMS) * time.Millisecond
}

// LogLevel is the configured log_level ("info", "warning", "error",
// "fatal"), even when verbose logging overrides it; see EffectiveLogLevel.
func (a Application) LogLevel() string { return a.LogLevelName }

// VerboseLogging is verbose_logging: when true, log_level is ignored.
func (a Application) VerboseLogging() bool { return a.VerboseLoggingEnabled }

// EffectiveLogLevel is the level a node should log at: "debug" when verbose
// logging is on, else log_level. ("warning" is zerolog's "warn".)
func (a Application) EffectiveLogLevel() string {
	if a.VerboseLoggingEnabled {
		return "debug"
	}
	return a.LogLevelName
}

// RestartRequired returns the current value of every restart-required field,
// keyed by dotted path, each as compact JSON. An unset deprecated field is
// reported with its effective (default) value, so the key set never changes
// and setting it to its default is not a pending change.
func (a Application) RestartRequired() map[string]string {
	out := map[string]string{}
	for _, f := range schema() {
		if !f.restart {
			continue
		}
		v, _ := f.get(&a)
		out[f.path] = string(compactJSON(v))
	}
	return out
}

// PendingRestart lists, sorted, the keys whose value in now differs from
// started; a key missing on either side counts as different.
func PendingRestart(started, now map[string]string) []string {
	out := []string{}
	for k, v := range now {
		if sv, ok := started[k]; !ok || sv != v {
			out = append(out, k)
		}
	}
	for k := range started {
		if _, ok := now[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
