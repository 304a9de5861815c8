// Package admin is uraiden's HTTP server for people and probes: µRaiden's /api/1 channel
// API (statistics, channel listings, the cooperative close), health and readiness probes,
// Prometheus metrics and, when enabled, pprof.
//
// It reads the ledger and asks it to record a cooperative close; it signs nothing itself
// but asks the signer it is given. It never changes a channel otherwise.
//
// Who may call what:
//
//	public    /healthz, /readyz                          probes carry no credentials
//	public    GET  <prefix>/channels/<sender>/<block>    what a client that lost its state
//	                                                     needs to close: balance, deposit,
//	                                                     state; never a signature
//	sender    DELETE <prefix>/channels/<sender>/<block>  authenticated by the sender's
//	                                                     balance proof for the balance and
//	                                                     its signed close request (the proof
//	                                                     alone with admin.legacy_close)
//	operator  everything else, and the signatures in the single-channel GET
//
// Operators present admin.token as "Authorization: Bearer <token>"; it is compared in
// constant time. Without a configured token the operator endpoints are refused, on loopback
// too: behind Envoy every request arrives from loopback, so the address proves nothing.
package admin
