// Balance proofs and closing signatures: building, signing and verifying them.
//
// Each is signed in one of two schemes (Scheme). The typed scheme, EIP-712, is in typed.go.
// The legacy scheme is legacy eth_signTypedData (v1) hashes, byte-exact with µRaiden 0.2.0
// and the RaidenMicroTransferChannels contract:
//
//	schema  = keccak256("string message_id" ‖ "address receiver" ‖ "uint32 block_created" ‖ "uint192 balance" ‖ "address contract")
//	values  = keccak256("Sender balance proof signature" ‖ receiver ‖ uint32(open_block) ‖ uint192(balance) ‖ contract)
//	message = keccak256(schema ‖ values)
//
// signed directly with secp256k1, with no EIP-191 prefix. The closing signature uses
// "address sender", "Receiver closing signature" and the sender's address instead.
//
// Recovery accepts exactly what the contract accepts: 65 bytes r ‖ s ‖ v with v in
// {0, 1, 27, 28} and s in the lower half of the curve order. Anything else is refused with an
// error saying why, because a proof the contract rejects is worthless to the receiver.

package rdn

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// SignatureLength is the length of an encoded signature: r ‖ s ‖ v.
const SignatureLength = 65

// Errors returned for signatures the contract would reject.
var (
	ErrSignatureLength = errors.New("signature must be 65 bytes")
	ErrSignatureV      = errors.New("signature v must be 0, 1, 27 or 28")
	ErrSignatureHighS  = errors.New("signature s is not in the lower half of the curve order")
	ErrSignatureRS     = errors.New("signature r or s out of range")
	ErrSignatureHex    = errors.New("signature is not 0x-prefixed hex")
	ErrBalanceRange    = errors.New("balance must be between 0 and 2^192-1")
)

var (
	balanceSchema = crypto.Keccak256Hash([]byte(
		"string message_id" + "address receiver" + "uint32 block_created" + "uint192 balance" + "address contract"))
	closingSchema = crypto.Keccak256Hash([]byte(
		"string message_id" + "address sender" + "uint32 block_created" + "uint192 balance" + "address contract"))

	maxUint192 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 192), big.NewInt(1))
	secp256k1N = crypto.S256().Params().N
	halfN      = new(big.Int).Rsh(secp256k1N, 1)
)

// BalanceSchemaHash and ClosingSchemaHash are the typed-data schema hashes, exposed for
// known-answer tests and for clients that verify the construction.
func BalanceSchemaHash() common.Hash { return balanceSchema }

// ClosingSchemaHash is the schema hash of the receiver's closing signature.
func ClosingSchemaHash() common.Hash { return closingSchema }

// Balance is what a sender signs: the cumulative balance it owes the receiver on one channel.
type Balance struct {
	Receiver  common.Address
	OpenBlock uint32
	Balance   *big.Int
	Contract  common.Address
	// Scheme is the construction signed; the zero value is legacy.
	Scheme Scheme
	// ChainID is bound by the typed scheme only (the legacy hash has no chain id), and
	// required by it.
	ChainID uint64
}

// Closing is what a receiver signs to agree to close a channel cooperatively at a balance.
type Closing struct {
	Sender    common.Address
	OpenBlock uint32
	Balance   *big.Int
	Contract  common.Address
	// Scheme and ChainID as in Balance.
	Scheme  Scheme
	ChainID uint64
}

const (
	balanceMessageID = "Sender balance proof signature"
	closingMessageID = "Receiver closing signature"
)

// Hash returns the message hash the sender signs in b.Scheme.
func (b Balance) Hash() (common.Hash, error) {
	switch b.Scheme {
	case SchemeLegacy:
		return messageHash(balanceSchema, balanceMessageID, b.Receiver, b.OpenBlock, b.Balance, b.Contract)
	case SchemeTyped:
		domain, err := DomainSeparator(b.ChainID, b.Contract)
		if err != nil {
			return common.Hash{}, err
		}
		return TypedBalanceProofHash(domain, b.Receiver, b.OpenBlock, b.Balance)
	}
	return common.Hash{}, fmt.Errorf("%w, got %d", ErrScheme, uint8(b.Scheme))
}

// Sign signs the balance proof with the sender's key.
func (b Balance) Sign(key *ecdsa.PrivateKey) (Signature, error) {
	h, err := b.Hash()
	if err != nil {
		return Signature{}, err
	}
	return Sign(h, key)
}

// Signer recovers the sender's address from a balance-proof signature.
func (b Balance) Signer(sig []byte) (common.Address, error) {
	h, err := b.Hash()
	if err != nil {
		return common.Address{}, err
	}
	return Recover(h, sig)
}

// Hash returns the message hash the receiver signs in c.Scheme.
func (c Closing) Hash() (common.Hash, error) {
	switch c.Scheme {
	case SchemeLegacy:
		return messageHash(closingSchema, closingMessageID, c.Sender, c.OpenBlock, c.Balance, c.Contract)
	case SchemeTyped:
		domain, err := DomainSeparator(c.ChainID, c.Contract)
		if err != nil {
			return common.Hash{}, err
		}
		return TypedClosingHash(domain, c.Sender, c.OpenBlock, c.Balance)
	}
	return common.Hash{}, fmt.Errorf("%w, got %d", ErrScheme, uint8(c.Scheme))
}

// Sign signs the closing message with the receiver's key.
func (c Closing) Sign(key *ecdsa.PrivateKey) (Signature, error) {
	h, err := c.Hash()
	if err != nil {
		return Signature{}, err
	}
	return Sign(h, key)
}

// Signer recovers the receiver's address from a closing signature.
func (c Closing) Signer(sig []byte) (common.Address, error) {
	h, err := c.Hash()
	if err != nil {
		return common.Address{}, err
	}
	return Recover(h, sig)
}

// PackedValues returns the tightly packed values whose keccak256 is the second half of the
// message: message id ‖ address ‖ uint32 ‖ uint192 ‖ contract.
func PackedValues(messageID string, party common.Address, openBlock uint32, balance *big.Int, contract common.Address) ([]byte, error) {
	if balance == nil || balance.Sign() < 0 || balance.Cmp(maxUint192) > 0 {
		return nil, ErrBalanceRange
	}
	buf := make([]byte, 0, len(messageID)+20+4+24+20)
	buf = append(buf, messageID...)
	buf = append(buf, party.Bytes()...)
	buf = append(buf, byte(openBlock>>24), byte(openBlock>>16), byte(openBlock>>8), byte(openBlock))
	var amount [24]byte
	balance.FillBytes(amount[:])
	buf = append(buf, amount[:]...)
	buf = append(buf, contract.Bytes()...)
	return buf, nil
}

func messageHash(schema common.Hash, messageID string, party common.Address, openBlock uint32, balance *big.Int, contract common.Address) (common.Hash, error) {
	if balance == nil || balance.Sign() < 0 || balance.Cmp(maxUint192) > 0 {
		return common.Hash{}, ErrBalanceRange
	}
	// PackedValues, hashed with a pooled keccak state and pooled buffers: on the Check
	// path, no allocation.
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	values := append(sc.buf[:0], messageID...)
	values = append(values, party[:]...)
	values = append(values, byte(openBlock>>24), byte(openBlock>>16), byte(openBlock>>8), byte(openBlock))
	amount := sc.amount[:]
	balance.FillBytes(amount)
	values = append(values, amount...)
	values = append(values, contract[:]...)

	copy(sc.msg[:32], schema[:])
	sc.h.Reset()
	sc.h.Write(values)
	sc.h.Read(sc.msg[32:])
	sc.h.Reset()
	sc.h.Write(sc.msg[:])
	sc.h.Read(sc.out[:])
	return sc.out, nil
}

// Signature is an encoded secp256k1 signature r ‖ s ‖ v with v in {27, 28}.
type Signature [SignatureLength]byte

// Sign signs a message hash as µRaiden does: no prefix, RFC 6979 nonce, low s, v + 27.
func Sign(hash common.Hash, key *ecdsa.PrivateKey) (Signature, error) {
	raw, err := crypto.Sign(hash[:], key)
	if err != nil {
		return Signature{}, fmt.Errorf("sign: %w", err)
	}
	var sig Signature
	copy(sig[:], raw)
	sig[64] += 27
	return sig, nil
}

// Hex returns the 0x-prefixed hex form used in RDN-* headers.
func (s Signature) Hex() string { return "0x" + hex.EncodeToString(s[:]) }

// String implements fmt.Stringer.
func (s Signature) String() string { return s.Hex() }

// ParseSignature decodes a 0x-prefixed hex signature, checks it is one the contract accepts,
// and normalizes v to 27 or 28.
func ParseSignature(text string) (Signature, error) {
	sig, err := DecodeSignature(text)
	if err != nil {
		return Signature{}, err
	}
	if err := Check(sig[:]); err != nil {
		return Signature{}, err
	}
	return sig, nil
}

// DecodeSignature decodes 65 bytes of 0x-prefixed hex without judging them (Recover does),
// normalizing a v of 0 or 1 to 27 or 28.
func DecodeSignature(text string) (Signature, error) {
	if !strings.HasPrefix(text, "0x") && !strings.HasPrefix(text, "0X") {
		return Signature{}, ErrSignatureHex
	}
	digits := text[2:]
	var sig Signature
	if len(digits) != 2*SignatureLength {
		raw, err := hex.DecodeString(digits)
		if err != nil {
			return Signature{}, ErrSignatureHex
		}
		return Signature{}, fmt.Errorf("%w, got %d", ErrSignatureLength, len(raw))
	}
	// Decoded in place: this runs on every paid request.
	for i := range sig {
		hi, ok1 := fromHex(digits[2*i])
		lo, ok2 := fromHex(digits[2*i+1])
		if !ok1 || !ok2 {
			return Signature{}, ErrSignatureHex
		}
		sig[i] = hi<<4 | lo
	}
	if sig[64] < 27 {
		// The contract shifts 0/1 to 27/28: store every proof one way.
		sig[64] += 27
	}
	return sig, nil
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Check reports whether sig is a signature the contract accepts, and if not, why.
func Check(sig []byte) error {
	if len(sig) != SignatureLength {
		return fmt.Errorf("%w, got %d", ErrSignatureLength, len(sig))
	}
	if v := sig[64]; v != 0 && v != 1 && v != 27 && v != 28 {
		return fmt.Errorf("%w, got %d", ErrSignatureV, v)
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:64])
	if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(secp256k1N) >= 0 {
		return ErrSignatureRS
	}
	if s.Cmp(halfN) > 0 {
		return ErrSignatureHighS
	}
	return nil
}

// Recover returns the address that signed hash, refusing signatures the contract rejects.
func Recover(hash common.Hash, sig []byte) (common.Address, error) {
	if err := Check(sig); err != nil {
		return common.Address{}, err
	}
	var normalized [SignatureLength]byte
	copy(normalized[:], sig)
	if normalized[64] >= 27 {
		normalized[64] -= 27
	}
	// The uncompressed public key 0x04 ‖ X ‖ Y straight from secp256k1, hashed into the
	// address as crypto.PubkeyToAddress does, without decoding it into big.Int coordinates
	// and encoding it again.
	pub, err := crypto.Ecrecover(hash[:], normalized[:])
	if err != nil {
		return common.Address{}, fmt.Errorf("recover signer: %w", err)
	}
	if len(pub) != 65 || pub[0] != 4 {
		return common.Address{}, errors.New("recover signer: invalid public key")
	}
	return addressOf(pub[1:]), nil
}

// addressOf is the address of an uncompressed public key X ‖ Y: the last 20 bytes of its
// keccak256.
func addressOf(xy []byte) common.Address {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.h.Reset()
	sc.h.Write(xy)
	sc.h.Read(sc.out[:])
	return common.BytesToAddress(sc.out[12:])
}

// scratch is a keccak state and the buffers of one hash on the Check path, pooled: passed
// through the hash.Hash interface, buffers on the stack would escape to the heap.
type scratch struct {
	h      crypto.KeccakState
	buf    [128]byte
	amount [24]byte
	msg    [64]byte
	words  [5 * 32]byte // the typed scheme's encoded structs
	out    common.Hash
}

func (sc *scratch) keccak(data []byte) common.Hash {
	sc.h.Reset()
	sc.h.Write(data)
	sc.h.Read(sc.out[:])
	return sc.out
}

var scratchPool = sync.Pool{New: func() any { return &scratch{h: crypto.NewKeccakState()} }}
