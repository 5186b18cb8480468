package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Error is one entry of the API error envelope {"errors":[...],"meta":{...}}.
// Status is the HTTP status the entry asks for; it is not part of the JSON.
type Error struct {
	Status  int    `json:"-"`
	Code    int    `json:"code"`
	Title   string `json:"title"`
	Details string `json:"details"`
}

// The codes and titles of SETTINGS.md "Errors". The seed reuses 1025 for
// several HTTP statuses, so a code alone does not determine the status.
const (
	CodeAccessDenied     = 1005
	CodeNotFound         = 1006
	CodeMissingParameter = 1008
	CodeInvalidValue     = 1009
	CodeNotRequired      = 1010
	CodeInternal         = 1014
	CodeInvalidRequest   = 1025

	TitleAccessDenied     = "Access denied"
	TitleNotFound         = "Resource not found"
	TitleMissingParameter = "Required parameter is missing"
	TitleInvalidValue     = "Parameter value is not valid"
	TitleNotRequired      = "Parameter is not required"
	TitleInternal         = "Internal error"
	TitleInvalidRequest   = "Invalid Request"
)

func (e Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, e.Title, e.Details)
}

// Errors is several errors reported at once (one per bad field).
type Errors []Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Status is the HTTP status of the whole envelope: the status all errors
// share; 400 when they are different 4xx statuses (one status has to be
// chosen and 400 is the generic one); otherwise the first error's. An empty
// Errors is a programming error and reports 500.
func (es Errors) Status() int {
	if len(es) == 0 {
		return http.StatusInternalServerError
	}
	first := es[0].Status
	all4xx := true
	same := true
	for _, e := range es {
		if e.Status != first {
			same = false
		}
		if e.Status < 400 || e.Status > 499 {
			all4xx = false
		}
	}
	switch {
	case same:
		return first
	case all4xx:
		return http.StatusBadRequest
	default:
		return first
	}
}

// InvalidRequest is for a body that is not JSON or has the wrong top-level type.
func InvalidRequest(details string) Error {
	return Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Title: TitleInvalidRequest, Details: details}
}

// InvalidValue is for a value of the wrong type, out of range or not in its
// set. Details reads `field: expected, got <got as compact JSON>`.
func InvalidValue(field, expected string, got any) Error {
	return Error{
		Status:  http.StatusBadRequest,
		Code:    CodeInvalidValue,
		Title:   TitleInvalidValue,
		Details: fmt.Sprintf("%s: %s, got %s", field, expected, renderGot(got)),
	}
}

// NotRequired is for an unknown or read-only field.
func NotRequired(field, why string) Error {
	return Error{Status: http.StatusBadRequest, Code: CodeNotRequired, Title: TitleNotRequired, Details: field + ": " + why}
}

// MissingParameter is for a required field that is absent.
func MissingParameter(field string) Error {
	return Error{Status: http.StatusBadRequest, Code: CodeMissingParameter, Title: TitleMissingParameter, Details: field + ": required parameter is missing"}
}

// AccessDenied is for a missing, bad or expired token, or a bad password.
func AccessDenied(details string) Error {
	return Error{Status: http.StatusUnauthorized, Code: CodeAccessDenied, Title: TitleAccessDenied, Details: details}
}

// NotFound is for an unknown path or provider.
func NotFound(details string) Error {
	return Error{Status: http.StatusNotFound, Code: CodeNotFound, Title: TitleNotFound, Details: details}
}

// MethodNotAllowed is for a known path called with the wrong method.
func MethodNotAllowed(method, path string) Error {
	return Error{
		Status:  http.StatusMethodNotAllowed,
		Code:    CodeInvalidRequest,
		Title:   TitleInvalidRequest,
		Details: fmt.Sprintf("method %s is not allowed on %s", method, path),
	}
}

// TooLarge is for a body over the limit.
func TooLarge(limitBytes int) Error {
	return Error{
		Status:  http.StatusRequestEntityTooLarge,
		Code:    CodeInvalidRequest,
		Title:   TitleInvalidRequest,
		Details: fmt.Sprintf("request body is larger than %d bytes", limitBytes),
	}
}

// Internal is for a store failure.
func Internal(details string) Error {
	return Error{Status: http.StatusInternalServerError, Code: CodeInternal, Title: TitleInternal, Details: details}
}

// maxGot bounds how much of a rejected value is echoed back: a 1 MiB string
// in a body must not become a 1 MiB error message.
const maxGot = 100

// renderGot renders a rejected value as compact JSON (no HTML escaping, so
// URLs with & stay readable), cut to maxGot bytes.
func renderGot(got any) string {
	var s string
	switch g := got.(type) {
	case *node:
		var b bytes.Buffer
		g.render(&b, maxGot+1)
		s = b.String()
	case json.RawMessage:
		var b bytes.Buffer
		if json.Compact(&b, g) != nil {
			s = fmt.Sprintf("%q", string(g))
		} else {
			s = b.String()
		}
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(got); err != nil {
			s = fmt.Sprintf("%v", got)
		} else {
			s = strings.TrimSuffix(b.String(), "\n")
		}
	}
	return truncate(s, maxGot)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
