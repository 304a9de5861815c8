package authz

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/uraiden/uraiden/rdn"
)

// An RDN-* header or cookie of absurd length is refused as malformed (409) before it is
// parsed, naming the header and not echoing the value; a balance of too many digits too
// (big.Int parses decimal in quadratic time: seconds for a megabyte).
func TestAbsurdProofValuesAreRefusedEarly(t *testing.T) {
	huge := strings.Repeat("9", 1<<20)
	valid := map[string]string{
		"rdn-balance-signature": fuzzSig, "rdn-sender-address": "0x" + strings.Repeat("ab", 20),
		"rdn-open-block": "5", "rdn-balance": "10",
	}
	for _, name := range []string{rdn.HeaderBalanceSignature, rdn.HeaderSenderAddress, rdn.HeaderOpenBlock, rdn.HeaderBalance,
		rdn.HeaderSenderBalance, rdn.HeaderContractAddress, rdn.HeaderReceiverAddress, rdn.HeaderPayment} {
		headers := map[string]string{}
		for k, v := range valid {
			headers[k] = v
		}
		headers[lower(name)] = huge
		var m *malformedError
		_, err := readPayment(headers)
		if !errors.As(err, &m) || m.header != name || !strings.Contains(err.Error(), "over the limit") {
			t.Errorf("%s of 1 MiB: %v", name, err)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("%s: the error quotes the value (%d bytes)", name, len(err.Error()))
		}
	}
	cookie := "session=abc; RDN-Balance-Signature=" + fuzzSig + "; RDN-Balance=" + huge
	if _, err := readPayment(map[string]string{"cookie": cookie}); err == nil || !strings.Contains(err.Error(), "RDN-Balance: ") {
		t.Errorf("a 1 MiB RDN-Balance cookie: %v", err)
	}
	// Within the header limit, a balance of 79 digits (leading zeros) is out of range
	// without being parsed.
	headers := map[string]string{}
	for k, v := range valid {
		headers[k] = v
	}
	headers["rdn-balance"] = strings.Repeat("0", 78) + "1"
	if _, err := readPayment(headers); err == nil || !strings.Contains(err.Error(), "79 digits") {
		t.Errorf("a 79-digit balance: %v", err)
	}
	// The same through the HTTP service: a short 409 naming the header.
	r := httptest.NewRequest(http.MethodGet, EnvoyHTTPPrefix+"/echofix/foo", nil)
	for k, v := range valid {
		r.Header.Set(k, v)
	}
	r.Header.Set(rdn.HeaderBalance, huge[:100<<10])
	w := serveHTTP(httpService(t), r)
	if w.Code != 409 || !strings.Contains(w.Body.String(), "RDN-Balance") || w.Body.Len() > 1024 {
		t.Errorf("HTTP: %d, %d bytes: %.200s", w.Code, w.Body.Len(), w.Body)
	}
}
