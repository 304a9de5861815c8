package client_test

import (
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// The full cycle through the gateway: a channel opened on the first 402, requests paid at
// both prices, the store reloaded, a cooperative close verified and settled on chain, and
// the receiver's gain exactly what was paid.
func TestFullCycle(t *testing.T) {
	h := start(t)
	sender := h.chain.Accounts()[1]
	store := filepath.Join(t.TempDir(), "channels.json")
	c := h.client(1, store)
	rt := c.Transport(client.TransportConfig{})
	receiverBefore, senderBefore := h.tokens(h.receiver()), h.tokens(sender.Address)

	paid := int64(0)
	for i, path := range []string{"/echofix/foo", "/echofix/bar", "/echodyn/abcd", "/echofix/foo", "/echodyn/xy"} {
		status, body, err := h.get(rt, path)
		if err != nil || status != 200 {
			t.Fatalf("request %d %s: %d %q %v", i, path, status, body, err)
		}
		if want := path[len("/echofix/"):]; body != want {
			t.Errorf("%s answered %q", path, body)
		}
		if path[:8] == "/echofix" {
			paid += 5
		} else {
			paid += int64(len(path) - len("/echodyn/"))
		}
	}
	ch := onlyChannel(t, c)
	if ch.Deposit.Int64() != 50 || ch.Balance.Int64() != paid || ch.API == "" {
		t.Errorf("channel %+v: want deposit 50 (10 × 5), balance %d, an API URL", ch, paid)
	}
	if l := h.ledgerChannel(sender.Key, ch.OpenBlock); l.Charged.Int64() != paid || l.Balance.Int64() != paid {
		t.Errorf("ledger charged %s, balance %s; paid %d", l.Charged, l.Balance, paid)
	}

	// Another client on the same store file sees the balance signed.
	reloaded := h.client(1, store)
	if got, ok := reloaded.Channel(ch.Receiver, ch.OpenBlock); !ok || got.Balance.Int64() != paid {
		t.Errorf("reloaded store: %+v %v", got, ok)
	}

	closed, err := c.CloseCooperatively(t.Context(), ch.Receiver, ch.OpenBlock, "")
	if err != nil {
		t.Fatal(err)
	}
	if closed.State != client.StateClosed {
		t.Errorf("after the close the channel is %s", closed.State)
	}
	if info, err := c.Info(t.Context(), ch.Receiver, ch.OpenBlock); err != nil || info.Exists {
		t.Errorf("the contract still holds the channel: %+v %v", info, err)
	}
	gain := new(big.Int).Sub(h.tokens(h.receiver()), receiverBefore)
	loss := new(big.Int).Sub(senderBefore, h.tokens(sender.Address))
	if gain.Int64() != paid || loss.Int64() != paid {
		t.Errorf("receiver gained %s, sender lost %s; paid %d", gain, loss, paid)
	}
}

// 32 parallel requests on one channel are all served and charged exactly once each.
func TestParallelRequestsOnOneChannel(t *testing.T) {
	h := start(t)
	c := h.client(2, "")
	// A deposit that covers them all: every request shares the channel the first opens.
	rt := c.Transport(client.TransportConfig{OpenFactor: 40})
	if status, _, err := h.get(rt, "/echofix/warm"); err != nil || status != 200 {
		t.Fatalf("first request: %d %v", status, err)
	}
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			status, body, err := h.get(rt, fmt.Sprintf("/echofix/p%d", i))
			if err == nil && (status != 200 || body != fmt.Sprintf("p%d", i)) {
				err = fmt.Errorf("request %d: %d %q", i, status, body)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ch := onlyChannel(t, c)
	l := h.ledgerChannel(h.chain.Accounts()[2].Key, ch.OpenBlock)
	want := int64(5 * (n + 1))
	if l.Charged.Int64() != want || l.Balance.Int64() != want || ch.Balance.Int64() != want || rt.Spent().Int64() != want {
		t.Errorf("charged %s, server balance %s, client balance %s, spent %s; want %d", l.Charged, l.Balance, ch.Balance, rt.Spent(), want)
	}
}

// A client that lost its store finds its channel on chain and adopts the server's balance
// (RDN-Invalid-Amount) instead of opening a new channel.
func TestLostStoreRecovers(t *testing.T) {
	h := start(t)
	first := h.client(3, "")
	for range 3 {
		if status, _, err := h.get(first.Transport(client.TransportConfig{}), "/echofix/a"); err != nil || status != 200 {
			t.Fatalf("%d %v", status, err)
		}
	}
	ch := onlyChannel(t, first)

	fresh := h.client(3, "")
	if status, body, err := h.get(fresh.Transport(client.TransportConfig{}), "/echofix/again"); err != nil || status != 200 || body != "again" {
		t.Fatalf("after losing the store: %d %q %v", status, body, err)
	}
	got := onlyChannel(t, fresh)
	if got.OpenBlock != ch.OpenBlock || got.Balance.Int64() != 20 {
		t.Errorf("recovered channel %+v, want open block %d at balance 20", got, ch.OpenBlock)
	}
	if l := h.ledgerChannel(h.chain.Accounts()[3].Key, ch.OpenBlock); l.Charged.Int64() != 20 {
		t.Errorf("ledger charged %s, want 20", l.Charged)
	}
}

// The spending cap stops payment with its typed error, after what fits under it.
func TestSpendingCap(t *testing.T) {
	h := start(t)
	rt := h.client(1, "").Transport(client.TransportConfig{MaxSpend: big.NewInt(12)})
	for i := range 2 {
		if status, _, err := h.get(rt, "/echofix/x"); err != nil || status != 200 {
			t.Fatalf("request %d under the cap: %d %v", i, status, err)
		}
	}
	_, _, err := h.get(rt, "/echofix/x")
	var capErr *client.SpendingCapError
	if !errors.As(err, &capErr) || capErr.Spent.Int64() != 10 || capErr.Cap.Int64() != 12 {
		t.Fatalf("third request: %v, want a SpendingCapError at 10 of 12", err)
	}
	if rt.Spent().Int64() != 10 {
		t.Errorf("spent %s", rt.Spent())
	}
	priced := h.client(2, "").Transport(client.TransportConfig{MaxPrice: big.NewInt(4)})
	var priceErr *client.PriceTooHighError
	if _, _, err := h.get(priced, "/echofix/x"); !errors.As(err, &priceErr) {
		t.Errorf("price 5 above the maximum 4: %v", err)
	}
}

// A 402 naming another contract is refused before anything is signed or deposited.
func TestUntrustedContract(t *testing.T) {
	h := start(t)
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(rdn.HeaderPrice, "5")
		w.Header().Set(rdn.HeaderReceiverAddress, h.receiver().Hex())
		w.Header().Set(rdn.HeaderContractAddress, "0x00000000000000000000000000000000000000aa")
		w.WriteHeader(http.StatusPaymentRequired)
	}))
	defer fake.Close()
	c := h.client(1, "")
	_, err := (&http.Client{Transport: c.Transport(client.TransportConfig{})}).Get(fake.URL + "/x")
	var untrusted *client.UntrustedContractError
	if !errors.As(err, &untrusted) || untrusted.Want != h.chain.Deployment().Channels {
		t.Fatalf("err = %v, want an UntrustedContractError", err)
	}
	if chs, err := c.Channels(t.Context(), nil); err != nil || len(chs) != 0 {
		t.Errorf("channels after the refusal: %v %v", chs, err)
	}
}

// The uncooperative close starts the challenge period; settling early says how long is left.
// The watchtower answers a close below the last proof, so the receiver is paid in full.
func TestUncooperativeCloseIsDisputed(t *testing.T) {
	h := start(t)
	c := h.client(1, "")
	rt := c.Transport(client.TransportConfig{})
	for range 2 {
		if status, _, err := h.get(rt, "/echofix/x"); err != nil || status != 200 {
			t.Fatalf("%d %v", status, err)
		}
	}
	ch := onlyChannel(t, c)
	receiverBefore := h.tokens(h.receiver())
	// The lying client: it forgets its payments (a new store) and closes at 0.
	lying := h.client(1, "")
	if _, err := lying.Refresh(t.Context(), ch.Receiver, ch.OpenBlock); err != nil {
		t.Fatal(err)
	}
	if _, err := lying.CloseUncooperatively(t.Context(), ch.Receiver, ch.OpenBlock); err != nil {
		t.Fatal(err)
	}
	// A second close names its cause instead of reverting: the close already requested, or
	// the settlement when the watchtower was quicker.
	var requested *client.CloseRequestedError
	if _, err := lying.CloseUncooperatively(t.Context(), ch.Receiver, ch.OpenBlock); !errors.As(err, &requested) && !errors.Is(err, client.ErrNotOnChain) {
		t.Errorf("a second close: %v", err)
	} else if requested != nil && (requested.Balance.Sign() != 0 || requested.SettleBlock == 0) {
		t.Errorf("a second close: %v", err)
	}
	var early *client.SettleTooEarlyError
	_, err := c.Settle(t.Context(), ch.Receiver, ch.OpenBlock)
	if err == nil {
		// The watchtower already settled it cooperatively at the full balance.
		t.Log("settled by the watchtower before the settle attempt")
	} else if !errors.As(err, &early) {
		t.Fatalf("settle: %v", err)
	}
	waitFor(t, func() bool {
		info, err := c.Info(t.Context(), ch.Receiver, ch.OpenBlock)
		return err == nil && !info.Exists
	})
	if gain := new(big.Int).Sub(h.tokens(h.receiver()), receiverBefore); gain.Int64() != 10 {
		t.Errorf("receiver gained %s, want the full 10", gain)
	}
	if _, err := c.CloseUncooperatively(t.Context(), ch.Receiver, ch.OpenBlock); !errors.Is(err, client.ErrNotOnChain) {
		t.Errorf("closing the settled channel: %v, want %v", err, client.ErrNotOnChain)
	}
	// The watcher applies the settlement from the chain.
	waitFor(t, func() bool {
		return h.ledgerChannel(h.chain.Accounts()[1].Key, ch.OpenBlock).State == ledger.StateSettled
	})
}

// The paid cycle in typed proofs against a server that offers them: payments, a client that
// lost its store adopting the server's typed proof, a top-up, and a cooperative close in
// the typed scheme (cooperativeCloseTyped) that settles at the balance.
func TestTypedCycle(t *testing.T) {
	h := start(t)
	sender := h.chain.Accounts()[1]
	first := h.client(1, "")
	rt := first.Transport(client.TransportConfig{})
	receiverBefore, senderBefore := h.tokens(h.receiver()), h.tokens(sender.Address)
	for i := range 4 {
		if status, _, err := h.get(rt, "/echofix/t"); err != nil || status != 200 {
			t.Fatalf("request %d: %d %v", i, status, err)
		}
	}
	if scheme, why := rt.ProofScheme(); scheme != rdn.SchemeTyped {
		t.Fatalf("paid in %s (%s), want eip712", scheme, why)
	}
	ch := onlyChannel(t, first)
	if l := h.ledgerChannel(sender.Key, ch.OpenBlock); l.Scheme != rdn.SchemeTyped || l.Balance.Int64() != 20 {
		t.Errorf("ledger: %s proof at %s, want eip712 at 20", l.Scheme, l.Balance)
	}

	// Lost local state: the server's typed proof is checked in its scheme and adopted.
	c := h.client(1, "")
	rt = c.Transport(client.TransportConfig{})
	paid := int64(20)
	// 50 deposited: 6 more requests pass it, and the client tops up.
	for i := range 8 {
		if status, _, err := h.get(rt, "/echofix/u"); err != nil || status != 200 {
			t.Fatalf("request %d after losing the store: %d %v", i, status, err)
		}
		paid += 5
	}
	got := onlyChannel(t, c)
	if got.OpenBlock != ch.OpenBlock || got.Balance.Int64() != paid || got.Scheme != rdn.SchemeTyped || got.Deposit.Int64() <= 50 {
		t.Fatalf("channel %+v: want open block %d, typed balance %d, topped up above 50", got, ch.OpenBlock, paid)
	}
	if l := h.ledgerChannel(sender.Key, ch.OpenBlock); l.Charged.Int64() != paid || l.Scheme != rdn.SchemeTyped {
		t.Errorf("ledger charged %s (%s), want %d in eip712", l.Charged, l.Scheme, paid)
	}

	closed, err := c.CloseCooperatively(t.Context(), got.Receiver, got.OpenBlock, "")
	if err != nil {
		t.Fatal(err)
	}
	if closed.State != client.StateClosed {
		t.Errorf("after the close the channel is %s", closed.State)
	}
	if l := h.ledgerChannel(sender.Key, ch.OpenBlock); l.ClosingScheme != rdn.SchemeTyped {
		t.Errorf("the server signed its closing signature in %s", l.ClosingScheme)
	}
	gain := new(big.Int).Sub(h.tokens(h.receiver()), receiverBefore)
	loss := new(big.Int).Sub(senderBefore, h.tokens(sender.Address))
	if gain.Int64() != paid || loss.Int64() != paid {
		t.Errorf("receiver gained %s, sender lost %s; paid %d", gain, loss, paid)
	}
}

// A channel paid in legacy proofs (a store written by a client that signed legacy) goes on
// in typed proofs once the client chooses auto, each proof verified in its own scheme; a
// client forcing legacy then closes it, signing the typed balance again in legacy.
func TestLegacyChannelContinuesTyped(t *testing.T) {
	h := start(t)
	sender := h.chain.Accounts()[2]
	store := filepath.Join(t.TempDir(), "channels.json")
	legacy := h.clientWith(2, client.Config{StorePath: store, ProofScheme: client.ProofSchemeLegacy})
	for range 2 {
		if status, _, err := h.get(legacy.Transport(client.TransportConfig{}), "/echofix/l"); err != nil || status != 200 {
			t.Fatalf("legacy payment: %d %v", status, err)
		}
	}
	ch := onlyChannel(t, legacy)
	if ch.Scheme != rdn.SchemeLegacy || h.ledgerChannel(sender.Key, ch.OpenBlock).Scheme != rdn.SchemeLegacy {
		t.Fatalf("after legacy payments: client %s, server %s", ch.Scheme, h.ledgerChannel(sender.Key, ch.OpenBlock).Scheme)
	}
	receiverBefore := h.tokens(h.receiver())

	upgraded := h.client(2, store)
	for range 2 {
		if status, _, err := h.get(upgraded.Transport(client.TransportConfig{}), "/echofix/u"); err != nil || status != 200 {
			t.Fatalf("typed payment on the legacy channel: %d %v", status, err)
		}
	}
	ch = onlyChannel(t, upgraded)
	l := h.ledgerChannel(sender.Key, ch.OpenBlock)
	if ch.Scheme != rdn.SchemeTyped || ch.Balance.Int64() != 20 || l.Scheme != rdn.SchemeTyped || l.Charged.Int64() != 20 {
		t.Fatalf("client %s at %s, server %s charged %s; want eip712 at 20 on the same channel", ch.Scheme, ch.Balance, l.Scheme, l.Charged)
	}

	closer := h.clientWith(2, client.Config{StorePath: store, ProofScheme: client.ProofSchemeLegacy})
	if _, err := closer.CloseCooperatively(t.Context(), ch.Receiver, ch.OpenBlock, ""); err != nil {
		t.Fatal(err)
	}
	if info, err := closer.Info(t.Context(), ch.Receiver, ch.OpenBlock); err != nil || info.Exists {
		t.Errorf("the contract still holds the channel: %+v %v", info, err)
	}
	if gain := new(big.Int).Sub(h.tokens(h.receiver()), receiverBefore); gain.Int64() != 20 {
		t.Errorf("receiver gained %s, want 20", gain)
	}
}

// A server whose contract takes legacy proofs only: auto pays legacy and sends no
// RDN-Proof-Scheme; forcing eip712 fails, saying so, before anything is deposited.
func TestLegacyOnlyServer(t *testing.T) {
	h := startLegacyOnly(t)
	c := h.client(1, "")
	rt := c.Transport(client.TransportConfig{})
	if status, body, err := h.get(rt, "/echofix/x"); err != nil || status != 200 || body != "x" {
		t.Fatalf("auto against a legacy-only server: %d %q %v", status, body, err)
	}
	if scheme, why := rt.ProofScheme(); scheme != rdn.SchemeLegacy || !strings.Contains(why, "legacy only") {
		t.Errorf("paid in %s because %q", scheme, why)
	}
	ch := onlyChannel(t, c)
	if l := h.ledgerChannel(h.chain.Accounts()[1].Key, ch.OpenBlock); l.Scheme != rdn.SchemeLegacy || l.Charged.Int64() != 5 {
		t.Errorf("ledger: %s proof, charged %s", l.Scheme, l.Charged)
	}

	forced := h.clientWith(2, client.Config{ProofScheme: client.ProofSchemeEIP712})
	_, _, err := h.get(forced.Transport(client.TransportConfig{}), "/echofix/x")
	var se *client.ProofSchemeError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "proof scheme eip712 cannot be used: the server offers legacy only") {
		t.Fatalf("forced eip712: %v", err)
	}
	if chs, err := forced.Channels(t.Context(), nil); err != nil || len(chs) != 0 {
		t.Errorf("channels after the refusal: %v %v", chs, err)
	}
}
