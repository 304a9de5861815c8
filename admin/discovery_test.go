package admin_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/testkit/discoverytest"
	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

// discoveryPrices is the price table of the discovery tests: a price in tokens restricted
// to methods and a host, a computed one, one in base units, a free one, and a default.
const discoveryPrices = `default_price: 1000
rules:
  - name: report
    methods: [get, HEAD]
    host: "api\\.example\\.com(:[0-9]+)?"
    path: "/reports/(?P<id>[0-9]+)"
    price: 0.005 token
  - name: search
    path: /search
    price_expr: "size(query.?q.orValue('')) * 1000 + (\"x-secret-tier\" in headers ? 7 : 0)"
  - name: paid
    path: "/paid(/.*)?"
    price: 5
  - name: free-health
    path: /healthz
    price: 0
`

// upstreamSentinel is an internal upstream address configured beside the document, which
// it must never show.
const upstreamSentinel = "http://upstream.internal.example:8000"

// writePrices replaces the price table file atomically, as an editor or Kubernetes does.
func writePrices(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// discoveryHarness is a server on the dev chain pricing with discoveryPrices from a file
// the test may change.
func discoveryHarness(t *testing.T) (*harness, string) {
	t.Helper()
	prices := filepath.Join(t.TempDir(), "prices.yaml")
	writePrices(t, prices, discoveryPrices)
	h := newHarness(t, func(c *config.Config) {
		c.Pricing.File = prices
		c.Gateway.Upstream = upstreamSentinel
	})
	h.start()
	return h, prices
}

// validDocument checks a served document against the JSON Schema and returns it as generic
// JSON.
func validDocument(t *testing.T, body []byte) map[string]any {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the document is not JSON: %v\n%s", err, body)
	}
	if err := discoverytest.Schema(t).Validate(inst); err != nil {
		t.Fatalf("the document does not follow its schema: %v\n%s", err, body)
	}
	var doc map[string]any // as encoding/json reads it (inst holds json.Number)
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// etagOf a strong ETag of 128 bits in hex.
var etagOf = regexp.MustCompile(`^"[0-9a-f]{32}"$`)

// getWith sends a GET or HEAD with extra headers.
func getWith(t *testing.T, method, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body.Bytes()}
}

// The document states exactly the table and the chain settings, and nothing of the
// server's own configuration.
func TestDiscoveryDocument(t *testing.T) {
	h, _ := discoveryHarness(t)
	d := h.chain.Deployment()
	r := h.do("GET", "/api/1/prices", "", "")
	if r.status != 200 {
		t.Fatalf("GET /api/1/prices: %d %s", r.status, r.body)
	}
	got := validDocument(t, r.body)
	want := fmt.Sprintf(`{
  "version": 1,
  "gateway_path": "/api/1",
  "chain_id": %d,
  "receiver_address": %q,
  "contract_address": %q,
  "token": {"address": %q, "symbol": "RDNDEV", "decimals": 18},
  "proof_schemes": ["eip712", "legacy"],
  "eip712_domain": {"name": "uraiden", "version": "1", "chainId": %[1]d, "verifyingContract": %[3]q},
  "confirmations": %[5]d,
  "challenge_period": %[6]d,
  "default_price": {"base": "1000", "tokens": "0.000000000000001"},
  "rules": [
    {"name": "report", "methods": ["GET", "HEAD"], "host": "api\\.example\\.com(:[0-9]+)?", "path": "/reports/(?P<id>[0-9]+)",
     "price": {"base": "5000000000000000", "tokens": "0.005"}, "computed": false},
    {"name": "search", "methods": [], "path": "/search", "computed": true},
    {"name": "paid", "methods": [], "path": "/paid(/.*)?", "price": {"base": "5", "tokens": "0.000000000000000005"}, "computed": false},
    {"name": "free-health", "methods": [], "path": "/healthz", "price": {"base": "0", "tokens": "0"}, "computed": false}
  ]
}`, devchain.ChainID, h.receiver().Hex(), d.Channels.Hex(), d.Token.Hex(), confirmations, contracts.MinChallengePeriod)
	var wantJSON map[string]any
	if err := json.Unmarshal([]byte(want), &wantJSON); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantJSON) {
		t.Errorf("the document\n%s\nwant\n%s", r.body, want)
	}

	// Nothing of the configuration beyond what a 402 tells: no token, key, listener,
	// upstream, ledger, nor how a computed price is computed.
	key := hex.EncodeToString(crypto.FromECDSA(h.account(0)))
	for _, secret := range []string{testToken, key, key[:16], h.cfg.Ledger.Dir, "127.0.0.1", upstreamSentinel, "upstream.internal",
		"x-secret-tier", "size(", "price_expr", "9001", "9002", h.srv.Admin.Addr()} {
		if strings.Contains(string(r.body), secret) {
			t.Errorf("the document shows %q:\n%s", secret, r.body)
		}
	}

	// Public and cacheable.
	etag := r.header.Get("ETag")
	if !etagOf.MatchString(etag) || r.header.Get("Cache-Control") != "public, max-age=60" ||
		r.header.Get("Content-Type") != "application/json" || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("headers %v", r.header)
	}
	if sum := sha256.Sum256(r.body); etag != `"`+hex.EncodeToString(sum[:16])+`"` {
		t.Errorf("ETag %s, not the content's hash %x", etag, sum)
	}
	// The well-known address serves the same bytes.
	if wk := h.do("GET", "/.well-known/uraiden", "", ""); wk.status != 200 || !bytes.Equal(wk.body, r.body) || wk.header.Get("ETag") != etag {
		t.Errorf("/.well-known/uraiden: %d %s %s", wk.status, wk.header.Get("ETag"), wk.body)
	}
	// With a token, the same: nothing more for the operator.
	if op := h.do("GET", "/api/1/prices", testToken, ""); !bytes.Equal(op.body, r.body) {
		t.Errorf("the operator's document differs: %s", op.body)
	}
	for _, tc := range []struct {
		ifNoneMatch string
		status      int
	}{
		{etag, 304},
		{"W/" + etag, 304}, // If-None-Match compares weakly
		{`"other", ` + etag, 304},
		{"*", 304},
		{`"other"`, 200},
		{strings.Trim(etag, `"`), 200}, // not an entity tag
	} {
		for _, path := range []string{"/api/1/prices", "/.well-known/uraiden"} {
			c := getWith(t, "GET", h.base+path, map[string]string{"If-None-Match": tc.ifNoneMatch})
			if c.status != tc.status || c.header.Get("ETag") != etag || c.header.Get("Cache-Control") != "public, max-age=60" {
				t.Errorf("%s If-None-Match %s: %d %v, want %d", path, tc.ifNoneMatch, c.status, c.header, tc.status)
			}
			if tc.status == 304 && len(c.body) != 0 {
				t.Errorf("%s: a 304 with a body: %s", path, c.body)
			}
		}
	}
	head := getWith(t, "HEAD", h.base+"/api/1/prices", nil)
	if head.status != 200 || len(head.body) != 0 || head.header.Get("Content-Length") != fmt.Sprint(len(r.body)) || head.header.Get("ETag") != etag {
		t.Errorf("HEAD: %d %v %q", head.status, head.header, head.body)
	}
	if post := h.do("POST", "/api/1/prices", "", "{}"); post.status != 405 || post.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", post.status, post.header)
	}
}

// The document follows the price table: a new file on disk is reloaded by the watcher, and
// the document and its ETag change with it; a cache holding the old one gets the new one.
func TestDiscoveryFollowsThePriceTable(t *testing.T) {
	h, prices := discoveryHarness(t)
	first := h.do("GET", "/api/1/prices", "", "")
	etag := first.header.Get("ETag")
	gen := h.srv.Prices.Generation()
	writePrices(t, prices, strings.Replace(discoveryPrices, "price: 0.005 token", "price: 0.25 token", 1))
	deadline := time.Now().Add(10 * time.Second)
	for h.srv.Prices.Generation() == gen {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not reload the price table")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := getWith(t, "GET", h.base+"/api/1/prices", map[string]string{"If-None-Match": etag})
	if r.status != 200 || r.header.Get("ETag") == etag || !etagOf.MatchString(r.header.Get("ETag")) {
		t.Fatalf("after a reload, a cache holding %s: %d %s", etag, r.status, r.header.Get("ETag"))
	}
	doc := validDocument(t, r.body)
	price := doc["rules"].([]any)[0].(map[string]any)["price"]
	if want := map[string]any{"base": "250000000000000000", "tokens": "0.25"}; !reflect.DeepEqual(price, want) {
		t.Errorf("the reloaded rule's price %v, want %v", price, want)
	}
	if wk := h.do("GET", "/.well-known/uraiden", "", ""); !bytes.Equal(wk.body, r.body) {
		t.Errorf("/.well-known/uraiden still serves the old document: %s", wk.body)
	}
	// Only the changed rule changed.
	old := validDocument(t, first.body)
	old["rules"].([]any)[0].(map[string]any)["price"] = price
	if !reflect.DeepEqual(old, doc) {
		t.Errorf("the reload changed more than the price:\n%s\nwas\n%s", r.body, first.body)
	}
}

// Without decimals() no price is in tokens, without symbol() no symbol is named, a legacy
// contract offers no domain, and the document is at the server's own prefix while naming
// the gateway path clients are given.
func TestDiscoveryOfALegacyTokenWithoutMetadata(t *testing.T) {
	table, err := pricing.Parse([]byte(`default_price: 0
rules:
  - name: a
    methods: [POST]
    path: /a
    price: "1000000000000000000000"
  - name: b
    path: /b/(?P<x>.*)
    price_expr: size(x)
`))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := bareAdmin(t, "/pay/api", func(c *admin.Config) {
		c.ChainID, c.ProofSchemes = 5, []rdn.Scheme{rdn.SchemeLegacy}
		c.Discovery = &admin.Discovery{Prices: func() *pricing.Table { return table }, GatewayPath: "/api/1",
			Confirmations: 12, ChallengePeriod: 40320}
	})
	r := do(t, "GET", base+"/pay/api/prices", "", "")
	if r.status != 200 {
		t.Fatalf("GET /pay/api/prices: %d %s", r.status, r.body)
	}
	got := validDocument(t, r.body)
	zero := "0x0000000000000000000000000000000000000000"
	want := map[string]any{
		"version": 1.0, "gateway_path": "/api/1", "chain_id": 5.0,
		"receiver_address": zero, "contract_address": zero, "token": map[string]any{"address": zero},
		"proof_schemes": []any{"legacy"}, "confirmations": 12.0, "challenge_period": 40320.0,
		"default_price": map[string]any{"base": "0"},
		"rules": []any{
			map[string]any{"name": "a", "methods": []any{"POST"}, "path": "/a", "price": map[string]any{"base": "1000000000000000000000"}, "computed": false},
			map[string]any{"name": "b", "methods": []any{}, "path": "/b/(?P<x>.*)", "computed": true},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the document\n%s\nwant %v", r.body, want)
	}
	if wk := do(t, "GET", base+"/.well-known/uraiden", "", ""); !bytes.Equal(wk.body, r.body) {
		t.Errorf("/.well-known/uraiden: %d %s", wk.status, wk.body)
	}
	if r := do(t, "GET", base+"/api/1/prices", "", ""); r.status != 404 {
		t.Errorf("the default prefix answers under another: %d", r.status)
	}
	// Without a gateway path, the document names the server's own prefix.
	base, _ = bareAdmin(t, "/pay/api/", func(c *admin.Config) {
		c.ChainID = 5
		c.Discovery = &admin.Discovery{Prices: func() *pricing.Table { return table }, ChallengePeriod: 500}
	})
	if got := validDocument(t, do(t, "GET", base+"/.well-known/uraiden", "", "").body); got["gateway_path"] != "/pay/api" {
		t.Errorf("gateway_path %v, want the prefix /pay/api", got["gateway_path"])
	}
	// Without Discovery, no document (and the schema and OpenAPI documents still are).
	base, _ = bareAdmin(t, "/api/1", nil)
	for path, status := range map[string]int{"/api/1/prices": 404, "/.well-known/uraiden": 404, "/api/1/prices.schema.json": 200, "/api/1/openapi.yaml": 200} {
		if r := do(t, "GET", base+path, "", ""); r.status != status {
			t.Errorf("without Discovery, %s: %d, want %d", path, r.status, status)
		}
	}
}
