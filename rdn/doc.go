// Package rdn is µRaiden's wire protocol: everything the two ends of a paid HTTP request, the
// sender's client and the receiver's gateway, must agree on.
//
// It owns the RDN-* header and cookie names and the status flags of a 402 (headers.go), the
// parsing and formatting of their values (amounts, signatures), the identity of a channel
// (ChannelID: sender and open block), the balance-proof and closing-signature hashes with
// their signing and recovery (Balance, Closing, Signature), and the sender's cooperative
// close request (CloseRequest). Each of these is signed in one of two schemes (Scheme): µRaiden's
// legacy construction, or EIP-712 typed data bound to the chain id (typed.go, Domain).
//
// It imports nothing from the project (a test checks it), so both the server's packages
// (authz, admin, ledger, chain) and the client import it without pulling in each other.
package rdn
