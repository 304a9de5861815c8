package pricing

import (
	"math/big"
	"strconv"
	"testing"
)

var fuzzMaxPrice = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 192), big.NewInt(1))

// fuzzRequests are the requests every table the fuzzer builds is asked to price.
var fuzzRequests = []Request{
	{Method: "GET", Host: "api.example.com", Path: "/echofix/foo", RawQuery: "n=3&x=y"},
	{Method: "POST", Host: "h:8080", Path: "/echodyn/12345678901234567890?a=1", Headers: map[string]string{"content-length": "10", "x-size": "-1"}},
	{Method: "HEAD", Path: "/", ContextExtensions: map[string]string{ExtRule: "r"}},
	{Method: "DELETE", Path: "/a/b/c", ContextExtensions: map[string]string{ExtPrice: "7"}},
	{Method: "GET", Path: "/%zz/ü", RawQuery: "%", ContextExtensions: map[string]string{"other": "x"}},
}

// quoteAll prices fuzzRequests: an error is allowed (the request is refused), a panic or a
// price outside [0, 2^192-1] is not.
func quoteAll(t *testing.T, table *Table) {
	t.Helper()
	if table == nil {
		t.Fatal("Parse returned neither a table nor an error")
	}
	if p := table.DefaultPrice(); p == nil || p.Sign() < 0 || p.Cmp(fuzzMaxPrice) > 0 {
		t.Fatalf("default price %v out of range", p)
	}
	for i := range fuzzRequests {
		r := fuzzRequests[i]
		q, err := table.Quote(&r)
		if err != nil {
			continue
		}
		if q.Price == nil || q.Price.Sign() < 0 || q.Price.Cmp(fuzzMaxPrice) > 0 {
			t.Fatalf("request %d: price %v out of [0, 2^192-1]", i, q.Price)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("default_price: 0\n"))
	f.Add([]byte("default_price: \"6277101735386680763835789423207666416102355444464034512895\"\nrules: []\n"))
	f.Add([]byte("default_price: 1\nrules:\n- name: r\n  methods: [get, HEAD]\n  host: \"api\\\\.example\\\\.com(:[0-9]+)?\"\n  path: \"/echofix/(?P<param>[^/]+)\"\n  price: 5\n"))
	f.Add([]byte("default_price: 0\nrules:\n- name: r\n  path: \"/echodyn/(?P<param>[^/]+)\"\n  price_expr: \"size(param) * 1000000000000000000\"\n- name: q\n  path: \"/.*\"\n  price_expr: \"1\"\n"))
	f.Add([]byte("default_price: &a 3\nrules:\n- name: *a\n  path: x\n  price: *a\n"))
	f.Add([]byte("default_price: -1\nrules: {a: b}\nextra: 1\n"))
	f.Add([]byte("rules:\n- name: r\n  path: \"(\"\n  price: 1\n  price_expr: \"1\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		table, err := Parse(data)
		if err != nil {
			if table != nil {
				t.Fatalf("Parse returned a table and %v", err)
			}
			return
		}
		quoteAll(t, table)
	})
}

func FuzzPriceExpr(f *testing.F) {
	for _, e := range []string{
		`1`, `size(p) * 1000`, `p == "" ? 0 : 5`, `uint(2) * uint(3)`, `-1`,
		`6277101735386680763835789423207666416102355444464034512895`,
		`1 / 0`, `int(p)`, `size(p) * 9223372036854775807`, `"x"`, `1.5`, `[1][2]`,
		`has(query.n) ? int(query.n) : 1`, `headers["content-length"]`, `method == "GET" ? 1 : 2`,
	} {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		doc := "default_price: 0\nrules:\n- name: r\n  path: \"/(?P<p>.*)\"\n  price_expr: " + strconv.Quote(expr) + "\n"
		table, err := Parse([]byte(doc))
		if err != nil {
			return
		}
		quoteAll(t, table)
	})
}
