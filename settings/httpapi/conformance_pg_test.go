package httpapi_test

import (
	"testing"

	"github.com/mcsim/mcsim/settings/store/storetest"
)

// TestConformancePostgres reruns the API's conformance tests (the wire
// transcripts, PATCH/DELETE rules, auth, providers, health, metrics, store
// failure) with the store in PostgreSQL: the API must answer the same
// byte for byte on either backend. Needs MCSIM_TEST_POSTGRES (see package
// pgtest: skipped without it, failed in CI).
func TestConformancePostgres(t *testing.T) {
	envBackend = storetest.Postgres
	t.Cleanup(func() { envBackend = storetest.Bolt })
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Transcripts", TestTranscripts},
		{"StoreFailure", TestStoreFailure},
		{"GetDefaults", TestGetDefaults},
		{"Patch", TestPatch},
		{"PatchRejected", TestPatchRejected},
		{"DeleteResets", TestDeleteResets},
		{"ConcurrentPatches", TestConcurrentPatches},
		{"Login", TestLogin},
		{"SettingsNeedAToken", TestSettingsNeedAToken},
		{"TokenExpires", TestTokenExpires},
		{"Providers", TestProviders},
		{"BadUnicodeOnEveryBody", TestBadUnicodeOnEveryBody},
		{"Health", TestHealth},
		{"AccountShards", TestAccountShards},
		{"Metrics", TestMetrics},
		{"HealthCarriesTheLease", TestHealthCarriesTheLease},
	} {
		t.Run(tc.name, tc.run)
	}
}
