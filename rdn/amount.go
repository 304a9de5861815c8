package rdn

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Errors of ParseAmount.
var (
	ErrAmountSyntax = errors.New("not a non-negative integer")
	ErrAmountRange  = errors.New("out of range")
)

// maxAmountDigits bounds an amount's length before it is parsed: 2^192 has 58 digits, and
// big.Int parses decimal in quadratic time (seconds for a megabyte of digits).
const maxAmountDigits = 78

// MaxAmount is the largest token amount the contract holds, 2^192-1 (a uint192): the bound
// of every balance, deposit and price.
func MaxAmount() *big.Int { return new(big.Int).Set(maxUint192) }

// ParseAmount reads a token amount as the RDN-* headers and the admin API carry it: decimal
// digits only (no sign, no spaces), at most 2^192-1. The errors wrap ErrAmountSyntax or
// ErrAmountRange and quote the text, except a text too long to be an amount, whose length
// they give instead.
func ParseAmount(text string) (*big.Int, error) {
	if text == "" || strings.TrimLeft(text, "0123456789") != "" {
		return nil, fmt.Errorf("%w: %q", ErrAmountSyntax, text)
	}
	if len(text) > maxAmountDigits {
		return nil, fmt.Errorf("%w: %d digits", ErrAmountRange, len(text))
	}
	if len(text) <= 19 {
		// Fits a uint64 (checked above: digits only): no big-number parsing.
		n, err := strconv.ParseUint(text, 10, 64)
		if err == nil {
			return new(big.Int).SetUint64(n), nil
		}
	}
	v, ok := new(big.Int).SetString(text, 10)
	if !ok || v.Cmp(maxUint192) > 0 {
		return nil, fmt.Errorf("%w: %q", ErrAmountRange, text)
	}
	return v, nil
}
