package settings

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/shard"
)

// The defaults of SETTINGS.md "Fields", as GET shows them.
const defaultsJSON = `{"axolotl_context_striping_disabled":false,"callback_backoff_delay_ms":3000,` +
	`"callback_persist":true,"garbagecollector_enable":{"media":false,"messages":true},"heartbeat_interval":5,` +
	`"log_level":"info","max_callback_backoff_delay_ms":900000,"media":{"auto_download":[]},` +
	`"notify_user_change_number":false,"pass_through":false,"show_security_notifications":false,` +
	`"skip_referral_media_download":false,"unhealthy_interval":30,"verbose_logging":false,` +
	`"wa_id":"15550001111","webhooks":{"max_concurrent_requests":6,"message":{"delivered":true,"read":true,"sent":true},"url":""}}`

func TestDefaultsJSON(t *testing.T) {
	a := Defaults("15550001111")
	if got := string(a.JSON()); got != defaultsJSON {
		t.Fatalf("JSON() =\n%s\nwant\n%s", got, defaultsJSON)
	}
	if strings.Contains(string(a.Encode()), "wa_id") {
		t.Fatal("Encode stores wa_id")
	}
	if a.HeartbeatInterval() != 5*time.Second || a.UnhealthyInterval() != 30*time.Second {
		t.Fatal("interval accessors")
	}
	if a.CallbackBackoffDelay() != 3*time.Second || a.MaxCallbackBackoffDelay() != 15*time.Minute {
		t.Fatal("delay accessors")
	}
	if a.LogLevel() != "info" || a.VerboseLogging() || a.EffectiveLogLevel() != "info" {
		t.Fatal("log accessors")
	}
}

func TestEffectiveLogLevel(t *testing.T) {
	a := mustPatch(t, Defaults("1"), `{"verbose_logging":true,"log_level":"error"}`)
	if a.LogLevel() != "error" || !a.VerboseLogging() || a.EffectiveLogLevel() != "debug" {
		t.Fatalf("got %s %v %s", a.LogLevel(), a.VerboseLogging(), a.EffectiveLogLevel())
	}
}

func TestDeprecatedFieldsHiddenUntilSet(t *testing.T) {
	deprecated := []string{"db_garbagecollector_enable", "webhook_payload_conversation_pricingmodel_disabled"}
	a := Defaults("1")
	for _, p := range deprecated {
		if strings.Contains(string(a.JSON()), p) || strings.Contains(string(a.Encode()), p) {
			t.Fatalf("%s shown before it was set", p)
		}
	}
	a = mustPatch(t, a, `{"db_garbagecollector_enable":true}`)
	if v, ok := lookup(t, a.JSON(), "db_garbagecollector_enable"); !ok || v != "true" {
		t.Fatalf("db_garbagecollector_enable not shown once set: %s", a.JSON())
	}
	if strings.Contains(string(a.JSON()), deprecated[1]) {
		t.Fatal("the other deprecated field appeared")
	}
	back, err := Decode(a.Encode(), "1")
	if err != nil || !reflect.DeepEqual(back, a) {
		t.Fatalf("round trip lost the deprecated field: %v\n%s", err, back.JSON())
	}
	// DELETE (Defaults) hides it again.
	if strings.Contains(string(Defaults("1").JSON()), deprecated[0]) {
		t.Fatal("defaults show a deprecated field")
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	a := mustPatch(t, Defaults("1"), `{"axolotl_context_striping_disabled":true,"callback_backoff_delay_ms":"2500",
		"max_callback_backoff_delay_ms":60000,"callback_persist":false,"db_garbagecollector_enable":false,
		"garbagecollector_enable":{"messages":false,"media":true},"heartbeat_interval":2,"unhealthy_interval":7,
		"media":{"auto_download":["sticker","audio"]},"notify_user_change_number":true,"pass_through":false,
		"show_security_notifications":true,"skip_referral_media_download":true,
		"webhook_payload_conversation_pricingmodel_disabled":true,
		"webhooks":{"url":"https://example.com/cb?auth=a&b=c","max_concurrent_requests":24,
		"message":{"sent":false,"delivered":false,"read":false}},"verbose_logging":true,"log_level":"fatal"}`)
	stored := a.Encode()
	back, err := Decode(stored, "other-wa-id")
	if err != nil {
		t.Fatal(err)
	}
	if back.WaID != "other-wa-id" {
		t.Fatal("wa_id must come from Decode's argument")
	}
	back.WaID = a.WaID
	if !reflect.DeepEqual(back, a) {
		t.Fatalf("round trip:\n got %s\nwant %s", back.JSON(), a.JSON())
	}
	if string(back.Encode()) != string(stored) {
		t.Fatal("Encode is not stable")
	}
	if !strings.Contains(string(a.JSON()), `"url":"https://example.com/cb?auth=a&b=c"`) {
		t.Fatalf("URL escaped in JSON: %s", a.JSON())
	}
	if !strings.Contains(string(a.JSON()), `"callback_backoff_delay_ms":2500`) {
		t.Fatalf("callback delay not an integer: %s", a.JSON())
	}
}

func TestDecode(t *testing.T) {
	if a, err := Decode(nil, "9"); err != nil || !reflect.DeepEqual(a, Defaults("9")) {
		t.Fatalf("empty stored document: %v", err)
	}
	// A stored form from an older version lacks newer fields: they default.
	a, err := Decode([]byte(`{"log_level":"error"}`), "9")
	if err != nil || a.LogLevel() != "error" || a.HeartbeatIntervalSeconds != 5 {
		t.Fatalf("partial document: %v", err)
	}
	for _, bad := range []string{`{"wa_id":"1"}`, `{"log_level":"loud"}`, `not json`, `[]`, `{"unhealthy_interval":1}`} {
		if _, err := Decode([]byte(bad), "9"); err == nil {
			t.Errorf("Decode(%s) accepted", bad)
		}
	}
}

func TestRestartRequired(t *testing.T) {
	a := Defaults("1")
	got := a.RestartRequired()
	want := map[string]string{
		"axolotl_context_striping_disabled": "false",
		"callback_persist":                  "true",
		"db_garbagecollector_enable":        "true",
		"garbagecollector_enable.messages":  "true",
		"garbagecollector_enable.media":     "false",
		"pass_through":                      "false",
		"webhooks.max_concurrent_requests":  "6",
		"verbose_logging":                   "false",
		"log_level":                         `"info"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("RestartRequired() = %v\nwant %v", got, want)
	}
	// Live fields are not restart-required.
	b := mustPatch(t, a, `{"heartbeat_interval":1,"unhealthy_interval":2,"webhooks":{"url":"https://x.example"}}`)
	if p := PendingRestart(got, b.RestartRequired()); len(p) != 0 {
		t.Fatalf("live fields pending: %v", p)
	}
	c := mustPatch(t, b, `{"log_level":"error","garbagecollector_enable":{"media":true},"db_garbagecollector_enable":true}`)
	if p := PendingRestart(got, c.RestartRequired()); !reflect.DeepEqual(p, []string{"garbagecollector_enable.media", "log_level"}) {
		t.Fatalf("pending = %v", p)
	}
	// DELETE puts them back: nothing pending for a node started on defaults.
	if p := PendingRestart(got, Defaults("1").RestartRequired()); len(p) != 0 {
		t.Fatalf("pending after reset = %v", p)
	}
}

func TestPendingRestart(t *testing.T) {
	cases := []struct {
		started, now map[string]string
		want         []string
	}{
		{nil, nil, []string{}},
		{map[string]string{"a": "1"}, map[string]string{"a": "1"}, []string{}},
		{map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1", "b": "3"}, []string{"b"}},
		{map[string]string{"b": "1"}, map[string]string{"a": "1"}, []string{"a", "b"}},
		{map[string]string{"z": "1", "c": "1"}, map[string]string{"z": "2", "c": "2"}, []string{"c", "z"}},
	}
	for _, c := range cases {
		if got := PendingRestart(c.started, c.now); !reflect.DeepEqual(got, c.want) {
			t.Errorf("PendingRestart(%v, %v) = %v, want %v", c.started, c.now, got, c.want)
		}
	}
}

func TestShards(t *testing.T) {
	for _, n := range shard.Counts() {
		if e := ValidateShards(n); e != nil {
			t.Errorf("ValidateShards(%d) = %v", n, e)
		}
	}
	for _, n := range []int{0, -1, 3, 5, 64} {
		e := ValidateShards(n)
		if e == nil || e.Code != 1009 || !strings.HasPrefix(e.Details, "shards: ") {
			t.Errorf("ValidateShards(%d) = %v", n, e)
		}
	}
}
