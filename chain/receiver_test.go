package chain_test

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/internal/testkit/chaintest"
	"github.com/uraiden/uraiden/keys"
	"github.com/uraiden/uraiden/rdn"
)

func newReceiver(e *chaintest.Env, maxFee *big.Int) *chain.Receiver {
	return chain.NewReceiver(chain.ReceiverConfig{Client: e.Client,
		Account: chain.Account{ChainID: e.ChainID, Contract: e.Deploy.Channels, Key: keys.NewSecret(e.Receiver), MaxFeeCap: maxFee}})
}

func closeClaim(t *testing.T, e *chaintest.Env, r *chain.Receiver, sender *ecdsa.PrivateKey, id rdn.ChannelID, balance int64) chain.Claim {
	t.Helper()
	closing, err := r.SignClose(id, big.NewInt(balance), rdn.SchemeLegacy)
	if err != nil {
		t.Fatal(err)
	}
	return chain.Claim{Channel: id, Balance: big.NewInt(balance), BalanceSignature: e.Sign(sender, id, balance), ClosingSignature: closing}
}

// Withdraw then close against anvil: the tokens each receipt reports are what moved, and the
// fees reported are exactly the ETH the receiver spent.
func TestReceiverWithdrawThenCooperativeClose(t *testing.T) {
	e := chaintest.Start(t)
	r := newReceiver(e, nil)
	alice, bob := e.NewSender(2000), e.NewSender(2000)
	a, b := e.OpenChannel(alice, 1000), e.OpenChannel(bob, 500)
	receiver := e.ReceiverAddress()
	ethBefore, _ := e.Client.BalanceAt(t.Context(), receiver, nil)

	res := r.Withdraw(t.Context(), []chain.Claim{{Channel: a, Balance: big.NewInt(400), BalanceSignature: e.Sign(alice, a, 400)}})
	if res[0].Err != nil || res[0].Tokens.Int64() != 400 || res[0].GasUsed == 0 || res[0].Fee.Sign() <= 0 || res[0].Tx == (common.Hash{}) {
		t.Fatalf("withdraw: %+v", res[0])
	}
	if got := e.TokenBalance(receiver); got.Int64() != 400 {
		t.Errorf("receiver holds %s tokens after the withdrawal, want 400", got)
	}
	if info, ok := e.ChannelInfo(a); !ok || info.Arg4.Int64() != 400 {
		t.Errorf("withdrawn on chain: %v %v", info.Arg4, ok)
	}
	fees := new(big.Int).Set(res[0].Fee)

	// The same proof again would revert: it is not sent, and costs nothing.
	again := r.Withdraw(t.Context(), []chain.Claim{{Channel: a, Balance: big.NewInt(400), BalanceSignature: e.Sign(alice, a, 400)}})
	if !errors.Is(again[0].Err, chain.ErrReverted) || again[0].Tx != (common.Hash{}) || again[0].Fee.Sign() != 0 {
		t.Errorf("withdrawing twice: %+v", again[0])
	}

	// One batch: alice at 450 (50 left after the withdrawal), a claim without a closing
	// signature, one whose closing signature is not the receiver's, and bob at 120.
	forged := closeClaim(t, e, r, alice, a, 450)
	forged.ClosingSignature, _ = rdn.Closing{Sender: a.Sender, OpenBlock: a.OpenBlock, Balance: big.NewInt(450), Contract: e.Deploy.Channels}.Sign(alice)
	unsigned := closeClaim(t, e, r, alice, a, 450)
	unsigned.ClosingSignature = rdn.Signature{}
	claims := []chain.Claim{unsigned, forged, closeClaim(t, e, r, alice, a, 450), closeClaim(t, e, r, bob, b, 120)}
	aliceBefore, bobBefore := e.TokenBalance(a.Sender), e.TokenBalance(b.Sender)
	res = r.CooperativeClose(t.Context(), claims)
	if res[0].Err == nil || res[0].Tx != (common.Hash{}) {
		t.Errorf("claim without a closing signature: %+v", res[0])
	}
	if !errors.Is(res[1].Err, chain.ErrReverted) || res[1].Tx != (common.Hash{}) {
		t.Errorf("claim with the sender's closing signature: %+v", res[1])
	}
	for i, want := range map[int]int64{2: 50, 3: 120} {
		if res[i].Err != nil || res[i].Tokens.Int64() != want || res[i].GasUsed == 0 || res[i].Block == 0 {
			t.Errorf("close %d: %+v, want %d tokens", i, res[i], want)
		}
		fees.Add(fees, res[i].Fee)
	}
	if got := e.TokenBalance(receiver); got.Int64() != 400+50+120 {
		t.Errorf("receiver holds %s tokens, want 570", got)
	}
	if got := new(big.Int).Sub(e.TokenBalance(a.Sender), aliceBefore); got.Int64() != 550 {
		t.Errorf("alice got %s back, want 550", got)
	}
	if got := new(big.Int).Sub(e.TokenBalance(b.Sender), bobBefore); got.Int64() != 380 {
		t.Errorf("bob got %s back, want 380", got)
	}
	for _, id := range []rdn.ChannelID{a, b} {
		if _, ok := e.ChannelInfo(id); ok {
			t.Errorf("channel %s still on chain", id)
		}
	}
	ethAfter, _ := e.Client.BalanceAt(t.Context(), receiver, nil)
	if spent := new(big.Int).Sub(ethBefore, ethAfter); spent.Cmp(fees) != 0 {
		t.Errorf("the receiver spent %s wei, the results report %s", spent, fees)
	}
}

// A batch goes out before any of it is mined. Here another account front-runs the first
// close with a higher tip (anyone may submit cooperativeClose): the receiver's transaction
// reverts on chain and is reported with the gas it burnt, the other close still pays, and
// the fee cap holds.
func TestReceiverReportsARevertOnChain(t *testing.T) {
	e := chaintest.Start(t)
	feeCap := big.NewInt(params.GWei)
	r := newReceiver(e, feeCap)
	alice, bob := e.NewSender(1000), e.NewSender(1000)
	a, b := e.OpenChannel(alice, 1000), e.OpenChannel(bob, 1000)
	// The cap must bind: below twice the base fee plus anvil's 1 gwei tip.
	if head, err := e.Client.HeaderByNumber(t.Context(), nil); err != nil || head.BaseFee.Cmp(feeCap) >= 0 {
		t.Fatalf("base fee %v not below the 1 gwei cap: %v", head.BaseFee, err)
	}
	claims := []chain.Claim{closeClaim(t, e, r, alice, a, 300), closeClaim(t, e, r, bob, b, 200)}
	e.RPC("evm_setAutomine", false)
	done := make(chan []chain.Result, 1)
	go func() { done <- r.CooperativeClose(t.Context(), claims) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n, err := e.Client.PendingNonceAt(t.Context(), e.ReceiverAddress()); err == nil && n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch was not sent")
		}
		time.Sleep(20 * time.Millisecond)
	}
	opts := bind.NewKeyedTransactor(e.Deployer, e.ChainID)
	opts.GasTipCap, opts.GasFeeCap, opts.GasLimit = big.NewInt(100*params.GWei), big.NewInt(200*params.GWei), 200_000
	c := claims[0]
	front := channelsABI.PackCooperativeClose(e.ReceiverAddress(), a.OpenBlock, c.Balance, c.BalanceSignature[:], c.ClosingSignature[:])
	if _, err := bind.Transact(channelsABI.Instance(e.Client, e.Deploy.Channels), opts, front); err != nil {
		t.Fatal(err)
	}
	e.RPC("evm_mine")
	res := <-done

	if !errors.Is(res[0].Err, chain.ErrReverted) || res[0].Tx == (common.Hash{}) || res[0].GasUsed == 0 || res[0].Fee.Sign() <= 0 || res[0].Tokens.Sign() != 0 {
		t.Errorf("the front-run close: %+v", res[0])
	}
	if res[1].Err != nil || res[1].Tokens.Int64() != 200 || res[1].Block != res[0].Block {
		t.Errorf("the other close: %+v (first in block %d)", res[1], res[0].Block)
	}
	for _, x := range res {
		tx, _, err := e.Client.TransactionByHash(t.Context(), x.Tx)
		if err != nil {
			t.Fatal(err)
		}
		if tx.GasFeeCap().Cmp(feeCap) != 0 || tx.GasTipCap().Cmp(tx.GasFeeCap()) > 0 {
			t.Errorf("transaction %s: fee cap %v, tip %v, cap %v", x.Tx, tx.GasFeeCap(), tx.GasTipCap(), feeCap)
		}
	}
	// The front-runner paid the receiver all the same.
	if got := e.TokenBalance(e.ReceiverAddress()); got.Int64() != 500 {
		t.Errorf("receiver holds %s tokens, want 500", got)
	}
}

// A fee cap below the base fee sends nothing: no transaction could be mined.
func TestReceiverRefusesAFeeCapBelowTheBaseFee(t *testing.T) {
	e := chaintest.Start(t)
	r := newReceiver(e, big.NewInt(1))
	alice := e.NewSender(1000)
	a := e.OpenChannel(alice, 1000)
	res := r.Withdraw(t.Context(), []chain.Claim{{Channel: a, Balance: big.NewInt(10), BalanceSignature: e.Sign(alice, a, 10)}})
	if !errors.Is(res[0].Err, chain.ErrFeeAboveCap) || res[0].Tx != (common.Hash{}) {
		t.Errorf("withdraw under a 1 wei cap: %+v", res[0])
	}
	if n, _ := e.Client.NonceAt(t.Context(), crypto.PubkeyToAddress(e.Receiver.PublicKey), nil); n != 0 {
		t.Errorf("the receiver sent %d transactions", n)
	}
}

func TestReceiverChannelInfo(t *testing.T) {
	e := chaintest.Start(t)
	r := newReceiver(e, nil)
	alice := e.NewSender(1000)
	a := e.OpenChannel(alice, 700)
	info, err := r.ChannelInfo(t.Context(), a)
	if err != nil || !info.Exists || info.Deposit.Int64() != 700 || info.Withdrawn.Sign() != 0 || info.SettleBlock != 0 {
		t.Errorf("open channel: %+v %v", info, err)
	}
	info, err = r.ChannelInfo(t.Context(), rdn.ChannelID{Sender: a.Sender, OpenBlock: a.OpenBlock + 1})
	if err != nil || info.Exists {
		t.Errorf("no such channel: %+v %v", info, err)
	}
}
