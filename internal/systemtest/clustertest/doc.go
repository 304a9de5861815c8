// Package clustertest holds process-level tests of uraiden's replicated mode: three
// `uraiden serve` processes (the binary built once) share a ledger on a real three-member
// etcd cluster, run in the test process on loopback, and follow one dev chain serving
// JSON-RPC on loopback. Paid Checks go over gRPC to all replicas, as Envoy spreads them over
// a cluster of endpoints, while the tests take etcd members away (the leader, then the
// quorum), SIGKILL replicas (the one running the chain side among them, while a cheating
// close waits to be disputed) and cut a replica off from etcd behind a TCP relay. The money
// rules are checked from outside: every OK is stored in etcd, no balance is accepted twice,
// a replica without a quorum answers 503 and never OK, and another replica disputes a
// cheating close before it may settle.
//
// The package has no non-test code besides this comment.
package clustertest
