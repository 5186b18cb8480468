package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// CheckLine says what is wrong with one line of a node's log, or nil: it
// must be a JSON object with no key twice (jq and most readers keep only
// one of them, silently) and a "time" in TimeFormat. Tests run it over
// every log a cluster wrote.
func CheckLine(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object: %.120q", line)
	}
	seen := map[string]bool{}
	var stamp string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("bad JSON: %v: %.120q", err, line)
		}
		key := tok.(string)
		if seen[key] {
			return fmt.Errorf("key %q twice: %.200q", key, line)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("bad JSON value of %q: %v", key, err)
		}
		if key == "time" {
			_ = json.Unmarshal(v, &stamp)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("bad JSON: %v: %.120q", err, line)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("more than one JSON value on the line: %.120q", line)
	}
	if stamp == "" {
		return fmt.Errorf(`no "time": %.120q`, line)
	}
	if _, err := time.Parse(TimeFormat, stamp); err != nil {
		return fmt.Errorf(`"time" %q is not RFC 3339 with milliseconds (%s)`, stamp, TimeFormat)
	}
	return nil
}
