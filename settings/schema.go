package settings

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// kind is the JSON shape a field accepts and how it is checked.
type kind int

const (
	kindBool         kind = iota // JSON true/false only
	kindSeconds                  // JSON integer literal, 1..maxSeconds
	kindMillis                   // JSON integer literal or numeric string, 1..maxMillis
	kindIntChoice                // JSON integer literal, one of intChoices
	kindStringChoice             // JSON string, one of choices (case-sensitive)
	kindStringSet                // JSON array of distinct strings from choices, replaced whole
	kindWebhookURL               // JSON string: "" or an https URL (http for loopback)
)

// The largest durations that still fit in a time.Duration, so the accessors
// can never overflow. SETTINGS.md sets no upper bound; this is the loosest
// one that keeps the types honest.
const (
	maxSeconds = math.MaxInt64 / int64(time.Second)
	maxMillis  = math.MaxInt64 / int64(time.Millisecond)
	maxURLLen  = 2048
)

// field is one row of the schema: every rule about one setting.
type field struct {
	path       string // full dotted path, as in SETTINGS.md and in error details
	kind       kind
	def        any // default: bool, int64, string or []string
	restart    bool
	deprecated bool // stored and shown only once set
	choices    []string
	intChoices []int64
	// rule is a constraint beyond the kind; it returns what was expected, or "".
	rule func(v any) string
	// ref points into the Application: *bool, **bool (deprecated), *int64,
	// *string or *[]string.
	ref func(a *Application) any
}

// schema is the single table of SETTINGS.md "Fields" (wa_id, read-only and
// not stored, is handled by Patch and JSON directly). It is a function, not a
// package variable, so nothing can mutate it.
func schema() []field {
	return []field{
		{path: "axolotl_context_striping_disabled", kind: kindBool, def: false, restart: true,
			ref: func(a *Application) any { return &a.AxolotlContextStripingDisabled }},
		{path: "callback_backoff_delay_ms", kind: kindMillis, def: int64(3000),
			ref: func(a *Application) any { return &a.CallbackBackoffDelayMS }},
		{path: "max_callback_backoff_delay_ms", kind: kindMillis, def: int64(900000),
			ref: func(a *Application) any { return &a.MaxCallbackBackoffDelayMS }},
		{path: "callback_persist", kind: kindBool, def: true, restart: true,
			ref: func(a *Application) any { return &a.CallbackPersist }},
		{path: "db_garbagecollector_enable", kind: kindBool, def: true, restart: true, deprecated: true,
			ref: func(a *Application) any { return &a.DBGarbageCollectorEnable }},
		{path: "garbagecollector_enable.messages", kind: kindBool, def: true, restart: true,
			ref: func(a *Application) any { return &a.GarbageCollectorEnable.Messages }},
		{path: "garbagecollector_enable.media", kind: kindBool, def: false, restart: true,
			ref: func(a *Application) any { return &a.GarbageCollectorEnable.Media }},
		{path: "heartbeat_interval", kind: kindSeconds, def: int64(5),
			ref: func(a *Application) any { return &a.HeartbeatIntervalSeconds }},
		{path: "unhealthy_interval", kind: kindSeconds, def: int64(30),
			ref: func(a *Application) any { return &a.UnhealthyIntervalSeconds }},
		{path: "media.auto_download", kind: kindStringSet, def: []string{},
			choices: []string{"audio", "document", "voice", "video", "image", "sticker"},
			ref:     func(a *Application) any { return &a.Media.AutoDownload }},
		{path: "notify_user_change_number", kind: kindBool, def: false,
			ref: func(a *Application) any { return &a.NotifyUserChangeNumber }},
		{path: "pass_through", kind: kindBool, def: false, restart: true,
			rule: func(v any) string {
				if v.(bool) {
					return "cannot be re-enabled: only false is accepted"
				}
				return ""
			},
			ref: func(a *Application) any { return &a.PassThrough }},
		{path: "show_security_notifications", kind: kindBool, def: false,
			ref: func(a *Application) any { return &a.ShowSecurityNotifications }},
		{path: "skip_referral_media_download", kind: kindBool, def: false,
			ref: func(a *Application) any { return &a.SkipReferralMediaDownload }},
		{path: "webhook_payload_conversation_pricingmodel_disabled", kind: kindBool, def: false, deprecated: true,
			ref: func(a *Application) any { return &a.WebhookPayloadConversationPricingModelDisabled }},
		{path: "webhooks.url", kind: kindWebhookURL, def: "",
			ref: func(a *Application) any { return &a.Webhooks.URL }},
		{path: "webhooks.max_concurrent_requests", kind: kindIntChoice, def: int64(6), restart: true,
			intChoices: []int64{6, 12, 18, 24},
			ref:        func(a *Application) any { return &a.Webhooks.MaxConcurrentRequests }},
		{path: "webhooks.message.sent", kind: kindBool, def: true,
			ref: func(a *Application) any { return &a.Webhooks.Message.Sent }},
		{path: "webhooks.message.delivered", kind: kindBool, def: true,
			ref: func(a *Application) any { return &a.Webhooks.Message.Delivered }},
		{path: "webhooks.message.read", kind: kindBool, def: true,
			ref: func(a *Application) any { return &a.Webhooks.Message.Read }},
		{path: "verbose_logging", kind: kindBool, def: false, restart: true,
			ref: func(a *Application) any { return &a.VerboseLoggingEnabled }},
		{path: "log_level", kind: kindStringChoice, def: "info", restart: true,
			choices: LogLevels(),
			ref:     func(a *Application) any { return &a.LogLevelName }},
	}
}

// LogLevels lists the values of log_level, as the seed gives them, from the
// most output to the least. It is the one list: the settings schema and
// every --log-level flag check against it, so a level that works in one
// place works in the other (debug is verbose_logging, here and there).
func LogLevels() []string { return []string{"info", "warning", "error", "fatal"} }

// orderRule is a cross-field constraint checked on the merged document:
// low < high (strict) or low ≤ high.
type orderRule struct {
	low, high string
	strict    bool
}

func orderRules() []orderRule {
	return []orderRule{
		{low: "heartbeat_interval", high: "unhealthy_interval", strict: true},
		{low: "callback_backoff_delay_ms", high: "max_callback_backoff_delay_ms", strict: false},
	}
}

// get returns the field's value in a, and whether it is set (false only for
// an unset deprecated field, whose value is then its default).
func (f field) get(a *Application) (any, bool) {
	switch p := f.ref(a).(type) {
	case *bool:
		return *p, true
	case **bool:
		if *p == nil {
			return f.def, false
		}
		return **p, true
	case *int64:
		return *p, true
	case *string:
		return *p, true
	case *[]string:
		return append([]string{}, *p...), true
	}
	panic(fmt.Sprintf("settings: field %s has an unsupported ref type", f.path))
}

// set stores v (already validated) into a. Slices and pointers are always
// fresh, so a shallow copy of an Application never shares them with its
// source after a set.
func (f field) set(a *Application, v any) {
	switch p := f.ref(a).(type) {
	case *bool:
		*p = v.(bool)
	case **bool:
		b := v.(bool)
		*p = &b
	case *int64:
		*p = v.(int64)
	case *string:
		*p = v.(string)
	case *[]string:
		*p = append([]string{}, v.([]string)...)
	default:
		panic(fmt.Sprintf("settings: field %s has an unsupported ref type", f.path))
	}
}

// reset puts the default back; a deprecated field becomes unset again.
func (f field) reset(a *Application) {
	if p, ok := f.ref(a).(**bool); ok {
		*p = nil
		return
	}
	f.set(a, f.def)
}

// expected describes what the field accepts, for error messages.
func (f field) expected() string {
	switch f.kind {
	case kindBool:
		return "must be a JSON boolean (true or false)"
	case kindSeconds:
		return "must be an integer number of seconds ≥ 1"
	case kindMillis:
		return "must be an integer number of milliseconds ≥ 1 (a JSON integer or a numeric string)"
	case kindIntChoice:
		parts := make([]string, len(f.intChoices))
		for i, c := range f.intChoices {
			parts[i] = fmt.Sprint(c)
		}
		return "must be one of " + strings.Join(parts, ", ")
	case kindStringChoice:
		return "must be one of " + quoteList(f.choices)
	case kindStringSet:
		return "must be an array of distinct values from " + quoteList(f.choices)
	case kindWebhookURL:
		return `must be an absolute https:// URL (http:// only for a loopback host: localhost, 127.0.0.1, [::1]), or "" to clear`
	}
	return "must be valid"
}

func quoteList(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(parts, ", ")
}

// fieldIndex maps paths to fields, and every proper prefix of a path (an
// object such as "webhooks.message") to true in groups.
func fieldIndex(fs []field) (leaves map[string]field, groups map[string]bool) {
	leaves = make(map[string]field, len(fs))
	groups = make(map[string]bool)
	for _, f := range fs {
		leaves[f.path] = f
		parts := strings.Split(f.path, ".")
		for i := 1; i < len(parts); i++ {
			groups[strings.Join(parts[:i], ".")] = true
		}
	}
	return leaves, groups
}

// inSet reports whether v is one of set (kept tiny, so a scan is fine).
func inSet[T comparable](set []T, v T) bool { return slices.Contains(set, v) }
