package pricing

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Token is what a price table needs to know about the channel's token to read prices written
// in whole tokens.
type Token struct {
	// Decimals is the token's ERC20 decimals(): one token is 10^Decimals base units.
	Decimals uint8
}

// Options say how to read a price table.
type Options struct {
	// Token converts prices written in whole tokens ("0.005 token") to base units. Nil when
	// the token is not known: such prices are then errors (ErrNoDecimals), unless Unconverted.
	Token *Token
	// Unconverted, without Token, checks prices in tokens without converting them, for a
	// check that has no chain to ask (uraiden config check). Such a table cannot price
	// requests: its Quote fails with ErrUnconverted. Ignored when Token is set.
	Unconverted bool
}

// Units of a price written with one. A bare integer is in base units, the wire format.
var tokenUnits = []string{"token", "tokens"}

var (
	// ErrNoDecimals: the table states a price in tokens and was read without the token's
	// decimals.
	ErrNoDecimals = errors.New("the token's decimals are not known")
	// ErrUnconverted: the table was read with Options.Unconverted and holds prices in tokens,
	// so it cannot price requests.
	ErrUnconverted = errors.New("pricing: the table holds prices in tokens not converted to base units (read without the token's decimals)")
)

// Token returns the token the table was read with, and false when it was read without one.
// Its prices are in base units either way.
func (t *Table) Token() (Token, bool) {
	if t.token == nil {
		return Token{}, false
	}
	return *t.token, true
}

// Unconverted returns the number of prices in tokens the table holds unconverted: non-zero
// only for a table read with Options.Unconverted, which cannot price requests.
func (t *Table) Unconverted() int { return t.unconverted }

// TokenPrices returns the number of prices the table's file states in tokens.
func (t *Table) TokenPrices() int { return t.tokenPrices }

// splitUnit separates "<amount> <unit>". ok is false when s has no unit, i.e. no space.
func splitUnit(s string) (amount, unit string, ok bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return "", "", false
	}
	return f[0], f[1], true
}

// tokenAmount is a price in whole tokens as written, reduced to digits / 10^scale with no
// trailing zero in the fraction: "0.0050" is 5 / 10^3.
type tokenAmount struct {
	digits *big.Int
	scale  int
}

// parseTokens parses "<decimal> <unit>": the decimal is an integer or has digits on both
// sides of a point (0.005, not .005 or 5.), with no sign, exponent or leading zero, so that
// it means the same to every reader.
func parseTokens(s string) (tokenAmount, error) {
	amount, unit, ok := splitUnit(s)
	if !ok {
		return tokenAmount{}, fmt.Errorf("%q is not a price in tokens, written like \"0.005 token\"", s)
	}
	var known bool
	for _, u := range tokenUnits {
		known = known || unit == u
	}
	if !known {
		return tokenAmount{}, fmt.Errorf("%q: unknown unit %q (known: %s; a bare integer is in base units)", s, unit, strings.Join(tokenUnits, ", "))
	}
	whole, frac, hasPoint := strings.Cut(amount, ".")
	if strings.HasPrefix(whole, "-") && isDecimal(whole[1:]) && (!hasPoint || isDecimal(frac)) {
		return tokenAmount{}, fmt.Errorf("%q is negative", s)
	}
	if !isDecimal(whole) || hasPoint && !isDecimal(frac) {
		return tokenAmount{}, fmt.Errorf("%q: the amount %q is not a decimal number like 0.005 or 2", s, amount)
	}
	if len(whole) > 1 && whole[0] == '0' {
		return tokenAmount{}, fmt.Errorf("%q has a leading zero", s)
	}
	frac = strings.TrimRight(frac, "0")
	digits, _ := new(big.Int).SetString(whole+frac, 10)
	return tokenAmount{digits: digits, scale: len(frac)}, nil
}

// maxDecimals is the most decimals an ERC20 token can declare (decimals() is a uint8).
const maxDecimals = 255

// check reports what is wrong with the amount whatever the token's decimals.
func (a tokenAmount) check(s string) error {
	if a.scale > maxDecimals {
		return fmt.Errorf("%q has %d digits after the point, more than any token's decimals (at most %d)", s, a.scale, maxDecimals)
	}
	return nil
}

// base converts the amount to base units of a token with the given decimals, exactly: an
// amount finer than one base unit is an error, not rounded, since a price must be what the
// operator wrote.
func (a tokenAmount) base(s string, decimals uint8) (*big.Int, error) {
	if a.scale > int(decimals) {
		return nil, fmt.Errorf("%q is not a whole number of base units: the token has %d decimals, so at most %d digits after the point", s, decimals, decimals)
	}
	exp := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(int(decimals)-a.scale)), nil)
	price := exp.Mul(exp, a.digits)
	if price.Cmp(MaxPrice) > 0 {
		return nil, fmt.Errorf("%q is above the maximum 2^192-1 base units (the token has %d decimals)", s, decimals)
	}
	return price, nil
}
