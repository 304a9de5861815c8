package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

const typedChainID = 31337

// schemeService is paidService's service on chain 31337, taking the given schemes, with a
// ledger the test sets; typed returns a typed proof's headers for a balance and a chain.
func schemeService(t *testing.T, schemes ...rdn.Scheme) (cfg Config, legacy func(int64) map[string]string, typed func(balance int64, chainID uint64) map[string]string) {
	t.Helper()
	base, legacy := paidService(t)
	cfg = base.cfg
	cfg.ChainID, cfg.ProofSchemes = typedChainID, schemes
	key, err := crypto.HexToECDSA(strings.Repeat("a0", 32)) // paidService's sender
	if err != nil {
		t.Fatal(err)
	}
	typed = func(balance int64, chainID uint64) map[string]string {
		sig, err := rdn.Balance{Receiver: cfg.Receiver, OpenBlock: 7, Balance: big.NewInt(balance), Contract: cfg.Contract,
			Scheme: rdn.SchemeTyped, ChainID: chainID}.Sign(key)
		if err != nil {
			t.Fatal(err)
		}
		return edit(legacy(balance), rdn.HeaderBalanceSignature, sig.Hex(), rdn.HeaderProofScheme, rdn.SchemeTypedName)
	}
	return cfg, legacy, typed
}

// decideWith runs one request through a new service of cfg over l.
func decideWith(t *testing.T, cfg Config, l *fakeLedger, headers map[string]string) (*Decision, map[string]string, paymentBody) {
	t.Helper()
	cfg.Ledger = l
	var d *Decision
	cfg.Observe = func(got *Decision, _ time.Duration) { d = got }
	resp, err := NewService(cfg, nil).Check(context.Background(), plainRequest("GET", "/echofix/a", headers))
	if err != nil || d == nil {
		t.Fatalf("Check: %v", err)
	}
	answer, _ := answerHeaders(resp)
	var body paymentBody
	if text := resp.GetDeniedResponse().GetBody(); text != "" {
		if err := json.Unmarshal([]byte(text), &body); err != nil {
			t.Fatalf("body %q: %v", text, err)
		}
	}
	return d, answer, body
}

func TestTypedProofs(t *testing.T) {
	cfg, legacy, typed := schemeService(t, rdn.SchemeTyped, rdn.SchemeLegacy)
	open := &ledger.Channel{State: ledger.StateOpen, Deposit: big.NewInt(100), Balance: big.NewInt(0), Charged: big.NewInt(0)}
	accepting := func() *fakeLedger {
		return &fakeLedger{channel: open, height: 100, result: ledger.PayResult{Outcome: ledger.Accepted, Known: true,
			Balance: big.NewInt(5), Charged: big.NewInt(5), Deposit: big.NewInt(100)}}
	}
	for _, c := range []struct {
		name    string
		headers map[string]string
		status  int
		flag    string
		msg     string
		scheme  rdn.Scheme // Pay's, when it is called
	}{
		{name: "typed", headers: typed(5, typedChainID), status: 200, scheme: rdn.SchemeTyped},
		{name: "legacy, no scheme header", headers: legacy(5), status: 200, scheme: rdn.SchemeLegacy},
		{name: "legacy, named", headers: edit(legacy(5), rdn.HeaderProofScheme, "legacy"), status: 200, scheme: rdn.SchemeLegacy},
		{name: "typed through the paywall's cookies", headers: map[string]string{"cookie": asCookies(typed(5, typedChainID)) + "; RDN-Proof-Scheme=eip712"},
			status: 200, scheme: rdn.SchemeTyped},
		{name: "typed for another chain", headers: typed(5, 1), status: 402, flag: rdn.FlagInvalidProof},
		{name: "legacy signature named typed", headers: edit(legacy(5), rdn.HeaderProofScheme, "eip712"), status: 402, flag: rdn.FlagInvalidProof},
		{name: "typed signature not named", headers: edit(typed(5, typedChainID), rdn.HeaderProofScheme, "-"), status: 402, flag: rdn.FlagInvalidProof},
		{name: "scheme in capitals", headers: edit(typed(5, typedChainID), rdn.HeaderProofScheme, "EIP712"), status: 409, msg: "RDN-Proof-Scheme: "},
		{name: "unknown scheme", headers: edit(typed(5, typedChainID), rdn.HeaderProofScheme, "v4"), status: 409, msg: "RDN-Proof-Scheme: "},
		{name: "scheme repeated differently", headers: edit(typed(5, typedChainID), rdn.HeaderProofScheme, "eip712, legacy"), status: 409,
			msg: "RDN-Proof-Scheme: repeated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := accepting()
			d, _, _ := decideWith(t, cfg, l, c.headers)
			if d.Status != c.status || d.Flag != c.flag || !strings.Contains(d.Message, c.msg) {
				t.Fatalf("decision %d %q %q, want %d %q %q", d.Status, d.Flag, d.Message, c.status, c.flag, c.msg)
			}
			if c.status == 200 {
				resp := cfg.checkResponse(d)
				noProof(t, c.name, applyAsEnvoy(plainRequest("GET", "/echofix/a", c.headers).GetAttributes().GetRequest().GetHttp().GetHeaders(), resp.GetOkResponse()))
			}
			if c.status == 200 && (len(l.payments) != 1 || l.payments[0].Scheme != c.scheme) {
				t.Errorf("Pay(%+v), want one payment in %v", l.payments, c.scheme)
			}
			if c.status != 200 && len(l.payments) != 0 {
				t.Errorf("Pay called for a refused proof")
			}
		})
	}
}

// Every 402 says what the server takes; one that returns the server's last proof says
// which scheme it is in.
func TestSchemeOffer(t *testing.T) {
	cfg, legacy, typed := schemeService(t, rdn.SchemeTyped, rdn.SchemeLegacy)
	_, headers, body := decideWith(t, cfg, &fakeLedger{}, nil)
	want := fmt.Sprintf(`{"name":"uraiden","version":"1","chainId":31337,"verifyingContract":%q}`, cfg.Contract.Hex())
	domain, _ := json.Marshal(body.EIP712Domain)
	if headers[rdn.HeaderProofSchemes] != "eip712, legacy" || strings.Join(body.ProofSchemes, " ") != "eip712 legacy" || string(domain) != want {
		t.Errorf("quote: %s %q, body %v %s", rdn.HeaderProofSchemes, headers[rdn.HeaderProofSchemes], body.ProofSchemes, domain)
	}

	lastSig, _ := rdn.DecodeSignature(typed(10, typedChainID)[rdn.HeaderBalanceSignature])
	resync := &fakeLedger{result: ledger.PayResult{Outcome: ledger.InvalidAmount, Known: true, Balance: big.NewInt(10),
		Signature: lastSig, Scheme: rdn.SchemeTyped, Charged: big.NewInt(10), Deposit: big.NewInt(100)}}
	d, headers, body := decideWith(t, cfg, resync, legacy(5))
	if d.Flag != rdn.FlagInvalidAmount || headers[rdn.HeaderProofScheme] != "eip712" || body.ProofScheme != "eip712" ||
		headers[rdn.HeaderBalanceSignature] != lastSig.Hex() {
		t.Errorf("resync: %s %q, body %q", rdn.HeaderProofScheme, headers[rdn.HeaderProofScheme], body.ProofScheme)
	}

	// Against µRaiden's original contract: legacy alone, and a typed proof is a 409.
	cfg.ProofSchemes = nil
	_, headers, body = decideWith(t, cfg, &fakeLedger{}, nil)
	if headers[rdn.HeaderProofSchemes] != "legacy" || strings.Join(body.ProofSchemes, " ") != "legacy" || body.EIP712Domain != nil {
		t.Errorf("legacy-only quote: %q, body %v %v", headers[rdn.HeaderProofSchemes], body.ProofSchemes, body.EIP712Domain)
	}
	l := &fakeLedger{}
	d, _, _ = decideWith(t, cfg, l, typed(5, typedChainID))
	if d.Status != 409 || d.Message != "RDN-Proof-Scheme: eip712 is not offered: this server's contract takes legacy proofs only" || len(l.payments) != 0 {
		t.Errorf("typed proof to a legacy-only server: %d %q", d.Status, d.Message)
	}
}
