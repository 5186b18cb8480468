// Package logging builds the zerolog loggers of mcsim's nodes. There is no
// global logger: each node builds its own and passes it down, so many nodes
// can run in one process (tests, the simulator) with their own fields.
//
// Every line carries "time" in RFC 3339 with milliseconds
// (2026-12-01T21:14:03.512Z): mcsim exists to time failovers, and whole
// seconds hide everything it measures. zerolog's own Timestamp() reads the
// package-wide TimeFieldFormat, which would make the format global state;
// a per-logger hook keeps it local.
package logging

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// Format is how log lines are written.
type Format string

const (
	// JSON writes one JSON object per line (the default; for machines).
	JSON Format = "json"
	// Console writes aligned lines for people, coloured on a terminal.
	Console Format = "console"
)

// TimeFormat is the layout of every line's "time": RFC 3339, milliseconds,
// UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// ParseFormat checks a --log-format value.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case JSON, Console:
		return Format(s), nil
	}
	return "", fmt.Errorf("--log-format: must be %q or %q, got %q", JSON, Console, s)
}

// New returns a logger writing to w in the given format at the given level,
// with a millisecond timestamp on every line. Fields such as node_id and
// role are added by the caller with With(), once: see the package doc of
// each node package for which of them it adds itself.
func New(w io.Writer, format Format, level zerolog.Level) zerolog.Logger {
	return NewWithClock(w, format, level, time.Now)
}

// NewWithClock is New with the clock the timestamps are read from (a
// skewed node clock, a virtual one).
func NewWithClock(w io.Writer, format Format, level zerolog.Level, now func() time.Time) zerolog.Logger {
	if format == Console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !IsTerminal(w)}
	}
	return zerolog.New(w).Level(level).Hook(stamp{now: now})
}

// stamp writes "time" on each line as it is logged.
type stamp struct{ now func() time.Time }

func (s stamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str("time", s.now().UTC().Format(TimeFormat))
}

// IsTerminal says whether w is a terminal, so colour codes and cursor
// movement are written only where a person reads them, never into a file
// or a pipe.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Level maps the settings log_level and verbose_logging to a zerolog level:
// verbose_logging wins and means debug; otherwise info, warning, error or
// fatal.
func Level(logLevel string, verbose bool) zerolog.Level {
	if verbose {
		return zerolog.DebugLevel
	}
	switch logLevel {
	case "warning":
		return zerolog.WarnLevel
	case "error":
		return zerolog.ErrorLevel
	case "fatal":
		return zerolog.FatalLevel
	}
	return zerolog.InfoLevel
}
