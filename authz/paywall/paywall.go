package paywall

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// AssetDir is where the assets are served, below the gateway path.
const AssetDir = "/paywall"

// ContentSecurityPolicy is sent with the page: it runs only uraiden's own script and style,
// talks only to its own origin (the wallet is reached through window.ethereum, not the
// network), and cannot be framed (a framed paywall invites clickjacking of a signature).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var (
	//go:embed page.html
	pageSource string
	page       = template.Must(template.New("paywall").Parse(pageSource))

	//go:embed dist/paywall.js dist/paywall.css
	dist embed.FS

	// version names the assets' content, so that a page asks for exactly the script it was
	// rendered with and the script can be cached for good.
	version = assetVersion()
)

// Page is what the paywall shows: the 402's RDN-* values.
type Page struct {
	Status  int    // 402, or 409 for a malformed proof
	Flag    string // the RDN-* failure flag, if any
	Message string
	Price   string // base units
	// The service's addresses, checksummed hex.
	Receiver, Contract, Token string
	ChainID                   uint64
	GatewayPath               string // where the channel API and the assets are
	// ProofSchemes are the wire names of the proof schemes the server takes (RDN-Proof-Schemes),
	// preferred first; none means legacy only. The page signs typed proofs (eip712) when they
	// are offered and the wallet can; the chain id and contract above are their domain.
	ProofSchemes []string
	// The channel the request paid from, once its proof verified; empty otherwise.
	Sender        string
	OpenBlock     uint32
	SenderBalance string // the server's last accepted balance
}

// Render returns the page's HTML.
func Render(p Page) (string, error) {
	var buf bytes.Buffer
	err := page.Execute(&buf, struct {
		Page
		Assets, Version string
	}{Page: p, Assets: strings.TrimRight(p.GatewayPath, "/") + AssetDir, Version: version})
	return buf.String(), err
}

// ChannelBlock is the open block for the page: empty without a channel (block 0 is none).
func (p Page) ChannelBlock() string {
	if p.Sender == "" {
		return ""
	}
	return strconv.FormatUint(uint64(p.OpenBlock), 10)
}

// ProofSchemeList is ProofSchemes as the page reads it, comma-separated as in the header.
func (p Page) ProofSchemeList() string {
	return strings.Join(p.ProofSchemes, ",")
}

// Assets serves the page's script and style at <prefix>/paywall/<name>. A request naming the
// current version (?v=, as the page does) may be cached for good; any other must revalidate,
// so a page from before an upgrade still gets a working script.
func Assets(prefix string) http.Handler {
	base := strings.TrimRight(prefix, "/") + AssetDir + "/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, base)
		data, err := dist.ReadFile("dist/" + name)
		if !ok || strings.Contains(name, "/") || err != nil {
			http.NotFound(w, r)
			return
		}
		etag := `"` + version + `"`
		h := w.Header()
		h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", etag)
		if r.URL.Query().Get("v") == version {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.Method != http.MethodHead {
			_, _ = w.Write(data)
		}
	})
}

func assetVersion() string {
	h := sha256.New()
	for _, name := range []string{"dist/paywall.js", "dist/paywall.css"} {
		data, err := dist.ReadFile(name)
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// PrefersHTML reports whether an Accept header ranks text/html above application/json: a
// browser navigating (text/html,…,*/*;q=0.8) does; curl (*/*), µRaiden's Python client and
// an API client asking for JSON do not.
func PrefersHTML(accept string) bool {
	if accept == "" {
		return false
	}
	return quality(accept, "text", "html") > quality(accept, "application", "json")
}

// quality is the q-value the Accept header gives a media type: that of its most specific
// matching range (RFC 9110 §12.5.1), 0 when none matches.
func quality(accept, typ, sub string) float64 {
	best, bestSpecificity := 0.0, -1
	for _, item := range strings.Split(accept, ",") {
		mediaRange, params, _ := strings.Cut(item, ";")
		t, s, ok := strings.Cut(strings.ToLower(strings.TrimSpace(mediaRange)), "/")
		if !ok {
			continue
		}
		var specificity int
		switch {
		case t == typ && s == sub:
			specificity = 2
		case t == typ && s == "*":
			specificity = 1
		case t == "*" && s == "*":
			specificity = 0
		default:
			continue
		}
		if specificity > bestSpecificity {
			best, bestSpecificity = qValue(params), specificity
		}
	}
	return best
}

func qValue(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || q < 0 || q > 1 {
				return 0
			}
			return q
		}
	}
	return 1
}
