package authz

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

// quoteLedger takes no payment: enough for the decisions made before the ledger is asked.
type quoteLedger struct{}

func (quoteLedger) Channel(rdn.ChannelID) (*ledger.Channel, error) { return nil, nil }
func (quoteLedger) ConfirmedHeight() uint64                        { return 0 }
func (quoteLedger) Err() error                                     { return nil }
func (quoteLedger) Pay(_ context.Context, _ ledger.Payment) (ledger.PayResult, error) {
	return ledger.PayResult{}, errors.New("no payments here")
}

type healthyChain struct{}

func (healthyChain) Healthy() error { return nil }

func httpService(t *testing.T) *Service { return quoteService(t, healthyChain{}, nil) }

// quoteService prices with the test table and takes no payment.
func quoteService(t *testing.T, chain ChainHealth, logger *slog.Logger) *Service {
	t.Helper()
	table, err := pricing.Load("testdata/prices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return NewService(Config{
		Receiver: common.HexToAddress("0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd"),
		Contract: common.HexToAddress("0x1440317CB15499083dEE3dDf49C2bD51D0d92e33"),
		Prices:   func() Pricer { return table },
		Ledger:   quoteLedger{}, Chain: chain,
	}, logger)
}

func serveHTTP(s *Service, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.HTTPHandler().ServeHTTP(w, r)
	return w
}

// A forward-auth request is priced by the original request the X-Forwarded-* headers
// describe, not by the auth request itself (always a GET to the auth path for Caddy).
func TestHTTPForwardAuth(t *testing.T) {
	s := httpService(t)
	r := httptest.NewRequest(http.MethodGet, "/forward-auth", nil)
	r.Header.Set("X-Forwarded-Method", "GET")
	r.Header.Set("X-Forwarded-Uri", "/echodyn/abcdefg?x=1")
	r.Header.Set("X-Forwarded-Host", "api.example.com")
	w := serveHTTP(s, r)
	var body paymentBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if w.Code != 402 || w.Header().Get(rdn.HeaderPrice) != "7" || body.Price != "7" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("status %d, RDN-Price %q, body %+v, want a 402 quote of 7", w.Code, w.Header().Get(rdn.HeaderPrice), body)
	}
	if got := w.Header().Get(rdn.HeaderContractAddress); got != "0x1440317CB15499083dEE3dDf49C2bD51D0d92e33" {
		t.Errorf("RDN-Contract-Address %q", got)
	}

	// A free original request is allowed, whatever the auth path would cost, and the
	// upstream headers are answered empty, for the proxy to overwrite forged ones.
	r.Header.Set("X-Forwarded-Uri", "/free/x")
	w = serveHTTP(s, r)
	if sender, ok := w.Header()[http.CanonicalHeaderKey(UpstreamSender)]; w.Code != 200 || !ok || sender[0] != "" {
		t.Errorf("free route: %d, %v", w.Code, w.Header())
	}
	// The original method counts: echofix sells only GET and HEAD; POST falls to the default.
	r.Header.Set("X-Forwarded-Uri", "/echofix/a")
	r.Header.Set("X-Forwarded-Method", "POST")
	if w := serveHTTP(s, r); w.Code != 402 || w.Header().Get(rdn.HeaderPrice) != "1" {
		t.Errorf("POST /echofix/a: %d, price %q, want the default 1", w.Code, w.Header().Get(rdn.HeaderPrice))
	}
}

// Envoy's http_service prefixes the original path and keeps the method and host.
func TestHTTPEnvoyPrefix(t *testing.T) {
	s := httpService(t)
	w := serveHTTP(s, httptest.NewRequest(http.MethodGet, EnvoyHTTPPrefix+"/echofix/foo?q=1", nil))
	if w.Code != 402 || w.Header().Get(rdn.HeaderPrice) != "5" {
		t.Errorf("GET /echofix/foo: %d, price %q, want a 402 quote of 5", w.Code, w.Header().Get(rdn.HeaderPrice))
	}
	if w := serveHTTP(s, httptest.NewRequest(http.MethodGet, EnvoyHTTPPrefix+"/free", nil)); w.Code != 200 {
		t.Errorf("GET /free: %d", w.Code)
	}
}

// A browser behind a forward-auth proxy gets the paywall with one Set-Cookie per RDN-* name.
func TestHTTPPaywall(t *testing.T) {
	s := httpService(t)
	r := httptest.NewRequest(http.MethodGet, EnvoyHTTPPrefix+"/echofix/foo", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	w := serveHTTP(s, r)
	if w.Code != 402 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, Content-Type %q, want the HTML paywall", w.Code, w.Header().Get("Content-Type"))
	}
	cookies := map[string]string{}
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		cookies[c.Name] = c.Value
	}
	if len(cookies) != len(rdn.Cookies) || cookies[rdn.HeaderPrice] != "5" {
		t.Errorf("cookies %v, want each of the %d RDN-* names, RDN-Price 5", cookies, len(rdn.Cookies))
	}
}

// A malformed proof is a 409 naming the header; a request describing no original one is
// refused, never allowed.
func TestHTTPRefusals(t *testing.T) {
	s := httpService(t)
	r := httptest.NewRequest(http.MethodGet, EnvoyHTTPPrefix+"/echofix/foo", nil)
	r.Header.Set("RDN-Balance-Signature", "0x12")
	if w := serveHTTP(s, r); w.Code != 409 || !json.Valid(w.Body.Bytes()) {
		t.Errorf("malformed signature: %d %s", w.Code, w.Body)
	}
	if w := serveHTTP(s, httptest.NewRequest(http.MethodGet, "/forward-auth", nil)); w.Code != 400 {
		t.Errorf("no X-Forwarded-Uri: %d %s", w.Code, w.Body)
	}
}

// The HTTP mode prices the path as the upstream resolves it, by either route in: Envoy's
// prefixed path and a forward-auth proxy's X-Forwarded-Uri, each taken as sent. A path
// that cannot be priced unambiguously gets 400.
func TestHTTPPathVariants(t *testing.T) {
	s := httpService(t)
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/echofix/hello", 402},
		{"//echofix/hello", 402},
		{"/echofix//hello", 402},
		{"/./echofix/hello", 402},
		{"/echofix/./hello", 402},
		{"/x/../echofix/hello", 402},
		{"/free/../echofix/hello?q=1", 402},
		{"/free/%2e%2E/echofix/hello", 402},
		{"/echofix%2Fhello", 400},
		{`/echofix\hello`, 400},
		{"/free/..;/echofix/hello", 400},
		{"/../echofix/hello", 400},
		{"/echofix%252Fhello", 400},
		{"/free/./x/..//status", 200},
	} {
		// Envoy's http_service: the original path after the prefix, as the client sent it.
		r := httptest.NewRequest(http.MethodGet, "http://h/", nil)
		r.RequestURI = EnvoyHTTPPrefix + c.path
		w := serveHTTP(s, r)
		if w.Code != c.status || (c.status == 402 && w.Header().Get(rdn.HeaderPrice) != "5") {
			t.Errorf("envoy %s: %d, price %q, want %d (%s)", c.path, w.Code, w.Header().Get(rdn.HeaderPrice), c.status, w.Body)
		}
		// Forward auth: the original target in X-Forwarded-Uri, as Caddy sends it.
		r = httptest.NewRequest(http.MethodGet, "/forward-auth", nil)
		r.Header.Set("X-Forwarded-Method", "GET")
		r.Header.Set("X-Forwarded-Uri", c.path)
		w = serveHTTP(s, r)
		if w.Code != c.status || (c.status == 402 && w.Header().Get(rdn.HeaderPrice) != "5") {
			t.Errorf("forward-auth %s: %d, price %q, want %d (%s)", c.path, w.Code, w.Header().Get(rdn.HeaderPrice), c.status, w.Body)
		}
	}
}

// nginx's auth_request takes only 2xx, 401 and 403 and drops the body: its subrequest gets a
// 401 for a denial, with the decision in NginxDenialHeader and nothing else of it, and the
// denial itself comes from the second path, rendered from that header.
func TestHTTPNginxPaths(t *testing.T) {
	s := httpService(t)
	ask := func(path, uri, denial string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("X-Forwarded-Method", "GET")
		r.Header.Set("X-Forwarded-Uri", uri)
		r.Header.Set("X-Forwarded-Host", "api.example.com")
		if denial != "" {
			r.Header.Set(NginxDenialHeader, denial)
		}
		return serveHTTP(s, r)
	}
	auth := ask(NginxAuthPath, "/echodyn/abcdefg", "")
	if auth.Code != 401 || auth.Body.Len() != 0 || auth.Header().Get(rdn.HeaderPrice) != "" || auth.Header().Get(NginxDenialHeader) == "" {
		t.Errorf("auth, priced: %d %v %q, want a 401 with only the denial", auth.Code, auth.Header(), auth.Body)
	}
	if w := ask(NginxAuthPath, "/free/x", ""); w.Code != 200 || w.Header().Get("Cookie") != "" || w.Header().Get(NginxDenialHeader) != "" {
		t.Errorf("auth, free: %d %v, want 200", w.Code, w.Header())
	} else if _, ok := w.Header()[http.CanonicalHeaderKey(UpstreamSender)]; !ok {
		t.Errorf("auth, free: no empty %s to overwrite a forged one: %v", UpstreamSender, w.Header())
	}
	// The denial is the auth answer's, whatever the request says now.
	w := ask(NginxDenialPath, "/free/x", auth.Header().Get(NginxDenialHeader))
	var body paymentBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 402 || body.Price != "7" || w.Header().Get(rdn.HeaderPrice) != "7" {
		t.Errorf("denial: %d %v %q (%v), want the 402 quote of 7", w.Code, w.Header(), w.Body, err)
	}
	if w := ask(NginxDenialPath, "/free/x", ""); w.Code != 500 || w.Header().Get(UpstreamSender) != "" {
		t.Errorf("denial path without the denial: %d %v, want 500", w.Code, w.Header())
	}
	// A misconfigured nginx (no X-Forwarded-Uri) is denied, never let through, and told why.
	w = serveHTTP(s, httptest.NewRequest(http.MethodGet, NginxAuthPath, nil))
	denial := w.Header().Get(NginxDenialHeader)
	if w.Code != 401 || denial == "" {
		t.Fatalf("%s without X-Forwarded-Uri: %d %v, want 401 and the denial", NginxAuthPath, w.Code, w.Header())
	}
	if w := ask(NginxDenialPath, "", denial); w.Code != 400 || !strings.Contains(w.Body.String(), "X-Forwarded-Uri") {
		t.Errorf("its denial: %d %q, want 400 naming X-Forwarded-Uri", w.Code, w.Body)
	}
}
