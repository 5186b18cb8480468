// Package settings is the pure core of the settings service: the schema of
// the application settings document (SETTINGS.md "Fields"), its defaults,
// validation, the deep-merge PATCH, media providers, the API error catalogue
// and restart-required tracking.
//
// Nothing here does I/O, keeps time or holds state: the store, the HTTP API
// and the gRPC service (subpackages) call these functions so that every rule
// of the contract lives in one place and can be tested (and fuzzed) without a
// server. The schema table in schema.go is that place.
package settings
