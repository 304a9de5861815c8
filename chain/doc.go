// Package chain owns uraiden's access to Ethereum:
//
//   - dialing a node and checking it is the chain and the channel contract the
//     configuration names (Dial, with contracts.VerifyContract), the proof schemes its
//     contract takes (ProofSchemes), and deploying the contracts (Deploy);
//   - the Watcher, which follows the contract's events for the receiver and feeds them to
//     the ledger, through reorganizations, and reports when payments must stop;
//   - the Watchtower, which disputes a close requested below the receiver's balance with a
//     cooperativeClose it owns until mined (nonce, fees under a cap, bumps, a deadline);
//   - the Receiver, which sends the receiver's own cooperative closes and withdrawals, and
//     the batch policy that picks their channels (PlanClose, PlanWithdraw).
//
// Each of the three talks to the node through the small interface of what it calls
// (WatcherBackend, WatchtowerBackend, ReceiverBackend), which *ethclient.Client and
// go-ethereum's simulated client satisfy. The Receiver and the Watchtower sign and pay
// from an Account, whose key never prints.
//
// Every transaction that carries a balance proof goes through the contract function of the
// proof's scheme (cooperativeCloseTyped and withdrawTyped for EIP-712 proofs), with the
// receiver's closing signature in that scheme. Balance-proof hashing and signatures live in
// the protocol package rdn; the embedded
// development chain in the subpackage devchain.
package chain
