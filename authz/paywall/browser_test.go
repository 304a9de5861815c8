package paywall_test

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// price of /echofix/ in the repository's prices.yaml, 0.005 token, in base units of the
// dev chain's 18-decimal token.
const price = 5_000_000_000_000_000

// browser is a headless Chromium tab with the test wallet injected into every page.
type browser struct {
	t      *testing.T
	ctx    context.Context
	shots  string
	nshots int

	mu         sync.Mutex
	violations []string // Content-Security-Policy violations the pages reported
}

func newBrowser(t *testing.T, exe string, w *testWallet) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // root in CI containers
		chromedp.WindowSize(1000, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, shots: t.ArtifactDir()}
	t.Cleanup(func() {
		if len(b.violations) > 0 {
			t.Errorf("Content-Security-Policy violations: %v", b.violations)
		}
	})
	err := chromedp.Do(ctx,
		chromedp.ExposeFunc("rdnWallet", w.serve),
		chromedp.ExposeFunc("rdnViolation", func(_ context.Context, v string) (chromedp.Void, error) {
			b.mu.Lock()
			b.violations = append(b.violations, v)
			b.mu.Unlock()
			return chromedp.Void{}, nil
		}),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument,
				page.AddScriptToEvaluateOnNewDocumentParams{Source: injectedProvider})
			return err
		}),
	)
	if err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return b
}

func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v (page text: %q)", what, err, b.text())
	}
}

// waitStep waits for the paywall to show a step, then saves a screenshot of it.
func (b *browser) waitStep(step, shot string) {
	b.t.Helper()
	b.do("wait for step "+step, chromedp.WaitVisible(chromedp.CSS(`#rdn-step[data-step="`+step+`"]`)))
	b.screenshot(shot)
}

func (b *browser) click(id string) {
	b.t.Helper()
	b.do("click "+id, chromedp.Click(chromedp.CSS("#"+id)))
}

// waitText waits for the document's text to be exactly text: the upstream's answer.
func (b *browser) waitText(text string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.text() != text {
		if time.Now().After(deadline) {
			b.screenshot("failed-wait-" + text)
			b.t.Fatalf("the page never showed %q; it shows %q", text, b.text())
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.screenshot("content-" + text)
}

func (b *browser) screenshot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.nshots++
	file := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.nshots, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
	}
}

// attr reports whether the element has the attribute.
func (b *browser) attr(sel, name string) bool {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	has, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).hasAttribute(%q)`, sel, name)))
	if err != nil {
		b.t.Fatalf("%s[%s]: %v", sel, name, err)
	}
	return has
}

func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.trim() : ""`))
	return text
}

// paywallEnv is a chain (mining a block per transaction, and when the test says), uraiden
// with its gateway on it, and a browser whose wallet holds the sender's key.
type paywallEnv struct {
	t                *testing.T
	node             *ethclient.Client
	chainID          uint64
	mine             func() // mines one block
	srv              *server.Server
	base             string // the gateway's URL
	sender, receiver devchain.Account
	contract, token  common.Address
	wallet           *testWallet
	browser          *browser
	before           map[common.Address]*big.Int // token balances at the start
}

// startPaywall starts the environment with a wallet that signs legacy typed data (v1) and
// not EIP-712 (v4): against a server that offers eip712, the page falls back to legacy
// proofs, which the tests that use it check.
func startPaywall(t *testing.T) *paywallEnv {
	return startPaywallWith(t, map[string]int{"eth_signTypedData_v4": 4200})
}

// startPaywallWith starts the environment on the dev chain, whose contract takes both proof
// schemes, with a wallet lacking the methods lacks names (see testWallet.lacks).
func startPaywallWith(t *testing.T, lacks map[string]int) *paywallEnv {
	exe := chromium(t)
	c, err := devchain.Start(context.Background(), devchain.Config{Accounts: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg := servertest.Config(t, "../../prices.yaml")
	cfg.DevChain.Confirmations = confirmations // so that the page has blocks to wait for
	cfg.Gateway.Listen = "127.0.0.1:0"
	e := &paywallEnv{
		t: t, node: c.Client(), chainID: devchain.ChainID, mine: func() { c.Commit() },
		srv:    servertest.Start(t, cfg, c),
		sender: c.Accounts()[1], receiver: c.Accounts()[0], contract: c.Deployment().Channels, token: c.Deployment().Token,
	}
	e.open(exe, lacks)
	return e
}

func chromium(t *testing.T) string {
	return servertest.Program(t, "apt-get install chromium", "chromium", "chromium-browser", "google-chrome")
}

// open notes the token balances, and opens the browser with the sender's wallet.
func (e *paywallEnv) open(exe string, lacks map[string]int) {
	e.base = e.srv.Gateway.URL()
	e.before = map[common.Address]*big.Int{}
	for _, a := range []common.Address{e.sender.Address, e.receiver.Address} {
		e.before[a] = e.tokens(a)
	}
	e.wallet = &testWallet{key: e.sender.Key, account: e.sender.Address, chainID: new(big.Int).SetUint64(e.chainID), node: e.node, lacks: lacks}
	e.browser = newBrowser(e.t, exe, e.wallet)
}

const confirmations = 4

// topUpAndPay tops the channel up by amount tokens on a page that asks for it, waits for the
// server to count the top-up, pays, and waits for the page's text.
func (e *paywallEnv) topUpAndPay(b *browser, amount, text string) {
	b.do("choose the top-up", chromedp.SetValue(chromedp.CSS("#rdn-topup-amount"), amount))
	b.click("rdn-topup")
	b.waitStep("confirming", "waiting-for-the-top-up")
	e.confirm()
	b.waitStep("pay", "topped-up")
	b.click("rdn-pay")
	b.waitText(text)
}

// confirm mines the blocks that confirm a deposit.
func (e *paywallEnv) confirm() {
	for range confirmations {
		e.mine()
	}
}

func (e *paywallEnv) tokens(a common.Address) *big.Int {
	v, err := contracts.TokenBalance(context.Background(), e.node, e.token, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// checkPaid checks the receiver gained, and the sender spent, exactly amount.
func (e *paywallEnv) checkPaid(amount int64) {
	e.t.Helper()
	if got := new(big.Int).Sub(e.tokens(e.receiver.Address), e.before[e.receiver.Address]); got.Int64() != amount {
		e.t.Errorf("the receiver gained %s, want %d", got, amount)
	}
	if got := new(big.Int).Sub(e.before[e.sender.Address], e.tokens(e.sender.Address)); got.Int64() != amount {
		e.t.Errorf("the sender spent %s, want %d", got, amount)
	}
}

// connect opens a priced page and connects the wallet from the paywall.
func (e *paywallEnv) connect(path string) {
	e.t.Helper()
	b := e.browser
	b.do("open "+path, chromedp.Navigate(e.base+"/echofix/"+path))
	b.waitStep("connect", "paywall")
	b.click("rdn-connect")
}

// openAndPay opens a channel from the paywall's open step (with the suggested deposit, or
// the one given in tokens), mines its confirmations and pays for the page at path.
func (e *paywallEnv) openAndPay(path, deposit string) {
	e.t.Helper()
	b := e.browser
	b.waitStep("open", "no-channel")
	if deposit != "" {
		b.do("choose the deposit", chromedp.SetValue(chromedp.CSS("#rdn-deposit"), deposit))
	}
	b.click("rdn-open")
	b.waitStep("confirming", "waiting-for-confirmations")
	e.confirm()
	b.waitStep("pay", "ready-to-pay")
	b.click("rdn-pay")
	b.waitText(path)
}

// pay pays for a page from the paywall's pay step and waits for its content.
func (e *paywallEnv) pay(path string) {
	e.t.Helper()
	b := e.browser
	b.do("open "+path, chromedp.Navigate(e.base+"/echofix/"+path))
	b.waitStep("pay", "pay-for-"+path)
	b.click("rdn-pay")
	b.waitText(path)
}

// TestPaywallInBrowser pays for pages from a real browser: Chromium opens a priced page of
// the local gateway, gets the paywall, connects the (test) wallet, opens a channel, waits for
// its confirmations, pays with a signed balance proof kept in cookies, sees the content, pays
// for a second page, and closes the channel cooperatively. Screenshots of each step go to
// the test's artifact directory (go test -artifacts -outputdir DIR keeps them).
func TestPaywallInBrowser(t *testing.T) {
	e := startPaywall(t)
	b, wallet := e.browser, e.wallet

	// The paywall, before any wallet access.
	b.do("open a priced page", chromedp.Navigate(e.base+"/echofix/first"))
	b.waitStep("connect", "paywall")
	checkCookies(t, b, map[string]string{"RDN-Price": "5000000000000000", "RDN-Receiver-Address": e.receiver.Address.Hex()})
	offered := b.offered()
	b.click("rdn-connect")

	// Open a channel with the suggested deposit (10 × the price), then wait for the server.
	b.waitStep("open", "no-channel")
	// The page shows the price as prices.yaml states it, in tokens.
	if text := b.text(); !strings.Contains(text, "0.005 RDNDEV") {
		t.Errorf("the open step does not show the price 0.005 RDNDEV: %q", text)
	}
	b.click("rdn-open")
	b.waitStep("confirming", "waiting-for-confirmations")
	e.confirm()
	b.waitStep("pay", "ready-to-pay")
	if got := wallet.signedMessages(); len(got) != 0 {
		t.Fatalf("the page signed %d messages before the person pressed Pay", len(got))
	}

	// Pay: the page signs the balance, stores it in cookies and reloads into the content.
	b.click("rdn-pay")
	b.waitText("first")
	ch := waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.Balance.Cmp(big.NewInt(price)) == 0 })
	checkSigned(t, wallet.signedMessages(), e.receiver.Address, e.contract, ch.ID.OpenBlock, price)

	// A second page: the cookies hold the spent proof, so the paywall asks for the next one.
	e.pay("second")
	waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.Balance.Cmp(big.NewInt(2*price)) == 0 })
	checkSigned(t, wallet.signedMessages(), e.receiver.Address, e.contract, ch.ID.OpenBlock, price, 2*price)

	// Close cooperatively from the paywall: the receiver is paid what was spent, the rest of
	// the deposit comes back.
	b.do("back to the paywall", chromedp.Navigate(e.base+"/echofix/third"))
	b.waitStep("pay", "before-close")
	b.click("rdn-close")
	b.waitStep("open", "closed")
	if text := b.text(); !strings.Contains(text, "Channel closed") {
		t.Errorf("after the close the page says %q", text)
	}
	waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.State == ledger.StateSettled })
	e.checkPaid(2 * price)
	checkSigned(t, wallet.signedMessages(), e.receiver.Address, e.contract, ch.ID.OpenBlock, price, 2*price, 2*price)
	// The close request the server needs besides the balance proof: one personal message,
	// naming this receiver, contract, chain, channel and balance.
	texts := wallet.signedTexts()
	want := fmt.Sprintf("uraiden cooperative close request\nreceiver: %s\ncontract: %s\nchain id: %d\nsender: %s\nopen block: %d\nbalance: %d\nexpires: ",
		e.receiver.Address.Hex(), e.contract.Hex(), devchain.ChainID, e.sender.Address.Hex(), ch.ID.OpenBlock, 2*price)
	if len(texts) != 1 || !strings.HasPrefix(texts[0], want) {
		t.Errorf("the page signed the personal messages %q, want one close request starting %q", texts, want)
	}
	// approve, createChannel, cooperativeClose
	if got := wallet.sentSelectors(); len(got) != 3 || got[2] != selCooperativeClose {
		t.Errorf("the page sent %d transactions (%v), want approve, createChannel and cooperativeClose", len(got), got)
	}
	// The wallet has no eth_signTypedData_v4: offered eip712, the page asked for it first and
	// fell back to legacy (the messages checked above).
	if !strings.Contains(offered, rdn.SchemeTypedName) {
		t.Errorf("the dev chain's server offers %q, without %s", offered, rdn.SchemeTypedName)
	} else if wallet.calls("eth_signTypedData_v4") == 0 {
		t.Errorf("the server offers %q, but the page never asked the wallet for eth_signTypedData_v4", offered)
	}
}

// TestPaywallTopUpAndSettle: a chosen deposit that runs out, a top-up the page waits for,
// then a close without the server and the settlement after the challenge period. The wallet
// answers eth_signTypedData_v4 as a node does (-32601), which the page takes as "no v4" too.
func TestPaywallTopUpAndSettle(t *testing.T) {
	e := startPaywallWith(t, map[string]int{"eth_signTypedData_v4": -32601})
	b := e.browser

	e.connect("a")
	e.openAndPay("a", "0.01") // two pages
	e.pay("b")

	// The deposit is spent: the page offers a top-up, and waits for the server to count it.
	b.do("open a third page", chromedp.Navigate(e.base+"/echofix/c"))
	b.waitStep("topup", "deposit-spent")
	e.topUpAndPay(b, "0.02", "c")
	ch := waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.Balance.Int64() == 3*price })
	if got := ch.TotalDeposit().Int64(); got != 6*price { // 0.01 + 0.02 token
		t.Errorf("deposit %d after the top-up, want %d", got, 6*price)
	}

	// Close without the server: the challenge period runs, then the page settles.
	b.do("back to the paywall", chromedp.Navigate(e.base+"/echofix/d"))
	b.waitStep("pay", "before-close")
	b.click("rdn-close-alone")
	b.waitStep("closing", "close-requested")
	if disabled := b.attr("#rdn-settle", "disabled"); !disabled {
		t.Errorf("Settle is enabled during the challenge period")
	}
	for range contracts.MinChallengePeriod + 1 { // the dev chain's challenge period
		e.mine()
	}
	b.do("wait for the end of the challenge period", chromedp.WaitEnabled(chromedp.CSS("#rdn-settle")))
	b.screenshot("challenge-period-over")
	b.click("rdn-settle")
	b.waitStep("open", "settled")
	waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.State == ledger.StateSettled })
	e.checkPaid(3 * price)
}

// TestPaywallReopensARefusedChannel: the sender asked the server to close the channel (from
// another client), so the server takes no more payments from it; the paywall says so,
// closes it on chain with the server's closing signature, and opens a new one to pay from.
func TestPaywallReopensARefusedChannel(t *testing.T) {
	e := startPaywall(t)
	b := e.browser
	e.connect("a")
	e.openAndPay("a", "")
	first := waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.Balance.Int64() == price })

	// Elsewhere, the sender asks the server for the cooperative close and never sends it.
	sig, err := rdn.Balance{Receiver: e.receiver.Address, OpenBlock: first.ID.OpenBlock, Balance: big.NewInt(price), Contract: e.contract}.Sign(e.sender.Key)
	if err != nil {
		t.Fatal(err)
	}
	request := rdn.CloseRequest{Receiver: e.receiver.Address, Contract: e.contract, ChainID: devchain.ChainID, Sender: e.sender.Address,
		OpenBlock: first.ID.OpenBlock, Balance: big.NewInt(price), Expires: time.Now().Add(time.Minute).Unix()}
	requestSig, err := request.Sign(e.sender.Key)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"balance": "%d", "balance_signature": "%s", "close_request_signature": "%s", "close_request_expires": %d}`,
		price, sig.Hex(), requestSig.Hex(), request.Expires)
	req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/api/1/channels/%s/%d", e.base, e.sender.Address.Hex(), first.ID.OpenBlock), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("cooperative close request: %v %v", resp, err)
	}
	resp.Body.Close()

	b.do("open another page", chromedp.Navigate(e.base+"/echofix/b"))
	b.waitStep("refused", "channel-refused")
	b.click("rdn-close")
	b.waitStep("open", "refused-channel-closed")
	waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool { return ch.ID == first.ID && ch.State == ledger.StateSettled })
	e.openAndPay("b", "")
	waitChannel(t, e.srv.Ledger, e.sender.Address, func(ch *ledger.Channel) bool {
		return ch.ID.OpenBlock > first.ID.OpenBlock && ch.Balance.Int64() == price
	})
	// The receiver got the first channel's balance; the sender's second deposit (the
	// suggested 10 × the price) is locked in the open channel.
	if got := new(big.Int).Sub(e.tokens(e.receiver.Address), e.before[e.receiver.Address]); got.Int64() != price {
		t.Errorf("the receiver gained %s, want %d", got, price)
	}
	if got := new(big.Int).Sub(e.before[e.sender.Address], e.tokens(e.sender.Address)); got.Int64() != price+10*price {
		t.Errorf("the sender's tokens went down by %s, want %d paid + %d deposited", got, price, 10*price)
	}
}

// checkCookies checks that the 402's RDN-* headers are mirrored into the browser's cookies.
func checkCookies(t *testing.T, b *browser, want map[string]string) {
	t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	got := map[string]string{}
	for _, c := range res.Cookies {
		got[c.Name] = c.Value
	}
	for name, value := range want {
		if got[name] != value {
			t.Errorf("cookie %s = %q, want %q (all: %v)", name, got[name], value, got)
		}
	}
}

// checkSigned checks each signed message is the balance proof of docs/protocol.md §2 for the
// server's receiver and contract, for the balances expected in order.
func checkSigned(t *testing.T, msgs []typedMessage, receiver, contract common.Address, openBlock uint32, balances ...int64) {
	t.Helper()
	if len(msgs) != len(balances) {
		t.Fatalf("the page had %d messages signed, want %d", len(msgs), len(balances))
	}
	for i, m := range msgs {
		bp := rdn.Balance{Receiver: receiver, OpenBlock: openBlock, Balance: big.NewInt(balances[i]), Contract: contract}
		want, err := bp.Hash()
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.hash()
		if err != nil || common.BytesToHash(got) != want {
			t.Errorf("message %d (%v) hashes to %x, want the balance proof of %d: %x (%v)", i, m, got, balances[i], want, err)
		}
	}
}

func waitChannel(t *testing.T, l *ledger.Ledger, sender common.Address, ok func(*ledger.Channel) bool) *ledger.Channel {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, err := l.Channels(ledger.Query{Sender: &sender, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range page.Channels {
			if ok(ch) {
				return ch
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no channel of %s reached the expected state: %+v", sender, page.Channels)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
