package chain

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/contracts"
)

// TokenDecimals reads the ERC20 decimals() of token: how many decimal places its base unit
// is below one token. ok is false when the token has no such function (the call reverts or
// answers nothing): decimals() is optional in ERC20, and only prices written in tokens need
// it. An answer that is not a uint8 is an error, as it is no ERC20 decimals().
func TokenDecimals(ctx context.Context, caller ethereum.ContractCaller, token common.Address) (decimals uint8, ok bool, err error) {
	out, err := caller.CallContract(ctx, ethereum.CallMsg{To: &token, Data: contracts.NewUraidenTestToken().PackDecimals()}, nil)
	if err != nil {
		if isRevert(err) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("decimals() of token %s: %w", token, err)
	}
	if len(out) == 0 {
		return 0, false, nil
	}
	// Decoded by hand rather than as an ABI uint8, so that a word above 255 is refused with
	// the number it holds, never truncated.
	if len(out) != 32 {
		return 0, false, fmt.Errorf("decimals() of token %s answers %d bytes, want one 32-byte word", token, len(out))
	}
	v := new(big.Int).SetBytes(out)
	if !v.IsUint64() || v.Uint64() > 255 {
		return 0, false, fmt.Errorf("decimals() of token %s answers %s, more than an ERC20 token's 255", token, v)
	}
	return uint8(v.Uint64()), true, nil
}

// maxSymbolLen bounds a token symbol taken from the chain, in characters: symbols are short
// tickers, and one is shown to clients as the token's name for people.
const maxSymbolLen = 32

// TokenSymbol reads the ERC20 symbol() of token. ok is false when the token has none, being
// optional in ERC20 (the call reverts or answers nothing), or when its answer is no short
// printable name: the symbol is passed on to clients as it is, so an answer that could carry
// anything else is dropped, not shown. The answer is an ABI string, or a bytes32 as some
// early tokens (MKR) answer, padded with zeros.
func TokenSymbol(ctx context.Context, caller ethereum.ContractCaller, token common.Address) (symbol string, ok bool, err error) {
	out, err := caller.CallContract(ctx, ethereum.CallMsg{To: &token, Data: contracts.NewUraidenTestToken().PackSymbol()}, nil)
	if err != nil {
		if isRevert(err) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("symbol() of token %s: %w", token, err)
	}
	symbol, ok = decodeSymbol(out)
	return symbol, ok, nil
}

// decodeSymbol reads symbol()'s answer: an ABI string, else a zero-padded bytes32.
func decodeSymbol(out []byte) (string, bool) {
	var s string
	if v, err := contracts.NewUraidenTestToken().UnpackSymbol(out); err == nil {
		s = v
	} else if len(out) == 32 {
		s = string(bytes.TrimRight(out, "\x00"))
	} else {
		return "", false
	}
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxSymbolLen {
		return "", false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "", false
		}
	}
	return s, true
}
