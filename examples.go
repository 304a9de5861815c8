// Package uraiden holds what the repository's root ships inside the binary: the example
// price table, so that `uraiden serve` and `uraiden demo` on the embedded dev chain work
// from any folder (go install, a bare binary). The configuration needs no such copy: its
// defaults are config.Default, which config.yaml documents.
package uraiden

import _ "embed"

// ExamplePrices is prices.yaml as built: the dev chain's price table when no file is there.
//
//go:embed prices.yaml
var ExamplePrices []byte
