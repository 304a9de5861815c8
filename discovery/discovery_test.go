package discovery_test

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/discovery"
	"github.com/uraiden/uraiden/internal/testkit/discoverytest"
)

func decimals(d uint8) *uint8 { return &d }

// example is a document as a typed server with an 18-decimal token states it.
func example() discovery.Document {
	contract := discovery.Address(common.HexToAddress("0x8Bf640A099fE945DA46F354d3B49c48a125F48B6"))
	price := func(base int64, tokens string) *discovery.Price {
		return &discovery.Price{Base: discovery.Amount{Int: big.NewInt(base)}, Tokens: tokens}
	}
	return discovery.Document{
		Version: discovery.Version, GatewayPath: "/api/1", ChainID: 1337,
		ReceiverAddress: discovery.Address(common.HexToAddress("0xee")), ContractAddress: contract,
		Token:         discovery.Token{Address: discovery.Address(common.HexToAddress("0x70")), Symbol: "RDNDEV", Decimals: decimals(18)},
		ProofSchemes:  []string{"eip712", "legacy"},
		EIP712Domain:  &discovery.EIP712Domain{Name: "uraiden", Version: "1", ChainID: 1337, VerifyingContract: contract},
		Confirmations: 3, ChallengePeriod: 500,
		DefaultPrice: *price(0, "0"),
		Rules: []discovery.Rule{
			{Name: "fix", Methods: []string{"GET"}, Host: `api\.example\.com`, Path: "/fix/[^/]+", Price: price(5_000_000_000_000_000, "0.005")},
			{Name: "dyn", Methods: []string{}, Path: "/dyn/(?P<p>.*)", Computed: true},
		},
	}
}

// asJSON is the document as generic JSON, for the schema and for edits.
func asJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTheSchemaDescribesTheDocument(t *testing.T) {
	sch := discoverytest.Schema(t)
	if err := sch.Validate(asJSON(t, example())); err != nil {
		t.Fatalf("a typed server's document: %v", err)
	}
	legacy := example()
	legacy.ProofSchemes, legacy.EIP712Domain = []string{"legacy"}, nil
	legacy.Token.Symbol, legacy.Token.Decimals = "", nil
	legacy.DefaultPrice.Tokens, legacy.Rules[0].Price.Tokens = "", ""
	if err := sch.Validate(asJSON(t, legacy)); err != nil {
		t.Fatalf("a legacy server's document, its token without symbol and decimals: %v", err)
	}

	// The schema is no formality: each of these breaks it.
	for name, edit := range map[string]func(m map[string]any){
		"another version":            func(m map[string]any) { m["version"] = 2 },
		"a field of no version":      func(m map[string]any) { m["upstream"] = "http://10.0.0.1" },
		"no rules":                   func(m map[string]any) { delete(m, "rules") },
		"eip712 without its domain":  func(m map[string]any) { delete(m, "eip712_domain") },
		"a domain without eip712":    func(m map[string]any) { m["proof_schemes"] = []any{"legacy"} },
		"an unknown scheme":          func(m map[string]any) { m["proof_schemes"] = []any{"eip712", "rsa"} },
		"a lower-case method":        func(m map[string]any) { rule(m, 0)["methods"] = []any{"get"} },
		"a computed rule's price":    func(m map[string]any) { rule(m, 1)["price"] = map[string]any{"base": "1"} },
		"a static rule without one":  func(m map[string]any) { delete(rule(m, 0), "price") },
		"a price as a number":        func(m map[string]any) { rule(m, 0)["price"] = map[string]any{"base": 5} },
		"a price with leading zeros": func(m map[string]any) { rule(m, 0)["price"] = map[string]any{"base": "05"} },
		"tokens with a trailing 0":   func(m map[string]any) { rule(m, 0)["price"] = map[string]any{"base": "5", "tokens": "0.50"} },
		"a short address":            func(m map[string]any) { m["receiver_address"] = "0xee" },
		"a field in a rule":          func(m map[string]any) { rule(m, 1)["price_expr"] = "size(p)" },
	} {
		m := asJSON(t, example())
		edit(m)
		if err := sch.Validate(m); err == nil {
			t.Errorf("%s: the schema takes it", name)
		}
	}
}

func rule(m map[string]any, i int) map[string]any { return m["rules"].([]any)[i].(map[string]any) }

// The Go types read what they write, and refuse what the format does not allow.
func TestDocumentRoundTrip(t *testing.T) {
	data, err := json.Marshal(example())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"receiver_address":"0x00000000000000000000000000000000000000eE"`,
		`"price":{"base":"5000000000000000","tokens":"0.005"}`, `"computed":true`, `"decimals":18`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the JSON lacks %s: %s", want, data)
		}
	}
	var back discovery.Document
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if !bytes.Equal(again, data) {
		t.Errorf("read and written again:\n%s\nwant\n%s", again, data)
	}
	for _, bad := range []string{
		`{"default_price": {"base": 5}}`, `{"default_price": {"base": "-5"}}`, `{"default_price": {"base": "05"}}`,
		`{"default_price": {"base": "6277101735386680763835789423207666416102355444464034512896"}}`,
		`{"receiver_address": "0xee"}`, `{"receiver_address": "8Bf640A099fE945DA46F354d3B49c48a125F48B6"}`,
	} {
		var d discovery.Document
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s: read without an error", bad)
		}
	}
}

func TestFormatTokens(t *testing.T) {
	for _, tc := range []struct {
		base     string
		decimals uint8
		want     string
	}{
		{"5000000000000000", 18, "0.005"},
		{"2000000000000000000", 18, "2"},
		{"2500000000000000001", 18, "2.500000000000000001"},
		{"1", 18, "0.000000000000000001"},
		{"0", 18, "0"},
		{"0", 0, "0"},
		{"1234", 0, "1234"},
		{"1234", 2, "12.34"},
		{"1230", 2, "12.3"},
		{"1200", 2, "12"},
		{"12", 2, "0.12"},
	} {
		base, _ := new(big.Int).SetString(tc.base, 10)
		if got := discovery.FormatTokens(base, tc.decimals); got != tc.want {
			t.Errorf("FormatTokens(%s, %d) = %s, want %s", tc.base, tc.decimals, got, tc.want)
		}
	}
}
