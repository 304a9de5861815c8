// Package crashtest holds process-level tests of `uraiden serve`: the binary is built once
// and run as a separate OS process against an Ethereum node (the embedded dev chain, serving
// JSON-RPC on a loopback port from the test process, so that it outlives the service), with
// a persistent ledger directory. The tests kill it with SIGKILL under paid load, break its
// data directory and price table, and start it where it must refuse to run, and check the
// money rules from outside: every OK is in the ledger, nothing is in the ledger that was not
// signed, and a ledger that cannot be written answers no OK.
//
// The package has no non-test code besides this comment.
package crashtest
