package authz

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// acceptLedger accepts every payment: enough to reach the OK answer of a paid request.
type acceptLedger struct{ quoteLedger }

func (acceptLedger) Pay(_ context.Context, p ledger.Payment) (ledger.PayResult, error) {
	return ledger.PayResult{Outcome: ledger.Accepted, Balance: p.Balance, Signature: p.Signature, Charged: p.Price, Known: true}, nil
}

// paidService is httpService with a ledger that takes every payment, and a sender's proof
// headers for a balance.
func paidService(t *testing.T) (*Service, func(balance int64) map[string]string) {
	t.Helper()
	s := httpService(t)
	s.cfg.Ledger = acceptLedger{}
	key, err := crypto.HexToECDSA(strings.Repeat("a0", 32))
	if err != nil {
		t.Fatal(err)
	}
	proofHeaders := func(balance int64) map[string]string {
		sig, err := rdn.Balance{Receiver: s.cfg.Receiver, OpenBlock: 7, Balance: big.NewInt(balance), Contract: s.cfg.Contract}.Sign(key)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{
			"RDN-Contract-Address": s.cfg.Contract.Hex(), "RDN-Receiver-Address": s.cfg.Receiver.Hex(),
			"RDN-Sender-Address": crypto.PubkeyToAddress(key.PublicKey).Hex(), "RDN-Open-Block": "7",
			"RDN-Balance": fmt.Sprint(balance), "RDN-Sender-Balance": fmt.Sprint(balance),
			"RDN-Balance-Signature": sig.Hex(), "RDN-Payment": "5",
		}
	}
	return s, proofHeaders
}

// asCookies turns proof headers into the paywall's cookies, after the given others.
func asCookies(proofHeaders map[string]string, others ...string) string {
	parts := slices.Clone(others)
	for _, name := range []string{rdn.HeaderSenderAddress, rdn.HeaderOpenBlock, rdn.HeaderSenderBalance, rdn.HeaderBalanceSignature} {
		parts = append(parts, name+"="+proofHeaders[name])
	}
	return strings.Join(parts, "; ")
}

// plainRequest is Envoy's CheckRequest for an HTTP/1.1 request with these headers.
func plainRequest(method, path string, headers map[string]string) *authv3.CheckRequest {
	all := map[string]string{":authority": "localhost:10000", ":method": method, ":path": path, ":scheme": "http",
		"accept": "*/*", "user-agent": "uraiden-test"}
	for k, v := range headers {
		all[strings.ToLower(k)] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Host: "localhost:10000", Headers: all},
	}}}
}

// applyAsEnvoy applies an OK answer to the request headers as Envoy's ext_authz filter
// does: the headers set first, then the ones to remove (never a pseudo-header or host).
func applyAsEnvoy(headers map[string]string, ok *authv3.OkHttpResponse) map[string]string {
	out := map[string]string{}
	for k, v := range headers {
		out[strings.ToLower(k)] = v
	}
	for _, o := range ok.GetHeaders() {
		key := strings.ToLower(o.GetHeader().GetKey())
		if o.GetAppendAction() == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD && out[key] != "" {
			out[key] += "," + o.GetHeader().GetValue()
		} else {
			out[key] = o.GetHeader().GetValue()
		}
	}
	for _, name := range ok.GetHeadersToRemove() {
		if !strings.HasPrefix(name, ":") && name != "host" {
			delete(out, strings.ToLower(name))
		}
	}
	return out
}

// noProof fails the test for any RDN-* header or cookie among the upstream's headers.
func noProof(t *testing.T, what string, upstream map[string]string) {
	t.Helper()
	for k, v := range upstream {
		if strings.HasPrefix(strings.ToLower(k), "rdn-") {
			t.Errorf("%s: the upstream gets %s: %s", what, k, v)
		}
	}
	if strings.Contains(strings.ToLower(upstream["cookie"]), "rdn-") {
		t.Errorf("%s: the upstream gets the cookies %q", what, upstream["cookie"])
	}
}

// The OK answer takes every RDN-* header and cookie away from the upstream, and keeps the
// rest: the paid request's x-rdn-* headers (set, not removed afterwards, as Envoy removes
// after it sets) and the site's other cookies. A free request with the paywall's cookies
// loses them too; one without any keeps the shared answer.
func TestNoProofReachesTheUpstream(t *testing.T) {
	s, proofHeaders := paidService(t)
	check := func(path string, headers map[string]string) (*authv3.OkHttpResponse, map[string]string) {
		t.Helper()
		req := plainRequest("GET", path, headers)
		resp, err := s.Check(context.Background(), req)
		if err != nil || resp.GetOkResponse() == nil {
			t.Fatalf("%s %v: %v %v", path, headers, resp, err)
		}
		return resp.GetOkResponse(), applyAsEnvoy(req.GetAttributes().GetRequest().GetHttp().GetHeaders(), resp.GetOkResponse())
	}

	// Paid with headers, forged x-rdn-* among them.
	headers := proofHeaders(5)
	headers[UpstreamSender], headers[UpstreamRetry], headers["cookie"] = "forged", "1", "theme=dark"
	ok, up := check("/echofix/a", headers)
	noProof(t, "paid with headers", up)
	if up[UpstreamSender] != headers[rdn.HeaderSenderAddress] || up[UpstreamPrice] != "5" || up["cookie"] != "theme=dark" || up["user-agent"] != "uraiden-test" {
		t.Errorf("paid with headers: the upstream gets %v", up)
	}
	if v, forged := up[UpstreamRetry]; forged {
		t.Errorf("paid with headers: the upstream gets the client's %s: %s", UpstreamRetry, v)
	}
	set := map[string]bool{}
	for _, o := range ok.GetHeaders() {
		set[strings.ToLower(o.GetHeader().GetKey())] = true
	}
	for _, name := range ok.GetHeadersToRemove() {
		if set[name] || name == "cookie" {
			t.Errorf("paid with headers: %s is removed after it is set", name)
		}
	}

	// Paid with the paywall's cookies, other cookies around them.
	cookies := asCookies(proofHeaders(10), "theme=dark", "session=abc")
	ok, up = check("/echofix/b", map[string]string{"cookie": cookies + "; lang=en"})
	noProof(t, "paid with cookies", up)
	if up["cookie"] != "theme=dark; session=abc; lang=en" || up[UpstreamPrice] != "5" {
		t.Errorf("paid with cookies: the upstream gets %v", up)
	}
	if slices.Contains(ok.GetHeadersToRemove(), "cookie") {
		t.Errorf("paid with cookies: the rewritten cookie header is removed too")
	}
	// Only the paywall's cookies: no cookie header at all.
	_, up = check("/echofix/c", map[string]string{"cookie": asCookies(proofHeaders(15))})
	if _, ok := up["cookie"]; ok {
		t.Errorf("paid with only the paywall's cookies: the upstream gets cookie %q", up["cookie"])
	}
	noProof(t, "paid with only cookies", up)

	// Free, with a browser's cookies and stray proof headers.
	stray := proofHeaders(20)
	stray["cookie"] = asCookies(stray, "theme=dark")
	stray[UpstreamSender] = "forged"
	_, up = check("/free/x", stray)
	noProof(t, "free with a proof", up)
	if up["cookie"] != "theme=dark" || up[UpstreamSender] != "" {
		t.Errorf("free with a proof: the upstream gets %v", up)
	}
	// Free, nothing of ours: the shared answer, which still removes stray headers.
	resp, err := s.Check(context.Background(), plainRequest("GET", "/free/x", map[string]string{"cookie": "theme=dark"}))
	if err != nil || resp != freeResponse {
		t.Errorf("a free request without RDN-* cookies gets %v, %v, not the shared answer", resp, err)
	}
}

// The HTTP mode answers what a proxy needs to keep the proof from the upstream: the
// headers for Envoy to remove (x-envoy-auth-headers-to-remove), the cookie line without the
// paywall's cookies (Cookie, for Envoy's allowed_upstream_headers or Caddy's copy_headers)
// and, on a free request, empty x-rdn-* headers.
func TestHTTPAnswerKeepsTheProofFromTheUpstream(t *testing.T) {
	s, proofHeaders := paidService(t)
	ask := func(path string, headers map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, EnvoyHTTPPrefix+path, nil)
		for k, v := range headers {
			r.Header.Set(k, v)
		}
		w := serveHTTP(s, r)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		return w
	}
	removed := func(w *httptest.ResponseRecorder) []string {
		var names []string
		for name := range strings.SplitSeq(w.Header().Get(EnvoyHeadersToRemove), ",") {
			names = append(names, strings.TrimSpace(name))
		}
		return names
	}

	headers := proofHeaders(5)
	headers["Cookie"] = asCookies(headers, "theme=dark")
	w := ask("/echofix/a", headers)
	for name := range headers {
		if l := strings.ToLower(name); l != "cookie" && !slices.Contains(removed(w), l) {
			t.Errorf("paid: %s is not among the headers to remove: %v", l, removed(w))
		}
	}
	if got := w.Header().Get("Cookie"); got != "theme=dark" {
		t.Errorf("paid: Cookie %q, want the others only", got)
	}
	if got := w.Header().Get(UpstreamSender); got != headers[rdn.HeaderSenderAddress] || slices.Contains(removed(w), UpstreamSender) {
		t.Errorf("paid: x-rdn-sender %q, removed: %v", got, removed(w))
	}

	// Free without cookies: the Cookie answer is empty, and removed by Envoy.
	w = ask("/free/x", nil)
	if v, ok := w.Header()["Cookie"]; !ok || v[0] != "" || !slices.Contains(removed(w), "cookie") || !slices.Contains(removed(w), UpstreamSender) {
		t.Errorf("free: Cookie %q, removed %v", v, removed(w))
	}
	// Free with only the paywall's cookies.
	w = ask("/free/x", map[string]string{"Cookie": asCookies(proofHeaders(5))})
	if w.Header().Get("Cookie") != "" || !slices.Contains(removed(w), "cookie") {
		t.Errorf("free with only the paywall's cookies: Cookie %q, removed %v", w.Header().Get("Cookie"), removed(w))
	}
}

// Two RDN-* cookies of one name with different values are refused, as repeated headers
// are: which one the browser meant is unknown. The same value twice is that value.
func TestRepeatedCookies(t *testing.T) {
	sig := "0x" + strings.Repeat("11", 64) + "1b"
	other := "0x" + strings.Repeat("22", 64) + "1b"
	base := "RDN-Sender-Address=0x8Bf640A099fE945DA46F354d3B49c48a125F48B6; RDN-Open-Block=7; RDN-Sender-Balance=5; "
	for name, tc := range map[string]struct {
		cookie  string
		refused bool
	}{
		"different signatures":           {base + "RDN-Balance-Signature=" + sig + "; RDN-Balance-Signature=" + other, true},
		"different balances, other case": {base + "RDN-Balance-Signature=" + sig + "; rdn-sender-balance=6", true},
		"the same value twice":           {base + "RDN-Balance-Signature=" + sig + "; RDN-Balance-Signature=" + sig, false},
		"once":                           {base + "RDN-Balance-Signature=" + sig, false},
	} {
		p, err := readPayment(map[string]string{"cookie": tc.cookie})
		var mErr *malformedError
		if tc.refused && (p != nil || err == nil || !errors.As(err, &mErr) || !strings.Contains(err.Error(), "repeated")) {
			t.Errorf("%s: %v, %v, want a malformed (409) error", name, p, err)
		}
		if !tc.refused && (err != nil || p == nil || p.Balance.Int64() != 5) {
			t.Errorf("%s: %+v, %v, want the payment", name, p, err)
		}
	}
}
