// Package transcript reads the arguments of a datadriven transcript
// command (cockroachdb/datadriven, as the tests of master/failover,
// master/lease, coord and coreapp/books use it), failing the test with the
// command's position when an argument is missing or malformed. It exists
// so that each transcript test does not carry its own copy of the same
// parsers.
package transcript

import (
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// Str is the first value of key, or "" when the command does not have it.
func Str(d *datadriven.TestData, key string) string {
	if a, ok := d.Arg(key); ok && len(a.Vals) > 0 {
		return a.Vals[0]
	}
	return ""
}

// Dur is key's value as a Go duration (500ms, 3s); false when the command
// does not have it.
func Dur(t testing.TB, d *datadriven.TestData, key string) (time.Duration, bool) {
	t.Helper()
	a, ok := d.Arg(key)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(a.SingleVal(t))
	if err != nil {
		t.Fatalf("%s: %s: %v", d.Pos, key, err)
	}
	return v, true
}

// Num is key's value as an unsigned number; the command must have it.
func Num(t testing.TB, d *datadriven.TestData, key string) uint64 {
	t.Helper()
	a, ok := d.Arg(key)
	if !ok {
		t.Fatalf("%s: missing %s=", d.Pos, key)
	}
	v, err := strconv.ParseUint(a.SingleVal(t), 10, 64)
	if err != nil {
		t.Fatalf("%s: %s: %v", d.Pos, key, err)
	}
	return v
}

// Advance moves *now to base plus the command's at= (if it has one); a
// time before *now fails the test: a transcript's clock never goes back.
func Advance(t testing.TB, d *datadriven.TestData, base time.Time, now *time.Time) {
	t.Helper()
	v, ok := Dur(t, d, "at")
	if !ok {
		return
	}
	at := base.Add(v)
	if at.Before(*now) {
		t.Fatalf("%s: at=%v goes back in time", d.Pos, v)
	}
	*now = at
}

// SentTTL is an acquire answer's send time and TTL: sent= (an offset from
// base) and ttl= when the command has them, else the last request's.
func SentTTL(t testing.TB, d *datadriven.TestData, base, lastSent time.Time, lastTTL time.Duration) (time.Time, time.Duration) {
	t.Helper()
	if v, ok := Dur(t, d, "sent"); ok {
		lastSent = base.Add(v)
	}
	if v, ok := Dur(t, d, "ttl"); ok {
		lastTTL = v
	}
	return lastSent, lastTTL
}

// Wake moves *now to wake, the machine's NextWake, for a command without
// at= (a tick then fires when the machine asked), unless wake is not later
// than *now (a wake that passed is due now).
func Wake(d *datadriven.TestData, wake time.Time, now *time.Time) {
	if !d.HasArg("at") && wake.After(*now) {
		*now = wake
	}
}
