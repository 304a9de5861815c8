// Package paywall is the browser face of a 402: the HTML page uraiden answers instead of JSON
// when a priced request prefers text/html, and the script and style that page loads from the
// admin server under the gateway path (<gateway_path>/paywall/…), so that it works behind
// Envoy with one route.
//
// The page lets a person pay with any EIP-1193 wallet (window.ethereum): open a channel, top
// it up, sign the next balance with the legacy eth_signTypedData µRaiden used (docs/protocol.md
// §2), store the proof in the RDN-* cookies the server reads, and close the channel. The
// script is src/*.js, which takes the protocol, the wallet's signatures and the channel
// transactions from the JavaScript client (clients/js/src), bundled with viem by esbuild
// into dist/; rebuild it with `npm run build:paywall` after changing either (a test checks
// the committed bundle is fresh).
package paywall
