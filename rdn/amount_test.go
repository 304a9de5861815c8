package rdn

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAmount(t *testing.T) {
	max := MaxAmount().String()
	for text, want := range map[string]error{
		"0": nil, "007": nil, "18446744073709551615": nil, "18446744073709551616": nil, max: nil,
		"": ErrAmountSyntax, "-1": ErrAmountSyntax, "+1": ErrAmountSyntax, " 1": ErrAmountSyntax,
		"1e3": ErrAmountSyntax, "0x10": ErrAmountSyntax, "1_000": ErrAmountSyntax,
		"6277101735386680763835789423207666416102355444464034512896": ErrAmountRange, // 2^192
		strings.Repeat("0", 78) + "1":                                ErrAmountRange,
	} {
		v, err := ParseAmount(text)
		if !errors.Is(err, want) || (err == nil) != (v != nil) {
			t.Errorf("ParseAmount(%q) = %v, %v; want error %v", text, v, err, want)
		}
		if err == nil && strings.TrimLeft(text, "0") != strings.TrimLeft(v.String(), "0") {
			t.Errorf("ParseAmount(%q) = %v", text, v)
		}
	}
	m := MaxAmount()
	m.Add(m, m)
	if MaxAmount().String() != max {
		t.Error("MaxAmount shares its value")
	}
}
