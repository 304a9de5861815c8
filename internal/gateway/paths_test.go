package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/internal/testkit/upstreamtest"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

// noLedger takes no payment: the requests here carry none.
type noLedger struct{}

func (noLedger) Channel(rdn.ChannelID) (*ledger.Channel, error) { return nil, nil }
func (noLedger) ConfirmedHeight() uint64                        { return 0 }
func (noLedger) Err() error                                     { return nil }
func (noLedger) Pay(context.Context, ledger.Payment) (ledger.PayResult, error) {
	return ledger.PayResult{}, errors.New("no payments here")
}

type healthy struct{}

func (healthy) Healthy() error { return nil }

// shippedPrices is the shipped prices.yaml as the dev chain's 18-decimal token converts it:
// /echofix/ costs 0.005 token.
func shippedPrices(t *testing.T) *pricing.Table {
	t.Helper()
	table, err := pricing.LoadWith("../../prices.yaml", pricing.Options{Token: &pricing.Token{Decimals: 18}})
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// shippedGateway is the gateway in front of upstream (the demo upstream when nil), asking
// uraiden's authorization with the shipped prices.yaml.
func shippedGateway(t *testing.T, upstream *url.URL) *Gateway {
	t.Helper()
	table := shippedPrices(t)
	svc := authz.NewService(authz.Config{Prices: func() authz.Pricer { return table }, Ledger: noLedger{}, Chain: healthy{}}, nil)
	g, err := Start(Config{Listen: "127.0.0.1:0", Authz: svc, Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	return g
}

// The holes, as curl --path-as-is sends them through the gateway to the Compose
// example's upstream (python3 -m http.server): the upstream serves /echofix/hello for each,
// so each must be quoted (402), or refused (400) when servers read it differently.
func TestPathVariantsThroughTheGateway(t *testing.T) {
	dir := upstreamtest.PricedFile(t)
	python := upstreamtest.PythonFileServer(t, dir)
	g := shippedGateway(t, &url.URL{Scheme: "http", Host: python})
	for target, want := range map[string]int{
		"/echofix/hello":      402,
		"//echofix/hello":     402,
		"/echofix//hello":     402,
		"/./echofix/hello":    402,
		"/echofix/./hello":    402,
		"/x/../echofix/hello": 402,
		"/echofix/%2e/hello":  402,
		"/echofix%2Fhello":    400,
		"/echofix/hello%2F":   402, // every reading (hello, hello/, hello%2F) costs 5
		"/../echofix/hello":   400,
	} {
		// The upstream alone serves the priced file for each.
		if status, body := upstreamtest.RawGet(t, python, target); status != 200 || body != "hello" {
			t.Errorf("upstream %s: %d %q; the variant no longer reaches the priced file", target, status, body)
		}
		status, body := upstreamtest.RawGet(t, g.Addr(), target)
		if status != want {
			t.Errorf("gateway %s: %d %q, want %d", target, status, body, want)
		}
	}
	// A free path still reaches the upstream, however written.
	if status, _ := upstreamtest.RawGet(t, g.Addr(), "/x/..//healthz"); status != 404 {
		t.Errorf("gateway /x/..//healthz: %d, want the upstream's 404", status)
	}
}

// The demo upstream answers every method on /echofix/<param>: the shipped prices sell each.
func TestEveryMethodIsPriced(t *testing.T) {
	g := shippedGateway(t, nil)
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		req, _ := http.NewRequest(m, g.URL()+"/echofix/hello", strings.NewReader(""))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 402 || resp.Header.Get("RDN-Price") != "5000000000000000" {
			t.Errorf("%s /echofix/hello: %d, price %q, want a 402 quote of 5000000000000000", m, resp.StatusCode, resp.Header.Get("RDN-Price"))
		}
	}
}

// The gateway resolves a path as the shipped envoy.yaml does before asking (normalize_path,
// merge_slashes): the upstream gets the resolved path, so a Go upstream (whose ServeMux
// redirects unclean paths) serves the content at once instead of a redirect a client would
// pay for again. A path servers read in several ways goes as it came, for uraiden to judge.
func TestGatewayResolvesPathsAsEnvoy(t *testing.T) {
	var seen []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.RequestURI)
		DemoUpstream().ServeHTTP(w, r)
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	g := shippedGateway(t, target)
	for raw, want := range map[string]string{
		"//./healthz?x=1": "/healthz?x=1",
		"/x/../healthz":   "/healthz",
		"/%68ealthz":      "/healthz",
		"/healthz%2F":     "/healthz%2F", // read as /healthz and /healthz/: forwarded as it came
	} {
		seen = nil
		status, body := upstreamtest.RawGet(t, g.Addr(), raw)
		if len(seen) != 1 || seen[0] != want {
			t.Errorf("%s: the upstream got %q, want %q", raw, seen, want)
		}
		if want == "/healthz" && (status != 200 || body != "ok") {
			t.Errorf("%s: %d %q, want the upstream's 200 ok", raw, status, body)
		}
	}
}
