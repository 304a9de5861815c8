// Package discovery is the format of uraiden's discovery document: what a server sells and
// how to pay it, published by the admin server (at <gateway path>/prices and
// /.well-known/uraiden) for programs to read before their first request, instead of
// learning it one 402 at a time. The admin server writes it from the live price table and
// the chain settings; clients read it with these types. Schema is its JSON Schema.
//
// The package holds the format only, so that a client reads it without the server's
// dependencies (docs/discovery.md describes every field).
package discovery

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// Version is the format's version, the document's "version". A change that a reader of the
// previous version would misread (a field removed, renamed or given another meaning)
// increments it; fields may be added within a version, and readers ignore those they do
// not know.
const Version = 1

// Paths of the document: PricesPath below the gateway path (/api/1/prices by default) and
// WellKnownPath at the server's root (RFC 8615), where a program that knows only a host
// finds it.
const (
	PricesPath    = "/prices"
	WellKnownPath = "/.well-known/uraiden"
	// SchemaPath, below the gateway path, serves Schema.
	SchemaPath = "/prices.schema.json"
)

// Schema is the document's JSON Schema (draft 2020-12); the OpenAPI document of the admin
// API refers to it.
//
//go:embed schema.json
var Schema []byte

// Document is the discovery document.
type Document struct {
	Version int `json:"version"`
	// GatewayPath is where the channel API is, as RDN-Gateway-Path says.
	GatewayPath     string  `json:"gateway_path"`
	ChainID         uint64  `json:"chain_id"`
	ReceiverAddress Address `json:"receiver_address"`
	ContractAddress Address `json:"contract_address"`
	Token           Token   `json:"token"`
	// ProofSchemes are the balance-proof schemes taken, preferred first (RDN-Proof-Schemes).
	ProofSchemes []string `json:"proof_schemes"`
	// EIP712Domain is the typed scheme's domain, when eip712 is offered.
	EIP712Domain *EIP712Domain `json:"eip712_domain,omitempty"`
	// Confirmations are the blocks after a channel's creation or top-up before its deposit
	// takes payments.
	Confirmations uint64 `json:"confirmations"`
	// ChallengePeriod is the contract's, in blocks: how long after a sender's close request
	// the receiver may still answer it.
	ChallengePeriod uint32 `json:"challenge_period"`
	// DefaultPrice prices what no rule matches.
	DefaultPrice Price  `json:"default_price"`
	Rules        []Rule `json:"rules"`
}

// Token is the channel contract's token.
type Token struct {
	Address Address `json:"address"`
	// Symbol is the token's ERC20 symbol(), "" when it has none.
	Symbol string `json:"symbol,omitempty"`
	// Decimals is the token's ERC20 decimals(), nil when it has none; then no price is
	// stated in tokens.
	Decimals *uint8 `json:"decimals,omitempty"`
}

// EIP712Domain is the typed scheme's domain in EIP-712's field names, as eth_signTypedData_v4
// takes it (as in a 402's body).
type EIP712Domain struct {
	Name              string  `json:"name"`
	Version           string  `json:"version"`
	ChainID           uint64  `json:"chainId"`
	VerifyingContract Address `json:"verifyingContract"`
}

// Price is a price in base units, and in whole tokens when the token's decimals are known.
type Price struct {
	Base Amount `json:"base"`
	// Tokens is Base in whole tokens, an exact decimal ("0.005"); "" without decimals.
	Tokens string `json:"tokens,omitempty"`
}

// Rule is one rule of the price table, in the order rules are tried: the first rule that
// matches a request prices it.
type Rule struct {
	Name string `json:"name"`
	// Methods are the methods the rule prices, upper-case; empty: any method.
	Methods []string `json:"methods"`
	// Host is an RE2 pattern the whole Host must match; "" matches any host.
	Host string `json:"host,omitempty"`
	// Path is an RE2 pattern the whole path must match, without the query string and in
	// canonical form (docs/serving.md, Paths).
	Path string `json:"path"`
	// Price is the rule's price; nil when Computed.
	Price *Price `json:"price,omitempty"`
	// Computed: the price is computed per request (from the path, query or headers); the
	// 402 states it.
	Computed bool `json:"computed"`
}

// Address is an Ethereum address, EIP-55 checksummed in JSON.
type Address common.Address

// MarshalText writes the checksummed hex form.
func (a Address) MarshalText() ([]byte, error) { return []byte(common.Address(a).Hex()), nil }

// UnmarshalText reads 0x and 40 hex digits, in any case.
func (a *Address) UnmarshalText(text []byte) error {
	s := string(text)
	if !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
		return fmt.Errorf("not a 0x-prefixed hex address: %q", s)
	}
	*a = Address(common.HexToAddress(s))
	return nil
}

// Hex is the checksummed hex form.
func (a Address) Hex() string { return common.Address(a).Hex() }

// Amount is a count of token base units, a decimal string in JSON (a JavaScript number
// cannot hold one exactly above 2^53).
type Amount struct{ *big.Int }

// MarshalJSON writes the decimal string; it shadows big.Int's, which writes a number.
func (a Amount) MarshalJSON() ([]byte, error) {
	if a.Int == nil {
		return nil, errors.New("discovery: nil amount")
	}
	return json.Marshal(a.String())
}

// UnmarshalJSON reads a decimal string of a whole number in 0 … 2^192-1, without sign or
// leading zeros.
func (a *Amount) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("an amount is a decimal string, got %s", data)
	}
	v, err := rdn.ParseAmount(s)
	if err != nil || s != v.String() {
		return fmt.Errorf("an amount is a decimal integer in 0 … 2^192-1 without sign or leading zeros, got %q", s)
	}
	a.Int = v
	return nil
}

// FormatTokens writes base units as whole tokens of a token with the given decimals: an
// exact decimal without trailing zeros ("0.005", "2").
func FormatTokens(base *big.Int, decimals uint8) string {
	digits := base.String()
	if decimals == 0 {
		return digits
	}
	d := int(decimals)
	if len(digits) <= d {
		digits = strings.Repeat("0", d-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-d], strings.TrimRight(digits[len(digits)-d:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}
