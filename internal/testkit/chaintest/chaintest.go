// Package chaintest builds what tests of the receiver's on-chain operations need, against a
// real local node (anvil): the contracts deployed, a funded receiver, senders with ETH and
// tokens, channels opened on chain, and a ledger holding the senders' signed payments.
package chaintest

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/dev/devtools"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

var (
	channelsABI = contracts.NewRaidenMicroTransferChannels()
	tokenABI    = contracts.NewUraidenTestToken()
)

// Env is anvil with the channel contract and a test token deployed (the deployer, anvil's
// account 0, holds the token supply) and a fresh receiver account funded with 10 ETH.
type Env struct {
	t        testing.TB
	Node     *devtools.AnvilNode
	Client   *ethclient.Client
	ChainID  *big.Int
	Deploy   chain.Deployment
	Deployer *ecdsa.PrivateKey
	Receiver *ecdsa.PrivateKey
}

// Start runs anvil for the test and deploys the contracts.
func Start(t testing.TB) *Env {
	t.Helper()
	node := devtools.StartAnvil(t)
	ec, err := ethclient.Dial(node.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ec.Close)
	deployer, _ := crypto.HexToECDSA(devtools.AnvilKey)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := chain.Deploy(ctx, ec, deployer, chain.DeployParams{ChallengePeriod: contracts.MinChallengePeriod,
		NewToken: chain.TokenParams{Name: "Test", Symbol: "TST", Decimals: 18, Supply: big.NewInt(1e18)}})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{t: t, Node: node, Client: ec, ChainID: big.NewInt(devtools.AnvilChainID), Deploy: d, Deployer: deployer}
	e.Receiver = e.NewAccount(Ether(10))
	return e
}

// Ether is n ETH in wei.
func Ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.Ether)) }

// ReceiverAddress is the receiver's account.
func (e *Env) ReceiverAddress() common.Address { return crypto.PubkeyToAddress(e.Receiver.PublicKey) }

// Identity is the identity of the receiver's ledger.
func (e *Env) Identity() ledger.Identity {
	return ledger.Identity{ChainID: devtools.AnvilChainID, Contract: e.Deploy.Channels, Receiver: e.ReceiverAddress()}
}

// NewAccount makes a new key whose account holds wei of ETH.
func (e *Env) NewAccount(wei *big.Int) *ecdsa.PrivateKey {
	e.t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		e.t.Fatal(err)
	}
	e.SetBalance(crypto.PubkeyToAddress(key.PublicKey), wei)
	return key
}

// SetBalance sets an account's ETH (anvil_setBalance).
func (e *Env) SetBalance(a common.Address, wei *big.Int) {
	e.t.Helper()
	e.RPC("anvil_setBalance", a, (*hexutil.Big)(wei))
}

// RPC calls a JSON-RPC method and fails the test on an error.
func (e *Env) RPC(method string, params ...any) {
	e.t.Helper()
	if err := e.Client.Client().CallContext(context.Background(), nil, method, params...); err != nil {
		e.t.Fatalf("%s: %v", method, err)
	}
}

// NewSender makes a sender with 1 ETH and tokens (base units) from the deployer.
func (e *Env) NewSender(tokens int64) *ecdsa.PrivateKey {
	e.t.Helper()
	key := e.NewAccount(Ether(1))
	e.Transact(e.Deployer, e.Deploy.Token, tokenABI.PackTransfer(crypto.PubkeyToAddress(key.PublicKey), big.NewInt(tokens)))
	return key
}

// Transact mines a successful transaction from key and returns its receipt.
func (e *Env) Transact(key *ecdsa.PrivateKey, to common.Address, data []byte) *types.Receipt {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := bind.NewKeyedTransactor(key, e.ChainID)
	opts.Context = ctx
	tx, err := bind.Transact(channelsABI.Instance(e.Client, to), opts, data)
	if err != nil {
		e.t.Fatalf("transaction: %v", err)
	}
	r, err := contracts.WaitMined(ctx, e.Client, tx.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		e.t.Fatalf("transaction %s failed: %v", tx.Hash(), err)
	}
	return r
}

// OpenChannel opens a channel from sender to the receiver (ERC223 transfer to the contract).
func (e *Env) OpenChannel(sender *ecdsa.PrivateKey, deposit int64) rdn.ChannelID {
	e.t.Helper()
	from := crypto.PubkeyToAddress(sender.PublicKey)
	data := append(from.Bytes(), e.ReceiverAddress().Bytes()...)
	r := e.Transact(sender, e.Deploy.Token, tokenABI.PackTransfer0(e.Deploy.Channels, big.NewInt(deposit), data))
	return rdn.ChannelID{Sender: from, OpenBlock: uint32(r.BlockNumber.Uint64())}
}

// Sign is the sender's balance proof for a channel of the receiver.
func (e *Env) Sign(sender *ecdsa.PrivateKey, id rdn.ChannelID, balance int64) rdn.Signature {
	e.t.Helper()
	sig, err := rdn.Balance{Receiver: e.ReceiverAddress(), OpenBlock: id.OpenBlock, Balance: big.NewInt(balance), Contract: e.Deploy.Channels}.Sign(sender)
	if err != nil {
		e.t.Fatal(err)
	}
	return sig
}

// TokenBalance is an account's token balance.
func (e *Env) TokenBalance(a common.Address) *big.Int {
	e.t.Helper()
	b, err := contracts.TokenBalance(context.Background(), e.Client, e.Deploy.Token, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// ChannelInfo reads a channel from the contract; ok is false when it holds none.
func (e *Env) ChannelInfo(id rdn.ChannelID) (info contracts.GetChannelInfoOutput, ok bool) {
	e.t.Helper()
	info, err := bind.Call(channelsABI.Instance(e.Client, e.Deploy.Channels), nil,
		channelsABI.PackGetChannelInfo(id.Sender, e.ReceiverAddress(), id.OpenBlock), channelsABI.UnpackGetChannelInfo)
	return info, err == nil
}

// OpenLedger opens (creating) the receiver's ledger in dir.
func (e *Env) OpenLedger(dir string) *ledger.Ledger {
	e.t.Helper()
	l, err := ledger.Open(ledger.Options{Dir: dir, Identity: e.Identity()})
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// Record tells the ledger of channels opened on chain, with deposits, as the watcher would,
// and confirms them.
func (e *Env) Record(l *ledger.Ledger, deposits map[rdn.ChannelID]int64) {
	e.t.Helper()
	head, err := e.Client.BlockNumber(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var events []ledger.Event
	for id, deposit := range deposits {
		events = append(events, ledger.Event{Kind: ledger.Created, Channel: id, Block: uint64(id.OpenBlock), Amount: big.NewInt(deposit)})
	}
	if err := l.Apply(context.Background(), ledger.Update{Events: events, Sync: ledger.SyncState{Cursor: head, Confirmed: head}}); err != nil {
		e.t.Fatal(err)
	}
}

// Pay records a payment up to balance with the given signature, as authz would after
// checking it (the ledger itself does not check signatures).
func (e *Env) Pay(l *ledger.Ledger, id rdn.ChannelID, balance int64, sig rdn.Signature) {
	e.t.Helper()
	c, err := l.Channel(id)
	if err != nil || c == nil {
		e.t.Fatalf("channel %s: %v", id, err)
	}
	price := new(big.Int).Sub(big.NewInt(balance), c.Balance)
	r, err := l.Pay(context.Background(), ledger.Payment{ID: id, Balance: big.NewInt(balance), Signature: sig, Price: price})
	if err != nil || r.Outcome != ledger.Accepted {
		e.t.Fatalf("payment of %d on %s: %v %v", balance, id, r.Outcome, err)
	}
}

// WriteReceiverKey writes the receiver's key as a hex key file (chmod 600) and returns its path.
func (e *Env) WriteReceiverKey() string {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), "receiver.key")
	if err := os.WriteFile(path, []byte(hexutil.Encode(crypto.FromECDSA(e.Receiver))+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}
