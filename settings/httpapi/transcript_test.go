package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestTranscripts replays testdata/*.txt: what a client sends and, byte for
// byte (indented for reading), what it gets back. They pin the wire format
// the CLI and users see. Rewrite after an intended change with
//
//	go test ./settings/httpapi/ -run TestTranscripts -rewrite
//
// and review the diff.
//
// Commands:
//
//	request method=M path=P [auth=token|none|<literal header>]
//	<body, if any>
//	----
//	<status> [Allow: …]
//	<answer>
//
//	advance by=<duration>   moves the service's clock
//
// The token is obtained by one login on first use; random tokens and the
// clock-dependent expiry in a login answer are shown as <token> and
// <expires>.
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e := newEnv(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "advance":
				var by string
				d.ScanArgs(t, "by", &by)
				dur, err := time.ParseDuration(by)
				if err != nil {
					d.Fatalf(t, "bad duration %q: %v", by, err)
				}
				e.clock.Advance(dur)
				return ""
			case "request":
				var method, path string
				d.ScanArgs(t, "method", &method)
				d.ScanArgs(t, "path", &path)
				auth := "token"
				if d.HasArg("auth") {
					d.ScanArgs(t, "auth", &auth)
				}
				switch auth {
				case "token":
					if e.token == "" {
						e.token = e.login()
					}
					auth = e.token
				case "none":
					auth = ""
				}
				var body []byte
				if d.Input != "" {
					body = []byte(d.Input)
				}
				a := e.request(method, path, auth, body)
				return render(e, a)
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
				return ""
			}
		})
	})
}

func render(e *env, a answer) string {
	var out strings.Builder
	fmt.Fprintf(&out, "%d", a.status)
	if allow := a.header.Get("Allow"); allow != "" {
		fmt.Fprintf(&out, " Allow: %s", allow)
	}
	out.WriteString("\n")
	body := a.body
	var login struct {
		Users []struct {
			Token        string `json:"token"`
			ExpiresAfter string `json:"expires_after"`
		} `json:"users"`
	}
	if json.Unmarshal(body, &login) == nil && len(login.Users) == 1 {
		body = bytes.ReplaceAll(body, []byte(login.Users[0].Token), []byte("<token>"))
		body = bytes.ReplaceAll(body, []byte(login.Users[0].ExpiresAfter), []byte("<expires>"))
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, body, "", "  "); err != nil {
		return out.String() + string(body)
	}
	out.Write(ind.Bytes())
	out.WriteString("\n")
	return out.String()
}

// TestStoreFailure: a store that fails gives 500/1014 with a short message;
// the cause goes to the log, not to the client.
func TestStoreFailure(t *testing.T) {
	e := newEnv(t)
	tok := e.login()
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range settingsCalls {
		a := e.request(c.method, c.path, tok, []byte(c.body))
		wantError(t, a, http.StatusInternalServerError, 1014)
		if bytes.Contains(a.body, []byte("store:")) || bytes.Contains(a.body, []byte("closed")) {
			t.Errorf("%s %s: internals leak to the client: %s", c.method, c.path, a.body)
		}
	}
	a := e.request(http.MethodPost, "/v1/users/login", basic("admin", testPassword), nil)
	wantError(t, a, http.StatusInternalServerError, 1014)
	if !strings.Contains(e.logs.String(), `"level":"error"`) {
		t.Errorf("store failures not logged:\n%s", e.logs.String())
	}
}
