package chain

import (
	"strings"
	"testing"

	"github.com/uraiden/uraiden/contracts"
)

// abiString is symbol()'s answer for s as an ERC20 token gives it: an ABI-encoded string.
func abiString(t *testing.T, s string) []byte {
	t.Helper()
	method, ok := contracts.NewUraidenTestToken().GetABI().Methods["symbol"]
	if !ok {
		t.Fatal("the token ABI has no symbol()")
	}
	out, err := method.Outputs.Pack(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeSymbol(t *testing.T) {
	bytes32 := func(s string) []byte { return append([]byte(s), make([]byte, 32-len(s))...) }
	for _, tc := range []struct {
		name string
		out  []byte
		want string // "" when there is no usable symbol
	}{
		{"an ABI string", abiString(t, "RDNDEV"), "RDNDEV"},
		{"a symbol beyond ASCII", abiString(t, "USD₮0"), "USD₮0"},
		{"a zero-padded bytes32 (MKR)", bytes32("MKR"), "MKR"},
		{"nothing", nil, ""},
		{"an empty string", abiString(t, ""), ""},
		{"a zero bytes32", bytes32(""), ""},
		{"a control character", abiString(t, "RDN\nDEV"), ""},
		{"a terminal escape", abiString(t, "\x1b[31mRDN"), ""},
		{"not UTF-8", abiString(t, "RDN\xff"), ""},
		{"longer than a ticker", abiString(t, strings.Repeat("A", maxSymbolLen+1)), ""},
		{"a word of another length", make([]byte, 20), ""},
	} {
		got, ok := decodeSymbol(tc.out)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
	if got, ok := decodeSymbol(abiString(t, strings.Repeat("A", maxSymbolLen))); !ok || len(got) != maxSymbolLen {
		t.Errorf("a %d-character symbol: %q, %v", maxSymbolLen, got, ok)
	}
}
