// Package jsclient is uraiden's JavaScript client library (src/: ES modules on viem, for
// Node and browsers; docs/client-js.md), which the browser paywall is built from. Its Go
// side is only the test that runs the library's node tests (test/) against uraiden on the
// dev chain, so that `go test ./...` runs them.
package jsclient
