package authz_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// chromeAccept is what Chromium sends when it navigates to a page.
const chromeAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"

// setCookies parses the Set-Cookie headers of a denial, by cookie name.
func setCookies(t *testing.T, resp *authv3.CheckResponse) map[string]*http.Cookie {
	t.Helper()
	out := map[string]*http.Cookie{}
	for _, o := range resp.GetDeniedResponse().GetHeaders() {
		if !strings.EqualFold(o.GetHeader().GetKey(), "set-cookie") {
			continue
		}
		if o.GetAppendAction().String() != "APPEND_IF_EXISTS_OR_ADD" {
			t.Errorf("Set-Cookie %q would overwrite the others (%s)", o.GetHeader().GetValue(), o.GetAppendAction())
		}
		c, err := http.ParseSetCookie(o.GetHeader().GetValue())
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", o.GetHeader().GetValue(), err)
		}
		out[c.Name] = c
	}
	return out
}

// TestPaywallForBrowsers: a browser gets the 402 as the HTML paywall with every RDN-* header
// mirrored into a cookie (and the others expired); an API client keeps the JSON; the
// paywall's cookies pay; a spent cookie proof brings the paywall back with the channel's
// state; an unreadable cookie gets a 409 page that clears it.
func TestPaywallForBrowsers(t *testing.T) {
	h := newHarness(t)
	d := h.chain.Deployment()

	quote := h.check(envoyRequest("GET", "/echofix/page", map[string]string{"accept": chromeAccept}))
	if got := httpStatus(quote); got != 402 {
		t.Fatalf("status %d, want 402", got)
	}
	headers := responseHeaders(quote)
	if ct := headers["content-type"]; ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q, want the HTML paywall", ct)
	}
	if csp := headers["content-security-policy"]; !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	body := quote.GetDeniedResponse().GetBody()
	for _, want := range []string{
		`data-price="5"`, fmt.Sprintf(`data-contract="%s"`, d.Channels.Hex()), fmt.Sprintf(`data-receiver="%s"`, h.receiver().Hex()),
		`data-chain-id="1337"`, `data-gateway-path="/api/1"`, `src="/api/1/paywall/paywall.js?v=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the paywall lacks %s", want)
		}
	}
	cookies := setCookies(t, quote)
	for name, value := range map[string]string{
		"RDN-Price": "5", "RDN-Contract-Address": d.Channels.Hex(), "RDN-Receiver-Address": h.receiver().Hex(),
		"RDN-Token-Address": d.Token.Hex(), "RDN-Gateway-Path": "/api/1",
	} {
		c := cookies[name]
		if c == nil || c.Value != value || c.Path != "/" || c.MaxAge != 0 || c.Secure || c.HttpOnly {
			t.Errorf("cookie %s = %+v, want %q for path / readable by the page", name, c, value)
		}
	}
	for _, name := range []string{"RDN-Sender-Balance", "RDN-Balance-Signature", "RDN-Invalid-Amount"} {
		if c := cookies[name]; c == nil || c.MaxAge >= 0 {
			t.Errorf("cookie %s = %+v, want it expired: this 402 does not carry it", name, c)
		}
	}

	// Behind TLS the cookies are Secure; curl and API clients keep the JSON quote.
	tls := h.check(envoyRequest("GET", "/echofix/page", map[string]string{"accept": chromeAccept, "x-forwarded-proto": "https"}))
	if c := setCookies(t, tls)["RDN-Price"]; c == nil || !c.Secure {
		t.Errorf("over https the cookie is %+v, want Secure", c)
	}
	for _, accept := range []string{"*/*", "application/json", "text/html;q=0.5,application/json", ""} {
		resp := h.check(envoyRequest("GET", "/echofix/page", map[string]string{"accept": accept}))
		if ct := responseHeaders(resp)["content-type"]; ct != "application/json" || len(setCookies(t, resp)) != 0 {
			t.Errorf("Accept %q: Content-Type %q with cookies %v, want the JSON quote", accept, ct, setCookies(t, resp))
		}
	}

	// The cookies the page stores pay; the same cookies again bring the paywall back, with
	// the channel's last proof mirrored so the page signs the next balance from it.
	paid := fmt.Sprintf("theme=dark; RDN-Sender-Address=%s; RDN-Open-Block=%d; RDN-Sender-Balance=5; RDN-Balance-Signature=%s",
		h.payer.sender.Hex(), h.payer.openBlock, h.sign(h.payer.key, h.payer.openBlock, 5))
	if got := httpStatus(h.check(envoyRequest("GET", "/echofix/page", map[string]string{"accept": chromeAccept, "cookie": paid}))); got != 200 {
		t.Fatalf("the paywall's cookies: status %d, want 200", got)
	}
	spent := h.check(envoyRequest("GET", "/echofix/next", map[string]string{"accept": chromeAccept, "cookie": paid}))
	body, cookies = spent.GetDeniedResponse().GetBody(), setCookies(t, spent)
	if !strings.Contains(body, fmt.Sprintf(`data-sender="%s"`, h.payer.sender.Hex())) || !strings.Contains(body, `data-sender-balance="5"`) ||
		!strings.Contains(body, fmt.Sprintf(`data-open-block="%d"`, h.payer.openBlock)) {
		t.Errorf("the paywall after a spent proof lacks the channel's state")
	}
	if c := cookies["RDN-Sender-Balance"]; c == nil || c.Value != "5" {
		t.Errorf("RDN-Sender-Balance cookie %+v, want the last accepted balance 5", c)
	}
	if c := cookies["RDN-Balance-Signature"]; c == nil || c.Value != h.sign(h.payer.key, h.payer.openBlock, 5) {
		t.Errorf("RDN-Balance-Signature cookie %+v, want the last accepted proof", c)
	}

	// An unreadable cookie: a 409 page that expires the RDN-* cookies, so the next visit
	// gets a plain quote instead of the same error forever.
	broken := h.check(envoyRequest("GET", "/echofix/page", map[string]string{"accept": chromeAccept,
		"cookie": "RDN-Sender-Address=nobody; RDN-Open-Block=1; RDN-Sender-Balance=5; RDN-Balance-Signature=" + h.sign(h.payer.key, h.payer.openBlock, 5)}))
	if got := httpStatus(broken); got != 409 || !strings.Contains(broken.GetDeniedResponse().GetBody(), `data-status="409"`) {
		t.Errorf("broken cookie: status %d, want the 409 paywall", got)
	}
	if c := setCookies(t, broken)["RDN-Balance-Signature"]; c == nil || c.MaxAge >= 0 {
		t.Errorf("broken cookie: RDN-Balance-Signature %+v, want it expired", c)
	}
}
