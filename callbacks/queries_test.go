package callbacks

import "testing"

// DropReason answers what Queue would do, without queueing; Has sees a
// callback from Queue until it is Done.
func TestDropReasonAndHas(t *testing.T) {
	o := New()
	cfg := Config{URL: "https://hook.example/cb", Enabled: map[Kind]bool{Sent: true}, MaxConcurrent: 1, Backoff: 1, MaxBackoff: 1}
	if _, err := o.Step(t0(), Configure{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		k    Kind
		want string
	}{{Sent, ""}, {Delivered, "webhooks.message.delivered is off"}, {Failed, ""}} {
		k, want := tc.k, tc.want
		if got := o.DropReason(k); got != want {
			t.Errorf("DropReason(%s) = %q, want %q", k, got, want)
		}
		acts, err := o.Step(t0(), Queue{Status: Status{ID: "m/" + string(k), Kind: k}})
		if err != nil {
			t.Fatal(err)
		}
		dropped := false
		for _, a := range acts {
			if _, ok := a.(Dropped); ok {
				dropped = true
			}
		}
		if dropped != (want != "") || o.Has("m/"+string(k)) == dropped {
			t.Errorf("Queue of %s: %v, Has %v; DropReason said %q", k, acts, o.Has("m/"+string(k)), want)
		}
	}
	if _, err := o.Step(t0(), Answered{ID: "m/sent", Attempt: 1, OK: true}); err != nil {
		t.Fatal(err)
	}
	if o.Has("m/sent") {
		t.Error("Has a delivered callback")
	}
	cfg.URL = ""
	if _, err := o.Step(t0(), Configure{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if got := o.DropReason(Sent); got != "no webhooks.url" {
		t.Errorf("DropReason without a URL = %q", got)
	}
}
