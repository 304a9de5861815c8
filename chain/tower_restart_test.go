package chain_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// closeCooperatively closes a channel as the admin API's DELETE does: the ledger keeps the
// receiver's closing signature, the channel is closing, nothing happens on chain.
func (e *env) closeCooperatively(id rdn.ChannelID, balance int64) rdn.Signature {
	e.t.Helper()
	sig, err := e.ledger.CloseCooperatively(context.Background(), id, big.NewInt(balance), rdn.SchemeLegacy, func(id rdn.ChannelID, b *big.Int, _ rdn.Scheme) (rdn.Signature, error) {
		return rdn.Closing{Sender: id.Sender, OpenBlock: id.OpenBlock, Balance: b, Contract: e.channels}.Sign(e.receiver)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return sig
}

// settleCooperatively is the sender's side of a cooperative close: its cooperativeClose with
// its balance proof and the receiver's closing signature settles the channel at once.
func (e *env) settleCooperatively(sender *ecdsa.PrivateKey, id rdn.ChannelID, balance int64, closing rdn.Signature) {
	e.t.Helper()
	b, err := rdn.Balance{Receiver: e.receiverAddr(), OpenBlock: id.OpenBlock, Balance: big.NewInt(balance), Contract: e.channels}.Sign(sender)
	if err != nil {
		e.t.Fatal(err)
	}
	e.send(sender, e.channels, channelsABI.PackCooperativeClose(e.receiverAddr(), id.OpenBlock, big.NewInt(balance), b[:], closing[:]))
}

// requestCloseUnheard has the sender ask on chain to close at balance, and the watcher see
// it while the watchtower does not, as when the process dies between the watcher's ledger
// write and its hook: no dispute is opened.
func (e *env) requestCloseUnheard(sender *ecdsa.PrivateKey, id rdn.ChannelID, balance int64) {
	e.t.Helper()
	e.towerDeaf = true
	defer func() { e.towerDeaf = false }()
	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), id.OpenBlock, big.NewInt(balance)))
	e.sync()
	if d := e.dispute(id); d != nil {
		e.t.Fatalf("dispute while the watchtower was not listening: %+v", d)
	}
}

func (e *env) receiverNonce() uint64 {
	e.t.Helper()
	n, err := e.ec.NonceAt(context.Background(), e.receiverAddr(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// restartQuietly restarts and checks that the new watchtower sent nothing and opened no
// dispute: the receiver's nonce on chain is where it was.
func (e *env) restartQuietly(when string) {
	e.t.Helper()
	nonce := e.receiverNonce()
	e.towerEvents = nil
	e.restart()
	if err := e.tower.Tick(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	if len(e.towerEvents) != 0 {
		e.t.Errorf("%s: watchtower transactions after the restart: %v", when, e.towerEvents)
	}
	if all, err := e.ledger.Disputes(); err != nil || len(all) != 0 {
		e.t.Errorf("%s: disputes after the restart: %+v %v", when, all, err)
	}
	if got := e.receiverNonce(); got != nonce {
		e.t.Errorf("%s: the receiver sent %d transactions on restart", when, got-nonce)
	}
}

// Issue 15.3: after a restart, the watchtower disputed channels closed through the admin
// API (closing, with a closing signature and no close request on chain, so a zero
// CloseBalance below the balance), paying the gas of a cooperativeClose nobody needed, and
// then counted it failed. A restart after each kind of close: only a real cheating close is
// disputed, and its dispute is read from the chain and counted mined.
func TestRestartAfterEachKindOfClose(t *testing.T) {
	e, c := newDevEnv(t, 0)
	sender := c.Accounts()[1].Key

	// Closed through the API at 15; the sender has not used the signature yet.
	signed := e.openChannel(sender, 100)
	e.mine(1) // gas estimation runs at the head's number, where the last channel already is
	// Closed through the API at 20, then settled by the sender's cooperativeClose, which the
	// watcher has not seen yet at the first restart.
	coop := e.openChannel(sender, 100)
	e.mine(1)
	// The sender asked on chain to close at the full balance.
	honest := e.openChannel(sender, 100)
	e.sync()
	for _, b := range []int64{5, 10, 15} {
		e.pay(sender, signed, b)
	}
	e.closeCooperatively(signed, 15)
	e.pay(sender, coop, 20)
	e.settleCooperatively(sender, coop, 20, e.closeCooperatively(coop, 20))
	e.pay(sender, honest, 30)
	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), honest.OpenBlock, big.NewInt(30)))

	e.restartQuietly("a cooperative close signed, one settled unseen")
	e.sync()
	if ch := e.channel(coop); ch.State != ledger.StateSettled {
		t.Errorf("cooperatively settled channel is %v", ch.State)
	}
	if ch := e.channel(honest); ch.State != ledger.StateClosing || !ch.CloseRequested() {
		t.Errorf("honestly closed channel: %v, close requested %v", ch.State, ch.CloseRequested())
	}
	if ch := e.channel(signed); ch.State != ledger.StateClosing || !ch.CloseSigned() || ch.CloseRequested() {
		t.Errorf("channel closed through the API: %v, signed %v, close requested %v", ch.State, ch.CloseSigned(), ch.CloseRequested())
	}
	e.restartQuietly("every close seen")

	// A cheating close: the dispute goes out, is mined, and the process stops before it
	// looks at the receipt. The restarted watchtower reads the outcome from the chain.
	cheated := e.openChannel(sender, 1000)
	e.sync()
	e.pay(sender, cheated, 400)
	before := e.tokenBalance(e.receiverAddr())
	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), cheated.OpenBlock, big.NewInt(10)))
	e.sync()
	d := e.dispute(cheated)
	if d == nil || len(d.Txs) != 1 {
		t.Fatalf("dispute of the cheating close: %+v", d)
	}
	if _, err := contracts.WaitMined(t.Context(), e.ec, common.HexToHash(d.Txs[0].Hash)); err != nil {
		t.Fatal(err)
	}
	e.towerEvents = nil
	e.restart()
	if d := e.dispute(cheated); d.Status != ledger.DisputeDone || d.MinedTx != d.Txs[0].Hash || d.GasUsed == 0 {
		t.Errorf("dispute after the restart: %+v", d)
	}
	if !slices.Equal(e.towerEvents, []string{"mined"}) {
		t.Errorf("watchtower transactions after the restart: %v, want [mined]", e.towerEvents)
	}
	if got := new(big.Int).Sub(e.tokenBalance(e.receiverAddr()), before); got.Int64() != 400 {
		t.Errorf("receiver got %s of 400", got)
	}

	// A cheating close the watchtower never heard of (the process died between the watcher's
	// write and its hook): the restart opens the dispute. The watcher then sees the
	// settlement before the watchtower looks at the receipt: still counted mined.
	missed := e.openChannel(sender, 1000)
	e.sync()
	e.pay(sender, missed, 300)
	before = e.tokenBalance(e.receiverAddr())
	e.requestCloseUnheard(sender, missed, 0)
	e.towerEvents = nil
	e.restart()
	d = e.dispute(missed)
	if d == nil || len(d.Txs) == 0 || d.CloseAt != "0" {
		t.Fatalf("dispute of a close request at zero after the restart: %+v", d)
	}
	if _, err := contracts.WaitMined(t.Context(), e.ec, common.HexToHash(d.Txs[len(d.Txs)-1].Hash)); err != nil {
		t.Fatal(err)
	}
	e.sync() // the settlement event first
	if err := e.tower.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := e.dispute(missed); d.Status != ledger.DisputeDone || d.MinedTx == "" {
		t.Errorf("dispute after the settlement: %+v", d)
	}
	if !slices.Equal(e.towerEvents, []string{"sent", "mined"}) {
		t.Errorf("watchtower transactions: %v, want [sent mined]", e.towerEvents)
	}
	if got := new(big.Int).Sub(e.tokenBalance(e.receiverAddr()), before); got.Int64() != 300 {
		t.Errorf("receiver got %s of 300", got)
	}
}

// A dispute whose record lost the transaction that settled the channel (here: replaced by
// one never broadcast, overdue for a fee bump): the resend would revert with "channel does
// not exist", and the chain's settlement, by the receiver at our balance, is the outcome.
// The node caps eth_getLogs at 16 blocks, as hosted providers do, and more blocks than that
// lie between the channel's opening and the close request, and between the settlement and
// the look for it: the settlement is looked for from the close request, 16 blocks at a time.
func TestDisputeOutcomeIsReadFromTheChain(t *testing.T) {
	const maxRange = 16
	e, c := newDevEnvWith(t, 0, devchain.Config{Accounts: 3, LogRangeLimit: maxRange})
	sender := c.Accounts()[1].Key
	id := e.openChannel(sender, 1000)
	e.sync()
	e.pay(sender, id, 250)
	e.mine(3 * maxRange)
	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), id.OpenBlock, big.NewInt(1)))
	e.sync() // the watchtower sends the dispute; no later sync shows it the settlement
	d := e.dispute(id)
	if d == nil || len(d.Txs) != 1 {
		t.Fatalf("dispute: %+v", d)
	}
	if _, err := contracts.WaitMined(t.Context(), e.ec, common.HexToHash(d.Txs[0].Hash)); err != nil {
		t.Fatal(err)
	}
	e.mine(3 * maxRange)
	lost := *d
	lost.Txs = []ledger.DisputeTx{{Hash: common.HexToHash("0xdead").Hex(), GasFeeCap: d.Txs[0].GasFeeCap, GasTipCap: d.Txs[0].GasTipCap, Gas: d.Txs[0].Gas}}
	if err := e.ledger.SaveDispute(t.Context(), lost); err != nil {
		t.Fatal(err)
	}
	e.towerEvents = nil
	if err := e.tower.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := e.dispute(id); d.Status != ledger.DisputeDone || d.MinedTx == "" {
		t.Errorf("dispute: %+v, want done and mined", d)
	}
	if !slices.Equal(e.towerEvents, []string{"mined"}) {
		t.Errorf("watchtower transactions: %v, want [mined]", e.towerEvents)
	}
}

// Issue 15.3's other side: a channel closed through the admin API (closing, with the
// receiver's closing signature, no close request on chain) whose sender then asks on chain
// to close at zero instead of using the signature. That close request is what the watchtower
// is for: disputed at once when the watchtower hears of it, and at start when it did not.
func TestCheatingCloseAfterAnAPICloseIsDisputed(t *testing.T) {
	e, c := newDevEnv(t, 0)
	sender := c.Accounts()[1].Key
	heard := e.openChannel(sender, 1000)
	e.mine(1) // gas estimation runs at the head's number, where the last channel already is
	missed := e.openChannel(sender, 1000)
	e.sync()
	e.pay(sender, heard, 200)
	e.closeCooperatively(heard, 200)
	e.pay(sender, missed, 300)
	e.closeCooperatively(missed, 300)
	for _, id := range []rdn.ChannelID{heard, missed} {
		if ch := e.channel(id); ch.State != ledger.StateClosing || !ch.CloseSigned() || ch.CloseRequested() {
			t.Fatalf("channel closed through the API: %v, signed %v, close requested %v", ch.State, ch.CloseSigned(), ch.CloseRequested())
		}
	}

	disputed := func(id rdn.ChannelID, balance int64, before *big.Int) {
		t.Helper()
		d := e.dispute(id)
		if d == nil || len(d.Txs) != 1 || d.CloseAt != "0" || d.Balance != big.NewInt(balance).String() {
			t.Fatalf("dispute: %+v", d)
		}
		if _, err := contracts.WaitMined(t.Context(), e.ec, common.HexToHash(d.Txs[0].Hash)); err != nil {
			t.Fatal(err)
		}
		if err := e.tower.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := e.dispute(id); d.Status != ledger.DisputeDone || d.MinedTx != d.Txs[0].Hash {
			t.Errorf("dispute after mining: %+v", d)
		}
		if !slices.Equal(e.towerEvents, []string{"sent", "mined"}) {
			t.Errorf("watchtower transactions: %v, want [sent mined]", e.towerEvents)
		}
		if got := new(big.Int).Sub(e.tokenBalance(e.receiverAddr()), before); got.Int64() != balance {
			t.Errorf("receiver got %s of %d", got, balance)
		}
		e.sync()
		if ch := e.channel(id); ch.State != ledger.StateSettled {
			t.Errorf("channel after the dispute: %v", ch.State)
		}
	}

	// Heard of: the close request event opens the dispute.
	before := e.tokenBalance(e.receiverAddr())
	e.towerEvents = nil
	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), heard.OpenBlock, big.NewInt(0)))
	e.sync()
	disputed(heard, 200, before)

	// Missed (the process died between the watcher's write and its hook): the restart opens
	// the dispute.
	before = e.tokenBalance(e.receiverAddr())
	e.requestCloseUnheard(sender, missed, 0)
	if ch := e.channel(missed); ch.State != ledger.StateClosing || !ch.CloseRequested() || !ch.CloseSigned() {
		t.Fatalf("channel after the close request: %v, close requested %v, signed %v", ch.State, ch.CloseRequested(), ch.CloseSigned())
	}
	e.towerEvents = nil
	e.restart()
	disputed(missed, 300, before)
}

// The operator settled a disputed channel from the receiver's account with a cooperativeClose
// of an older balance proof, after a close request the watchtower did not hear of: the
// restart opens the dispute, which would revert (the channel is gone), and the settlement
// read from the chain is below our balance. The dispute failed, whoever sent the
// settlement; it is not counted mined.
func TestOperatorSettlementBelowOurBalanceFailsTheDispute(t *testing.T) {
	e, c := newDevEnv(t, 0)
	sender := c.Accounts()[1].Key
	id := e.openChannel(sender, 1000)
	e.sync()
	e.pay(sender, id, 100)
	older, err := rdn.Balance{Receiver: e.receiverAddr(), OpenBlock: id.OpenBlock, Balance: big.NewInt(100), Contract: e.channels}.Sign(sender)
	if err != nil {
		t.Fatal(err)
	}
	e.pay(sender, id, 400)

	e.requestCloseUnheard(sender, id, 10)
	closing, err := rdn.Closing{Sender: id.Sender, OpenBlock: id.OpenBlock, Balance: big.NewInt(100), Contract: e.channels}.Sign(e.receiver)
	if err != nil {
		t.Fatal(err)
	}
	e.send(e.receiver, e.channels, channelsABI.PackCooperativeClose(e.receiverAddr(), id.OpenBlock, big.NewInt(100), older[:], closing[:]))
	e.towerEvents = nil
	e.restart() // opens the dispute; its send would revert, and the chain says how it ended

	d := e.dispute(id)
	if d == nil || d.Status != ledger.DisputeFailed || d.MinedTx != "" || !strings.Contains(d.Reason, "below our balance 400") {
		t.Fatalf("dispute: %+v, want failed below our balance", d)
	}
	if slices.Contains(e.towerEvents, "mined") {
		t.Errorf("watchtower transactions: %v, counted mined", e.towerEvents)
	}
	if err := e.tower.Healthy(); err != nil {
		t.Errorf("watchtower unhealthy after the dispute ended: %v", err)
	}
}
