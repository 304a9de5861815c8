package pricing

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

func mustParse(t testing.TB, src string) *Table {
	t.Helper()
	table, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return table
}

// wantQuote asserts the price and rule of a request.
func wantQuote(t *testing.T, table *Table, r *Request, price int64, rule string) {
	t.Helper()
	q, err := table.Quote(r)
	if err != nil {
		t.Fatalf("Quote(%s %s%s): %v", r.Method, r.Host, r.Path, err)
	}
	if q.Price == nil || q.Price.Cmp(big.NewInt(price)) != 0 || q.Rule != rule {
		t.Errorf("Quote(%s %s%s) = %v by %q, want %d by %q", r.Method, r.Host, r.Path, q.Price, q.Rule, price, rule)
	}
}

func wantQuoteErr(t *testing.T, table *Table, r *Request, substr string) {
	t.Helper()
	q, err := table.Quote(r)
	if err == nil {
		t.Fatalf("Quote(%s %s) = %v by %q, want an error containing %q", r.Method, r.Path, q.Price, q.Rule, substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("Quote(%s %s) error %q does not contain %q", r.Method, r.Path, err, substr)
	}
}

func get(path string) *Request { return &Request{Method: "GET", Host: "api.example.com", Path: path} }

// TestDocExamples checks that prices.yaml, the documented example, says what it claims, with
// the dev chain's 18-decimal token.
func TestDocExamples(t *testing.T) {
	table, err := LoadWith("../prices.yaml", Options{Token: &Token{Decimals: 18}})
	if err != nil {
		t.Fatalf("Load(../prices.yaml):\n%v", err)
	}
	if table.Len() != 3 {
		t.Errorf("Len() = %d, want 3", table.Len())
	}
	const milli = 1_000_000_000_000_000 // 0.001 token
	wantQuote(t, table, get("/echofix/foo"), 5*milli, "echofix")
	wantQuote(t, table, &Request{Method: "HEAD", Path: "/echofix/foo"}, 5*milli, "echofix")
	wantQuote(t, table, get("/echodyn/foo"), 3*milli, "echodyn")
	wantQuote(t, table, get("/echodyn/abcdefg"), 7*milli, "echodyn")
	wantQuote(t, table, get("/healthz"), 0, "free-health")
	wantQuote(t, table, get("/elsewhere"), 0, "")
	// echofix sells every method the demo upstream answers: none is free.
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		wantQuote(t, table, &Request{Method: m, Path: "/echofix/foo"}, 5*milli, "echofix")
	}
	if tok, ok := table.Token(); !ok || tok.Decimals != 18 || table.TokenPrices() != 1 {
		t.Errorf("Token() = %v, %v, TokenPrices() = %d; want 18 decimals, true, 1", tok, ok, table.TokenPrices())
	}
	// Without the token's decimals the example does not load, and says why.
	if _, err := Load("../prices.yaml"); !errors.Is(err, ErrNoDecimals) {
		t.Errorf("Load without decimals: %v, want ErrNoDecimals", err)
	}
}

func TestDefaultPrice(t *testing.T) {
	table := mustParse(t, `
default_price: 9
rules:
  - {name: a, path: /a, price: 1}
`)
	wantQuote(t, table, get("/b"), 9, "")
	wantQuote(t, table, get("/a"), 1, "a")
	if table.DefaultPrice().Int64() != 9 {
		t.Errorf("DefaultPrice() = %v, want 9", table.DefaultPrice())
	}
}

func TestFirstMatchWins(t *testing.T) {
	table := mustParse(t, `
default_price: 100
rules:
  - {name: special, path: /items/special, price: 1}
  - {name: items, path: "/items/[^/]+", price: 2}
  - {name: shadowed, path: /items/other, price: 3}
`)
	wantQuote(t, table, get("/items/special"), 1, "special")
	wantQuote(t, table, get("/items/x"), 2, "items")
	wantQuote(t, table, get("/items/other"), 2, "items")
}

func TestMethods(t *testing.T) {
	table := mustParse(t, `
default_price: 100
rules:
  - {name: reads, methods: [get, Head], path: "/r", price: 1}
  - {name: any, path: "/r", price: 2}
`)
	for _, m := range []string{"GET", "HEAD", "get"} {
		wantQuote(t, table, &Request{Method: m, Path: "/r"}, 1, "reads")
	}
	for _, m := range []string{"POST", "DELETE", "GETX"} {
		wantQuote(t, table, &Request{Method: m, Path: "/r"}, 2, "any")
	}
}

func TestHost(t *testing.T) {
	table := mustParse(t, `
default_price: 100
rules:
  - {name: api, host: "api\\.example\\.com", path: "/x", price: 1}
  - {name: tenant, host: "(?P<tenant>[a-z]+)\\.example\\.com(:[0-9]+)?", path: "/x", price_expr: "size(tenant)"}
`)
	wantQuote(t, table, &Request{Host: "api.example.com", Path: "/x"}, 1, "api")
	// Anchored: no suffix, prefix or port unless the expression allows it.
	wantQuote(t, table, &Request{Host: "api.example.com.evil", Path: "/x"}, 100, "")
	wantQuote(t, table, &Request{Host: "xapi.example.com", Path: "/x"}, 4, "tenant")
	wantQuote(t, table, &Request{Host: "api.example.com:8080", Path: "/x"}, 3, "tenant")
	wantQuote(t, table, &Request{Host: "shop.example.com", Path: "/x"}, 4, "tenant")
	wantQuote(t, table, &Request{Host: "other.org", Path: "/x"}, 100, "")
}

func TestAnchoring(t *testing.T) {
	table := mustParse(t, `
default_price: 100
rules:
  - {name: echofix, path: "/echofix/(?P<param>[^/]+)", price: 5}
  - {name: a, path: "/a", price: 1}
  - {name: alt, path: "/b|/bc", price: 2}
`)
	wantQuote(t, table, get("/echofix/foo"), 5, "echofix")
	wantQuote(t, table, get("/echofix/foo/bar"), 100, "")
	wantQuote(t, table, get("/a"), 1, "a")
	wantQuote(t, table, get("/ab"), 100, "")
	wantQuote(t, table, get("/x/a"), 100, "")
	// The anchors apply to the whole alternation, not to its first and last branch.
	wantQuote(t, table, get("/bc"), 2, "alt")
	wantQuote(t, table, get("/bcd"), 100, "")
}

func TestUnterminatedQuoteInRegexStaysAnchored(t *testing.T) {
	table := mustParse(t, `
default_price: 100
rules:
  - {name: literal, path: "\\Q/a.b", price: 1}
`)
	wantQuote(t, table, get("/a.b"), 1, "literal")
	wantQuote(t, table, get("/aXb"), 100, "")
	wantQuote(t, table, get("/a.b/c"), 100, "")
}

func TestQueryExcludedFromPath(t *testing.T) {
	table := mustParse(t, `
default_price: 100
rules:
  - {name: a, path: "/a", price: 1}
  - {name: q, path: "/q", price_expr: "int(query.n)"}
`)
	wantQuote(t, table, &Request{Path: "/a", RawQuery: "x=1"}, 1, "a")
	// Envoy's CheckRequest path carries the query: it is cut off before matching.
	wantQuote(t, table, &Request{Path: "/a?x=1"}, 1, "a")
	wantQuote(t, table, &Request{Path: "/q?n=7"}, 7, "q")
	// An explicit RawQuery wins over what follows '?' in Path.
	wantQuote(t, table, &Request{Path: "/q?n=7", RawQuery: "n=8"}, 8, "q")
}

func TestExpressions(t *testing.T) {
	table := mustParse(t, `
default_price: 100
rules:
  - {name: pages, path: /pages, price_expr: 'int(query.?pages.orValue("1")) * 10'}
  - {name: tier, path: /tier, price_expr: 'headers[?"x-tier"].orValue("") == "gold" ? 50 : 5'}
  - {name: method, path: /method, price_expr: 'method == "POST" ? 100u : 1u'}
  - {name: path, path: "/path/.*", price_expr: 'size(path)'}
  - {name: neg, path: /neg, price_expr: '0 - size(path)'}
  - {name: dyn, path: /dyn, price_expr: 'dyn(query.v)'}
  - {name: parse, path: /parse, price_expr: 'int(query.v)'}
  - {name: nokey, path: /nokey, price_expr: 'int(headers["x-missing"])'}
  - {name: optional, path: "/opt/(?P<a>x)?(?P<b>y)?", price_expr: 'size(a) * 10 + size(b)'}
  - name: expensive
    path: /expensive
    price_expr: >
      [0,1,2,3,4,5,6,7,8,9].map(a, [0,1,2,3,4,5,6,7,8,9].map(b, [0,1,2,3,4,5,6,7,8,9].map(c,
      [0,1,2,3,4,5,6,7,8,9].map(d, a + b + c + d + size(path))))).size()
`)
	wantQuote(t, table, &Request{Path: "/pages"}, 10, "pages")
	wantQuote(t, table, &Request{Path: "/pages", RawQuery: "pages=3"}, 30, "pages")
	// The first value of a repeated parameter counts, and escapes are decoded.
	wantQuote(t, table, &Request{Path: "/pages", RawQuery: "pages=%32&pages=9"}, 20, "pages")
	wantQuote(t, table, &Request{Path: "/tier"}, 5, "tier")
	wantQuote(t, table, &Request{Path: "/tier", Headers: map[string]string{"x-tier": "gold"}}, 50, "tier")
	wantQuote(t, table, &Request{Method: "POST", Path: "/method"}, 100, "method")
	wantQuote(t, table, &Request{Method: "GET", Path: "/method"}, 1, "method")
	wantQuote(t, table, &Request{Path: "/path/abc"}, 9, "path")
	wantQuote(t, table, &Request{Path: "/opt/x"}, 10, "optional")
	wantQuote(t, table, &Request{Path: "/opt/xy"}, 11, "optional")
	wantQuote(t, table, &Request{Path: "/opt/"}, 0, "optional")

	wantQuoteErr(t, table, &Request{Path: "/neg"}, `rule "neg": price_expr: evaluated to -4, a negative price`)
	wantQuoteErr(t, table, &Request{Path: "/dyn", RawQuery: "v=x"}, `want int or uint`)
	wantQuoteErr(t, table, &Request{Path: "/parse", RawQuery: "v=x"}, `rule "parse"`)
	wantQuoteErr(t, table, &Request{Path: "/nokey"}, `no such key`)
	wantQuoteErr(t, table, &Request{Path: "/expensive"}, `cost limit exceeded`)
}

func TestContextExtensions(t *testing.T) {
	table := mustParse(t, `
default_price: 100
rules:
  - {name: fixed, methods: [GET], path: /fixed, price: 5}
  - {name: dyn, path: "/dyn/(?P<param>[^/]+)", price_expr: "size(param) + 1"}
`)
	ext := func(r *Request, kv ...string) *Request {
		r.ContextExtensions = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			r.ContextExtensions[kv[i]] = kv[i+1]
		}
		return r
	}
	// uraiden.price replaces the table, matching rule or not.
	wantQuote(t, table, ext(get("/fixed"), ExtPrice, "42"), 42, "")
	wantQuote(t, table, ext(get("/nowhere"), ExtPrice, "0"), 0, "")
	q, err := table.Quote(ext(get("/x"), ExtPrice, MaxPrice.String()))
	if err != nil || q.Price.Cmp(MaxPrice) != 0 {
		t.Errorf("Quote with %s=2^192-1 = %v, %v", ExtPrice, q.Price, err)
	}
	// uraiden.price wins over uraiden.rule.
	wantQuote(t, table, ext(get("/fixed"), ExtPrice, "42", ExtRule, "fixed"), 42, "")
	// Other keys are someone else's business.
	wantQuote(t, table, ext(get("/fixed"), "other", "x"), 5, "fixed")

	// uraiden.rule applies the rule whatever its method and path say.
	wantQuote(t, table, ext(&Request{Method: "POST", Path: "/elsewhere"}, ExtRule, "fixed"), 5, "fixed")
	wantQuote(t, table, ext(get("/dyn/abcd"), ExtRule, "dyn"), 5, "dyn")
	// Its captures are empty when its path does not match.
	wantQuote(t, table, ext(get("/elsewhere/abcd"), ExtRule, "dyn"), 1, "dyn")

	for _, bad := range []string{"", "abc", "-1", "1.5", "0x10", "007", " 1", MaxPrice.String() + "0"} {
		wantQuoteErr(t, table, ext(get("/fixed"), ExtPrice, bad), "context extension uraiden.price")
	}
	wantQuoteErr(t, table, ext(get("/fixed"), ExtRule, "nosuch"), `context extension uraiden.rule: no rule named "nosuch"`)
	wantQuoteErr(t, table, ext(get("/fixed"), ExtRule, ""), `no rule named ""`)
}

func TestBigPrices(t *testing.T) {
	table := mustParse(t, `
default_price: "1000000000000000000000000"
rules:
  - {name: quoted, path: /quoted, price: "340282366920938463463374607431768211456"}
  - {name: plain, path: /plain, price: 340282366920938463463374607431768211457}
  - {name: max, path: /max, price: "6277101735386680763835789423207666416102355444464034512895"}
  - {name: uint64, path: /uint64, price: 18446744073709551615}
`)
	want := func(path, price, rule string) {
		t.Helper()
		q, err := table.Quote(get(path))
		if err != nil {
			t.Fatal(err)
		}
		if q.Price.String() != price || q.Rule != rule {
			t.Errorf("Quote(%s) = %s by %q, want %s by %q", path, q.Price, q.Rule, price, rule)
		}
	}
	want("/quoted", "340282366920938463463374607431768211456", "quoted")
	want("/plain", "340282366920938463463374607431768211457", "plain")
	want("/max", MaxPrice.String(), "max")
	want("/uint64", "18446744073709551615", "uint64")
	want("/other", "1000000000000000000000000", "")
}

func TestQuoteStaticDoesNotAllocate(t *testing.T) {
	table := mustParse(t, `
default_price: 1
rules:
  - {name: other, methods: [POST], host: "h", path: "/other/(?P<x>.*)", price: 2}
  - {name: echofix, methods: [GET], host: "api\\.example\\.com", path: "/echofix/(?P<param>[^/]+)", price: 5}
  - {name: dyn, path: "/dyn/(?P<param>[^/]+)", price_expr: "size(param)"}
`)
	for _, path := range []string{"/echofix/foo", "/nowhere?a=b"} {
		r := get(path)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := table.Quote(r); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Quote(%s) allocates %v times, want 0", path, allocs)
		}
	}
}

func TestQuoteConcurrent(t *testing.T) {
	table := mustParse(t, `
default_price: 1
rules:
  - {name: dyn, path: "/dyn/(?P<param>[^/]+)", price_expr: "size(param) + int(query.?n.orValue('0'))"}
`)
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for j := 0; j < 200 && err == nil; j++ {
				var q Quote
				q, err = table.Quote(&Request{Path: "/dyn/" + strings.Repeat("x", i), RawQuery: "n=1"})
				if err == nil && q.Price.Int64() != int64(i+1) {
					err = fmt.Errorf("/dyn/%d x: price %v, want %d", i, q.Price, i+1)
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkQuote(b *testing.B) {
	table := mustParse(b, `
default_price: 0
rules:
  - {name: health, path: /healthz, price: 0}
  - {name: echofix, methods: [GET, HEAD], path: "/echofix/(?P<param>[^/]+)", price: 5}
  - {name: echodyn, path: "/echodyn/(?P<param>[^/]+)", price_expr: "size(param)"}
  - {name: query, path: "/q", price_expr: 'int(query.?n.orValue("1"))'}
`)
	for _, bc := range []struct {
		name string
		req  *Request
	}{
		{"static", get("/echofix/foo")},
		{"default", get("/nothing/here")},
		{"expr", get("/echodyn/abcdefg")},
		{"expr-query", &Request{Method: "GET", Path: "/q", RawQuery: "n=5&m=6"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := table.Quote(bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
