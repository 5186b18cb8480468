package settings

import (
	"fmt"
	"net/http"
	"sort"
	"unicode/utf8"
)

// The front door's own error (TRAFFIC.md): a message that reaches no serving
// owner of its shard. HTTP 503 is decided there; the client retries.
const (
	CodeNotPrimaryCoreapp  = 1018
	TitleNotPrimaryCoreapp = "Not Primary Coreapp"
)

// NotPrimaryCoreapp is the retryable 503 of a message whose shard has no
// serving owner right now (none assigned, address unknown, the owner refused
// it, or no owner answered). Details name the shard.
func NotPrimaryCoreapp(details string) Error {
	return Error{Status: http.StatusServiceUnavailable, Code: CodeNotPrimaryCoreapp, Title: TitleNotPrimaryCoreapp, Details: details}
}

// MaxMessageBody is the longest text body, in characters (TRAFFIC.md).
const MaxMessageBody = 4096

// MaxRecipientDigits is the longest `to`: an E.164 number has at most 15
// digits, and so does a wa_id.
const MaxRecipientDigits = 15

// Message is a validated POST /v1/messages request.
type Message struct {
	// To is the recipient's wa_id: 1 to MaxRecipientDigits ASCII digits.
	To string
	// Body is the text, 1 to MaxMessageBody characters of valid UTF-8.
	Body string
}

// ParseMessageRequest validates a POST /v1/messages body (TRAFFIC.md):
//
//	{"recipient_type": "individual", "to": "16315551234", "type": "text", "text": {"body": "hello"}}
//
// All or nothing, every problem at once, sorted by field, each naming its
// field: a body that is not a JSON object (1025, the same strict parser as
// the settings endpoints); "to" or "text.body" absent (1008); a value of the
// wrong type or out of its rule (1009), "type" other than "text" included.
// Decided where TRAFFIC.md is silent:
//   - "recipient_type" and "type" may be left out and then mean
//     "individual" and "text", the real API's defaults; given, they must be
//     exactly those.
//   - An unknown field, at the top or inside "text", is 1010 naming it, as
//     the settings endpoints answer: a misspelt "boddy" must not send an
//     empty message or be silently dropped.
//   - An empty text.body is 1009 (the real API refuses it); its length
//     counts characters (Unicode code points), not bytes.
func ParseMessageRequest(body []byte) (Message, Errors) {
	if len(body) > MaxBodyBytes {
		return Message{}, Errors{TooLarge(MaxBodyBytes)}
	}
	root, perr := parseBody(body)
	if perr != nil {
		return Message{}, Errors{*perr}
	}
	if root.kind != kindObject {
		return Message{}, Errors{InvalidRequest(`request body must be a JSON object like {"to": "16315551234", "type": "text", "text": {"body": "hello"}}, got ` + root.describe())}
	}
	var errs []pathError
	fail := func(path string, e Error) { errs = append(errs, pathError{path: path, err: e}) }
	var msg Message
	var text *node
	seen := map[string]bool{}
	for _, m := range root.members {
		if m.lone != "" {
			fail(m.key, badKey(m.key, m.lone))
			continue
		}
		seen[m.key] = true
		if es := unicodeErrors(m.key, m.val); len(es) > 0 {
			for _, e := range es {
				fail(m.key, e)
			}
			continue
		}
		v := m.val
		switch m.key {
		case "recipient_type":
			if v.kind != kindString || v.str != "individual" {
				fail(m.key, InvalidValue(m.key, `must be "individual" (the only kind mcsim sends to)`, v))
			}
		case "type":
			if v.kind != kindString || v.str != "text" {
				fail(m.key, InvalidValue(m.key, `must be "text" (the only message type mcsim simulates)`, v))
			}
		case "to":
			if !digits(v, 1, MaxRecipientDigits) {
				fail(m.key, InvalidValue(m.key, fmt.Sprintf(`must be the recipient's wa_id as a string of 1 to %d digits, without "+" (for example "16315551234")`, MaxRecipientDigits), v))
			} else {
				msg.To = v.str
			}
		case "text":
			if v.kind != kindObject {
				// Its body is then not reported missing: text itself is wrong.
				fail(m.key, InvalidValue(m.key, `must be an object like {"body": "hello"}`, v))
				continue
			}
			text = v
		default:
			fail(m.key, NotRequired(truncate(m.key, maxGot), `unknown field (the body is {"recipient_type", "to", "type", "text": {"body"}})`))
		}
	}
	if !seen["to"] {
		fail("to", MissingParameter("to"))
	}
	if text != nil {
		hasBody := false
		for _, m := range text.members {
			path := joinPath("text", m.key)
			switch {
			case m.lone != "":
				fail(path, badKey(path, m.lone))
			case m.key == "body":
				hasBody = true
				v := m.val
				switch {
				case v.kind != kindString:
					fail(path, InvalidValue(path, fmt.Sprintf("must be a string of 1 to %d characters", MaxMessageBody), v))
				case v.lone != "":
					// unicodeErrors already named it.
				case v.str == "" || utf8.RuneCountInString(v.str) > MaxMessageBody:
					fail(path, Error{
						Status: http.StatusBadRequest, Code: CodeInvalidValue, Title: TitleInvalidValue,
						Details: fmt.Sprintf("%s: must be 1 to %d characters, got %d", path, MaxMessageBody, utf8.RuneCountInString(v.str)),
					})
				default:
					msg.Body = v.str
				}
			default:
				fail(path, NotRequired(truncate(path, maxGot), `unknown field (text is {"body": "…"})`))
			}
		}
		if !hasBody {
			fail("text.body", MissingParameter("text.body"))
		}
	} else if !seen["text"] {
		fail("text.body", MissingParameter("text.body"))
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].path < errs[j].path })
		out := make(Errors, len(errs))
		for i, e := range errs {
			out[i] = e.err
		}
		return Message{}, out
	}
	return msg, nil
}
