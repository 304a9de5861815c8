// Package chain owns uraiden's access to Ethereum: dialing a node and checking it is the
// chain and the channel contract the configuration names, deploying the contracts, and
// (later) following the contract's events and sending the receiver's transactions.
//
// Balance-proof hashing and signatures live in the protocol package rdn; the embedded
// development chain in the subpackage devchain.
package chain
