package chain_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/keys"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

var (
	channelsABI = contracts.NewRaidenMicroTransferChannels()
	tokenABI    = contracts.NewUraidenTestToken()
)

// env is a chain with the contracts, a ledger, a watcher and a watchtower for the receiver.
// Blocks come from transactions and from mine; the test drives the watcher with sync.
type env struct {
	t             *testing.T
	ec            *ethclient.Client
	chainID       *big.Int
	mine          func(n int)
	receiver      *ecdsa.PrivateKey
	token         common.Address
	channels      common.Address
	startBlock    uint64
	confirmations uint64
	reorgDepth    uint64
	maxRange      uint64 // of the watcher's and the watchtower's eth_getLogs
	ledgerDir     string
	ledger        *ledger.Ledger
	watcher       *chain.Watcher
	tower         *chain.Watchtower
	towerEvents   []string
	// towerDeaf keeps chain events from the watchtower, as when the process dies between
	// the watcher's ledger write and its hook.
	towerDeaf bool
}

func newDevEnv(t *testing.T, confirmations uint64) (*env, *devchain.Chain) {
	t.Helper()
	return newDevEnvWith(t, confirmations, devchain.Config{Accounts: 3})
}

// newDevEnvWith is newDevEnv on a chain configured by cfg; a LogRangeLimit is also the
// watcher's and the watchtower's MaxRange.
func newDevEnvWith(t *testing.T, confirmations uint64, cfg devchain.Config) (*env, *devchain.Chain) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := devchain.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d := c.Deployment()
	e := &env{t: t, ec: c.Client(), chainID: big.NewInt(devchain.ChainID), receiver: c.Accounts()[0].Key,
		token: d.Token, channels: d.Channels, startBlock: d.ChannelsBlock, confirmations: confirmations,
		maxRange: cfg.LogRangeLimit, ledgerDir: t.TempDir(),
		mine: func(n int) {
			for range n {
				c.Commit()
			}
		}}
	e.open()
	return e, c
}

func (e *env) receiverAddr() common.Address { return crypto.PubkeyToAddress(e.receiver.PublicKey) }

// open (re)opens the ledger and builds the watcher and watchtower on it.
func (e *env) open() {
	e.t.Helper()
	l, err := ledger.Open(ledger.Options{Dir: e.ledgerDir, Identity: ledger.Identity{ChainID: e.chainID.Uint64(), Contract: e.channels, Receiver: e.receiverAddr()}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { l.Close() })
	e.ledger = l
	e.tower = chain.NewWatchtower(chain.WatchtowerConfig{
		Client: e.ec, Account: chain.Account{ChainID: e.chainID, Contract: e.channels, Key: keys.NewSecret(e.receiver)}, DeadlineMargin: 100,
		ChallengePeriod: contracts.MinChallengePeriod, MaxRange: e.maxRange,
		OnTransaction: func(r string) { e.towerEvents = append(e.towerEvents, r) },
	}, l)
	e.watcher = chain.NewWatcher(chain.WatcherConfig{
		Client: e.ec, Contract: e.channels, Receiver: e.receiverAddr(), ChallengePeriod: contracts.MinChallengePeriod,
		Confirmations: e.confirmations, StartBlock: e.startBlock, ReorgDepth: e.reorgDepth, MaxRange: e.maxRange,
		OnEvents: func(ctx context.Context, evs []ledger.Event) {
			if !e.towerDeaf {
				e.tower.OnEvents(ctx, evs)
			}
		},
	}, l)
}

// restart closes the ledger and opens it again with a new watcher and watchtower.
func (e *env) restart() {
	e.t.Helper()
	if err := e.ledger.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
	if err := e.tower.Resume(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) sync() {
	e.t.Helper()
	if err := e.watcher.Poll(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// sendAsync sends a transaction without waiting for it.
func (e *env) sendAsync(key *ecdsa.PrivateKey, to common.Address, data []byte) common.Hash {
	e.t.Helper()
	opts := bind.NewKeyedTransactor(key, e.chainID)
	opts.Context = e.t.Context()
	tx, err := bind.Transact(channelsABI.Instance(e.ec, to), opts, data)
	if err != nil {
		e.t.Fatalf("transaction: %v", err)
	}
	return tx.Hash()
}

// send mines a transaction from key and returns its receipt.
func (e *env) send(key *ecdsa.PrivateKey, to common.Address, data []byte) *types.Receipt {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := bind.NewKeyedTransactor(key, e.chainID)
	opts.Context = ctx
	tx, err := bind.Transact(channelsABI.Instance(e.ec, to), opts, data)
	if err != nil {
		e.t.Fatalf("transaction: %v", err)
	}
	r, err := contracts.WaitMined(ctx, e.ec, tx.Hash())
	if err != nil {
		e.t.Fatalf("transaction %s: %v", tx.Hash(), err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		// Replayed on the state it ran on, for the reason: a reverted transaction that
		// passed its gas estimate ran on another state than the estimate's.
		from := crypto.PubkeyToAddress(key.PublicKey)
		_, callErr := e.ec.CallContract(ctx, ethereum.CallMsg{From: from, To: &to, Data: data, Gas: tx.Gas()}, new(big.Int).Sub(r.BlockNumber, big.NewInt(1)))
		e.t.Fatalf("transaction %s reverted in block %s (gas %d of %d): replayed on its parent: %v", tx.Hash(), r.BlockNumber, r.GasUsed, tx.Gas(), callErr)
	}
	return r
}

func (e *env) openChannel(sender *ecdsa.PrivateKey, deposit int64) rdn.ChannelID {
	e.t.Helper()
	from := crypto.PubkeyToAddress(sender.PublicKey)
	r := e.send(sender, e.token, tokenABI.PackTransfer0(e.channels, big.NewInt(deposit), append(from.Bytes(), e.receiverAddr().Bytes()...)))
	return rdn.ChannelID{Sender: from, OpenBlock: uint32(r.BlockNumber.Uint64())}
}

func (e *env) topUp(sender *ecdsa.PrivateKey, id rdn.ChannelID, amount int64) uint64 {
	e.t.Helper()
	data := append(id.Sender.Bytes(), e.receiverAddr().Bytes()...)
	data = append(data, byte(id.OpenBlock>>24), byte(id.OpenBlock>>16), byte(id.OpenBlock>>8), byte(id.OpenBlock))
	return e.send(sender, e.token, tokenABI.PackTransfer0(e.channels, big.NewInt(amount), data)).BlockNumber.Uint64()
}

// pay records a payment of the sender's signed balance in the ledger, as authz would, for a
// price of the increment.
func (e *env) pay(sender *ecdsa.PrivateKey, id rdn.ChannelID, balance int64) {
	e.t.Helper()
	e.payIn(rdn.SchemeLegacy, sender, id, balance)
}

// payIn is pay with a proof signed in a scheme.
func (e *env) payIn(scheme rdn.Scheme, sender *ecdsa.PrivateKey, id rdn.ChannelID, balance int64) {
	e.t.Helper()
	price := new(big.Int).Sub(big.NewInt(balance), e.channel(id).Balance)
	sig, err := rdn.Balance{Receiver: e.receiverAddr(), OpenBlock: id.OpenBlock, Balance: big.NewInt(balance), Contract: e.channels,
		Scheme: scheme, ChainID: e.chainID.Uint64()}.Sign(sender)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.ledger.Pay(context.Background(), ledger.Payment{ID: id, Balance: big.NewInt(balance), Signature: sig, Scheme: scheme, Price: price})
	if err != nil || r.Outcome != ledger.Accepted {
		e.t.Fatalf("payment of %d: %v %v", balance, r.Outcome, err)
	}
}

func (e *env) channel(id rdn.ChannelID) *ledger.Channel {
	e.t.Helper()
	c, err := e.ledger.Channel(id)
	if err != nil || c == nil {
		e.t.Fatalf("channel %s: %v", id, err)
	}
	return c
}

func (e *env) tokenBalance(a common.Address) *big.Int {
	e.t.Helper()
	b, err := bind.Call(tokenABI.Instance(e.ec, e.token), nil, tokenABI.PackBalanceOf(a), tokenABI.UnpackBalanceOf)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) dispute(id rdn.ChannelID) *ledger.Dispute {
	e.t.Helper()
	all, err := e.ledger.Disputes()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range all {
		if d.Channel == id {
			return &d
		}
	}
	return nil
}

func TestConfirmationsAndTopUps(t *testing.T) {
	const n = 3
	e, c := newDevEnv(t, n)
	sender := c.Accounts()[1].Key
	id := e.openChannel(sender, 100)
	e.sync()
	if ch := e.channel(id); ch.Confirmed(e.ledger.ConfirmedHeight()) {
		t.Fatal("confirmed in its own block")
	}
	// A top-up of the unconfirmed channel.
	e.topUp(sender, id, 20)
	e.sync()
	if ch := e.channel(id); ch.Confirmed(e.ledger.ConfirmedHeight()) || ch.TotalDeposit().Int64() != 120 {
		t.Fatalf("after 1 block: confirmed %v, total deposit %s", ch.Confirmed(e.ledger.ConfirmedHeight()), ch.TotalDeposit())
	}
	e.mine(n - 1)
	e.sync()
	ch := e.channel(id)
	if !ch.Confirmed(e.ledger.ConfirmedHeight()) {
		t.Fatalf("not confirmed after %d blocks (confirmed height %d, open block %d)", n, e.ledger.ConfirmedHeight(), id.OpenBlock)
	}
	if got := ch.ConfirmedDeposit(e.ledger.ConfirmedHeight()); got.Int64() != 100 {
		t.Errorf("confirmed deposit %s, want 100 (the top-up is one block younger)", got)
	}
	e.mine(1)
	e.sync()
	if got := e.channel(id).ConfirmedDeposit(e.ledger.ConfirmedHeight()); got.Int64() != 120 {
		t.Errorf("confirmed deposit %s, want 120", got)
	}
	// A top-up of a confirmed channel counts once confirmed.
	block := e.topUp(sender, id, 30)
	e.sync()
	if got := e.channel(id).ConfirmedDeposit(e.ledger.ConfirmedHeight()); got.Int64() != 120 {
		t.Errorf("unconfirmed top-up counted: %s", got)
	}
	e.mine(n)
	e.sync()
	if got := e.channel(id).ConfirmedDeposit(e.ledger.ConfirmedHeight()); got.Int64() != 150 || e.ledger.ConfirmedHeight() < block {
		t.Errorf("confirmed deposit %s after the top-up's confirmations", got)
	}
	// Resume from the persisted cursor: nothing is applied twice.
	e.restart()
	e.sync()
	if got := e.channel(id).TotalDeposit(); got.Int64() != 150 {
		t.Errorf("deposit after a restart: %s", got)
	}
}

// A sender closes below what it signed; the watchtower answers at once with the highest proof
// and the receiver gets its full balance.
func TestWatchtowerAnswersACheatingClose(t *testing.T) {
	e, c := newDevEnv(t, 0)
	sender := c.Accounts()[1].Key
	id := e.openChannel(sender, 1000)
	e.sync()
	for _, b := range []int64{100, 250, 400} {
		e.pay(sender, id, b)
	}
	receiverBefore, senderBefore := e.tokenBalance(e.receiverAddr()), e.tokenBalance(id.Sender)

	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), id.OpenBlock, big.NewInt(10)))
	e.sync() // the close request: the watchtower sends the dispute
	d := e.dispute(id)
	if d == nil || d.Status != ledger.DisputeSent || d.Balance != "400" || len(d.Txs) != 1 {
		t.Fatalf("dispute: %+v", d)
	}
	if r, err := contracts.WaitMined(t.Context(), e.ec, common.HexToHash(d.Txs[0].Hash)); err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("dispute transaction: %+v, %v", r, err)
	}
	if err := e.tower.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if d := e.dispute(id); d.Status != ledger.DisputeDone || d.GasUsed == 0 {
		t.Errorf("dispute after mining: %+v", d)
	}
	if got := new(big.Int).Sub(e.tokenBalance(e.receiverAddr()), receiverBefore); got.Int64() != 400 {
		t.Errorf("receiver got %s tokens, want its full 400", got)
	}
	if got := new(big.Int).Sub(e.tokenBalance(id.Sender), senderBefore); got.Int64() != 600 {
		t.Errorf("sender got %s tokens back, want 600", got)
	}
	if ch := e.channel(id); ch.State != ledger.StateSettled {
		t.Errorf("channel state %v, want settled", ch.State)
	}
	if e.towerEvents[0] != "sent" || e.towerEvents[len(e.towerEvents)-1] != "mined" {
		t.Errorf("watchtower transactions: %v", e.towerEvents)
	}
	// A close at or above our balance needs no dispute.
	id2 := e.openChannel(sender, 100)
	e.sync()
	e.pay(sender, id2, 50)
	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), id2.OpenBlock, big.NewInt(50)))
	e.sync()
	if d := e.dispute(id2); d != nil {
		t.Errorf("disputed an honest close: %+v", d)
	}
}

// Without ETH for gas the dispute waits, payments stop (Healthy fails), a restart keeps it
// waiting, and it goes out as soon as the receiver is funded.
func TestDisputeWaitsForFundsAcrossARestart(t *testing.T) {
	e, c := newDevEnv(t, 0)
	sender, banker := c.Accounts()[1].Key, c.Accounts()[2].Key
	id := e.openChannel(sender, 1000)
	e.sync()
	e.pay(sender, id, 300)

	// Drain the receiver's ETH: what stays is far below a dispute's gas.
	e.transfer(e.receiver, crypto.PubkeyToAddress(banker.PublicKey), nil)

	receiverBefore := e.tokenBalance(e.receiverAddr())
	e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), id.OpenBlock, big.NewInt(1)))
	e.sync()
	if d := e.dispute(id); d == nil || d.Status != ledger.DisputeWaitingFunds {
		t.Fatalf("dispute without funds: %+v", d)
	}
	if err := e.tower.Healthy(); err == nil {
		t.Error("watchtower healthy while a dispute cannot be paid for")
	}

	e.restart()
	if d := e.dispute(id); d.Status != ledger.DisputeWaitingFunds {
		t.Fatalf("after restart: %+v", d)
	}
	if err := e.tower.Healthy(); err == nil {
		t.Error("watchtower healthy after a restart with an unfunded dispute")
	}

	e.transfer(banker, e.receiverAddr(), new(big.Int).Mul(big.NewInt(10), big.NewInt(params.Ether)))
	if err := e.tower.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	d := e.dispute(id)
	if d.Status != ledger.DisputeSent {
		t.Fatalf("after funding: %+v", d)
	}
	if err := e.tower.Healthy(); err != nil {
		t.Errorf("still unhealthy once funded: %v", err)
	}
	if _, err := contracts.WaitMined(t.Context(), e.ec, common.HexToHash(d.Txs[len(d.Txs)-1].Hash)); err != nil {
		t.Fatal(err)
	}
	if err := e.tower.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := e.dispute(id); d.Status != ledger.DisputeDone {
		t.Errorf("dispute: %+v", d)
	}
	if got := new(big.Int).Sub(e.tokenBalance(e.receiverAddr()), receiverBefore); got.Int64() != 300 {
		t.Errorf("receiver got %s tokens, want 300", got)
	}
}

// transfer sends ETH; a nil value sends everything the fee leaves.
func (e *env) transfer(from *ecdsa.PrivateKey, to common.Address, value *big.Int) {
	e.t.Helper()
	ctx := e.t.Context()
	addr := crypto.PubkeyToAddress(from.PublicKey)
	nonce, err := e.ec.PendingNonceAt(ctx, addr)
	if err != nil {
		e.t.Fatal(err)
	}
	head, err := e.ec.HeaderByNumber(ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	tip := big.NewInt(params.GWei)
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	if value == nil {
		bal, err := e.ec.BalanceAt(ctx, addr, nil)
		if err != nil {
			e.t.Fatal(err)
		}
		value = new(big.Int).Sub(bal, new(big.Int).Mul(feeCap, big.NewInt(21000)))
	}
	tx, err := types.SignNewTx(from, types.LatestSignerForChainID(e.chainID), &types.DynamicFeeTx{
		ChainID: e.chainID, Nonce: nonce, To: &to, Value: value, Gas: 21000, GasFeeCap: feeCap, GasTipCap: tip,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.ec.SendTransaction(ctx, tx); err != nil {
		e.t.Fatal(err)
	}
	if _, err := contracts.WaitMined(ctx, e.ec, tx.Hash()); err != nil {
		e.t.Fatal(err)
	}
}
