// Package httpapi is the HTTP side of the settings service: the
// /v1/users/login and /v1/settings/application endpoints of SETTINGS.md,
// served from a settings/store.Store, plus the cluster endpoints of the
// local cluster: GET /v1/health (from Config.Health), GET and POST
// /v1/account/shards, and GET /metrics (Prometheus text, no token); and the
// front door, POST /v1/messages (TRAFFIC.md), which routes each message to
// its shard's owner as the real Webapp does. Every settings process routes
// on its own, from the shard map in its store.
//
// The rules of the settings document (schema, validation, merge, the error
// catalogue) live in package settings; this package only turns requests into
// calls on settings and the store and their results into JSON answers. Every
// answer, success or error, is JSON with a "meta" object; every error is the
// {"errors":[...],"meta":{...}} envelope, including the router's own 404 and
// 405 answers, which net/http would otherwise write as plain text.
//
// Decisions where SETTINGS.md is silent:
//   - Routing comes before authentication: an unknown path is 404 and a wrong
//     method 405 (with Allow) even without a token.
//   - An unclean path ("/v1//x", "/v1/../x") is 404, not the mux's redirect.
//   - The login body is ignored; only Basic auth counts. Tokens are 32
//     random bytes, base64url without padding; only their SHA-256 is stored.
//   - DELETE of a provider that is not stored is 404/1006, as SETTINGS.md
//     says ("404 if absent"); when the name also breaks the naming rule,
//     the details say so.
//   - Every 401 carries WWW-Authenticate (RFC 9110 requires it): Basic on
//     /v1/users/login, Bearer elsewhere.
//   - GET lists providers sorted by name.
//   - The request Content-Type is not checked: the body is judged on what it
//     holds.
//   - GET /v1/health without a Config.Health answers {"health": {}}; a
//     failing source is 500/1014. Entries always carry "shards" and
//     "pending_restart" as arrays, never null.
//   - POST /v1/account/shards takes the real API's body ("cc" and
//     "phone_number" must together be the wa_id; "pin" and "cert" are not
//     checked) or mcsim's short {"shards": N}; see
//     settings.ParseShardsRequest. A change is 201 Created, as in the real
//     API; setting the current count is a no-op 200.
//   - /metrics needs no token: scrapers do not log in, and it holds counts
//     and master ids only. Request metrics are labelled by route pattern
//     ("none" for misses) so unknown paths cannot grow the label set.
//   - POST /v1/messages (see settings.ParseMessageRequest for the body)
//     routes by the stored shard map alone: shard.Of(to, map.shards), the
//     owner's coreapp_id and coreapp_address as the map names them, and
//     the map's shard count in the Send, so a coreapp serving the old count
//     during a live shard change refuses rather than sends. Gossip may know
//     a newer address; the map is what every settings process agrees on.
//   - Every way of not reaching a serving owner is 503/1018 Not Primary
//     Coreapp naming the shard, since the client's remedy is the same, to
//     retry: no map or no owner, no address, the owner's
//     FAILED_PRECONDITION (known not sent), and also UNAVAILABLE or
//     DEADLINE_EXCEEDED, whose outcome is unknown (the message may have
//     reached the gateway, and a retry gets a new id). The metric
//     mcsim_frontdoor_messages_total{outcome} keeps "refused", "no_owner"
//     and "unknown" apart. Any other gRPC error is 500/1014.
//   - Each Send is bounded by Config.SendTimeout (5 s) and the client's own
//     request context. Connections to coreapps are pooled per address
//     (Config.Coreapps), through the service's fault layer, so scenario
//     faults apply to the front door's links too.
//   - Message ids are "gBEG" and 128 random bits in unpadded base32 (30
//     characters), from Config.MessageIDs (crypto/rand by default): unique
//     per cluster without coordination between settings processes. The id
//     is made only when the message is routed, so a refused body costs
//     none.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/internal/version"
	"github.com/mcsim/mcsim/settings"
	"github.com/mcsim/mcsim/settings/store"
)

// MaxBodyBytes is the largest request body accepted (SETTINGS.md: over 1 MiB
// → 413/1025). A settings document is a few hundred bytes; the limit only
// keeps a careless or hostile client from making the server buffer gigabytes.
const MaxBodyBytes = 1 << 20

// TokenTTL is how long a bearer token from /v1/users/login is valid.
const TokenTTL = 7 * 24 * time.Hour

// Config is what New needs.
type Config struct {
	// Store is the open settings store; required.
	Store store.Backend
	// WAID is the wa_id GET shows (read-only, from the service's
	// configuration).
	WAID string
	// AdminPassword is the password of the admin account; required. Choosing
	// it (flag, environment, the loopback-only default) is the caller's job.
	AdminPassword string
	// Logger receives the access log (one line per request) and the details
	// of internal errors, which are never sent to clients.
	Logger zerolog.Logger
	// Now is the clock for token issue and expiry; nil means time.Now.
	Now func() time.Time
	// Health answers GET /v1/health: the cluster's nodes keyed
	// "<grpc host>:<node-id>", as they are at the moment of the call. Nil
	// means the service knows no cluster: GET /v1/health answers an empty
	// "health" object. An error becomes a 500 envelope (details logged).
	Health func(ctx context.Context) (map[string]HealthEntry, error)
	// Metrics is the registry New registers the HTTP metrics in (requests
	// by route and status, durations, settings revision, shard count, lease
	// holder and epoch) and that GET /metrics serves, with whatever else the
	// caller registered in it (the service adds its Watch stream gauge).
	// Nil means a fresh private registry, never prometheus' global one.
	Metrics *prometheus.Registry
	// Coreapps is the connection pool POST /v1/messages sends on; the
	// caller closes it after the HTTP server stopped. Nil means a pool of
	// plain connections (no fault layer) that lives as long as the process:
	// for tests and tools that never send messages.
	Coreapps *Coreapps
	// SendTimeout bounds each Send to a shard's owner; 0 means
	// DefaultSendTimeout.
	SendTimeout time.Duration
	// MessageIDs is the random source of message ids (messageIDBytes per
	// id); nil means crypto/rand. Ids must be unique per cluster with
	// several settings processes, so each server needs its own
	// unpredictable source; a seeded one is for tests.
	MessageIDs io.Reader
}

// server holds the handlers' shared dependencies.
type server struct {
	store    store.Backend
	waID     string
	password string
	log      zerolog.Logger
	now      func() time.Time
	health   func(context.Context) (map[string]HealthEntry, error)
	metrics  *metrics
	mux      *http.ServeMux
	// The front door's.
	coreapps    *Coreapps
	sendTimeout time.Duration
	ids         *messageIDs
}

// New returns the handler serving the settings HTTP API.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("httpapi: Config.Store is required")
	}
	if cfg.AdminPassword == "" {
		return nil, errors.New("httpapi: Config.AdminPassword is required (an empty password would let anyone log in)")
	}
	s := &server{
		store:    cfg.Store,
		waID:     cfg.WAID,
		password: cfg.AdminPassword,
		log:      cfg.Logger,
		now:      cfg.Now,
		health:   cfg.Health,
		mux:      http.NewServeMux(),

		coreapps:    cfg.Coreapps,
		sendTimeout: cfg.SendTimeout,
		ids:         &messageIDs{src: cfg.MessageIDs},
	}
	if cfg.SendTimeout < 0 {
		return nil, fmt.Errorf("httpapi: Config.SendTimeout is %v; want 0 (the default) or more", cfg.SendTimeout)
	}
	if s.coreapps == nil {
		s.coreapps = NewCoreapps()
	}
	if s.sendTimeout == 0 {
		s.sendTimeout = DefaultSendTimeout
	}
	if s.ids.src == nil {
		s.ids.src = rand.Reader
	}
	if s.now == nil {
		s.now = time.Now
	}
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, cfg.Store, s.now)
	if err != nil {
		return nil, fmt.Errorf("httpapi: registering metrics: %w", err)
	}
	s.metrics = m
	s.mux.HandleFunc("POST /v1/users/login", s.login)
	s.mux.Handle("GET /v1/settings/application", s.authed(s.getApplication))
	s.mux.Handle("PATCH /v1/settings/application", s.authed(s.patchApplication))
	s.mux.Handle("DELETE /v1/settings/application", s.authed(s.resetApplication))
	s.mux.Handle("GET /v1/settings/application/media/providers", s.authed(s.getProviders))
	s.mux.Handle("POST /v1/settings/application/media/providers", s.authed(s.postProviders))
	s.mux.Handle("DELETE /v1/settings/application/media/providers/{name}", s.authed(s.deleteProvider))
	s.mux.Handle("GET /v1/health", s.authed(s.getHealth))
	s.mux.Handle("GET /v1/account/shards", s.authed(s.getShards))
	s.mux.Handle("POST /v1/account/shards", s.authed(s.postShards))
	s.mux.Handle("POST /v1/messages", s.authed(s.postMessage))
	// Unauthenticated, as Prometheus scrapers expect: it holds counts and
	// node ids, no settings and no secrets.
	s.mux.Handle("GET /metrics", s.metrics.handler)
	return s, nil
}

// ServeHTTP routes the request, answering the router's misses (unknown path,
// wrong method) with the error envelope, and writes the access log line.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w}
	route := routeNone
	defer func() {
		// A bug in a handler must not leave the client with a torn
		// connection and no envelope, nor go unlogged.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error().Str("panic", fmt.Sprint(v)).Str("method", r.Method).Str("path", r.URL.Path).Msg("handler panicked")
			if rec.code == 0 {
				s.writeErrors(rec, settings.Errors{settings.Internal("the request failed")})
			}
		}
		// The path only: a query string may carry secrets, and headers (the
		// token, the Basic password) are never logged.
		s.log.Info().
			Str("method", r.Method).
			Str("path", r.URL.Path).
			Int("status", rec.status()).
			Float64("duration_ms", float64(time.Since(start).Microseconds())/1000).
			Str("remote_addr", r.RemoteAddr).
			Msg("http request")
		s.metrics.observe(route, rec.status(), time.Since(start))
	}()
	route = s.route(rec, r)
}

// route serves the request and returns the pattern that matched, or
// routeNone.
func (s *server) route(w http.ResponseWriter, r *http.Request) string {
	// The mux answers an unclean path ("/v1//x", "/v1/./x") with an HTML
	// redirect; a client of this API sends clean paths, so it is a 404 with
	// the envelope instead.
	if r.Method != http.MethodConnect && !isClean(r.URL.EscapedPath()) {
		s.writeErrors(w, settings.Errors{settings.NotFound(fmt.Sprintf("no resource at %s", r.URL.Path))})
		return routeNone
	}
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		// Served through the mux itself (not the returned handler), which
		// is what fills r.PathValue.
		s.mux.ServeHTTP(w, r)
		return pattern
	}
	// No pattern matched. Ask the mux's own miss handler what it would have
	// said (it alone knows the Allow set for a wrong method) without letting
	// it write its plain-text body.
	probe := &probeWriter{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.code == http.StatusMethodNotAllowed {
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		s.writeErrors(w, settings.Errors{settings.MethodNotAllowed(r.Method, r.URL.Path)})
		return routeNone
	}
	s.writeErrors(w, settings.Errors{settings.NotFound(fmt.Sprintf("no resource at %s", r.URL.Path))})
	return routeNone
}

// isClean reports whether p is already in the form the mux matches against
// (no "//", ".", ".." elements), trailing slash allowed.
func isClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// meta is the "meta" object of every answer.
type meta struct {
	APIStatus string `json:"api_status"`
	Version   string `json:"version"`
}

func newMeta() meta { return meta{APIStatus: version.APIStatus, Version: version.Version} }

// writeJSON writes v with its status. v is always a value this package built,
// so a marshal failure is a bug; it still gets an envelope, not a panic.
func (s *server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		s.log.Error().Err(err).Msg("encoding an answer")
		status = http.StatusInternalServerError
		b, _ = marshal(envelope{Errors: settings.Errors{settings.Internal("could not encode the answer")}, Meta: newMeta()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal is json.Marshal without HTML escaping, newline-terminated.
// json.Marshal would re-escape even a json.RawMessage, so a webhook URL
// "…?a=1&b=2" would come back as "…?a=1\u0026b=2", and the same in the "got"
// of error details, which package settings deliberately keeps readable.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// envelope is the error answer.
type envelope struct {
	Errors settings.Errors `json:"errors"`
	Meta   meta            `json:"meta"`
}

func (s *server) writeErrors(w http.ResponseWriter, es settings.Errors) {
	s.writeJSON(w, es.Status(), envelope{Errors: es, Meta: newMeta()})
}

// writeMeta is the success answer that carries nothing but meta.
func (s *server) writeMeta(w http.ResponseWriter) {
	s.writeJSON(w, http.StatusOK, struct {
		Meta meta `json:"meta"`
	}{newMeta()})
}

// writeInternal logs a store (or decode) failure in full and tells the client
// only what failed, so file paths and bbolt internals do not leak.
func (s *server) writeInternal(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg(what)
	s.writeErrors(w, settings.Errors{settings.Internal(what)})
}

// asErrors returns the settings errors inside err, if it is one.
func asErrors(err error) (settings.Errors, bool) {
	var es settings.Errors
	if errors.As(err, &es) && len(es) > 0 {
		return es, true
	}
	var e settings.Error
	if errors.As(err, &e) {
		return settings.Errors{e}, true
	}
	return nil, false
}

// statusWriter remembers the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// probeWriter captures what the mux's miss handler would answer.
type probeWriter struct {
	header http.Header
	code   int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}
func (p *probeWriter) Write(b []byte) (int, error) {
	if p.code == 0 {
		p.code = http.StatusOK
	}
	return len(b), nil
}
