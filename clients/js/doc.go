// Package jsclient is uraiden's JavaScript client library (src/: ES modules on viem, for
// Node and browsers; docs/client-js.md), which the browser paywall is built from. Its Go
// side is only tests, so that `go test ./...` runs them: the library's node tests (test/)
// against uraiden on the dev chain, its types, and its RE2 translation against Go's regexp.
package jsclient
