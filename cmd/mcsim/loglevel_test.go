package main

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/settings"
)

// settings serve --log-level and the API's log_level accept the same
// values: each candidate is accepted by both or refused by both, and a
// refused flag names itself and lists the values.
func TestLogLevelFlagMatchesTheSetting(t *testing.T) {
	candidates := []string{"debug", "info", "warn", "warning", "error", "fatal", "panic", "trace", "INFO", ""}
	accepted := 0
	for _, v := range candidates {
		body, _ := json.Marshal(map[string]string{"log_level": v})
		_, errs := settings.Patch(settings.Defaults("1"), body)
		api := errs == nil

		_, err := (&logFlags{format: "json", level: v}).logger(io.Discard)
		flag := err == nil
		if api != flag {
			t.Errorf("log level %q: accepted by the API %v, by --log-level %v", v, api, flag)
		}
		if flag {
			accepted++
			continue
		}
		var ex *exitError
		if !errors.As(err, &ex) || ex.code != exitUsage {
			t.Errorf("--log-level %q: %v, want a usage error (exit 2)", v, err)
			continue
		}
		for _, want := range append([]string{"--log-level", `got "` + v + `"`}, settings.LogLevels()...) {
			if !strings.Contains(ex.msg, `"`+want+`"`) && !strings.Contains(ex.msg, want) {
				t.Errorf("--log-level %q: error %q does not mention %q", v, ex.msg, want)
			}
		}
	}
	if accepted != len(settings.LogLevels()) {
		t.Errorf("%d candidates accepted, want the %d of settings.LogLevels()", accepted, len(settings.LogLevels()))
	}
}

// --verbose-logging is verbose_logging: debug, whatever --log-level says.
func TestVerboseLoggingFlag(t *testing.T) {
	for _, tc := range []struct {
		f    logFlags
		want zerolog.Level
	}{
		{logFlags{format: "json", level: "fatal"}, zerolog.FatalLevel},
		{logFlags{format: "json", level: "warning"}, zerolog.WarnLevel},
		{logFlags{format: "json", level: "fatal", verbose: true}, zerolog.DebugLevel},
	} {
		log, err := tc.f.logger(io.Discard)
		if err != nil || log.GetLevel() != tc.want {
			t.Errorf("%+v: level %v, %v; want %v", tc.f, log.GetLevel(), err, tc.want)
		}
	}
}
