package client_test

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/discovery"
)

// A client reads the price list of a running server through the gateway, as a client behind
// Envoy would: at the well-known address of its base URL, and at the gateway path.
func TestPrices(t *testing.T) {
	h := start(t)
	d := h.chain.Deployment()
	doc, err := client.Prices(t.Context(), nil, h.srv.Gateway.URL())
	if err != nil {
		t.Fatal(err)
	}
	if doc.Version != discovery.Version || doc.GatewayPath != "/api/1" || doc.ChainID != devchain.ChainID ||
		doc.ReceiverAddress.Hex() != h.receiver().Hex() || doc.ContractAddress.Hex() != d.Channels.Hex() ||
		doc.Token.Address.Hex() != d.Token.Hex() || doc.Token.Symbol != devchain.TokenSymbol ||
		doc.Token.Decimals == nil || *doc.Token.Decimals != devchain.TokenDecimals ||
		!reflect.DeepEqual(doc.ProofSchemes, []string{"eip712", "legacy"}) || doc.EIP712Domain == nil {
		t.Errorf("how to pay: %+v", doc)
	}
	// The table (authz/testdata/prices.yaml), in order, typed.
	type rule struct {
		name, methods, path, price string
		computed                   bool
	}
	var got []rule
	for _, r := range doc.Rules {
		price := ""
		if r.Price != nil {
			price = r.Price.Base.String() + " = " + r.Price.Tokens
		}
		got = append(got, rule{r.Name, strings.Join(r.Methods, ","), r.Path, price, r.Computed})
	}
	want := []rule{
		{"echofix", "GET,HEAD", "/echofix/(?P<param>[^/]+)", "5 = 0.000000000000000005", false},
		{"echodyn", "", "/echodyn/(?P<param>[^/]+)", "", true},
		{"free", "", "/free(/.*)?", "0 = 0", false},
	}
	if !reflect.DeepEqual(got, want) || doc.DefaultPrice.Base.Int64() != 1 {
		t.Errorf("rules %+v, default %v\nwant %+v, default 1", got, doc.DefaultPrice.Base, want)
	}
	// The price stated is the one a 402 asks.
	resp, err := http.Get(h.srv.Gateway.URL() + "/echofix/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 402 || resp.Header.Get("RDN-Price") != doc.Rules[0].Price.Base.String() {
		t.Errorf("the 402 of /echofix/x: %d %s", resp.StatusCode, resp.Header.Get("RDN-Price"))
	}

	atGateway, err := client.Prices(t.Context(), nil, h.srv.Gateway.URL()+"/api/1/prices")
	if err != nil || !reflect.DeepEqual(atGateway, doc) {
		t.Errorf("at the gateway path: %+v %v", atGateway, err)
	}
}

// What is not a discovery document of this version is refused with why.
func TestPricesRefusesOtherDocuments(t *testing.T) {
	body := map[string]string{
		"/v2":      `{"version": 2, "rules": []}`,
		"/none":    `{"rules": []}`,
		"/html":    `<html>`,
		"/badrule": `{"version": 1, "gateway_path": "/api/1", "chain_id": 1, "proof_schemes": ["legacy"], "default_price": {"base": "0"}, "rules": [{"name": "a", "path": "/a", "computed": false}]}`,
		"/amount":  `{"version": 1, "gateway_path": "/api/1", "chain_id": 1, "proof_schemes": ["legacy"], "default_price": {"base": 5}, "rules": []}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := body[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/html" {
			w.Header().Set("Content-Type", "text/html")
		} else {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		_, _ = w.Write([]byte(b))
	}))
	t.Cleanup(srv.Close)
	for path, want := range map[string]string{
		"":         "404 Not Found, not a discovery document", // the well-known address
		"/v2":      "version 2; this client reads version 1",
		"/none":    "no version",
		"/html":    `"text/html", not a JSON discovery document`,
		"/badrule": `rule 1 "a": a price must be given exactly when it is not computed`,
		"/amount":  "an amount is a decimal string",
	} {
		if _, err := client.Prices(t.Context(), nil, srv.URL+path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want it to say %q", path, err, want)
		}
	}
	if _, err := client.Prices(t.Context(), nil, "ftp://example.com/"); err == nil {
		t.Error("an ftp URL was read")
	}
}
