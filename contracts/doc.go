// Package contracts holds uraiden's Solidity contracts, their compiled artifacts and the
// go-ethereum (abigen v2) bindings for them:
//
//   - RaidenMicroTransferChannels: the payment-channel contract, interface-compatible with
//     µRaiden 0.2.0, plus functions that take EIP-712 (eth_signTypedData_v4) proofs bound to
//     the chain id (TypedMethods);
//   - UraidenTestToken: an ERC20 + ERC223 token with a faucet, for dev and test networks;
//   - TrustedDelegate: an example trusted contract that opens channels on a sender's behalf.
//
// node.go reads what the sender and the receiver both need from a node: whether an address
// holds a µRaiden channel contract (VerifyContract), token balances, transaction receipts.
//
// The sources are in src/, the artifacts in build/; bindings.go is generated. Rebuild all of
// them with `go generate ./contracts/...`; a test fails when the committed files differ from a
// fresh build.
package contracts

//go:generate go run ./gen
