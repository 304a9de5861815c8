// Package authz is uraiden's Envoy external-authorization service: it turns an
// envoy.service.auth.v3 CheckRequest into a decision (free, quote, paid, or one of the
// protocol's failures) and the decision into a CheckResponse.
//
// Paths are priced as the upstream resolves them, whatever the proxy in front did or did
// not normalize: the gRPC CheckRequest's path, the HTTP mode's path after /envoy and a
// forward-auth proxy's X-Forwarded-Uri all go through pricing.CanonicalPath.
//
// It asks package pricing what a request costs and package ledger to accept the payment,
// and verifies balance proofs against the server's own receiver and contract addresses. It
// answers OK only for a payment the ledger has made durable, and never a 402 while the chain
// backend cannot protect the receiver (502 instead: a client must not keep paying into a
// server that cannot dispute a cheating close).
//
// Statuses (the order of the checks is in docs/protocol.md §4):
//
//	200  free route, payment accepted, or a retry of a paid request served with its payment
//	     (docs/protocol.md §8)
//	400  a path that cannot be priced unambiguously (pricing.CanonicalPath): one that does
//	     not resolve (a ".." above the root, a bad escape or an encoded %, a control character,
//	     a raw '#', no leading '/'), or that servers read as paths of different prices
//	     (%2F, '\' and %5C, ';' parameters, a trailing dot segment or encoded slash); an
//	     Idempotency-Key that is empty, too long or not printable ASCII
//	402  no proof (a quote); unconfirmed channel; unknown or closed channel; proof not signed
//	     by the sender; amount wrong or proof already used; balance above the confirmed deposit
//	409  malformed RDN-* value, naming the header; a CheckRequest without HTTP attributes
//	500  the price of the route cannot be computed
//	502  the chain backend is down, or the receiver cannot pay for a dispute
//	503  the ledger cannot store the payment
//
// A 402 or 409 for a browser (an Accept that ranks text/html above application/json) is
// the HTML paywall of package paywall, with the RDN-* headers mirrored into cookies; every
// other client gets JSON.
package authz
