package admin

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/uraiden/uraiden/rdn"
)

const fuzzCloseSig = "0x" + "11" + "00000000000000000000000000000000000000000000000000000000000000" +
	"22" + "00000000000000000000000000000000000000000000000000000000000000" + "1b"

func FuzzReadCloseRequest(f *testing.F) {
	f.Add("application/json", `{"balance": 42, "balance_signature": "`+fuzzCloseSig+`"}`)
	f.Add("application/json", `{"balance": "6277101735386680763835789423207666416102355444464034512895", "balance_signature": "x"}`)
	f.Add("application/json", `{"balance": 6277101735386680763835789423207666416102355444464034512896, "balance_signature": "x"}`)
	f.Add("", `{"balance": 1e3, "balance_signature": "x"}`)
	f.Add("", `{"balance": null, "balance_signature": "x"}`)
	f.Add("", `{"balance": -1, "balance_signature": "x", "extra": 1}`)
	f.Add("", `{"balance": 1, "balance_signature": "x"} trailing`)
	f.Add("application/json; charset=utf-8", `{"balance": "1"}`)
	f.Add("application/x-www-form-urlencoded", "balance=42&balance_signature="+fuzzCloseSig)
	f.Add("application/json", `{"balance": 42, "balance_signature": "`+fuzzCloseSig+`", "close_request_signature": "`+fuzzCloseSig+`", "close_request_expires": 1767225600}`)
	f.Add("application/x-www-form-urlencoded", "balance=42&balance_signature="+fuzzCloseSig+"&close_request_signature="+fuzzCloseSig+"&close_request_expires=-1")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "balance=%3&balance_signature=x;y")
	f.Add("application/x-www-form-urlencoded", "balance=+1&balance_signature=")
	f.Add("application/json", `{"balance": 42, "balance_signature": "`+fuzzCloseSig+`", "proof_scheme": "eip712"}`)
	f.Add("application/json", `{"balance": 42, "balance_signature": "`+fuzzCloseSig+`", "proof_scheme": "EIP712"}`)
	f.Add("application/x-www-form-urlencoded", "balance=42&balance_signature="+fuzzCloseSig+"&proof_scheme=legacy")
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := httptest.NewRequest(http.MethodDelete, "/channels/x/1", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		req, err := readCloseRequest(httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		if req.Balance.Int == nil || req.Balance.Sign() < 0 || req.Balance.Cmp(rdn.MaxAmount()) > 0 {
			t.Fatalf("accepted balance %v out of [0, 2^192-1]", req.Balance.Int)
		}
		if req.Signature == "" {
			t.Fatal("accepted a request without balance_signature")
		}
		if len(body) > maxCloseBody {
			t.Fatalf("accepted a %d-byte body", len(body))
		}
		// A scheme is named exactly, or not at all (legacy).
		if req.ProofScheme == nil && req.Scheme != rdn.SchemeLegacy ||
			req.ProofScheme != nil && (!req.Scheme.Valid() || *req.ProofScheme != req.Scheme.String()) {
			t.Fatalf("proof_scheme %v read as %v", req.ProofScheme, req.Scheme)
		}
		// Media types are case-insensitive (RFC 9110 §8.3.1): the form is read as a form.
		if mediaType, _, _ := mime.ParseMediaType(contentType); mediaType == "application/x-www-form-urlencoded" {
			form, err := url.ParseQuery(body)
			if err != nil || form.Get("balance_signature") != req.Signature {
				t.Fatalf("form signature %q, parsed %q (%v)", form.Get("balance_signature"), req.Signature, err)
			}
			return
		}
		// A JSON body is accepted only whole: one valid JSON object and nothing after it.
		if !json.Valid([]byte(body)) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("accepted a non-object: %v", err)
		}
		for k := range m {
			// encoding/json matches keys case-insensitively: "Balance" is "balance".
			if !slices.ContainsFunc([]string{"balance", "balance_signature", "close_request_signature", "close_request_expires", "proof_scheme"},
				func(known string) bool { return strings.EqualFold(k, known) }) {
				t.Fatalf("accepted unknown key %q", k)
			}
		}
	})
}

// Found by FuzzReadCloseRequest: the JSON decoder stopped at the first value.
func TestReadCloseRequestRejectsTrailingData(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"balance": 1, "balance_signature": "x"}`:                                         true,
		`{"balance": 1, "balance_signature": "x"}` + "\n  \n":                              true,
		`{"balance": 1, "balance_signature": "x"} trailing`:                                false,
		`{"balance": 1, "balance_signature": "x"}{"balance": 2, "balance_signature": "y"}`: false,
		`{"balance": 1, "balance_signature": "x"}}`:                                        false,
	} {
		r := httptest.NewRequest(http.MethodDelete, "/channels/x/1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if _, err := readCloseRequest(httptest.NewRecorder(), r); (err == nil) != ok {
			t.Errorf("%q: err %v, want accepted=%v", body, err, ok)
		}
	}
}
