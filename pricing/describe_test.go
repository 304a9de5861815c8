package pricing

import (
	"math/big"
	"reflect"
	"testing"
)

func TestRulesDescribeTheTableAsWritten(t *testing.T) {
	src := `default_price: 7
rules:
  - name: fixed
    methods: [get, HEAD]
    host: "api\\.example\\.com(:[0-9]+)?"
    path: "/fixed/(?P<id>[^/]+)"
    price: 0.005 token
  - name: computed
    path: /dyn/(?P<param>.*)
    price_expr: "size(param) * 2"
  - {name: free, path: /healthz, price: 0}
`
	table, err := ParseWith([]byte(src), Options{Token: &Token{Decimals: 18}})
	if err != nil {
		t.Fatal(err)
	}
	got := table.Rules()
	want := []RuleInfo{
		{Name: "fixed", Methods: []string{"GET", "HEAD"}, Host: `api\.example\.com(:[0-9]+)?`, Path: "/fixed/(?P<id>[^/]+)",
			Price: big.NewInt(5_000_000_000_000_000)},
		{Name: "computed", Path: "/dyn/(?P<param>.*)"},
		{Name: "free", Path: "/healthz", Price: big.NewInt(0)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Rules()\n got %+v\nwant %+v", got, want)
	}
	if got[0].Computed() || !got[1].Computed() || got[2].Computed() {
		t.Error("Computed() is not whether the rule has a price_expr")
	}
	// A description is a copy: changing it changes no quote.
	got[0].Price.SetInt64(1)
	got[0].Methods[0] = "POST"
	q, err := table.Quote(&Request{Method: "GET", Host: "api.example.com", Path: "/fixed/x"})
	if err != nil || q.Price.Cmp(big.NewInt(5_000_000_000_000_000)) != 0 || q.Rule != "fixed" {
		t.Errorf("after changing a description the table quotes %v %v", q, err)
	}
}
