// Package client is the HTTP client of the settings service that the mcsim
// CLI uses: it logs in as admin on first use, keeps the bearer token, logs in
// again once when the token is refused, and hands API errors back with the
// service's error envelope verbatim so the CLI can print it as is.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Paths of the settings API.
const (
	LoginPath       = "/v1/users/login"
	ApplicationPath = "/v1/settings/application"
)

// maxAnswerBytes bounds what is read from the service: a settings answer is
// a few KiB, and a misdirected URL must not make the CLI buffer a download.
const maxAnswerBytes = 16 << 20

// defaultTimeout applies when New is given no http.Client; calls also honour
// their context.
const defaultTimeout = 30 * time.Second

// APIError is an answer of the service with a non-2xx status.
type APIError struct {
	Status int
	// Body is the error envelope exactly as the service sent it.
	Body []byte
}

// Error summarises the envelope: the status and each error's code and
// details. The CLI prints Body itself; this is for logs and wrapping.
func (e *APIError) Error() string {
	var env struct {
		Errors []struct {
			Code    int    `json:"code"`
			Title   string `json:"title"`
			Details string `json:"details"`
		} `json:"errors"`
	}
	if json.Unmarshal(e.Body, &env) != nil || len(env.Errors) == 0 {
		// Not an envelope (a proxy's HTML page, say): show its start only.
		return fmt.Sprintf("settings API: HTTP %d: %.200q", e.Status, bytes.TrimSpace(e.Body))
	}
	parts := make([]string, len(env.Errors))
	for i, x := range env.Errors {
		parts[i] = fmt.Sprintf("%d %s: %s", x.Code, x.Title, x.Details)
	}
	return fmt.Sprintf("settings API: HTTP %d: %s", e.Status, strings.Join(parts, "; "))
}

// Client talks to one settings service. It is safe for concurrent use.
type Client struct {
	base     string
	password string
	hc       *http.Client

	mu    sync.Mutex
	token string // "" until logged in
}

// New returns a client of the service at baseURL (e.g.
// "http://127.0.0.1:8080"; a bare "host:port" means http://), logging in as
// admin with password. A nil hc gets a client with a 30 s timeout.
func New(baseURL, password string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), password: password, hc: hc}
}

// Login obtains a fresh token, replacing any held one.
func (c *Client) Login(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+LoginPath, nil)
	if err != nil {
		return fmt.Errorf("settings API: building the login request for %s: %w", c.base+LoginPath, err)
	}
	req.SetBasicAuth("admin", c.password)
	status, body, err := c.send(req)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return &APIError{Status: status, Body: body}
	}
	var ans struct {
		Users []struct {
			Token string `json:"token"`
		} `json:"users"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || len(ans.Users) == 0 || ans.Users[0].Token == "" {
		return fmt.Errorf("settings API: login at %s answered without a token: %.200q", c.base+LoginPath, body)
	}
	c.mu.Lock()
	c.token = ans.Users[0].Token
	c.mu.Unlock()
	return nil
}

// Get returns GET /v1/settings/application's body.
func (c *Client) Get(ctx context.Context) ([]byte, error) {
	return c.Do(ctx, http.MethodGet, ApplicationPath, nil)
}

// Patch sends body (a JSON object of the fields to set) as a PATCH.
func (c *Client) Patch(ctx context.Context, body []byte) ([]byte, error) {
	return c.Do(ctx, http.MethodPatch, ApplicationPath, body)
}

// Reset resets every setting to its default (DELETE).
func (c *Client) Reset(ctx context.Context) ([]byte, error) {
	return c.Do(ctx, http.MethodDelete, ApplicationPath, nil)
}

// Do calls method path with body (nil for none) and returns the answer's
// body. It logs in first if no token is held, and once more if the token is
// refused (401: expired, or the service lost its tokens), then retries the
// call once. A non-2xx answer is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	token, err := c.currentToken(ctx)
	if err != nil {
		return nil, err
	}
	status, ans, err := c.call(ctx, method, path, body, token)
	if err != nil {
		return nil, err
	}
	if status == http.StatusUnauthorized {
		if err := c.Login(ctx); err != nil {
			return nil, err
		}
		if token, err = c.currentToken(ctx); err != nil {
			return nil, err
		}
		if status, ans, err = c.call(ctx, method, path, body, token); err != nil {
			return nil, err
		}
	}
	if status < 200 || status > 299 {
		return nil, &APIError{Status: status, Body: ans}
	}
	return ans, nil
}

// currentToken returns the held token, logging in if there is none.
func (c *Client) currentToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	t := c.token
	c.mu.Unlock()
	if t != "" {
		return t, nil
	}
	if err := c.Login(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, nil
}

func (c *Client) call(ctx context.Context, method, path string, body []byte, token string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	target := c.base + path
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("settings API: building the request %s %s: %w", method, target, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return c.send(req)
}

// send performs req and reads the whole answer; a transport failure names
// the URL that could not be reached.
func (c *Client) send(req *http.Request) (int, []byte, error) {
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error repeats the method and URL; keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("settings API: cannot reach %s: %w", req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("settings API: reading the answer of %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	return resp.StatusCode, b, nil
}
