// Package version holds the version of mcsim, reported in the API's "meta"
// object and by `mcsim --version`.
package version

// Version is mcsim's release version.
const Version = "0.1.0"

// APIStatus is reported as meta.api_status on every API answer.
const APIStatus = "stable"
