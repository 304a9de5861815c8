package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/contracts/microraiden"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/keys"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// An existing µRaiden deployment: the server configured, as `uraiden serve` is, with a node
// and the address of µRaiden's own 0.2.0 contract. It offers legacy proofs only, takes a
// µRaiden client's payment (a legacy proof, no scheme header) on a channel opened in that
// contract, refuses a typed one with a 409, and the code of `uraiden withdraw` and
// `close-all` takes the tokens through the original's withdraw and cooperativeClose with the
// legacy signatures the server holds.
func TestServesOriginalMicroRaiden(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := devchain.Start(ctx, devchain.Config{Accounts: 2, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	token := c.Deployment().Token
	receiverKey, senderKey := c.Accounts()[0].Key, c.Accounts()[1].Key
	receiver, sender := crypto.PubkeyToAddress(receiverKey.PublicKey), crypto.PubkeyToAddress(senderKey.PublicKey)
	orig, err := microraiden.Deploy(ctx, c.Client(), receiverKey, token, contracts.MinChallengePeriod)
	if err != nil {
		t.Fatal(err)
	}
	deposit := new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18))
	openBlock, err := microraiden.OpenChannel(ctx, c.Client(), senderKey, orig, token, receiver, deposit)
	if err != nil {
		t.Fatal(err)
	}
	id := rdn.ChannelID{Sender: sender, OpenBlock: openBlock}

	dir := t.TempDir()
	keyFile, passwordFile := writeKeystore(t, dir, receiverKey, "keystore-password")
	const price = 1000
	cfg := servertest.Config(t, writeFile(t, dir, "prices.yaml", fmt.Sprintf(
		"default_price: 0\nrules:\n  - name: paid\n    path: \"/paid/.*\"\n    price: %d\n", price)))
	cfg.Chain.RPCURL, cfg.Chain.ChainID, cfg.Chain.ContractAddress = c.HTTPEndpoint(), devchain.ChainID, orig.Address.Hex()
	cfg.Chain.StartBlock, cfg.Chain.Confirmations, cfg.Chain.MaxHeadAge = orig.Block, 0, time.Hour
	cfg.Receiver.KeyFile, cfg.Receiver.PasswordFile = keyFile, passwordFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("the server does not start on µRaiden 0.2.0's contract: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	if srv.Contract.Ours || !slices.Equal(srv.ProofSchemes, []rdn.Scheme{rdn.SchemeLegacy}) {
		t.Fatalf("server on the original: ours %v, schemes %v; want not ours, [legacy]", srv.Contract.Ours, srv.ProofSchemes)
	}
	authz := servertest.AuthzClient(t, srv)

	// The offer: legacy alone, and no EIP-712 domain to sign for.
	status, headers := checkPaid(t, ctx, authz, nil)
	if status != http.StatusPaymentRequired || headers[strings.ToLower(rdn.HeaderProofSchemes)] != "legacy" {
		t.Fatalf("unpaid request: %d, %s %q; want 402 offering legacy", status, rdn.HeaderProofSchemes, headers[strings.ToLower(rdn.HeaderProofSchemes)])
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(headers["body"]), &body); err != nil {
		t.Fatalf("402 body %q: %v", headers["body"], err)
	}
	if string(body["proof_schemes"]) != `["legacy"]` || body["eip712_domain"] != nil {
		t.Errorf("402 body offers %s, domain %s; want [\"legacy\"] and no domain", body["proof_schemes"], body["eip712_domain"])
	}
	if got := headers[strings.ToLower(rdn.HeaderContractAddress)]; !strings.EqualFold(got, orig.Address.Hex()) {
		t.Errorf("402 names contract %q, want the original's %s", got, orig.Address.Hex())
	}

	proof := func(balance int64, scheme rdn.Scheme) map[string]string {
		sig, err := rdn.Balance{Receiver: receiver, OpenBlock: openBlock, Balance: big.NewInt(balance), Contract: orig.Address,
			Scheme: scheme, ChainID: devchain.ChainID}.Sign(senderKey)
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{
			"rdn-contract-address": orig.Address.Hex(), "rdn-receiver-address": receiver.Hex(),
			"rdn-sender-address": sender.Hex(), "rdn-open-block": fmt.Sprint(openBlock),
			"rdn-balance": fmt.Sprint(balance), "rdn-balance-signature": sig.Hex(),
		}
		if scheme == rdn.SchemeTyped {
			h[strings.ToLower(rdn.HeaderProofScheme)] = scheme.String()
		}
		return h
	}

	// A µRaiden client's payment. The watcher learns of the channel from the original's
	// ChannelCreated within a few polls; until then the proof is for an unknown channel.
	legacy := proof(price, rdn.SchemeLegacy)
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, headers = checkPaid(t, ctx, authz, legacy)
		if status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != http.StatusOK {
		t.Fatalf("legacy payment on the original's channel: %d %v", status, headers)
	}
	stored, err := srv.Ledger.Channel(id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Balance.Int64() != price || stored.Scheme != rdn.SchemeLegacy || stored.Signature.Hex() != legacy["rdn-balance-signature"] || stored.Deposit.Cmp(deposit) != 0 {
		t.Fatalf("stored channel: balance %v, scheme %v, deposit %v, signature %s; want %d, legacy, %v, the one sent",
			stored.Balance, stored.Scheme, stored.Deposit, stored.Signature.Hex(), price, deposit)
	}

	// A typed proof names a scheme this server does not offer: refused, and nothing stored.
	status, headers = checkPaid(t, ctx, authz, proof(2*price, rdn.SchemeTyped))
	const notOffered = "RDN-Proof-Scheme: eip712 is not offered: this server's contract takes legacy proofs only"
	if status != http.StatusConflict || !strings.Contains(headers["body"], notOffered) {
		t.Errorf("typed proof: %d %q; want 409 saying %q", status, headers["body"], notOffered)
	}
	if after, err := srv.Ledger.Channel(id); err != nil || after.Balance.Int64() != price {
		t.Errorf("after the typed proof the ledger holds %v, %v; want balance %d", after, err, price)
	}

	// The receiver withdraws as `uraiden withdraw` does, then closes as `uraiden close-all`
	// does. The original checks the stored legacy balance signature in withdraw, and it and
	// the receiver's legacy closing signature in cooperativeClose.
	before, err := contracts.TokenBalance(ctx, c.Client(), token, receiver)
	if err != nil {
		t.Fatal(err)
	}
	r := chain.NewReceiver(chain.ReceiverConfig{Client: c.Client(), Account: chain.Account{
		ChainID: big.NewInt(devchain.ChainID), Contract: orig.Address, Key: keys.NewSecret(receiverKey)}})
	plan, err := chain.PlanWithdraw(ctx, srv.Ledger, r, big.NewInt(1))
	if err != nil || len(plan.Todo) != 1 {
		t.Fatalf("withdraw plan on the original: %+v, %v; want the one channel", plan, err)
	}
	results := r.Withdraw(ctx, []chain.Claim{plan.Todo[0].Claim()})
	if len(results) != 1 || results[0].Err != nil || results[0].Function != "withdraw" || results[0].Tokens.Int64() != price {
		t.Fatalf("withdraw through the original: %+v; want withdraw paying %d", results, price)
	}
	if status, headers = checkPaid(t, ctx, authz, proof(2*price, rdn.SchemeLegacy)); status != http.StatusOK {
		t.Fatalf("legacy payment after the withdrawal: %d %v", status, headers)
	}
	plan, err = chain.PlanClose(ctx, srv.Ledger, r)
	if err != nil || len(plan.Todo) != 1 || plan.Todo[0].Expected.Int64() != price {
		t.Fatalf("close plan on the original: %+v, %v; want the one channel, expecting %d", plan, err, price)
	}
	claims, unsigned := r.SignCloses(ctx, srv.Ledger, plan.Todo)
	if len(unsigned) != 0 {
		t.Fatalf("the ledger did not sign the close: %+v", unsigned)
	}
	results = r.CooperativeClose(ctx, claims)
	if len(results) != 1 || results[0].Err != nil || results[0].Function != "cooperativeClose" || results[0].Tokens.Int64() != price {
		t.Fatalf("cooperative close through the original: %+v; want cooperativeClose paying %d", results, price)
	}
	after, err := contracts.TokenBalance(ctx, c.Client(), token, receiver)
	if err != nil {
		t.Fatal(err)
	}
	if got := new(big.Int).Sub(after, before); got.Int64() != 2*price {
		t.Errorf("the receiver's token balance grew by %v, want %d", got, 2*price)
	}
	if info, err := r.ChannelInfo(ctx, id); err != nil || info.Exists {
		t.Errorf("the original still holds the channel after the close: %+v, %v", info, err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		ch, err := srv.Ledger.Channel(id)
		if err == nil && ch.State == ledger.StateSettled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher did not record the original's ChannelSettled: %+v, %v", ch, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPaid asks the server's Check for GET /paid/item with the headers given, and returns
// the status it decided (200 for OK) and the denial's headers, lower-cased, with its body
// under "body".
func checkPaid(t *testing.T, ctx context.Context, c authv3.AuthorizationClient, proof map[string]string) (int, map[string]string) {
	t.Helper()
	headers := map[string]string{":authority": "localhost:10000", ":method": "GET", ":path": "/paid/item", ":scheme": "http"}
	for k, v := range proof {
		headers[k] = v
	}
	resp, err := c.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/paid/item", Host: "localhost:10000", Scheme: "http",
			Protocol: "HTTP/1.1", Headers: headers},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus().GetCode() == 0 {
		return http.StatusOK, nil
	}
	d := resp.GetDeniedResponse()
	out := map[string]string{"body": d.GetBody()}
	for _, h := range d.GetHeaders() {
		out[strings.ToLower(h.GetHeader().GetKey())] = h.GetHeader().GetValue()
	}
	return int(d.GetStatus().GetCode()), out
}
