package chain_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// closeCooperatively closes a channel as the admin API's DELETE does: the ledger keeps the
// receiver's closing signature, the channel is closing, nothing happens on chain.
func (e *env) closeCooperatively(id rdn.ChannelID, balance int64) rdn.Signature {
	e.t.Helper()
	sig, err := e.ledger.CloseCooperatively(context.Background(), id, big.NewInt(balance), func(id rdn.ChannelID, b *big.Int) (rdn.Signature, error) {
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
	e.towerDeaf = true
	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), missed.OpenBlock, big.NewInt(0)))
	e.sync()
	if d := e.dispute(missed); d != nil {
		t.Fatalf("dispute while deaf: %+v", d)
	}
	e.towerDeaf = false
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
func TestDisputeOutcomeIsReadFromTheChain(t *testing.T) {
	e, c := newDevEnv(t, 0)
	sender := c.Accounts()[1].Key
	id := e.openChannel(sender, 1000)
	e.sync()
	e.pay(sender, id, 250)
	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), id.OpenBlock, big.NewInt(1)))
	e.sync() // the watchtower sends the dispute; no later sync shows it the settlement
	d := e.dispute(id)
	if d == nil || len(d.Txs) != 1 {
		t.Fatalf("dispute: %+v", d)
	}
	if _, err := contracts.WaitMined(t.Context(), e.ec, common.HexToHash(d.Txs[0].Hash)); err != nil {
		t.Fatal(err)
	}
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
