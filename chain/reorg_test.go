package chain_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/internal/dev/devtools"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// newAnvilEnv is an env on a real anvil process started with anvilArgs: account 0 deploys
// and receives; the senders are new accounts funded with ETH and tokens.
func newAnvilEnv(t *testing.T, confirmations, reorgDepth uint64, anvilArgs ...string) (*env, *rpc.Client, []*ecdsa.PrivateKey) {
	t.Helper()
	node := devtools.StartAnvil(t, anvilArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ec, err := ethclient.DialContext(ctx, node.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ec.Close)
	receiver, _ := crypto.HexToECDSA(devtools.AnvilKey)
	d, err := chain.Deploy(ctx, ec, receiver, chain.DeployParams{ChallengePeriod: 500,
		NewToken: chain.TokenParams{Name: "T", Symbol: "T", Decimals: 18, Supply: new(big.Int).Lsh(big.NewInt(1), 80)}})
	if err != nil {
		t.Fatal(err)
	}
	rc := ec.Client()
	e := &env{t: t, ec: ec, chainID: big.NewInt(devtools.AnvilChainID), receiver: receiver, token: d.Token,
		channels: d.Channels, startBlock: d.ChannelsBlock, confirmations: confirmations, reorgDepth: reorgDepth,
		ledgerDir: t.TempDir(),
		mine: func(n int) {
			if err := rc.Call(nil, "anvil_mine", hexutil.Uint64(n)); err != nil {
				t.Fatal(err)
			}
		}}
	var senders []*ecdsa.PrivateKey
	for range 2 {
		key, _ := crypto.GenerateKey()
		addr := crypto.PubkeyToAddress(key.PublicKey)
		if err := rc.Call(nil, "anvil_setBalance", addr, hexutil.EncodeBig(new(big.Int).Lsh(big.NewInt(1), 70))); err != nil {
			t.Fatal(err)
		}
		e.send(receiver, d.Token, tokenABI.PackTransfer(addr, new(big.Int).Lsh(big.NewInt(1), 60)))
		senders = append(senders, key)
	}
	e.open()
	return e, rc, senders
}

func snapshot(t *testing.T, rc *rpc.Client) string {
	var id string
	if err := rc.Call(&id, "evm_snapshot"); err != nil {
		t.Fatal(err)
	}
	return id
}

func revert(t *testing.T, rc *rpc.Client, id string) {
	var ok bool
	if err := rc.Call(&ok, "evm_revert", id); err != nil || !ok {
		t.Fatalf("evm_revert: %v %v", ok, err)
	}
}

// A reorganization drops an unconfirmed creation and an unconfirmed top-up: the ledger rolls
// them back, keeps the payments of the surviving channel, and follows the new branch.
func TestReorgDropsUnconfirmedCreationAndTopUp(t *testing.T) {
	const n = 3
	e, rc, senders := newAnvilEnv(t, n, 0)
	old := e.openChannel(senders[0], 100)
	e.mine(n)
	e.sync()
	e.pay(senders[0], old, 40)

	snap := snapshot(t, rc)
	fresh := e.openChannel(senders[1], 70)
	e.topUp(senders[0], old, 25)
	e.sync()
	if ok, _ := e.ledger.Known(fresh); !ok || e.channel(old).TotalDeposit().Int64() != 125 {
		t.Fatalf("before the reorg: fresh known %v, old deposit %s", ok, e.channel(old).TotalDeposit())
	}

	revert(t, rc, snap)
	e.mine(n) // a longer branch without those transactions
	e.sync()
	if ok, _ := e.ledger.Known(fresh); ok {
		t.Error("the orphaned creation is still known")
	}
	ch := e.channel(old)
	if ch.TotalDeposit().Int64() != 100 || ch.Balance.Int64() != 40 || ch.Charged.Int64() != 40 {
		t.Errorf("after the reorg: deposit %s balance %s charged %s; want 100, 40, 40", ch.TotalDeposit(), ch.Balance, ch.Charged)
	}
	if head, _ := e.ec.BlockNumber(t.Context()); e.ledger.Sync().Cursor != head {
		t.Errorf("cursor %d, head %d", e.ledger.Sync().Cursor, head)
	}
	// The new branch is followed: a top-up on it counts once.
	e.topUp(senders[0], old, 10)
	e.mine(n)
	e.sync()
	if got := e.channel(old).ConfirmedDeposit(e.ledger.ConfirmedHeight()); got.Int64() != 110 {
		t.Errorf("confirmed deposit on the new branch: %s, want 110", got)
	}
	if err := e.watcher.Healthy(); err != nil || e.watcher.Resyncs() != 0 {
		t.Errorf("after a reorg within reach: healthy %v, resyncs %d", err, e.watcher.Resyncs())
	}
}

// Deeper than the hashes kept: payments stop, the watcher resyncs from the contract, and the
// process goes on.
func TestDeepReorgResyncs(t *testing.T) {
	const n, depth = 1, 3
	e, rc, senders := newAnvilEnv(t, n, depth)
	old := e.openChannel(senders[0], 100)
	e.mine(2)
	e.sync()
	e.pay(senders[0], old, 30)

	snap := snapshot(t, rc)
	lost := e.openChannel(senders[1], 70)
	e.mine(6)
	e.sync()
	if ok, _ := e.ledger.Known(lost); !ok {
		t.Fatal("setup: channel not seen")
	}

	revert(t, rc, snap)
	e.mine(1)                               // a different open block: a different channel
	reborn := e.openChannel(senders[1], 55) // on the new branch only
	e.mine(10)
	e.sync()
	if r, _ := e.ledger.Pay(t.Context(), ledger.Payment{ID: lost, Balance: big.NewInt(1), Price: big.NewInt(1)}); r.Outcome != ledger.NoChannel {
		t.Errorf("a channel gone from the chain still takes payments: %v", r.Outcome)
	}
	if ch := e.channel(reborn); ch.TotalDeposit().Int64() != 55 || ch.State != ledger.StateOpen {
		t.Errorf("the new branch's channel: deposit %s state %v", ch.TotalDeposit(), ch.State)
	}
	if ch := e.channel(old); ch.Balance.Int64() != 30 || ch.TotalDeposit().Int64() != 100 || ch.State != ledger.StateOpen {
		t.Errorf("the surviving channel: %v deposit %s balance %s", ch.State, ch.TotalDeposit(), ch.Balance)
	}
	if err := e.watcher.Healthy(); err != nil || e.watcher.Resyncs() != 1 {
		t.Errorf("after the deep reorg: healthy %v, resyncs %d (want 1)", err, e.watcher.Resyncs())
	}
	if reborn == lost {
		t.Fatal("setup: the new channel has the lost one's id")
	}
}

// A dispute in flight survives a restart: the new watchtower finds the transaction it sent;
// a transaction lost from the pool is sent again with a higher fee after BumpAfter blocks,
// through the same function as the first (the one of the stored proof's scheme).
func TestDisputeRestartAndFeeBump(t *testing.T) {
	for scheme, function := range map[rdn.Scheme]string{rdn.SchemeLegacy: "cooperativeClose", rdn.SchemeTyped: "cooperativeCloseTyped"} {
		t.Run(scheme.String(), func(t *testing.T) { testDisputeRestartAndFeeBump(t, scheme, function) })
	}
}

func testDisputeRestartAndFeeBump(t *testing.T, scheme rdn.Scheme, function string) {
	e, rc, senders := newAnvilEnv(t, 0, 0)
	sender := senders[0]
	id := e.openChannel(sender, 1000)
	e.sync()
	e.payIn(scheme, sender, id, 600)
	receiverBefore := e.tokenBalance(e.receiverAddr())

	if err := rc.Call(nil, "evm_setAutomine", false); err != nil {
		t.Fatal(err)
	}
	closeTx := e.sendAsync(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), id.OpenBlock, big.NewInt(100)))
	e.mine(1)
	if r, err := e.ec.TransactionReceipt(t.Context(), closeTx); err != nil || r.Status != 1 {
		t.Fatalf("close request: %v", err)
	}
	e.sync() // the watchtower sends the dispute; it stays pending
	d := e.dispute(id)
	if d == nil || d.Status != ledger.DisputeSent || len(d.Txs) != 1 {
		t.Fatalf("dispute: %+v", d)
	}

	// The node forgets the transaction; blocks pass; a restarted watchtower bumps it.
	if err := rc.Call(nil, "anvil_dropTransaction", d.Txs[0].Hash); err != nil {
		t.Fatal(err)
	}
	e.mine(3)
	e.restart()
	d = e.dispute(id)
	if len(d.Txs) != 2 {
		t.Fatalf("no fee bump after the restart: %+v", d)
	}
	first, _ := new(big.Int).SetString(d.Txs[0].GasTipCap, 10)
	second, _ := new(big.Int).SetString(d.Txs[1].GasTipCap, 10)
	if second.Cmp(first) <= 0 {
		t.Errorf("bump: tip %s then %s", first, second)
	}
	e.mine(1)
	if err := e.tower.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := e.dispute(id); d.Status != ledger.DisputeDone || d.MinedTx != d.Txs[1].Hash {
		t.Fatalf("after mining: %+v", d)
	}
	if got := selectorOf(t, e.ec, common.HexToHash(d.Txs[1].Hash)); got != function {
		t.Errorf("the fee bump called %s, want %s", got, function)
	}
	if got := new(big.Int).Sub(e.tokenBalance(e.receiverAddr()), receiverBefore); got.Int64() != 600 {
		t.Errorf("receiver got %s tokens, want 600", got)
	}
}

// A ledger that needs a resync (its last chain update was cut short by a crash, here asked
// for with RequestResync) takes no payment until the watcher has read every channel from the
// contract: a top-up a replay counted twice is then counted once, the payments stay, a
// top-up or a creation within the confirmations waits for them, and a channel the ledger
// wrongly holds settled while the chain has it closing is closing again (for the watchtower).
func TestWatcherResyncsALedgerThatNeedsIt(t *testing.T) {
	const n = 2
	e, c := newDevEnv(t, n)
	sender := c.Accounts()[1].Key
	id := e.openChannel(sender, 100)
	topUpBlock := e.topUp(sender, id, 50)
	e.mine(n)
	e.sync()
	e.pay(sender, id, 40)
	other := c.Accounts()[2].Key
	closing := e.openChannel(other, 60)
	e.mine(n)
	e.sync()

	// What a replay of a half-written update would do: the same top-up applied again.
	err := e.ledger.Apply(t.Context(), ledger.Update{Sync: e.ledger.Sync(), Events: []ledger.Event{
		{Kind: ledger.ToppedUp, Channel: id, Block: topUpBlock, Amount: big.NewInt(50)},
		{Kind: ledger.Settled, Channel: closing, Block: topUpBlock, Amount: new(big.Int)}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.channel(id).TotalDeposit().Int64(); got != 200 {
		t.Fatalf("setup: deposit %d after the replayed top-up, want 200", got)
	}
	if err := e.ledger.RequestResync(); err != nil {
		t.Fatal(err)
	}
	e.send(other, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), closing.OpenBlock, big.NewInt(10)))
	e.topUp(sender, id, 7)           // not confirmed when the resync reads the chain
	late := e.openChannel(other, 30) // nor this creation
	e.restart()
	if !e.ledger.NeedsResync() || !errors.Is(e.ledger.Err(), ledger.ErrResyncing) {
		t.Fatalf("after the restart: needs resync %v, err %v", e.ledger.NeedsResync(), e.ledger.Err())
	}
	sig, _ := rdn.Balance{Receiver: e.receiverAddr(), OpenBlock: id.OpenBlock, Balance: big.NewInt(190), Contract: e.channels}.Sign(sender)
	if _, err := e.ledger.Pay(t.Context(), ledger.Payment{ID: id, Balance: big.NewInt(190), Signature: sig, Price: big.NewInt(150)}); !errors.Is(err, ledger.ErrResyncing) {
		t.Fatalf("a payment before the resync: %v, want ErrResyncing", err)
	}

	e.sync()
	ch := e.channel(id)
	confirmed := ch.ConfirmedDeposit(e.ledger.ConfirmedHeight())
	if confirmed.Int64() != 150 || ch.TotalDeposit().Int64() != 157 || ch.Balance.Int64() != 40 || ch.Charged.Int64() != 40 {
		t.Fatalf("after the resync: confirmed deposit %s, total %s, balance %s, charged %s; want 150, 157, 40, 40",
			confirmed, ch.TotalDeposit(), ch.Balance, ch.Charged)
	}
	if e.ledger.NeedsResync() || e.ledger.Err() != nil || e.watcher.Resyncs() != 1 {
		t.Fatalf("after the resync: needs resync %v, err %v, resyncs %d", e.ledger.NeedsResync(), e.ledger.Err(), e.watcher.Resyncs())
	}
	if ch := e.channel(closing); ch.State != ledger.StateClosing || ch.CloseBalance.Int64() != 10 {
		t.Fatalf("the channel closing on chain: %v at %s", ch.State, ch.CloseBalance)
	}
	if ch := e.channel(late); ch.State != ledger.StateOpen || ch.Confirmed(e.ledger.ConfirmedHeight()) ||
		ch.TotalDeposit().Int64() != 30 || ch.ConfirmedDeposit(e.ledger.ConfirmedHeight()).Sign() != 0 {
		t.Fatalf("the unconfirmed creation: %v, deposit %s of which confirmed %s", ch.State, ch.TotalDeposit(), ch.ConfirmedDeposit(e.ledger.ConfirmedHeight()))
	}
	if st := e.ledger.Stats(); st.DepositSum.Int64() != 157+60+30 || st.ChargedSum.Int64() != 40 || st.OpenChannels != 2 || st.ClosingChannels != 1 {
		t.Fatalf("counters after the resync: %+v", st)
	}
	e.mine(n)
	e.sync()
	if got := e.channel(id).ConfirmedDeposit(e.ledger.ConfirmedHeight()).Int64(); got != 157 {
		t.Fatalf("once confirmed: deposit %d, want 157", got)
	}
	if ch := e.channel(late); !ch.Confirmed(e.ledger.ConfirmedHeight()) || ch.ConfirmedDeposit(e.ledger.ConfirmedHeight()).Int64() != 30 {
		t.Fatalf("the creation once confirmed: deposit %s", ch.ConfirmedDeposit(e.ledger.ConfirmedHeight()))
	}
	e.restart()
	if e.ledger.NeedsResync() {
		t.Fatal("the resync is asked for again after a restart")
	}
}

// A channel opened before the watcher's start block is learned from the contract when its
// first event comes: as it was just before that event when the node can say, else as it is
// now, and then the ledger takes no payment until a resync has read it again, so that the
// event is not counted on top of a state that already holds it.
func TestSeedsAChannelOpenedBeforeTheStartBlock(t *testing.T) {
	for _, c := range []struct {
		name      string
		anvilArgs []string
		resync    bool
	}{
		{"the node keeps every state", nil, false},
		{"the node keeps two states", []string{"--prune-history", "2"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, rc, senders := newAnvilEnv(t, 0, 0, c.anvilArgs...)
			id := e.openChannel(senders[0], 100)
			e.mine(5)
			var head hexutil.Uint64
			if err := rc.Call(&head, "eth_blockNumber"); err != nil {
				t.Fatal(err)
			}
			// A new ledger following from after the creation.
			e.startBlock = uint64(head) + 1
			e.ledger.Close()
			e.ledgerDir = t.TempDir()
			e.open()
			e.topUp(senders[0], id, 30)
			e.mine(5)

			e.sync()
			if e.ledger.NeedsResync() != c.resync {
				t.Fatalf("after learning the channel: needs resync %v, want %v", e.ledger.NeedsResync(), c.resync)
			}
			if c.resync {
				e.sync()
			}
			if ch := e.channel(id); ch.TotalDeposit().Int64() != 130 || ch.State != ledger.StateOpen {
				t.Fatalf("the channel: %v with deposit %s, want open with 130", ch.State, ch.TotalDeposit())
			}
			if e.ledger.NeedsResync() || e.ledger.Err() != nil {
				t.Fatalf("needs resync %v, err %v", e.ledger.NeedsResync(), e.ledger.Err())
			}
			e.pay(senders[0], id, 130)
		})
	}
}
