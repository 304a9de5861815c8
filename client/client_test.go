package client_test

import (
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
	// The lying client: it forgets its last payment and closes at 5.
	lying := h.client(1, "")
	if _, err := lying.Refresh(t.Context(), ch.Receiver, ch.OpenBlock); err != nil {
		t.Fatal(err)
	}
	if _, err := lying.CloseUncooperatively(t.Context(), ch.Receiver, ch.OpenBlock); err != nil {
		t.Fatal(err)
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
	// The watcher applies the settlement from the chain.
	waitFor(t, func() bool {
		return h.ledgerChannel(h.chain.Accounts()[1].Key, ch.OpenBlock).State == ledger.StateSettled
	})
}
