package rdn

// Header names of the µRaiden protocol (docs/protocol.md §3), in their canonical case for
// responses; Envoy hands request headers over lower-cased.
const (
	HeaderGatewayPath      = "RDN-Gateway-Path"
	HeaderReceiverAddress  = "RDN-Receiver-Address"
	HeaderContractAddress  = "RDN-Contract-Address"
	HeaderTokenAddress     = "RDN-Token-Address"
	HeaderPrice            = "RDN-Price"
	HeaderSenderAddress    = "RDN-Sender-Address"
	HeaderSenderBalance    = "RDN-Sender-Balance"
	HeaderBalance          = "RDN-Balance"
	HeaderBalanceSignature = "RDN-Balance-Signature"
	HeaderOpenBlock        = "RDN-Open-Block"
	HeaderPayment          = "RDN-Payment"
	// HeaderProofScheme names the scheme of the proof beside it: in a payment, the one its
	// RDN-Balance-Signature is in (absent means legacy, as every µRaiden 0.2.0 client sends);
	// in a 402, the one of the server's last proof. HeaderProofSchemes, in a 402, lists the
	// schemes the server takes, the preferred first (docs/protocol.md §2.1).
	HeaderProofScheme       = "RDN-Proof-Scheme"
	HeaderProofSchemes      = "RDN-Proof-Schemes"
	FlagInsufficientConfirm = "RDN-Insufficient-Confirmations"
	FlagNonexistingChannel  = "RDN-Nonexisting-Channel"
	FlagInvalidProof        = "RDN-Invalid-Balance-Proof"
	FlagInvalidAmount       = "RDN-Invalid-Amount"
	// FlagInsufficientDeposit is ours: µRaiden answered a plain 402 to a balance above the
	// deposit, leaving the client to guess that it should top up.
	FlagInsufficientDeposit = "RDN-Insufficient-Deposit"
)

// Cookies are the RDN-* names a denial may carry, which the browser paywall mirrors into
// cookies of the same names (path /, SameSite=Lax): the server keeps the browser's cookies
// of these names equal to the last denial's headers, and reads a payment from the cookies
// when a request carries no RDN-Balance-Signature header.
var Cookies = []string{
	HeaderGatewayPath, HeaderReceiverAddress, HeaderContractAddress, HeaderTokenAddress, HeaderPrice,
	HeaderSenderAddress, HeaderSenderBalance, HeaderBalanceSignature, HeaderProofScheme,
	FlagInsufficientConfirm, FlagNonexistingChannel, FlagInvalidProof, FlagInvalidAmount, FlagInsufficientDeposit,
}
