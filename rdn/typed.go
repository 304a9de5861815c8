// The typed proof scheme: balance proofs, closing signatures and close requests as EIP-712
// (eth_signTypedData_v4) typed data, bound to the chain id (docs/protocol.md §2.1).
//
// The legacy scheme is eth_signTypedData v1, which wallets are dropping, and it binds the
// contract but not the chain: a proof verifies on any chain where a contract sits at the
// same address. The typed scheme signs
//
//	digest = keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message))
//
// under the domain EIP712Domain(string name,string version,uint256 chainId,address
// verifyingContract) = ("uraiden", "1", chain id, channel contract), with the same signature
// rules as the legacy scheme (65 bytes, v in {0, 1, 27, 28}, low s).

package rdn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Scheme is how a balance proof, closing signature or close request is hashed. The zero
// value is the legacy scheme, so a proof that names no scheme (every µRaiden 0.2.0 client,
// every ledger written before the typed scheme) is legacy.
type Scheme uint8

const (
	// SchemeLegacy is µRaiden 0.2.0's construction: legacy eth_signTypedData (v1) for proofs,
	// an EIP-191 personal message for the close request. Wire name "legacy".
	SchemeLegacy Scheme = iota
	// SchemeTyped is EIP-712 (eth_signTypedData_v4) under the uraiden domain of one chain
	// and contract. Wire name "eip712".
	SchemeTyped
)

// Wire names of the schemes, as headers, JSON bodies and the ledger carry them.
const (
	SchemeLegacyName = "legacy"
	SchemeTypedName  = "eip712"
)

// ErrScheme is returned for a scheme name or value that is neither legacy nor typed.
var ErrScheme = errors.New(`proof scheme must be "legacy" or "eip712"`)

// ErrChainID is returned when a typed hash is asked for chain id 0: no chain has it, and a
// zero is what a caller that forgot to set the chain id passes.
var ErrChainID = errors.New("a typed proof needs the chain id (0 is none)")

// Schemes lists every scheme, legacy first.
var Schemes = []Scheme{SchemeLegacy, SchemeTyped}

// String returns the wire name, or "scheme(N)" for a value that is none.
func (s Scheme) String() string {
	switch s {
	case SchemeLegacy:
		return SchemeLegacyName
	case SchemeTyped:
		return SchemeTypedName
	}
	return fmt.Sprintf("scheme(%d)", uint8(s))
}

// Valid reports whether s is one of the defined schemes.
func (s Scheme) Valid() bool { return s == SchemeLegacy || s == SchemeTyped }

// ParseScheme returns the scheme of a wire name. Names are matched exactly (lower case):
// a name is an identifier, not text to be forgiving about.
func ParseScheme(name string) (Scheme, error) {
	switch name {
	case SchemeLegacyName:
		return SchemeLegacy, nil
	case SchemeTypedName:
		return SchemeTyped, nil
	}
	return 0, fmt.Errorf("%w, got %q", ErrScheme, name)
}

// MarshalText implements encoding.TextMarshaler with the wire name.
func (s Scheme) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w, got %d", ErrScheme, uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with the wire name.
func (s *Scheme) UnmarshalText(text []byte) error {
	v, err := ParseScheme(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// The EIP-712 domain's fixed fields.
const (
	DomainName    = "uraiden"
	DomainVersion = "1"
)

// The EIP-712 type strings: the encodeType of each struct, whose keccak256 is its type hash.
const (
	DomainType       = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
	BalanceProofType = "BalanceProof(address receiver,uint32 openBlock,uint192 balance)"
	ClosingType      = "ClosingBalance(address sender,uint32 openBlock,uint192 balance)"
	CloseRequestType = "CloseRequest(address receiver,uint32 openBlock,uint192 balance,uint64 expires)"
)

var (
	domainTypeHash       = crypto.Keccak256Hash([]byte(DomainType))
	domainNameHash       = crypto.Keccak256Hash([]byte(DomainName))
	domainVersionHash    = crypto.Keccak256Hash([]byte(DomainVersion))
	balanceProofTypeHash = crypto.Keccak256Hash([]byte(BalanceProofType))
	closingTypeHash      = crypto.Keccak256Hash([]byte(ClosingType))
	closeRequestTypeHash = crypto.Keccak256Hash([]byte(CloseRequestType))
)

// Domain is the EIP-712 domain of typed proofs: one channel contract on one chain.
type Domain struct {
	ChainID  uint64
	Contract common.Address
}

// Separator returns the domain separator, hashStruct(EIP712Domain).
func (d Domain) Separator() (common.Hash, error) {
	if d.ChainID == 0 {
		return common.Hash{}, ErrChainID
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	w := sc.words[:5*32]
	clear(w)
	copy(w[0:], domainTypeHash[:])
	copy(w[32:], domainNameHash[:])
	copy(w[64:], domainVersionHash[:])
	binary.BigEndian.PutUint64(w[3*32+24:], d.ChainID)
	copy(w[4*32+12:], d.Contract[:])
	return sc.keccak(w), nil
}

// DomainSeparator is Domain{chainID, contract}.Separator().
func DomainSeparator(chainID uint64, contract common.Address) (common.Hash, error) {
	return Domain{ChainID: chainID, Contract: contract}.Separator()
}

// DomainTypeHash, BalanceProofTypeHash, ClosingTypeHash and CloseRequestTypeHash are the
// EIP-712 type hashes, exposed for known-answer tests and for clients that verify the
// construction.
func DomainTypeHash() common.Hash { return domainTypeHash }

// BalanceProofTypeHash is keccak256(BalanceProofType).
func BalanceProofTypeHash() common.Hash { return balanceProofTypeHash }

// ClosingTypeHash is keccak256(ClosingType).
func ClosingTypeHash() common.Hash { return closingTypeHash }

// CloseRequestTypeHash is keccak256(CloseRequestType).
func CloseRequestTypeHash() common.Hash { return closeRequestTypeHash }

// TypedBalanceProofHash returns the EIP-712 digest a sender signs for a typed balance proof
// under the domain separator domain.
func TypedBalanceProofHash(domain common.Hash, receiver common.Address, openBlock uint32, balance *big.Int) (common.Hash, error) {
	return typedHash(domain, balanceProofTypeHash, receiver, openBlock, balance, 0, false)
}

// TypedClosingHash returns the EIP-712 digest a receiver signs for a typed closing signature
// under the domain separator domain.
func TypedClosingHash(domain common.Hash, sender common.Address, openBlock uint32, balance *big.Int) (common.Hash, error) {
	return typedHash(domain, closingTypeHash, sender, openBlock, balance, 0, false)
}

// TypedCloseRequestHash returns the EIP-712 digest a sender signs for a typed close request
// under the domain separator domain. expires is a Unix time in seconds.
func TypedCloseRequestHash(domain common.Hash, receiver common.Address, openBlock uint32, balance *big.Int, expires uint64) (common.Hash, error) {
	return typedHash(domain, closeRequestTypeHash, receiver, openBlock, balance, expires, true)
}

// typedHash is keccak256(0x19 ‖ 0x01 ‖ domain ‖ keccak256(typeHash ‖ party ‖ openBlock ‖
// balance [‖ expires])), each field one left-padded 32-byte word, with pooled buffers: it
// runs on every paid request.
func typedHash(domain, typeHash common.Hash, party common.Address, openBlock uint32, balance *big.Int, expires uint64, withExpires bool) (common.Hash, error) {
	if balance == nil || balance.Sign() < 0 || balance.Cmp(maxUint192) > 0 {
		return common.Hash{}, ErrBalanceRange
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	n := 4 * 32
	if withExpires {
		n = 5 * 32
	}
	w := sc.words[:n]
	clear(w)
	copy(w[0:], typeHash[:])
	copy(w[32+12:], party[:])
	binary.BigEndian.PutUint32(w[2*32+28:], openBlock)
	balance.FillBytes(w[3*32+8 : 4*32])
	if withExpires {
		binary.BigEndian.PutUint64(w[4*32+24:], expires)
	}
	structHash := sc.keccak(w)

	msg := sc.words[:2+64]
	msg[0], msg[1] = 0x19, 0x01
	copy(msg[2:], domain[:])
	copy(msg[34:], structHash[:])
	return sc.keccak(msg), nil
}
