package rdn

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// A close request is the sender's own signature asking the receiver for a cooperative close
// (DELETE <gateway_path>/channels/<sender>/<open_block>). A balance proof cannot serve: the
// sender hands one to the server with every payment, the server hands its latest back on a
// 402 to whoever replays an old one, and it may travel through proxies and logs. A close
// request is made only to close, names everything it is for, and expires soon.
//
// It is an EIP-191 personal message (personal_sign, viem's signMessage), which every wallet
// signs and shows as text. The text is these lines, joined by "\n", with no trailing newline:
//
//	uraiden cooperative close request
//	receiver: <receiver, EIP-55 checksummed hex>
//	contract: <channel contract, EIP-55 checksummed hex>
//	chain id: <decimal>
//	sender: <sender, EIP-55 checksummed hex>
//	open block: <decimal>
//	balance: <decimal token base units>
//	expires: <decimal Unix time, seconds>
//
// and the signed hash is keccak256("\x19Ethereum Signed Message:\n" ‖ len(text) in decimal ‖
// text). The signature is 65 bytes r ‖ s ‖ v, v in {0, 1, 27, 28}, s in the lower half of the
// curve order, as for a balance proof.
//
// In the typed scheme it is EIP-712 typed data under the proofs' domain (typed.go), which
// carries the contract and the chain id:
//
//	CloseRequest(address receiver,uint32 openBlock,uint192 balance,uint64 expires)
//
// The sender is not a field: as in a typed balance proof, it is the signer, and the server
// compares the recovered signer with the channel's sender. A typed close request cannot pass
// for a typed balance proof (another type hash) nor for a legacy one (0x19 0x01, not 0x19
// 0x45 or no prefix).

// CloseRequestTitle is the first line of a close request's text.
const CloseRequestTitle = "uraiden cooperative close request"

// MaxCloseRequestLifetime is how far in the future a close request may expire.
const MaxCloseRequestLifetime = 10 * time.Minute

// Errors of a close request's expiry.
var (
	ErrCloseRequestExpired = errors.New("the close request has expired")
	ErrCloseRequestTooLong = fmt.Errorf("the close request expires more than %v from now", MaxCloseRequestLifetime)
)

// CloseRequest is what a sender signs to ask for a cooperative close at a balance.
type CloseRequest struct {
	Receiver  common.Address
	Contract  common.Address
	ChainID   uint64
	Sender    common.Address
	OpenBlock uint32
	Balance   *big.Int
	// Expires is a Unix time in seconds.
	Expires int64
	// Scheme is the construction signed; the zero value is legacy, the personal message.
	Scheme Scheme
}

var errCloseRequestExpiry = errors.New("the close request's expiry must be a positive Unix time")

// Text returns the message the sender signs in the legacy scheme, whatever c.Scheme.
func (c CloseRequest) Text() (string, error) {
	if c.Balance == nil || c.Balance.Sign() < 0 || c.Balance.Cmp(maxUint192) > 0 {
		return "", ErrBalanceRange
	}
	if c.Expires <= 0 {
		return "", errCloseRequestExpiry
	}
	return strings.Join([]string{
		CloseRequestTitle,
		"receiver: " + c.Receiver.Hex(),
		"contract: " + c.Contract.Hex(),
		"chain id: " + strconv.FormatUint(c.ChainID, 10),
		"sender: " + c.Sender.Hex(),
		"open block: " + strconv.FormatUint(uint64(c.OpenBlock), 10),
		"balance: " + c.Balance.String(),
		"expires: " + strconv.FormatInt(c.Expires, 10),
	}, "\n"), nil
}

// PersonalMessageHash is the EIP-191 (version 0x45) hash of a personal_sign message.
func PersonalMessageHash(message []byte) common.Hash {
	prefix := "\x19Ethereum Signed Message:\n" + strconv.Itoa(len(message))
	return crypto.Keccak256Hash([]byte(prefix), message)
}

// Hash returns the hash the sender signs in c.Scheme.
func (c CloseRequest) Hash() (common.Hash, error) {
	switch c.Scheme {
	case SchemeLegacy:
		text, err := c.Text()
		if err != nil {
			return common.Hash{}, err
		}
		return PersonalMessageHash([]byte(text)), nil
	case SchemeTyped:
		if c.Expires <= 0 {
			return common.Hash{}, errCloseRequestExpiry
		}
		domain, err := DomainSeparator(c.ChainID, c.Contract)
		if err != nil {
			return common.Hash{}, err
		}
		return TypedCloseRequestHash(domain, c.Receiver, c.OpenBlock, c.Balance, uint64(c.Expires))
	}
	return common.Hash{}, fmt.Errorf("%w, got %d", ErrScheme, uint8(c.Scheme))
}

// Sign signs the close request with the sender's key, as personal_sign (legacy) or
// eth_signTypedData_v4 (typed) does.
func (c CloseRequest) Sign(key *ecdsa.PrivateKey) (Signature, error) {
	h, err := c.Hash()
	if err != nil {
		return Signature{}, err
	}
	return Sign(h, key)
}

// Signer recovers the address that signed the close request.
func (c CloseRequest) Signer(sig []byte) (common.Address, error) {
	h, err := c.Hash()
	if err != nil {
		return common.Address{}, err
	}
	return Recover(h, sig)
}

// CheckExpiry returns nil when the request is still valid at now and does not expire more
// than MaxCloseRequestLifetime after it.
func (c CloseRequest) CheckExpiry(now time.Time) error {
	switch {
	case c.Expires <= now.Unix():
		return ErrCloseRequestExpired
	case c.Expires > now.Add(MaxCloseRequestLifetime).Unix():
		return ErrCloseRequestTooLong
	}
	return nil
}
