package paywall

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPrefersHTML(t *testing.T) {
	for accept, want := range map[string]bool{
		// Browsers navigating.
		"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8": true,
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8":                       true,
		"TEXT/HTML": true,
		// API clients, curl, µRaiden's Python client (requests sends */*), fetch().
		"":                                   false,
		"*/*":                                false,
		"application/json":                   false,
		"application/json, text/plain, */*":  false,
		"text/html;q=0.5, application/json":  false,
		"text/*, application/json;q=0.9":     true,
		"text/html;q=0":                      false,
		"text/html;q=abc":                    false,
		"garbage":                            false,
		"text/html;level=1;q=0.9, */*;q=0.1": true,
	} {
		if got := PrefersHTML(accept); got != want {
			t.Errorf("PrefersHTML(%q) = %v, want %v", accept, got, want)
		}
	}
}

func TestRenderEscapesText(t *testing.T) {
	html, err := Render(Page{Status: 409, Message: `bad "><script>alert(1)</script>`, GatewayPath: "/api/1/"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<script>alert") || !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("the message is not escaped: %s", html)
	}
	if !strings.Contains(html, `src="/api/1/paywall/paywall.js?v=`+version+`"`) {
		t.Errorf("the page does not load the script of this build from the gateway path")
	}
	if strings.Contains(html, `data-open-block="0"`) {
		t.Errorf("a page without a channel names open block 0")
	}
}

func TestRenderProofSchemes(t *testing.T) {
	for _, c := range []struct {
		schemes []string
		want    string
	}{
		{[]string{"eip712", "legacy"}, `data-proof-schemes="eip712,legacy"`},
		{nil, `data-proof-schemes=""`}, // the page reads none as legacy only
	} {
		html, err := Render(Page{Status: 402, GatewayPath: "/api/1", ProofSchemes: c.schemes})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(html, c.want) {
			t.Errorf("schemes %q: the page has no %s", c.schemes, c.want)
		}
	}
}

func TestAssets(t *testing.T) {
	h := Assets("/api/1")
	get := func(target string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	js := get("/api/1/paywall/paywall.js?v=" + version)
	if js.Code != 200 || !strings.HasPrefix(js.Header().Get("Content-Type"), "text/javascript") ||
		!strings.Contains(js.Header().Get("Cache-Control"), "immutable") || js.Body.Len() < 1000 {
		t.Errorf("versioned script: %d %v (%d bytes)", js.Code, js.Header(), js.Body.Len())
	}
	if css := get("/api/1/paywall/paywall.css"); css.Code != 200 || !strings.HasPrefix(css.Header().Get("Content-Type"), "text/css") ||
		css.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("unversioned style: %d %v", css.Code, css.Header())
	}
	if w := get("/api/1/paywall/paywall.js", "If-None-Match", `"`+version+`"`); w.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", w.Code)
	}
	for _, target := range []string{"/api/1/paywall/", "/api/1/paywall/nope.js", "/api/1/paywall/../paywall.go", "/api/1/other/paywall.js"} {
		if w := get(target); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", target, w.Code)
		}
	}
}

// FuzzPrefersHTML: any Accept header is judged without a panic, and only a header that
// names text/html, text/* or */* can ask for the page.
func FuzzPrefersHTML(f *testing.F) {
	for _, seed := range []string{"", "*/*", "text/html,*/*;q=0.8", "text/*;q=.5, application/json;q=0.4", "text/html;q=1e400", ";;,/,q="} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		lower := strings.ToLower(accept)
		if PrefersHTML(accept) && !strings.Contains(lower, "text/") && !strings.Contains(lower, "*/") {
			t.Fatalf("PrefersHTML(%q) without a range that matches text/html", accept)
		}
	})
}
