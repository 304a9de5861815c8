package authz

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/uraiden/uraiden/internal/testkit/upstreamtest"
	"github.com/uraiden/uraiden/pricing"
)

// The price table of the path tests: /echofix/<name> costs 5, everything else is free, so
// that a variant of the priced path priced as another path is a free request.
const pathTestPrices = `
default_price: 0
rules:
  - name: echofix
    path: "/echofix/[^/]+"
    price: 5
  - name: free
    path: "/free(/.*)?"
    price: 0
`

func pathService(t testing.TB) *Service {
	t.Helper()
	table, err := pricing.Parse([]byte(pathTestPrices))
	if err != nil {
		t.Fatal(err)
	}
	return NewService(Config{Prices: func() Pricer { return table }, Ledger: quoteLedger{}, Chain: healthyChain{}}, nil)
}

// decidePath is the decision on an unpaid GET of the raw request target, as Envoy sends it.
func decidePath(s *Service, target string) *Decision {
	return s.Decide(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: target, Host: "localhost", Headers: map[string]string{":path": target, ":method": "GET"},
		}},
	}})
}

// Writings of /echofix/hello's pieces, for pathVariant: the start, each separator, each
// character and the end.
var (
	variantStarts = []string{"/", "//", "///", "/./", "/x/../", "/x/%2e%2e/", "/%2E/", "/../", "/x/..;/", "/x;y/../",
		`\`, `/x\..\`, "/x/..%2F", "%2F", "/.%2e/x/../", "/free/../", "/free/..%2f", "/free/%2e./", "/free/..", "",
		"/x//../", "/x/./../", "/%2e%2e/", "/free%2F..%2F", "/x/y/../../"}
	variantSeps = []string{"/", "//", "/./", "/%2e/", "/%2E/", "/x/../", "/x/.%2e/", "%2F", "%2f", `\`, "%5C", "%5c",
		"/;p/", ";p/", "/x;p/../", "/x/..;/", "/x%2F..%2F", "/hello/../", "/.;/", "%2F.%2F", "/%2e%2e/echofix/",
		"/x/y/../../", "/x/%2e%2E/", "/x%2f%2e%2e/", "/../echofix/", "/%252e/", "/x/%252e%252e/"}
	variantEnds = []string{"", "/", "/.", "/./", "/..", "/../hello", "?q=1", "?x=/../", "#f", ";p", "%2F", "%2F.",
		"%00", "/x/..", "/x/%2e%2e", "%3B", "%23x", "%20", "/%2e", "%2f%2e%2e%2fhello", "\\", "%5C..%5Chello", "/x/../"}
)

// pathVariant writes /echofix/hello another way, as prog directs: each byte picks the
// writing of the next piece (the first of each when prog runs out).
func pathVariant(prog []byte) string {
	next := func(n int) int {
		if len(prog) == 0 {
			return 0
		}
		b := prog[0]
		prog = prog[1:]
		return int(b) % n
	}
	var b strings.Builder
	b.WriteString(variantStarts[next(len(variantStarts))])
	for i, seg := range []string{"echofix", "hello"} {
		if i > 0 {
			b.WriteString(variantSeps[next(len(variantSeps))])
		}
		for j := 0; j < len(seg); j++ {
			switch c := seg[j]; next(6) {
			case 1:
				fmt.Fprintf(&b, "%%%02x", c)
			case 2:
				fmt.Fprintf(&b, "%%%02X", c)
			case 3:
				fmt.Fprintf(&b, "%%25%02X", c) // double-encoded
			default:
				b.WriteByte(c)
			}
		}
	}
	b.WriteString(variantEnds[next(len(variantEnds))])
	return b.String()
}

// pythonServes models Python's http.server (SimpleHTTPRequestHandler.translate_path and
// send_head) over a directory holding echofix/hello: whether it serves that file for the
// request target. TestPathVariantsAgainstUpstreams checks it against the real server.
func pythonServes(target string) bool {
	p, _, _ := strings.Cut(target, "?")
	p, _, _ = strings.Cut(p, "#")
	trailingSlash := strings.HasSuffix(strings.TrimRight(p, " \t\r\n\v\f"), "/")
	p = pythonUnquote(p)
	if strings.ContainsRune(p, 0) {
		return false // open() refuses it
	}
	// posixpath.normpath, then the words that are names.
	var words []string
	absolute := strings.HasPrefix(p, "/")
	for _, w := range strings.Split(p, "/") {
		switch {
		case w == "" || w == ".":
		case w == ".." && len(words) > 0 && words[len(words)-1] != "..":
			words = words[:len(words)-1]
		case w == ".." && absolute:
		default:
			words = append(words, w)
		}
	}
	var names []string
	for _, w := range words {
		if w != "." && w != ".." {
			names = append(names, w)
		}
	}
	return strings.Join(names, "/") == "echofix/hello" && !trailingSlash
}

// pythonUnquote is urllib.parse.unquote on bytes: valid escapes decoded, others left.
func pythonUnquote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]) {
			v := fromHex(s[i+1])<<4 | fromHex(s[i+2])
			b.WriteByte(v)
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func fromHex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// goServes models Go's http.FileServer behind net/http's server: the target parsed as a
// request URI (refused when it does not parse), its decoded path cleaned; a file's URL
// ending in a slash is redirected.
func goServes(target string) bool {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return false
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p) == "/echofix/hello" && !strings.HasSuffix(p, "/")
}

// checkVariant fails when a server would serve the priced file for target and the
// authorizer lets the request through unpaid. It returns the decision's status.
func checkVariant(t testing.TB, s *Service, target string) int {
	t.Helper()
	d := decidePath(s, target)
	if (pythonServes(target) || goServes(target)) && (d.Status == 200 || (d.Status == 402 && d.Price.Int64() != 5)) {
		t.Errorf("%q resolves to /echofix/hello (Python %v, Go %v) and is answered %d at price %v: %s",
			target, pythonServes(target), goServes(target), d.Status, d.Price, d.Message)
	}
	return d.Status
}

// No variant of a priced path is allowed unpaid: whenever Python's http.server or Go's
// http.FileServer (as modelled, the models checked against the real servers by
// TestPathVariantsAgainstUpstreams) would serve the priced file, the authorizer quotes its
// price or refuses the request (400).
func FuzzPathVariants(f *testing.F) {
	s := pathService(f)
	f.Add([]byte{}, "/echofix/hello")
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "//echofix/hello")
	f.Add([]byte{4, 7, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10}, "/x/../echofix/hello")
	f.Add([]byte{15, 20, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 3}, "/echofix%2Fhello")
	f.Add([]byte{8, 15, 1, 2, 1, 2, 1, 2, 1, 9, 1, 2, 1, 2, 1, 19}, "/free/..;/echofix/hello")
	f.Add([]byte{24, 26, 3, 3, 3, 3, 3, 3, 3, 25, 3, 3, 3, 3, 3, 21}, `/echofix\hello`)
	f.Fuzz(func(t *testing.T, prog []byte, target string) {
		checkVariant(t, s, pathVariant(prog))
		checkVariant(t, s, target)
	})
}

// pathVariantCorpus is n distinct variants of /echofix/hello, the same on every run.
func pathVariantCorpus(n int) []string {
	rng := rand.New(rand.NewPCG(15, 1))
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		prog := make([]byte, 16)
		for i := range prog {
			prog[i] = byte(rng.UintN(256))
			if rng.UintN(3) != 0 && i > 0 && i < 15 {
				prog[i] = 0 // mostly plain characters: variants that still resolve
			}
		}
		if v := pathVariant(prog); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// A corpus of variants of the priced path goes to real path-cleaning upstreams, Python's
// http.server (the Compose example's upstream) and Go's http.FileServer, as raw request
// lines: each upstream serves the priced file for many of them, the fuzz target's models of
// the upstreams say exactly which, and the authorizer lets none of those through unpaid.
func TestPathVariantsAgainstUpstreams(t *testing.T) {
	dir := upstreamtest.PricedFile(t)
	python := upstreamtest.PythonFileServer(t, dir)
	goServer := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(goServer.Close)
	upstreams := []struct {
		name   string
		addr   string
		models func(string) bool
	}{
		{"python", python, pythonServes},
		{"go", goServer.Listener.Addr().String(), goServes},
	}

	s := pathService(t)
	corpus := pathVariantCorpus(3000)
	statuses := map[int]int{}
	for _, v := range corpus {
		statuses[checkVariant(t, s, v)]++
	}
	for _, up := range upstreams {
		served := make([]bool, len(corpus))
		var wg sync.WaitGroup
		work := make(chan int)
		for range 4 {
			wg.Go(func() {
				for i := range work {
					served[i] = rawGetServes(t, up.addr, corpus[i])
				}
			})
		}
		for i := range corpus {
			work <- i
		}
		close(work)
		wg.Wait()
		count, mismatches := 0, 0
		for i, v := range corpus {
			if served[i] {
				count++
			}
			if served[i] != up.models(v) {
				if mismatches++; mismatches <= 10 {
					t.Errorf("%s: %q served %v, the model says %v", up.name, v, served[i], up.models(v))
				}
			}
		}
		if count < len(corpus)/10 {
			t.Errorf("%s served the priced file for %d of %d variants only: the corpus tests little", up.name, count, len(corpus))
		}
		t.Logf("%s: %d of %d variants serve the priced file; %d differ from the model", up.name, count, len(corpus), mismatches)
	}
	t.Logf("authorizer: %v (status: variants), none of the served ones allowed unpaid", statuses)
}

// rawGetServes reports whether target, sent as it is, gets the priced file.
func rawGetServes(t *testing.T, addr, target string) bool {
	status, body := upstreamtest.RawGet(t, addr, target)
	return status == 200 && body == "hello"
}
