package authz

import (
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

// httpRequest is what a decision needs from Envoy's CheckRequest.
type httpRequest struct {
	pricing pricing.Request
	headers map[string]string // lower-cased keys
	// otherPaths are the other canonical paths some servers resolve the request's path to
	// (pricing.CanonicalPath); the request is refused unless each has pricing.Path's price.
	otherPaths []string
}

// fromCheckRequest reads the HTTP attributes as Envoy fills them: lower-cased header keys,
// pseudo-headers, the path with its query string, cookies in one "cookie" header, and, with
// encode_raw_headers, the headers in header_map instead. The path is priced in its canonical
// form, as the upstream resolves it; a path that cannot be resolved unambiguously is a
// *pricing.PathError (answered 400).
func fromCheckRequest(req *authv3.CheckRequest) (httpRequest, error) {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	if h == nil {
		return httpRequest{}, errors.New("CheckRequest has no HTTP request attributes")
	}
	headers := h.GetHeaders()
	if len(headers) == 0 && len(h.GetHeaderMap().GetHeaders()) > 0 {
		headers = make(map[string]string, len(h.GetHeaderMap().GetHeaders()))
		for _, hv := range h.GetHeaderMap().GetHeaders() {
			key, value := strings.ToLower(hv.GetKey()), hv.GetValue()
			if value == "" {
				value = string(hv.GetRawValue())
			}
			if prev, ok := headers[key]; ok {
				value = prev + "," + value // as Envoy merges repeated headers
			}
			headers[key] = value
		}
	}
	path := h.GetPath()
	if path == "" {
		path = headers[":path"]
	}
	rawPath, rawQuery, _ := strings.Cut(path, "?")
	method := h.GetMethod()
	if method == "" {
		method = headers[":method"]
	}
	host := h.GetHost()
	if host == "" {
		host = headers[":authority"]
	}
	method = strings.ToUpper(method)
	canonical, others, err := requestPath(method, rawPath)
	if err != nil {
		return httpRequest{}, err
	}
	return httpRequest{
		headers:    headers,
		otherPaths: others,
		pricing: pricing.Request{
			Method:            method,
			Host:              host,
			Path:              canonical,
			RawQuery:          rawQuery,
			Headers:           headers,
			ContextExtensions: attrs.GetContextExtensions(),
		},
	}, nil
}

// requestPath is the canonical form of a request's path (pricing.CanonicalPath), and the
// other forms some servers read it as. "*" is OPTIONS's asterisk-form, as it is.
func requestPath(method, rawPath string) (string, []string, error) {
	if rawPath == "*" && method == http.MethodOptions {
		return rawPath, nil, nil
	}
	return pricing.CanonicalPath(rawPath)
}

// paymentHeaders is a balance proof as the client sent it.
type paymentHeaders struct {
	Sender    common.Address
	OpenBlock uint32
	Balance   *big.Int
	Signature rdn.Signature
	Scheme    rdn.Scheme // legacy when RDN-Proof-Scheme is absent
}

// malformedError names the offending header: answered with 409.
type malformedError struct {
	header string
	reason string
}

func (e *malformedError) Error() string { return e.header + ": " + e.reason }

func malformed(header, format string, args ...any) error {
	return &malformedError{header: header, reason: fmt.Sprintf(format, args...)}
}

// readPayment extracts the balance proof from RDN-* headers or, when the request carries no
// signature header, from the cookies the browser paywall sets. It returns nil without a
// signature: the client has not paid, it gets a quote.
func readPayment(headers map[string]string) (*paymentHeaders, error) {
	if err := checkLengths(headers); err != nil {
		return nil, err
	}
	if err := checkRepeated(headers); err != nil {
		return nil, err
	}
	source := headerSource(headers)
	if _, ok := headers[lower(rdn.HeaderBalanceSignature)]; !ok {
		values, err := cookieValues(headers["cookie"])
		if err != nil {
			return nil, err
		}
		if err := checkLengths(values); err != nil {
			return nil, err
		}
		if _, ok := values[lower(rdn.HeaderBalanceSignature)]; !ok {
			return nil, nil
		}
		source = func(name string) (string, bool) {
			v, ok := values[lower(name)]
			return v, ok
		}
	}
	for _, name := range []string{rdn.HeaderContractAddress, rdn.HeaderReceiverAddress} {
		if v, ok := source(name); ok && !common.IsHexAddress(v) {
			return nil, malformed(name, "not an address: %q", v)
		}
	}
	if v, ok := source(rdn.HeaderPayment); ok {
		if _, err := parseAmount(rdn.HeaderPayment, v); err != nil {
			return nil, err
		}
	}

	var p paymentHeaders
	var err error
	sigText, _ := source(rdn.HeaderBalanceSignature)
	// Only the encoding is judged here (409); a signature the contract would reject is an
	// invalid balance proof (402), as µRaiden's check 4 says.
	if p.Signature, err = rdn.DecodeSignature(sigText); err != nil {
		return nil, malformed(rdn.HeaderBalanceSignature, "%v", err)
	}
	sender, ok := source(rdn.HeaderSenderAddress)
	if !ok {
		return nil, malformed(rdn.HeaderSenderAddress, "missing")
	}
	if !common.IsHexAddress(sender) {
		return nil, malformed(rdn.HeaderSenderAddress, "not an address: %q", sender)
	}
	p.Sender = common.HexToAddress(sender)
	block, ok := source(rdn.HeaderOpenBlock)
	if !ok {
		return nil, malformed(rdn.HeaderOpenBlock, "missing")
	}
	n, err := strconv.ParseUint(block, 10, 32)
	if err != nil {
		return nil, malformed(rdn.HeaderOpenBlock, "not a block number: %q", block)
	}
	p.OpenBlock = uint32(n)
	if p.Balance, err = readBalance(source); err != nil {
		return nil, err
	}
	if name, ok := source(rdn.HeaderProofScheme); ok {
		if p.Scheme, err = rdn.ParseScheme(name); err != nil {
			return nil, malformed(rdn.HeaderProofScheme, "%v", err)
		}
	}
	return &p, nil
}

// readBalance accepts the new balance from RDN-Balance (µRaiden's client) or
// RDN-Sender-Balance (µRaiden's docs); both present must agree.
func readBalance(source func(string) (string, bool)) (*big.Int, error) {
	var balance *big.Int
	for _, name := range []string{rdn.HeaderBalance, rdn.HeaderSenderBalance} {
		text, ok := source(name)
		if !ok {
			continue
		}
		b, err := parseAmount(name, text)
		if err != nil {
			return nil, err
		}
		if balance != nil && balance.Cmp(b) != 0 {
			return nil, malformed(name, "disagrees with %s", rdn.HeaderBalance)
		}
		balance = b
	}
	if balance == nil {
		return nil, malformed(rdn.HeaderBalance, "missing (send RDN-Balance or RDN-Sender-Balance)")
	}
	return balance, nil
}

// parseAmount reads an amount header (rdn.ParseAmount); a malformed one is a 409.
func parseAmount(header, text string) (*big.Int, error) {
	v, err := rdn.ParseAmount(text)
	if err != nil {
		return nil, malformed(header, "%v", err)
	}
	return v, nil
}

// lower is the lower-case form of a header name, as Envoy hands request headers over;
// the protocol's names are lower-cased once, not on every lookup.
func lower(name string) string {
	if l, ok := lowerNames[name]; ok {
		return l
	}
	return strings.ToLower(name)
}

var lowerNames = func() map[string]string {
	m := map[string]string{}
	for _, name := range []string{rdn.HeaderGatewayPath, rdn.HeaderReceiverAddress, rdn.HeaderContractAddress, rdn.HeaderTokenAddress,
		rdn.HeaderPrice, rdn.HeaderSenderAddress, rdn.HeaderSenderBalance, rdn.HeaderBalance, rdn.HeaderBalanceSignature, rdn.HeaderOpenBlock,
		rdn.HeaderPayment, rdn.HeaderProofScheme} {
		m[name] = strings.ToLower(name)
	}
	return m
}()

// headerSource looks a header up by name.
func headerSource(headers map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := headers[lower(name)]
		return firstValue(v), ok
	}
}

// Envoy joins a repeated header's values with commas. No RDN value contains one, so a comma
// means the header was repeated: the same value repeated is that value; different values are
// refused.
func checkRepeated(headers map[string]string) error {
	for key, v := range headers {
		if !strings.HasPrefix(key, "rdn-") || !strings.Contains(v, ",") {
			continue
		}
		parts := strings.Split(v, ",")
		for _, p := range parts[1:] {
			if strings.TrimSpace(p) != strings.TrimSpace(parts[0]) {
				return malformed(canonical(key), "repeated with different values")
			}
		}
	}
	return nil
}

func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// canonical turns "rdn-sender-balance" into "RDN-Sender-Balance" for messages.
func canonical(key string) string {
	parts := strings.Split(key, "-")
	for i, p := range parts {
		if i == 0 {
			parts[i] = strings.ToUpper(p)
		} else if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// maxProofValue bounds each RDN-* header and cookie, checked before any is parsed: the
// longest legitimate value is a signature's 132 characters (Envoy joins a repeated
// header's values with commas, which leaves room for a few repeats), and parsing costs more
// than the length (a decimal balance's, quadratically).
const maxProofValue = 1024

// checkLengths refuses an RDN-* value over maxProofValue, without quoting it.
func checkLengths(values map[string]string) error {
	for key, v := range values {
		if len(v) > maxProofValue && strings.HasPrefix(key, "rdn-") {
			return malformed(canonical(key), "%d bytes long, over the limit of %d", len(v), maxProofValue)
		}
	}
	return nil
}

// cookieValues reads the cookies the paywall sets, by their lower-cased RDN-* names. A name
// given twice with different values is refused (409), as a repeated header is: which one
// the browser meant is unknown (two paths or domains may each hold one).
func cookieValues(line string) (map[string]string, error) {
	values := map[string]string{}
	if line != "" {
		cookies, err := http.ParseCookie(line)
		if err != nil {
			// Other cookies of the site may be odd; only ours matter. Parse leniently.
			cookies = lenientCookies(line)
		}
		for _, c := range cookies {
			if !strings.HasPrefix(strings.ToUpper(c.Name), "RDN-") {
				continue
			}
			name := strings.ToLower(c.Name)
			if prev, ok := values[name]; ok && prev != c.Value {
				return nil, malformed(canonical(name)+" cookie", "repeated with different values")
			}
			values[name] = c.Value
		}
	}
	return values, nil
}

func lenientCookies(line string) []*http.Cookie {
	var out []*http.Cookie
	for part := range strings.SplitSeq(line, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			out = append(out, &http.Cookie{Name: name, Value: strings.Trim(value, `"`)})
		}
	}
	return out
}

// withoutPaymentCookies returns the cookie line without its RDN-* cookies, and whether it
// had any: only then must the upstream's cookie header be rewritten. The check costs no
// allocation for a line without them.
func withoutPaymentCookies(line string) (string, bool) {
	if !mayHavePaymentCookie(line) {
		return "", false
	}
	var kept []string
	found := false
	for part := range strings.SplitSeq(line, ";") {
		part = strings.TrimSpace(part)
		name, _, _ := strings.Cut(part, "=")
		if len(name) >= 4 && strings.EqualFold(name[:4], "rdn-") {
			found = true
			continue
		}
		if part != "" {
			kept = append(kept, part)
		}
	}
	if !found {
		return "", false
	}
	return strings.Join(kept, "; "), true
}

// mayHavePaymentCookie reports whether "rdn-", in any case, occurs in the line.
func mayHavePaymentCookie(line string) bool {
	for i := 0; i+4 <= len(line); i++ {
		if (line[i]|0x20) == 'r' && (line[i+1]|0x20) == 'd' && (line[i+2]|0x20) == 'n' && line[i+3] == '-' {
			return true
		}
	}
	return false
}
