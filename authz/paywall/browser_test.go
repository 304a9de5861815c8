package paywall_test

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/chain/proof"
	"github.com/uraiden/uraiden/internal/servertest"
	"github.com/uraiden/uraiden/ledger"
)

// price of /echofix/ in the repository's prices.yaml.
const price = 5

// chromium finds Debian's Chromium; without it the test skips, except under CI, where
// .ci/run installs it and a skip would hide a broken paywall.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium on this machine (apt-get install chromium)")
	}
	t.Skip("no Chromium on this machine (apt-get install chromium)")
	return ""
}

// browser is a headless Chromium tab with the test wallet injected into every page.
type browser struct {
	t      *testing.T
	ctx    context.Context
	shots  string
	nshots int
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
	err := chromedp.Do(ctx,
		chromedp.ExposeFunc("rdnWallet", w.serve),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument,
				page.AddScriptToEvaluateOnNewDocumentParams{Source: injectedProvider})
			return err
		}),
	)
	if err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, shots: t.ArtifactDir()}
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

func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.trim() : ""`))
	return text
}

// TestPaywallInBrowser pays for pages from a real browser: Chromium opens a priced page of
// the local gateway, gets the paywall, connects the (test) wallet, opens a channel, waits for
// its confirmations, pays with a signed balance proof kept in cookies, sees the content, pays
// for a second page, and closes the channel cooperatively. Screenshots of each step go to
// the test's artifact directory (go test -artifacts -outputdir DIR keeps them).
func TestPaywallInBrowser(t *testing.T) {
	exe := chromium(t)
	ctx := context.Background()
	c, err := devchain.Start(ctx, devchain.Config{Accounts: 2, BlockPeriod: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg := servertest.Config(t, "../../prices.yaml")
	cfg.DevChain.Confirmations = 4 // so that the page has confirmations to wait for
	cfg.Gateway.Listen = "127.0.0.1:0"
	srv := servertest.Start(t, cfg, c)
	base := srv.Gateway.URL()

	sender, receiver := c.Accounts()[1], c.Accounts()[0]
	token, contract := c.Deployment().Token, c.Deployment().Channels
	tokens := func(a common.Address) *big.Int {
		v, err := chain.TokenBalance(ctx, c.Client(), token, a)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	senderBefore, receiverBefore := tokens(sender.Address), tokens(receiver.Address)
	wallet := &testWallet{key: sender.Key, account: sender.Address, chainID: big.NewInt(devchain.ChainID), node: c.Client()}
	b := newBrowser(t, exe, wallet)

	// The paywall, before any wallet access.
	b.do("open a priced page", chromedp.Navigate(base+"/echofix/first"))
	b.waitStep("connect", "paywall")
	checkCookies(t, b, map[string]string{"RDN-Price": "5", "RDN-Receiver-Address": receiver.Address.Hex()})
	b.click("rdn-connect")

	// Open a channel with the suggested deposit (10 × the price), then wait for the server.
	b.waitStep("open", "no-channel")
	b.click("rdn-open")
	b.waitStep("confirming", "waiting-for-confirmations")
	b.waitStep("pay", "ready-to-pay")
	if got := wallet.signedMessages(); len(got) != 0 {
		t.Fatalf("the page signed %d messages before the person pressed Pay", len(got))
	}

	// Pay: the page signs the balance, stores it in cookies and reloads into the content.
	b.click("rdn-pay")
	b.waitText("first")
	ch := waitChannel(t, srv.Ledger, sender.Address, func(ch *ledger.Channel) bool { return ch.Balance.Cmp(big.NewInt(price)) == 0 })
	checkSigned(t, wallet.signedMessages(), receiver.Address, contract, ch.ID.OpenBlock, price)

	// A second page: the cookies hold the spent proof, so the paywall asks for the next one.
	b.do("open a second priced page", chromedp.Navigate(base+"/echofix/second"))
	b.waitStep("pay", "second-page")
	b.click("rdn-pay")
	b.waitText("second")
	waitChannel(t, srv.Ledger, sender.Address, func(ch *ledger.Channel) bool { return ch.Balance.Cmp(big.NewInt(2*price)) == 0 })
	checkSigned(t, wallet.signedMessages(), receiver.Address, contract, ch.ID.OpenBlock, price, 2*price)

	// Close cooperatively from the paywall: the receiver is paid what was spent, the rest of
	// the deposit comes back.
	b.do("back to the paywall", chromedp.Navigate(base+"/echofix/third"))
	b.waitStep("pay", "before-close")
	b.click("rdn-close")
	b.waitStep("open", "closed")
	if text := b.text(); !strings.Contains(text, "Channel closed") {
		t.Errorf("after the close the page says %q", text)
	}
	waitChannel(t, srv.Ledger, sender.Address, func(ch *ledger.Channel) bool { return ch.State == ledger.StateSettled })
	if got := new(big.Int).Sub(tokens(receiver.Address), receiverBefore); got.Int64() != 2*price {
		t.Errorf("the receiver gained %s, want %d", got, 2*price)
	}
	if got := new(big.Int).Sub(senderBefore, tokens(sender.Address)); got.Int64() != 2*price {
		t.Errorf("the sender spent %s, want %d", got, 2*price)
	}
	checkSigned(t, wallet.signedMessages(), receiver.Address, contract, ch.ID.OpenBlock, price, 2*price, 2*price)
	// approve, createChannel, cooperativeClose
	if got := wallet.sentSelectors(); len(got) != 3 {
		t.Errorf("the page sent %d transactions (%v), want approve, createChannel and cooperativeClose", len(got), got)
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

// checkSigned checks each signed message is the balance proof of protocol.md §2 for the
// server's receiver and contract, for the balances expected in order.
func checkSigned(t *testing.T, msgs []typedMessage, receiver, contract common.Address, openBlock uint32, balances ...int64) {
	t.Helper()
	if len(msgs) != len(balances) {
		t.Fatalf("the page had %d messages signed, want %d", len(msgs), len(balances))
	}
	for i, m := range msgs {
		bp := proof.Balance{Receiver: receiver, OpenBlock: openBlock, Balance: big.NewInt(balances[i]), Contract: contract}
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
