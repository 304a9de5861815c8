package paywall_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/contracts/microraiden"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

func selector(signature string) string {
	return hexutil.Encode(crypto.Keccak256([]byte(signature))[:4])
}

var (
	selCooperativeClose      = selector("cooperativeClose(address,uint32,uint192,bytes,bytes)")
	selCooperativeCloseTyped = selector("cooperativeCloseTyped(address,uint32,uint192,bytes,bytes)")
)

// offered is the list of proof schemes the paywall page was rendered with.
func (b *browser) offered() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('rdn-paywall').dataset.proofSchemes`))
	if err != nil {
		b.t.Fatalf("read data-proof-schemes: %v", err)
	}
	return v
}

// TestPaywallTypedProofs pays from a wallet that signs EIP-712 (eth_signTypedData_v4) and
// not the legacy eth_signTypedData, as wallets that dropped v1 do: two pages, a top-up, a
// third page after the browser forgot what it signed (so the page must verify the server's
// typed proof from the cookies), and a cooperative close through cooperativeCloseTyped.
func TestPaywallTypedProofs(t *testing.T) {
	e := startPaywallWith(t, map[string]int{"eth_signTypedData": 4200})
	b, wallet := e.browser, e.wallet

	e.connect("a")
	if got := b.offered(); !strings.HasPrefix(got, rdn.SchemeTypedName) {
		t.Fatalf("the page was rendered with the proof schemes %q; the dev chain's contract takes eip712 first", got)
	}
	e.openAndPay("a", "0.01") // two pages
	e.pay("b")
	ch := waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.Balance.Int64() == 2*price })
	if ch.Scheme != rdn.SchemeTyped {
		t.Errorf("the ledger keeps the channel's proof as %v, want eip712", ch.Scheme)
	}

	// A browser that forgot what it signed: the 402 hands back the server's last proof with
	// RDN-Proof-Scheme: eip712, which the page checks as a typed proof before it trusts the
	// balance. Checked as legacy, it would not recover to the sender, and the page would warn.
	b.do("forget the signed balances", chromedp.Evaluate[chromedp.Void](`Object.keys(localStorage).filter((k) => k.startsWith('rdn-signed:')).forEach((k) => localStorage.removeItem(k))`))
	b.do("open a third page", chromedp.Navigate(e.base+"/echofix/c"))
	b.waitStep("topup", "deposit-spent")
	checkCookies(t, b, map[string]string{"RDN-Proof-Scheme": rdn.SchemeTypedName, "RDN-Sender-Balance": fmt.Sprint(2 * price)})
	if text := b.text(); strings.Contains(text, "more than this browser signed") {
		t.Errorf("the page did not vouch for the server's typed proof: %q", text)
	}

	e.topUpAndPay(b, "0.02", "c")
	waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.Balance.Int64() == 3*price })

	b.do("back to the paywall", chromedp.Navigate(e.base+"/echofix/d"))
	b.waitStep("pay", "before-close")
	b.click("rdn-close")
	b.waitStep("open", "closed")
	if text := b.text(); !strings.Contains(text, "Channel closed") {
		t.Errorf("after the close the page says %q", text)
	}
	closed := waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.State == ledger.StateSettled })
	e.checkPaid(3 * price)
	if closed.Scheme != rdn.SchemeTyped || closed.ClosingScheme != rdn.SchemeTyped {
		t.Errorf("the ledger keeps the proof as %v and the closing signature as %v, want eip712 both", closed.Scheme, closed.ClosingScheme)
	}

	// Every signature was EIP-712: the three payments, the final balance and the close request.
	msgs := wallet.signedTyped()
	want := []string{"BalanceProof", "BalanceProof", "BalanceProof", "BalanceProof", "CloseRequest"}
	var got []string
	for _, m := range msgs {
		got = append(got, m.PrimaryType)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the wallet signed the typed messages %v, want %v", got, want)
	}
	for i, balance := range []int64{price, 2 * price, 3 * price, 3 * price} {
		checkTypedProof(t, msgs[i], rdn.Balance{Receiver: e.receiver.Address, OpenBlock: ch.ID.OpenBlock, Balance: big.NewInt(balance),
			Contract: e.contract, Scheme: rdn.SchemeTyped, ChainID: e.chainID}.Hash)
	}
	expires, ok := new(big.Int).SetString(fmt.Sprint(msgs[4].Message["expires"]), 10)
	if !ok {
		t.Fatalf("the close request's expiry is %v", msgs[4].Message["expires"])
	}
	checkTypedProof(t, msgs[4], rdn.CloseRequest{Receiver: e.receiver.Address, Contract: e.contract, ChainID: e.chainID,
		Sender: e.sender.Address, OpenBlock: ch.ID.OpenBlock, Balance: big.NewInt(3 * price), Expires: expires.Int64(), Scheme: rdn.SchemeTyped}.Hash)
	if n := len(wallet.signedMessages()) + len(wallet.signedTexts()); n != 0 {
		t.Errorf("the page had %d legacy or personal messages signed; the wallet has v4 and the server offers eip712", n)
	}
	if sent := wallet.sentSelectors(); len(sent) == 0 || sent[len(sent)-1] != selCooperativeCloseTyped {
		t.Errorf("the page sent %v, want the last to be cooperativeCloseTyped (%s)", sent, selCooperativeCloseTyped)
	}
}

// checkTypedProof checks that an EIP-712 message the wallet signed (hashed by go-ethereum)
// is the one rdn verifies.
func checkTypedProof(t *testing.T, m apitypes.TypedData, want func() (common.Hash, error)) {
	t.Helper()
	wantHash, err := want()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := apitypes.TypedDataAndHash(m)
	if err != nil || common.BytesToHash(got) != wantHash {
		t.Errorf("%s %v under %+v hashes to %x, want %x (%v)", m.PrimaryType, m.Message, m.Domain, got, wantHash, err)
	}
}

// TestPaywallLegacyServer pays from a wallet that has only the legacy eth_signTypedData (v1)
// to a server that offers legacy proofs only, in front of µRaiden 0.2.0's own contract, which
// has none of the typed functions: the page never asks for v4, pays with legacy proofs and
// closes through cooperativeClose.
func TestPaywallLegacyServer(t *testing.T) {
	e := startLegacyPaywall(t, map[string]int{"eth_signTypedData_v4": 4200})
	b, wallet := e.browser, e.wallet

	e.connect("a")
	if got := b.offered(); strings.Contains(got, rdn.SchemeTypedName) {
		t.Fatalf("the page was rendered with the proof schemes %q; the server offers legacy only", got)
	}
	e.openAndPay("a", "")
	e.pay("b")
	ch := waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.Balance.Int64() == 2*price })
	if ch.Scheme != rdn.SchemeLegacy {
		t.Errorf("the ledger keeps the channel's proof as %v, want legacy", ch.Scheme)
	}

	b.do("back to the paywall", chromedp.Navigate(e.base+"/echofix/c"))
	b.waitStep("pay", "before-close")
	b.click("rdn-close")
	b.waitStep("open", "closed")
	waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.State == ledger.StateSettled })
	e.checkPaid(2 * price)
	checkSigned(t, wallet.signedMessages(), e.receiver.Address, e.contract, ch.ID.OpenBlock, price, 2*price, 2*price)
	if n := wallet.calls("eth_signTypedData_v4"); n != 0 {
		t.Errorf("the page asked the wallet for eth_signTypedData_v4 %d times; the server offers legacy only", n)
	}
	if texts := wallet.signedTexts(); len(texts) != 1 || !strings.HasPrefix(texts[0], "uraiden cooperative close request\n") {
		t.Errorf("the page signed the personal messages %q, want one close request", texts)
	}
	if sent := wallet.sentSelectors(); len(sent) == 0 || sent[len(sent)-1] != selCooperativeClose {
		t.Errorf("the page sent %v, want the last to be cooperativeClose (%s)", sent, selCooperativeClose)
	}
}

// startLegacyPaywall starts the environment on the dev chain in front of µRaiden 0.2.0's own
// contract, which has none of the typed functions. The server, which reads eip712Domain() at
// start, offers legacy proofs only; it reaches the dev chain over JSON-RPC, as it reaches any
// node other than its embedded one.
func startLegacyPaywall(t *testing.T, lacks map[string]int) *paywallEnv {
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := devchain.Start(ctx, devchain.Config{Accounts: 2, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	receiver, sender, token := c.Accounts()[0], c.Accounts()[1], c.Deployment().Token
	orig, err := microraiden.Deploy(ctx, c.Client(), receiver.Key, token, contracts.MinChallengePeriod)
	if err != nil {
		t.Fatal(err)
	}

	keyFile := filepath.Join(t.TempDir(), "receiver.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(crypto.FromECDSA(receiver.Key))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := servertest.Config(t, "../../prices.yaml")
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Receiver.KeyFile = keyFile
	cfg.Chain.RPCURL, cfg.Chain.ChainID, cfg.Chain.ContractAddress = c.HTTPEndpoint(), devchain.ChainID, orig.Address.Hex()
	cfg.Chain.StartBlock, cfg.Chain.Confirmations = orig.Block, confirmations
	cfg.Chain.MaxHeadAge = 0 // the dev chain mines when the test says: its head grows old between steps
	e := &paywallEnv{
		t: t, node: c.Client(), chainID: devchain.ChainID, mine: func() { c.Commit() },
		srv:    servertest.Start(t, cfg, nil),
		sender: sender, receiver: receiver, contract: orig.Address, token: token,
	}
	if !slices.Equal(e.srv.ProofSchemes, []rdn.Scheme{rdn.SchemeLegacy}) {
		t.Fatalf("the server offers %v in front of µRaiden 0.2.0's contract, want legacy only", e.srv.ProofSchemes)
	}
	e.open(exe, lacks)
	return e
}
