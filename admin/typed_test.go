package admin_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"

	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// signIn is sign in a scheme.
func (h *harness) signIn(scheme rdn.Scheme, key *ecdsa.PrivateKey, c channel, balance int64) string {
	h.t.Helper()
	sig, err := rdn.Balance{Receiver: h.receiver(), OpenBlock: c.openBlock, Balance: big.NewInt(balance), Contract: h.chain.Deployment().Channels,
		Scheme: scheme, ChainID: devchain.ChainID}.Sign(key)
	if err != nil {
		h.t.Fatal(err)
	}
	return sig.Hex()
}

// payTyped stores a typed proof of c at balance in the server's ledger, as authz does once
// it has checked one.
func (h *harness) payTyped(c channel, balance int64) {
	h.t.Helper()
	ch, err := h.srv.Ledger.Channel(rdn.ChannelID{Sender: c.sender, OpenBlock: c.openBlock})
	if err != nil || ch == nil {
		h.t.Fatalf("channel: %v", err)
	}
	sig, _ := rdn.ParseSignature(h.signIn(rdn.SchemeTyped, c.key, c, balance))
	r, err := h.srv.Ledger.Pay(context.Background(), ledger.Payment{ID: ch.ID, Balance: big.NewInt(balance), Signature: sig,
		Scheme: rdn.SchemeTyped, Price: new(big.Int).Sub(big.NewInt(balance), ch.Balance)})
	if err != nil || r.Outcome != ledger.Accepted {
		h.t.Fatalf("typed payment of %d: %v %v", balance, r.Outcome, err)
	}
}

// adminOffering serves a second admin API on the server's ledger, signing with the
// receiver's key, that offers the given proof schemes; it returns its base URL. (The
// server's own offers what uraiden serve decides from the contract.)
func (h *harness) adminOffering(schemes []rdn.Scheme) string {
	h.t.Helper()
	d := h.chain.Deployment()
	key := h.chain.Accounts()[0].Key
	srv, err := admin.New(admin.Config{
		Listen: "127.0.0.1:0", Prefix: "/api/1", Receiver: h.receiver(), Contract: d.Channels, TokenAddress: d.Token,
		ChainID: devchain.ChainID, ProofSchemes: schemes, Ledger: h.srv.Ledger,
		SignClosing: func(c rdn.Closing) (rdn.Signature, error) { return c.Sign(key) },
		Chain: admin.NewChainView(func(context.Context) (uint64, error) { return h.head(), nil },
			func(context.Context) (*big.Int, error) { return big.NewInt(0), nil }, time.Second),
		Ready: func() error { return nil },
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { srv.Close(context.Background()) })
	return "http://" + srv.Addr()
}

// inScheme adds "proof_scheme" to a JSON close body.
func inScheme(body, scheme string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		panic(err)
	}
	m["proof_scheme"] = scheme
	data, _ := json.Marshal(m)
	return string(data)
}

func typedRequest(c *rdn.CloseRequest) { c.Scheme = rdn.SchemeTyped }

// A typed close: the balance proof and close request are checked as typed, each refused
// when signed in the other scheme or asked for in the other; the closing signature is the
// receiver's typed one, which the contract takes in cooperativeCloseTyped and which settles
// the channel at the balance. The channel shows the schemes of its proof and closing
// signature.
func TestTypedCooperativeClose(t *testing.T) {
	h := newHarness(t, nil)
	a := h.open(h.account(1), 1000)
	b := h.open(h.account(2), 1000)
	h.mine(confirmations)
	h.start()
	if st := h.pay(a, 5); st != 200 {
		t.Fatalf("legacy payment: %d", st)
	}
	h.payTyped(a, 15)
	base := h.adminOffering([]rdn.Scheme{rdn.SchemeTyped, rdn.SchemeLegacy})
	del := func(body string) response { return do(t, "DELETE", base+channelPath(a), "", body) }

	var view admin.ChannelBody
	h.do("GET", channelPath(a), "", "").json(t, &view)
	if view.ProofScheme != "eip712" || view.CloseProofScheme != "" || view.BalanceSignature != "" {
		t.Errorf("an open channel with a typed proof, seen by anyone: %+v", view)
	}
	view = admin.ChannelBody{}
	h.do("GET", channelPath(b), testToken, "").json(t, &view)
	if view.ProofScheme != "" || view.CloseProofScheme != "" {
		t.Errorf("a channel without a proof: %+v", view)
	}

	typedProof, legacyProof := h.signIn(rdn.SchemeTyped, a.key, a, 15), h.signIn(rdn.SchemeLegacy, a.key, a, 15)
	typedReq, legacyReq := h.closeRequest(a.key, a, 15, typedRequest), h.closeRequest(a.key, a, 15, nil)
	for _, bad := range []struct {
		name, body string
		status     int
		says       string
	}{
		{"typed signatures asked for as legacy (no proof_scheme)", closeWith(15, typedProof, typedReq), 403, "balance_signature"},
		{"typed signatures asked for as legacy", inScheme(closeWith(15, typedProof, typedReq), "legacy"), 403, "balance_signature"},
		{"legacy signatures asked for as typed", inScheme(closeWith(15, legacyProof, legacyReq), "eip712"), 403, "balance_signature"},
		{"a typed proof with a close request signed as legacy text", inScheme(closeWith(15, typedProof, legacyReq), "eip712"), 403, "close_request_signature"},
		{"a legacy proof with a typed close request", inScheme(closeWith(15, legacyProof, typedReq), "legacy"), 403, "close_request_signature"},
		{"a typed close request of another chain", inScheme(closeWith(15, typedProof, h.closeRequest(a.key, a, 15, func(c *rdn.CloseRequest) {
			c.Scheme, c.ChainID = rdn.SchemeTyped, 1
		})), "eip712"), 403, "close_request_signature"},
		{"a typed proof without a close request", inScheme(closeBody(15, typedProof), "eip712"), 403, "EIP-712"},
		{"a scheme in capitals", inScheme(closeWith(15, typedProof, typedReq), "EIP712"), 400, "proof_scheme"},
		{"an empty scheme", inScheme(closeWith(15, typedProof, typedReq), ""), 400, "proof_scheme"},
		{"a scheme that is not a string", strings.Replace(inScheme(closeWith(15, typedProof, typedReq), "x"), `"x"`, `1`, 1), 400, "proof_scheme"},
	} {
		r := del(bad.body)
		if r.status != bad.status || strings.Contains(string(r.body), "close_signature") || !strings.Contains(r.errorText(t), bad.says) {
			t.Errorf("%s: %d %s, want %d naming %s", bad.name, r.status, r.body, bad.status, bad.says)
		}
	}
	// Refused closes stop no payment: a legacy one, then a typed one again.
	if st := h.pay(a, 20); st != 200 {
		t.Fatalf("payment after refused closes: %d", st)
	}
	h.payTyped(a, 25)

	// The sender's typed close at 25, as JSON, then again as a form: one signature.
	typedProof, typedReq = h.signIn(rdn.SchemeTyped, a.key, a, 25), h.closeRequest(a.key, a, 25, typedRequest)
	r := del(inScheme(closeWith(25, typedProof, typedReq), "eip712"))
	var closed admin.CloseResponse
	r.json(t, &closed)
	if r.status != 200 || closed.Balance != "25" || closed.ProofScheme != "eip712" {
		t.Fatalf("typed close: %d %s", r.status, r.body)
	}
	form := fmt.Sprintf("balance=25&balance_signature=%s&close_request_signature=%s&close_request_expires=%d&proof_scheme=eip712",
		typedProof, typedReq.sig, typedReq.expires)
	if r := formDelete(t, base+channelPath(a), form); r.status != 200 || !strings.Contains(string(r.body), closed.CloseSignature) {
		t.Errorf("the typed close again, as a form: %d %s", r.status, r.body)
	}
	closing, err := rdn.ParseSignature(closed.CloseSignature)
	if err != nil {
		t.Fatal(err)
	}
	d := h.chain.Deployment()
	typedClosing := rdn.Closing{Sender: a.sender, OpenBlock: a.openBlock, Balance: big.NewInt(25), Contract: d.Channels,
		Scheme: rdn.SchemeTyped, ChainID: devchain.ChainID}
	if signer, err := typedClosing.Signer(closing[:]); err != nil || signer != h.receiver() {
		t.Errorf("the closing signature recovers, as a typed closing, to %s (%v), not the receiver %s", signer, err, h.receiver())
	}
	legacyClosing := typedClosing
	legacyClosing.Scheme = rdn.SchemeLegacy
	if signer, err := legacyClosing.Signer(closing[:]); err == nil && signer == h.receiver() {
		t.Error("the typed closing signature also recovers to the receiver as a legacy one")
	}
	view = admin.ChannelBody{}
	h.do("GET", channelPath(a), testToken, "").json(t, &view)
	if view.State != "closing" || view.ProofScheme != "eip712" || view.CloseProofScheme != "eip712" || view.CloseSignature != closed.CloseSignature {
		t.Errorf("the channel closed in eip712: %+v", view)
	}

	// The contract recovers the receiver from it, and cooperativeCloseTyped settles at 25.
	mgr := h.mgr.Instance(h.chain.Client(), d.Channels)
	signer, err := bind.Call(mgr, &bind.CallOpts{Context: context.Background()},
		h.mgr.PackExtractClosingSignatureTyped(a.sender, a.openBlock, big.NewInt(25), closing[:]), h.mgr.UnpackExtractClosingSignatureTyped)
	if err != nil || signer != h.receiver() {
		t.Fatalf("extractClosingSignatureTyped: %s, %v; want the receiver %s", signer, err, h.receiver())
	}
	receiverBefore, senderBefore := h.tokenBalance(h.receiver()), h.tokenBalance(a.sender)
	proof, _ := rdn.ParseSignature(typedProof)
	h.transact(a.key, d.Channels, h.mgr.PackCooperativeCloseTyped(h.receiver(), a.openBlock, big.NewInt(25), proof[:], closing[:]))
	if got := new(big.Int).Sub(h.tokenBalance(h.receiver()), receiverBefore); got.Int64() != 25 {
		t.Errorf("receiver got %s tokens, want 25", got)
	}
	if got := new(big.Int).Sub(h.tokenBalance(a.sender), senderBefore); got.Int64() != 975 {
		t.Errorf("sender got %s tokens back, want 975", got)
	}
	h.sync()
	h.do("GET", channelPath(a), "", "").json(t, &view)
	if view.State != "settled" || view.CloseBalance != "25" {
		t.Errorf("after cooperativeCloseTyped: %+v", view)
	}
}

// A server that does not offer typed proofs refuses a typed close with 409, before it looks
// at the signatures, in the words of a payment's refusal; legacy closes go on.
func TestTypedCloseNotOffered(t *testing.T) {
	sig := "0x" + strings.Repeat("11", 64) + "1b"
	body := inScheme(closeBody(0, sig, sig, time.Now().Add(time.Minute).Unix()), "eip712")
	for _, schemes := range [][]rdn.Scheme{nil, {rdn.SchemeLegacy}} {
		base, id := bareAdmin(t, "/api/1", func(c *admin.Config) { c.ProofSchemes = schemes })
		path := fmt.Sprintf("%s/api/1/channels/%s/%d", base, id.Sender.Hex(), id.OpenBlock)
		r := do(t, "DELETE", path, "", body)
		if want := "RDN-Proof-Scheme: eip712 is not offered: this server's contract takes legacy proofs only"; r.status != 409 || r.errorText(t) != want {
			t.Errorf("offering %v, a typed close: %d %s, want 409 %q", schemes, r.status, r.body, want)
		}
		// The same body in legacy gets as far as the signatures.
		if r := do(t, "DELETE", path, "", inScheme(body, "legacy")); r.status != 403 {
			t.Errorf("offering %v, a legacy close with bad signatures: %d %s", schemes, r.status, r.body)
		}
	}
}
