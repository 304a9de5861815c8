package pricing

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func decimals(d uint8) Options { return Options{Token: &Token{Decimals: d}} }

// pow10 is 10^n as a decimal string, for prices beyond int64.
func pow10(n int) string { return "1" + strings.Repeat("0", n) }

func TestTokenPrices(t *testing.T) {
	for _, tc := range []struct {
		price    string // as written after "price: "
		decimals uint8
		want     string // base units
	}{
		{"0.005 token", 18, "5000000000000000"},
		{`"0.005 token"`, 18, "5000000000000000"},
		{"1 token", 18, pow10(18)},
		{"2 tokens", 18, "2" + pow10(18)[1:]},
		{"0 token", 18, "0"},
		{"0.0 token", 18, "0"},
		{"0.000000000000000001 token", 18, "1"},
		{"1.50 token", 1, "15"}, // trailing zeros beyond the decimals are exact
		{"1.5000000000000000000000 tokens", 18, "1500000000000000000"},
		{"7 token", 0, "7"},
		{"7.000 token", 0, "7"},
		{"12.345 token", 6, "12345000"},
		{"  0.5\ttoken ", 2, "50"},
		// The largest price, 2^192-1, is 6277101735386680763835789423207666416102355444464034512895:
		// in tokens of 18 decimals, it is written with its 18 last digits after the point.
		{"6277101735386680763835789423207666416102.355444464034512895 token", 18, MaxPrice.String()},
		// Base units still work beside them.
		{"5", 18, "5"},
		{`"1000000000000000000000"`, 18, "1000000000000000000000"},
	} {
		table, err := ParseWith([]byte("default_price: 0\nrules:\n  - name: a\n    path: /a\n    price: "+tc.price+"\n"), decimals(tc.decimals))
		if err != nil {
			t.Errorf("price %s with %d decimals: %v", tc.price, tc.decimals, err)
			continue
		}
		q, err := table.Quote(get("/a"))
		if err != nil || q.Price.String() != tc.want {
			t.Errorf("price %s with %d decimals = %v, %v; want %s base units", tc.price, tc.decimals, q.Price, err, tc.want)
		}
	}
}

func TestTokenPriceErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		price    string
		decimals uint8
		want     string // the whole message of the only error
	}{
		{"too many fraction digits", "0.0000000000000000001 token", 18,
			`"0.0000000000000000001 token" is not a whole number of base units: the token has 18 decimals, so at most 18 digits after the point`},
		{"fraction of a 0-decimal token", "1.5 token", 0,
			`"1.5 token" is not a whole number of base units: the token has 0 decimals, so at most 0 digits after the point`},
		{"negative", "-0.5 token", 18, `"-0.5 token" is negative`},
		{"negative integer", "-1 tokens", 18, `"-1 tokens" is negative`},
		{"huge", "6277101735386680763835789423207666416102.355444464034512896 token", 18,
			`"6277101735386680763835789423207666416102.355444464034512896 token" is above the maximum 2^192-1 base units (the token has 18 decimals)`},
		{"huge whole", "1" + strings.Repeat("0", 60) + " token", 0,
			`"1` + strings.Repeat("0", 60) + ` token" is above the maximum 2^192-1 base units (the token has 0 decimals)`},
		{"unit typo", "0.005 tokn", 18, `"0.005 tokn": unknown unit "tokn" (known: token, tokens; a bare integer is in base units)`},
		{"unit in capitals", "0.005 TOKEN", 18, `"0.005 TOKEN": unknown unit "TOKEN" (known: token, tokens; a bare integer is in base units)`},
		{"symbol as unit", "0.005 RDNDEV", 18, `"0.005 RDNDEV": unknown unit "RDNDEV" (known: token, tokens; a bare integer is in base units)`},
		{"no leading digit", ".5 token", 18, `".5 token": the amount ".5" is not a decimal number like 0.005 or 2`},
		{"no trailing digit", "5. token", 18, `"5. token": the amount "5." is not a decimal number like 0.005 or 2`},
		{"exponent", "5e-3 token", 18, `"5e-3 token": the amount "5e-3" is not a decimal number like 0.005 or 2`},
		{"plus sign", "+1 token", 18, `"+1 token": the amount "+1" is not a decimal number like 0.005 or 2`},
		{"leading zero", "00.5 token", 18, `"00.5 token" has a leading zero`},
		{"three words", `"0.5 token extra"`, 18, `"0.5 token extra" is not a price: write base units as an integer (5000) or whole tokens as a decimal, a space and the unit ("0.005 token")`},
		{"unit and no space", `"0.5token"`, 18, `"0.5token" is not a price: write base units as an integer (5000) or whole tokens as a decimal, a space and the unit ("0.005 token")`},
		{"bare fraction", "0.005", 18,
			`"0.005" has a fraction, and a bare number is in base units, which are whole; for whole tokens write the unit: "0.005 token"`},
		{"finer than any token", "0." + strings.Repeat("0", 255) + "1 token", 255,
			`"0.` + strings.Repeat("0", 255) + `1 token" has 256 digits after the point, more than any token's decimals (at most 255)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "default_price: 0\nrules:\n  - name: echofix\n    path: /a\n    price: " + tc.price + "\n"
			_, err := ParseWith([]byte(src), decimals(tc.decimals))
			if err == nil {
				t.Fatalf("price %s accepted, want %q", tc.price, tc.want)
			}
			errs := loadErrors(t, err)
			want := `line 5: rule 1 "echofix": price: ` + tc.want
			if len(errs) != 1 || errs[0].Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}

// TestTokenPriceLocated checks that a conversion error names the file, line and rule, and
// that default_price takes tokens too.
func TestTokenPriceLocated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.yaml")
	writeFile(t, path, "default_price: 0.5 token\nrules:\n  - {name: ok, path: /ok, price: 0.01 token}\n  - name: fine\n    path: /fine\n    price: 0.001 token\n")
	_, err := LoadWith(path, decimals(2))
	want := path + `:6: rule 2 "fine": price: "0.001 token" is not a whole number of base units: the token has 2 decimals, so at most 2 digits after the point`
	if err == nil || err.Error() != want {
		t.Fatalf("LoadWith:\n%v\nwant:\n%s", err, want)
	}
	table, err := LoadWith(path, decimals(3))
	if err != nil {
		t.Fatal(err)
	}
	if table.DefaultPrice().Int64() != 500 || table.TokenPrices() != 3 || table.Unconverted() != 0 {
		t.Errorf("default %v, %d token prices, %d unconverted; want 500, 3, 0", table.DefaultPrice(), table.TokenPrices(), table.Unconverted())
	}
	wantQuote(t, table, get("/ok"), 10, "ok")
	wantQuote(t, table, get("/fine"), 1, "fine")
}

// TestTokenPricesWithoutDecimals: a reader without the token refuses prices in tokens, and
// one asking for an unconverted check accepts them but cannot quote.
func TestTokenPricesWithoutDecimals(t *testing.T) {
	src := []byte("default_price: 0\nrules:\n  - {name: a, methods: [GET], path: /a, price: 0.5 token}\n  - {name: b, path: /b, price: 7}\n")
	_, err := Parse(src)
	if !errors.Is(err, ErrNoDecimals) || !strings.Contains(err.Error(), `line 3: rule 1 "a": price: "0.5 token" is in tokens: the token's decimals are not known`) {
		t.Errorf("Parse: %v, want ErrNoDecimals located at rule 1", err)
	}
	table, err := ParseWith(src, Options{Unconverted: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := table.Token(); ok || table.Unconverted() != 1 || table.TokenPrices() != 1 {
		t.Errorf("Token() known %v, Unconverted() %d, TokenPrices() %d; want false, 1, 1", ok, table.Unconverted(), table.TokenPrices())
	}
	if q, err := table.Quote(get("/b")); !errors.Is(err, ErrUnconverted) {
		t.Errorf("Quote of an unconverted table = %v, %v; want ErrUnconverted", q, err)
	}
	// Warnings still see that the rule is priced, so its free other methods are reported.
	if w := table.Warnings(); len(w) != 1 || !strings.Contains(w[0], `rule 1 "a" prices GET only`) {
		t.Errorf("Warnings() = %q, want the GET-only warning", w)
	}
	// Syntax errors are found without the decimals too.
	if _, err := ParseWith([]byte("default_price: 0.5 tokns\n"), Options{Unconverted: true}); err == nil || !strings.Contains(err.Error(), `unknown unit "tokns"`) {
		t.Errorf("unconverted check of a unit typo: %v", err)
	}
	// A Token makes Unconverted moot.
	table, err = ParseWith(src, Options{Token: &Token{Decimals: 1}, Unconverted: true})
	if err != nil || table.Unconverted() != 0 {
		t.Fatalf("ParseWith(Token, Unconverted) = %v unconverted, %v", table.Unconverted(), err)
	}
	wantQuote(t, table, get("/a"), 5, "a")
}

// TestWatcherConvertsReloads: every reload converts with the token the watcher started with.
func TestWatcherConvertsReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.yaml")
	writeFile(t, path, "default_price: 1 token\nrules: []\n")
	f := startWatcherOpts(t, path, WatcherOptions{Token: &Token{Decimals: 6}})
	if p := f.w.Current().DefaultPrice(); p.Int64() != 1_000_000 {
		t.Fatalf("default price %v, want 1000000", p)
	}
	writeFile(t, path, "default_price: 0.25 token\nrules: []\n")
	if r := f.next(t); r.err != nil || r.table.DefaultPrice().Int64() != 250_000 {
		t.Fatalf("reload: %v, %v; want 250000", r.table, r.err)
	}
	writeFile(t, path, "default_price: 0.0000001 token\nrules: []\n")
	if r := f.next(t); r.err == nil || !strings.Contains(r.err.Error(), path+`:1: default_price: "0.0000001 token" is not a whole number of base units: the token has 6 decimals`) {
		t.Fatalf("reload of an inexact price: %v", r.err)
	}
	if p := f.w.Current().DefaultPrice(); p.Int64() != 250_000 {
		t.Errorf("after a refused reload the default price is %v, want 250000", p)
	}
	if tok, ok := f.w.Current().Token(); !ok || tok.Decimals != 6 {
		t.Errorf("Token() = %v, %v", tok, ok)
	}
}
