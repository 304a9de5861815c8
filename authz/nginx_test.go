package authz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"google.golang.org/protobuf/proto"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// A denial survives nginx's trip from the auth subrequest to the denial request: decoded,
// it renders the very answer Check gives (status, headers, cookies, body), in a header well
// under nginx's 4 KiB for the auth answer's header.
func TestDenialRoundTrip(t *testing.T) {
	s := httpService(t)
	sig, err := rdn.DecodeSignature("0x" + strings.Repeat("ab", 64) + "1c")
	if err != nil {
		t.Fatal(err)
	}
	resync := func() *Decision {
		return &Decision{Status: 402, Flag: rdn.FlagInvalidAmount, Price: big.NewInt(5), Rule: "echofix",
			Message: "this balance was already used, or the balances signed do not cover what was charged plus the price (5); resynchronize with RDN-Sender-Balance",
			Channel: &ChannelState{Sender: common.HexToAddress("0x8Bf640A099fE945DA46F354d3B49c48a125F48B6"), OpenBlock: 7,
				Balance: rdn.MaxAmount(), Signature: sig, Scheme: rdn.SchemeTyped}}
	}
	browserResync := resync()
	browserResync.browser = &browser{https: true}
	unconfirmed := &Decision{Status: 402, Flag: rdn.FlagInsufficientConfirm, Price: big.NewInt(5), Message: "the channel is not confirmed yet; retry later",
		Channel: &ChannelState{Sender: common.HexToAddress("0x8Bf640A099fE945DA46F354d3B49c48a125F48B6"), OpenBlock: 7, Balance: big.NewInt(0)}}
	for name, d := range map[string]*Decision{
		"quote":          {Status: 402, Message: "payment required", Price: big.NewInt(5), Rule: "echofix", quote: true},
		"resync":         resync(),
		"browser resync": browserResync,
		"unconfirmed":    unconfirmed,
		"409 browser":    {Status: 409, Message: "RDN-Balance: not a number", Price: big.NewInt(5), browser: &browser{}},
		"409 no price":   {Status: 409, Message: "RDN-Balance: not a number"},
		"503":            {Status: 503, Message: "payments suspended: ledger: disk nearly full", Price: big.NewInt(5), Rule: "echofix"},
		"<html> message": {Status: 400, Message: `the path is /a<b>&"c" to some`},
	} {
		text := encodeDenial(d)
		if len(text) > maxDenialHeader {
			t.Errorf("%s: %d bytes encoded, over %d", name, len(text), maxDenialHeader)
		}
		got, err := decodeDenial(text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Status != d.Status || got.Flag != d.Flag || got.Message != d.Message || got.Rule != d.Rule || got.Outcome() != d.Outcome() {
			t.Errorf("%s: decoded %+v, want %+v", name, got, d)
		}
		if want, have := s.cfg.deniedResponse(d), s.cfg.deniedResponse(got); !proto.Equal(want, have) {
			t.Errorf("%s: rendered\n%v\nwant\n%v", name, have, want)
		}
	}
	if n := len(encodeDenial(browserResync)); n > 1024 {
		t.Errorf("a browser's resync denial takes %d bytes", n)
	}

	// A message too long for the header is cut, never the header too long for nginx.
	long := &Decision{Status: 400, Message: strings.Repeat("é/..", 2000)}
	if got, err := decodeDenial(encodeDenial(long)); err != nil || len(encodeDenial(long)) > maxDenialHeader ||
		!strings.HasSuffix(got.Message, "…") || !strings.HasPrefix(long.Message, strings.TrimSuffix(got.Message, "…")) {
		t.Errorf("long message: %d bytes, %v", len(encodeDenial(long)), err)
	}

	encode := func(v any) string {
		data, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(data)
	}
	for name, text := range map[string]string{
		"empty":          "",
		"not base64":     "a+b/c=",
		"not JSON":       base64.RawURLEncoding.EncodeToString([]byte("402")),
		"an allow":       encode(map[string]any{"s": 200}),
		"no status":      encode(map[string]any{"m": "x"}),
		"unknown field":  encode(map[string]any{"s": 402, "html": "<p>"}),
		"bad price":      encode(map[string]any{"s": 402, "p": "-5"}),
		"price too high": encode(map[string]any{"s": 402, "p": new(big.Int).Lsh(big.NewInt(1), 192).String()}),
		"bad sender":     encode(map[string]any{"s": 402, "a": "0x12", "b": "0"}),
		"no balance":     encode(map[string]any{"s": 402, "a": "0x8Bf640A099fE945DA46F354d3B49c48a125F48B6"}),
		"bad signature":  encode(map[string]any{"s": 402, "a": "0x8Bf640A099fE945DA46F354d3B49c48a125F48B6", "b": "1", "g": "0x12"}),
		"bad scheme":     encode(map[string]any{"s": 402, "a": "0x8Bf640A099fE945DA46F354d3B49c48a125F48B6", "b": "1", "k": "rsa"}),
		"trailing bytes": encode(map[string]any{"s": 402}) + "AA",
	} {
		if d, err := decodeDenial(text); err == nil {
			t.Errorf("%s: decoded %+v", name, d)
		}
	}
}

// nginx's denial request renders the auth subrequest's decision and decides nothing: a
// request that became payable in between (the channel's confirmation arrived) is neither
// charged nor told so, and without the denial the answer is an error, not a decision.
func TestNginxDenialAsksNoLedger(t *testing.T) {
	s, proofHeaders := paidService(t)
	l := &fakeLedger{result: ledger.PayResult{Outcome: ledger.Unconfirmed}}
	observed := 0
	s.cfg.Ledger, s.cfg.Observe = l, func(*Decision, time.Duration) { observed++ }
	ask := func(path string, headers map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("X-Forwarded-Method", "GET")
		r.Header.Set("X-Forwarded-Uri", "/echofix/a")
		r.Header.Set("X-Forwarded-Host", "api.example.com")
		for k, v := range headers {
			r.Header.Set(k, v)
		}
		return serveHTTP(s, r)
	}
	for _, accept := range []string{"application/json", "text/html"} {
		l.calls, l.result.Outcome, observed = nil, ledger.Unconfirmed, 0
		proof := edit(proofHeaders(5), "Accept", accept)
		auth := ask(NginxAuthPath, proof)
		denial := auth.Header().Get(NginxDenialHeader)
		if auth.Code != 401 || auth.Body.Len() != 0 || denial == "" || l.called() != "Err Pay" || observed != 1 {
			t.Fatalf("%s: auth %d %v %q, ledger %q, observed %d: want a 401 with the denial", accept, auth.Code, auth.Header(), auth.Body, l.called(), observed)
		}
		// What the forward-auth path answers for the same request, decided the same way.
		want := ask("/forward-auth", proof)

		l.calls, l.result.Outcome, observed = nil, ledger.Accepted, 0 // payable now
		got := ask(NginxDenialPath, edit(proof, NginxDenialHeader, denial))
		if l.called() != "" || observed != 0 {
			t.Errorf("%s: the denial path asked the ledger %q, observed %d", accept, l.called(), observed)
		}
		if got.Code != 402 || got.Header().Get(rdn.FlagInsufficientConfirm) != "1" || got.Code != want.Code ||
			!bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) || len(got.Header()) != len(want.Header()) {
			t.Errorf("%s: denial %d %v\n%q\nwant %d %v\n%q", accept, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
		for name, values := range want.Header() {
			if strings.Join(got.Header()[name], "\n") != strings.Join(values, "\n") {
				t.Errorf("%s: %s %q, want %q", accept, name, got.Header()[name], values)
			}
		}
	}

	// Without the denial (or with a forged one), an error naming the directive: no decision.
	l.calls, observed = nil, 0
	for _, headers := range []map[string]string{proofHeaders(5), edit(proofHeaders(5), NginxDenialHeader, "forged")} {
		w := ask(NginxDenialPath, headers)
		var body struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 500 ||
			!strings.Contains(body.Error, "auth_request_set $uraiden_denial") || w.Header().Get(rdn.HeaderPrice) != "" {
			t.Errorf("denial path without the denial: %d %q (%v)", w.Code, w.Body, err)
		}
	}
	if l.called() != "" || observed != 0 {
		t.Errorf("the denial path without a denial asked the ledger %q, observed %d", l.called(), observed)
	}
}
