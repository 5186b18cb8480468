package logging

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestEveryLineHasMillisecondTime(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 12, 1, 21, 14, 3, 512_345_678, time.UTC)
	log := NewWithClock(&buf, JSON, zerolog.InfoLevel, func() time.Time { return at })
	log.Info().Str("node_id", "coreapp-1").Msg("session connected")
	line := bytes.TrimSpace(buf.Bytes())
	if !bytes.Contains(line, []byte(`"time":"2026-12-01T21:14:03.512Z"`)) {
		t.Errorf("line %s: want time 2026-12-01T21:14:03.512Z", line)
	}
	if err := CheckLine(line); err != nil {
		t.Error(err)
	}
}

func TestCheckLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string // "" means valid
	}{
		{`{"level":"info","time":"2026-12-01T21:14:03.512Z","message":"x"}`, ""},
		{`{"level":"info","node_id":"a","node_id":"b","time":"2026-12-01T21:14:03.512Z"}`, `key "node_id" twice`},
		{`{"level":"info","time":"2026-12-01T21:14:03Z"}`, "not RFC 3339 with milliseconds"},
		{`{"level":"info"}`, `no "time"`},
		{`=== procs: starting ===`, "not a JSON object"},
		{`{"time":"2026-12-01T21:14:03.512Z"} {}`, "more than one JSON value"},
	} {
		err := CheckLine([]byte(tc.line))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.line, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error with %q", tc.line, err, tc.want)
		}
	}
}

// A console log written to a file or a pipe must not carry colour codes:
// they are noise in less, grep and CI logs.
func TestConsoleHasNoColourOffATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "console.log")
	if err != nil {
		t.Fatal(err)
	}
	log := New(f, Console, zerolog.InfoLevel)
	log.Warn().Str("shard", "0").Msg("unassigned")
	f.Close()
	b, _ := os.ReadFile(f.Name())
	if bytes.Contains(b, []byte("\x1b[")) {
		t.Errorf("console log in a file has ANSI escapes: %q", b)
	}
	if !bytes.Contains(b, []byte("unassigned")) {
		t.Errorf("console log lost the message: %q", b)
	}
}
