package authz

import (
	"errors"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

const fuzzSig = "0x" + "11" + "00000000000000000000000000000000000000000000000000000000000000" +
	"22" + "00000000000000000000000000000000000000000000000000000000000000" + "1b"

// checkPayment asserts what readPayment promises whatever the headers: no panic, every
// error a malformedError (answered 409), and a parsed proof within the protocol's bounds.
func checkPayment(t *testing.T, headers map[string]string) {
	t.Helper()
	p, err := readPayment(headers)
	if err != nil {
		var m *malformedError
		if !errors.As(err, &m) {
			t.Fatalf("readPayment error %v is not a malformedError (409)", err)
		}
		if p != nil {
			t.Fatalf("readPayment returned both a payment and %v", err)
		}
		return
	}
	if p == nil {
		return
	}
	if p.Balance == nil || p.Balance.Sign() < 0 || p.Balance.Cmp(rdn.MaxAmount()) > 0 {
		t.Fatalf("balance %v out of [0, 2^192-1]", p.Balance)
	}
	if !p.Scheme.Valid() {
		t.Fatalf("scheme %v accepted", p.Scheme)
	}
	if name, ok := headers["rdn-proof-scheme"]; ok && headers["rdn-balance-signature"] != "" && p.Scheme.String() != firstValue(name) {
		t.Fatalf("RDN-Proof-Scheme %q read as %v", name, p.Scheme)
	}
	if v := p.Signature[64]; v < 27 {
		t.Fatalf("signature v %d not normalized", v)
	}
	if err := checkRepeated(headers); err != nil {
		t.Fatalf("readPayment accepted headers checkRepeated refuses: %v", err)
	}
	if err := checkLengths(headers); err != nil {
		t.Fatalf("readPayment accepted an RDN value over the limit: %v", err)
	}
}

func FuzzReadPayment(f *testing.F) {
	addr := "0x" + strings.Repeat("ab", 20)
	f.Add(fuzzSig, addr, "12", "100", "", "", "")
	f.Add(fuzzSig+","+fuzzSig, addr, "12", "100", "100", "", "eip712")
	f.Add(fuzzSig, addr, "4294967296", "-1", "", "", "legacy")
	f.Add("", "", "", "", "", "RDN-Balance-Signature="+fuzzSig+"; RDN-Sender-Address="+addr+"; RDN-Open-Block=3; RDN-Balance=7; RDN-Proof-Scheme=eip712", "")
	f.Add("", "", "", "", "", `rdn-balance-signature="`+fuzzSig+`"; other=x"y; RDN-Open-Block=3`, "")
	f.Add("0x00", "nope", "1,2", "1", "2", "", "EIP712")
	f.Add(fuzzSig, addr, "1", strings.Repeat("9", 60), "", "", "eip712,eip712")
	f.Add(fuzzSig, addr, "1", "5", "", "", "eip712, legacy")
	f.Fuzz(func(t *testing.T, sig, sender, block, balance, senderBalance, cookie, scheme string) {
		headers := map[string]string{}
		for k, v := range map[string]string{
			"rdn-balance-signature": sig, "rdn-sender-address": sender, "rdn-open-block": block,
			"rdn-balance": balance, "rdn-sender-balance": senderBalance, "cookie": cookie, "rdn-proof-scheme": scheme,
		} {
			if v != "" {
				headers[k] = v
			}
		}
		checkPayment(t, headers)

		// The cookie parser alone: only RDN-* names, lower-cased for case-insensitive lookups.
		values, _ := cookieValues(cookie)
		for name := range values {
			if !strings.HasPrefix(name, "rdn-") || name != strings.ToLower(name) {
				t.Fatalf("cookieValues exposes %q", name)
			}
		}
	})
}

func FuzzCheckRequest(f *testing.F) {
	addr := "0x" + strings.Repeat("ab", 20)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"attributes":{"request":{"http":{"method":"get","path":"/echofix/x?y=1","host":"h","headers":{"rdn-balance-signature":"` + fuzzSig + `","rdn-sender-address":"` + addr + `","rdn-open-block":"5","rdn-balance":"10"}}}}}`))
	f.Add([]byte(`{"attributes":{"request":{"http":{"headerMap":{"headers":[{"key":":path","value":"/a"},{"key":"RDN-Balance","rawValue":"MTA="},{"key":"rdn-balance","value":"11"},{"key":"cookie","value":"RDN-Balance-Signature=` + fuzzSig + `"}]}}},"contextExtensions":{"uraiden.price":"3"}}}`))
	f.Add([]byte(`{"attributes":{"request":{"http":{"headers":{":path":"/x?q","rdn-balance-signature":"0x","rdn-contract-address":"zz"}}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req authv3.CheckRequest
		if err := protojson.Unmarshal(data, &req); err != nil {
			return
		}
		hr, err := fromCheckRequest(&req)
		if pathErr := (*pricing.PathError)(nil); errors.As(err, &pathErr) {
			return // answered 400
		}
		if err != nil {
			if req.GetAttributes().GetRequest().GetHttp() != nil {
				t.Fatalf("fromCheckRequest refused a request with HTTP attributes: %v", err)
			}
			return
		}
		if again, _, err := pricing.CanonicalPath(hr.pricing.Path); hr.pricing.Path != "*" && (err != nil || again != hr.pricing.Path) {
			t.Fatalf("path %q is not canonical: %q %v", hr.pricing.Path, again, err)
		}
		if hr.pricing.Method != strings.ToUpper(hr.pricing.Method) {
			t.Fatalf("method %q not upper-cased", hr.pricing.Method)
		}
		if strings.Contains(hr.pricing.Path, "?") {
			t.Fatalf("path %q keeps its query", hr.pricing.Path)
		}
		for k := range hr.headers {
			if len(req.GetAttributes().GetRequest().GetHttp().GetHeaders()) == 0 && k != strings.ToLower(k) {
				t.Fatalf("header key %q from header_map not lower-cased", k)
			}
		}
		checkPayment(t, hr.headers)
	})
}
