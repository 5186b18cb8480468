// Package logging builds the zerolog loggers of mcsim's nodes. There is no
// global logger: each node builds its own and passes it down, so many nodes
// can run in one process (tests, the simulator) with their own fields.
package logging

import (
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// Format is how log lines are written.
type Format string

const (
	// JSON writes one JSON object per line (the default; for machines).
	JSON Format = "json"
	// Console writes coloured, aligned lines for people.
	Console Format = "console"
)

// ParseFormat checks a --log-format value.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case JSON, Console:
		return Format(s), nil
	}
	return "", fmt.Errorf("--log-format: must be %q or %q, got %q", JSON, Console, s)
}

// New returns a logger writing to w in the given format at the given level,
// with a timestamp on every line. Fields such as node_id and role are added
// by the caller with With().
func New(w io.Writer, format Format, level zerolog.Level) zerolog.Logger {
	if format == Console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339Nano}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
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
