package membership

import (
	"bytes"
	"log"

	"github.com/rs/zerolog"
)

// logWriter receives memberlist's standard-library log lines
// ("[WARN] memberlist: ...") and re-emits each as a zerolog event at the
// matching level, so memberlist's chatter is filtered and structured like
// the rest of the node's logs.
type logWriter struct {
	log zerolog.Logger
}

// newMemberlistLogger returns the *log.Logger to put in memberlist.Config.
// No flags: zerolog adds its own timestamp.
func newMemberlistLogger(l zerolog.Logger) *log.Logger {
	return log.New(logWriter{log: l.With().Str("component", "memberlist").Logger()}, "", 0)
}

// Write handles one log line per call, which is how log.Logger calls it.
// Lines without a known prefix are logged at info.
func (w logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\r\n")
	level := zerolog.InfoLevel
	for _, lp := range [...]struct {
		prefix string
		level  zerolog.Level
	}{
		{"[DEBUG] ", zerolog.DebugLevel},
		{"[INFO] ", zerolog.InfoLevel},
		{"[WARN] ", zerolog.WarnLevel},
		{"[ERR] ", zerolog.ErrorLevel},
		{"[ERROR] ", zerolog.ErrorLevel},
	} {
		if rest, ok := bytes.CutPrefix(line, []byte(lp.prefix)); ok {
			line, level = rest, lp.level
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	w.log.WithLevel(level).Msg(string(line))
	return len(p), nil
}
