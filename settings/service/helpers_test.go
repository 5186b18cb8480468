package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// api is a minimal client of the HTTP settings API for these tests.
type api struct {
	base  string
	token string
	hc    *http.Client
}

func newAPI(httpAddr string) *api {
	return &api{base: "http://" + httpAddr, hc: &http.Client{Transport: &http.Transport{}}}
}

func (a *api) close() { a.hc.CloseIdleConnections() }

// login gets a bearer token for the admin account.
func (a *api) login(t *testing.T, password string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.base+"/v1/users/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", password)
	var out struct {
		Users []struct {
			Token string `json:"token"`
		} `json:"users"`
	}
	if code, body, err := a.do(req, &out); err != nil || code != http.StatusOK || len(out.Users) != 1 || out.Users[0].Token == "" {
		t.Fatalf("login: status %d, err %v, body %s", code, err, body)
	}
	a.token = out.Users[0].Token
}

// maxBackoff reads max_callback_backoff_delay_ms with GET.
func (a *api) maxBackoff(t *testing.T) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.base+"/v1/settings/application", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Settings struct {
			Application struct {
				Max *int `json:"max_callback_backoff_delay_ms"`
			} `json:"application"`
		} `json:"settings"`
	}
	code, body, err := a.do(req, &out)
	if err != nil || code != http.StatusOK || out.Settings.Application.Max == nil {
		t.Fatalf("GET settings: status %d, err %v, body %s", code, err, body)
	}
	return *out.Settings.Application.Max
}

// setMaxBackoff PATCHes max_callback_backoff_delay_ms and returns the
// status; err is a transport error (no answer).
func (a *api) setMaxBackoff(v int) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPatch, a.base+"/v1/settings/application",
		bytes.NewReader(fmt.Appendf(nil, `{"max_callback_backoff_delay_ms": %d}`, v)))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return a.do(req, nil)
}

func (a *api) do(req *http.Request, out any) (int, []byte, error) {
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, body, err
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, body, fmt.Errorf("decode answer: %w", err)
		}
	}
	return resp.StatusCode, body, nil
}
