package chain_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/testkit/chaintest"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// deployWithoutDomain deploys the channel contract with eip712Domain() cut from its
// dispatcher (its selector's comparison made to match nothing): a µRaiden 0.2.0 contract as
// far as ProofSchemes can tell, since the call falls through to the revert at the
// dispatcher's end, while every µRaiden function still works.
func deployWithoutDomain(t *testing.T, e *env) common.Address {
	t.Helper()
	selector := channelsABI.GetABI().Methods["eip712Domain"].ID
	code := slices.Clone(contracts.ChannelsArtifact.Bytecode)
	match := append([]byte{0x63}, selector...) // PUSH4 <selector>
	if n := bytes.Count(code, match); n != 1 {
		t.Fatalf("eip712Domain's selector is pushed %d times in the creation code, want once (the dispatcher's comparison)", n)
	}
	i := bytes.Index(code, match)
	copy(code[i+1:], []byte{0xff, 0xff, 0xff, 0xff})
	opts := bind.NewKeyedTransactor(e.receiver, e.chainID)
	opts.Context = t.Context()
	addr, tx, err := bind.DeployContract(opts, code, e.ec, channelsABI.PackConstructor(e.token, contracts.MinChallengePeriod, nil))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := contracts.WaitMined(t.Context(), e.ec, tx.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("deploy the contract without eip712Domain: %v", err)
	}
	return addr
}

// domainCaller answers eip712Domain() with a domain the test chooses, for the domains no
// contract of the repository answers with.
type domainCaller contracts.Eip712DomainOutput

func (d domainCaller) CallContract(context.Context, ethereum.CallMsg, *big.Int) ([]byte, error) {
	return channelsABI.GetABI().Methods["eip712Domain"].Outputs.Pack(d.Fields, d.Name, d.Version, d.ChainId,
		d.VerifyingContract, d.Salt, d.Extensions)
}

func TestProofSchemes(t *testing.T) {
	e, _ := newDevEnv(t, 0)
	ctx := t.Context()
	typed := []rdn.Scheme{rdn.SchemeTyped, rdn.SchemeLegacy}
	legacy := []rdn.Scheme{rdn.SchemeLegacy}

	if got, err := chain.ProofSchemes(ctx, e.ec, e.channels, e.chainID.Uint64()); err != nil || !slices.Equal(got, typed) {
		t.Errorf("uraiden's contract: %v, %v; want %v", got, err, typed)
	}

	without := deployWithoutDomain(t, e)
	if c, err := contracts.VerifyContract(ctx, e.ec, without); err != nil || c.Token != e.token {
		t.Fatalf("the contract without eip712Domain is not a µRaiden contract: %+v, %v", c, err)
	}
	if _, err := e.ec.CallContract(ctx, ethereum.CallMsg{To: &without, Data: channelsABI.PackEip712Domain()}, nil); err == nil {
		t.Fatal("eip712Domain() still answers on the contract without it")
	}
	for name, addr := range map[string]common.Address{
		"a channel contract without eip712Domain (reverts)": without,
		"the token, without it nor a fallback (reverts)":    e.token,
		"an address without code (no data)":                 {0x12, 0x34},
	} {
		if got, err := chain.ProofSchemes(ctx, e.ec, addr, e.chainID.Uint64()); err != nil || !slices.Equal(got, legacy) {
			t.Errorf("%s: %v, %v; want %v", name, got, err, legacy)
		}
	}

	// The node's chain id is not the domain's: another chain's node, or a fork.
	_, err := chain.ProofSchemes(ctx, e.ec, e.channels, e.chainID.Uint64()+1)
	if !errors.Is(err, chain.ErrForeignDomain) || !strings.Contains(err.Error(), "chain id 1337, want the node's 1338") {
		t.Errorf("another chain id: %v", err)
	}

	ours := domainCaller{Fields: [1]byte{0x0f}, Name: rdn.DomainName, Version: rdn.DomainVersion, ChainId: big.NewInt(1337),
		VerifyingContract: e.channels, Extensions: []*big.Int{}}
	if got, err := chain.ProofSchemes(ctx, ours, e.channels, 1337); err != nil || !slices.Equal(got, typed) {
		t.Fatalf("the fake's domain, ours: %v, %v", got, err)
	}
	foreign := ours
	foreign.Fields, foreign.Name, foreign.Version, foreign.VerifyingContract = [1]byte{0x1f}, "Permit2", "2", common.Address{0xaa}
	_, err = chain.ProofSchemes(ctx, foreign, e.channels, 1337)
	for _, want := range []string{"fields 0x1f, want 0x0f", `name "Permit2", want "uraiden"`, `version "2", want "1"`,
		"verifying contract " + common.Address{0xaa}.Hex() + ", want " + e.channels.Hex()} {
		if !errors.Is(err, chain.ErrForeignDomain) || !strings.Contains(err.Error(), want) {
			t.Errorf("a foreign domain: %v; want it to say %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "chain id") {
		t.Errorf("a foreign domain on the right chain: %v names the chain id", err)
	}

	// A node that does not answer is an error, never a verdict on the contract.
	dead, err := ethclient.Dial("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if got, err := chain.ProofSchemes(short, dead, e.channels, 1337); err == nil || errors.Is(err, chain.ErrForeignDomain) {
		t.Errorf("a node that does not answer: %v, %v", got, err)
	}
}

// selectorOf is the contract function a transaction called.
func selectorOf(t *testing.T, ec *ethclient.Client, hash common.Hash) string {
	t.Helper()
	tx, _, err := ec.TransactionByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("transaction %s: %v", hash, err)
	}
	parsed := channelsABI.GetABI()
	m, err := parsed.MethodById(tx.Data())
	if err != nil {
		t.Fatalf("transaction %s: %v", hash, err)
	}
	return m.Name
}

// A cheating close answered with the ledger's highest proof, through the function of that
// proof's scheme: a typed one through cooperativeCloseTyped with a typed closing signature,
// and, on a channel whose typed proofs were overtaken by a legacy one, cooperativeClose. Each
// settles at the proof's balance.
func TestWatchtowerDisputesWithTheStoredProofsScheme(t *testing.T) {
	e, c := newDevEnv(t, 0)
	sender := c.Accounts()[1].Key
	typed := e.openChannel(sender, 1000)
	e.mine(1) // gas estimation runs at the head's number, where the last channel already is
	legacy := e.openChannel(sender, 1000)
	e.sync()
	e.payIn(rdn.SchemeLegacy, sender, typed, 100)
	e.payIn(rdn.SchemeTyped, sender, typed, 250)
	e.payIn(rdn.SchemeTyped, sender, typed, 400)
	e.payIn(rdn.SchemeTyped, sender, legacy, 100)
	e.payIn(rdn.SchemeLegacy, sender, legacy, 300)

	for _, tc := range []struct {
		id       rdn.ChannelID
		balance  int64
		function string
	}{{typed, 400, "cooperativeCloseTyped"}, {legacy, 300, "cooperativeClose"}} {
		receiverBefore, senderBefore := e.tokenBalance(e.receiverAddr()), e.tokenBalance(tc.id.Sender)
		e.send(sender, e.channels, channelsABI.PackUncooperativeClose(e.receiverAddr(), tc.id.OpenBlock, big.NewInt(10)))
		e.sync()
		d := e.dispute(tc.id)
		if d == nil || d.Status != ledger.DisputeSent || d.Balance != big.NewInt(tc.balance).String() || len(d.Txs) != 1 {
			t.Fatalf("dispute: %+v", d)
		}
		hash := common.HexToHash(d.Txs[0].Hash)
		if r, err := contracts.WaitMined(t.Context(), e.ec, hash); err != nil || r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("dispute transaction: %+v, %v", r, err)
		}
		if got := selectorOf(t, e.ec, hash); got != tc.function {
			t.Errorf("the dispute of a proof of balance %d called %s, want %s", tc.balance, got, tc.function)
		}
		if err := e.tower.Tick(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.sync()
		if d := e.dispute(tc.id); d.Status != ledger.DisputeDone || d.MinedTx != d.Txs[0].Hash {
			t.Errorf("dispute after mining: %+v", d)
		}
		if got := new(big.Int).Sub(e.tokenBalance(e.receiverAddr()), receiverBefore); got.Int64() != tc.balance {
			t.Errorf("receiver got %s tokens, want its %d", got, tc.balance)
		}
		if got := new(big.Int).Sub(e.tokenBalance(tc.id.Sender), senderBefore); got.Int64() != 1000-tc.balance {
			t.Errorf("sender got %s tokens back, want %d", got, 1000-tc.balance)
		}
		if ch := e.channel(tc.id); ch.State != ledger.StateSettled {
			t.Errorf("channel state %v, want settled", ch.State)
		}
	}
}

// The receiver's batches with typed claims: withdrawTyped and cooperativeCloseTyped, beside a
// legacy channel's withdraw and cooperativeClose in the same batches, each paying what its
// proof says. The close is signed through the ledger in the proof's scheme. A claim whose
// scheme is not its signature's would revert, and is not sent.
func TestReceiverTypedClaims(t *testing.T) {
	e := chaintest.Start(t)
	r := newReceiver(e, nil)
	alice, bob := e.NewSender(2000), e.NewSender(2000)
	a, b := e.OpenChannel(alice, 1000), e.OpenChannel(bob, 1000)
	receiver := e.ReceiverAddress()
	l := e.OpenLedger(t.TempDir())
	defer l.Close()
	e.Record(l, map[rdn.ChannelID]int64{a: 1000, b: 1000})
	sign := func(key *ecdsa.PrivateKey, id rdn.ChannelID, balance int64, scheme rdn.Scheme) rdn.Signature {
		t.Helper()
		sig, err := rdn.Balance{Receiver: receiver, OpenBlock: id.OpenBlock, Balance: big.NewInt(balance), Contract: e.Deploy.Channels,
			Scheme: scheme, ChainID: e.ChainID.Uint64()}.Sign(key)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	pay := func(key *ecdsa.PrivateKey, id rdn.ChannelID, balance int64, scheme rdn.Scheme) {
		t.Helper()
		c, err := l.Channel(id)
		if err != nil || c == nil {
			t.Fatalf("channel %s: %v", id, err)
		}
		res, err := l.Pay(t.Context(), ledger.Payment{ID: id, Balance: big.NewInt(balance), Signature: sign(key, id, balance, scheme),
			Scheme: scheme, Price: new(big.Int).Sub(big.NewInt(balance), c.Balance)})
		if err != nil || res.Outcome != ledger.Accepted {
			t.Fatalf("payment of %d on %s: %v %v", balance, id, res.Outcome, err)
		}
	}
	pay(alice, a, 300, rdn.SchemeTyped)
	pay(bob, b, 200, rdn.SchemeLegacy)

	// A typed claim signed as legacy, and the other way round: each would revert.
	mixed := r.Withdraw(t.Context(), []chain.Claim{
		{Channel: a, Balance: big.NewInt(300), BalanceSignature: sign(alice, a, 300, rdn.SchemeLegacy), Scheme: rdn.SchemeTyped},
		{Channel: b, Balance: big.NewInt(200), BalanceSignature: sign(bob, b, 200, rdn.SchemeTyped), Scheme: rdn.SchemeLegacy},
	})
	for i, res := range mixed {
		if !errors.Is(res.Err, chain.ErrReverted) || res.Tx != (common.Hash{}) {
			t.Errorf("claim %d in the other scheme than its signature's: %+v", i, res)
		}
	}

	plan, err := chain.PlanWithdraw(t.Context(), l, r, big.NewInt(1))
	if err != nil || len(plan.Todo) != 2 {
		t.Fatalf("withdraw plan: %+v, %v", plan, err)
	}
	claims := []chain.Claim{plan.Todo[0].Claim(), plan.Todo[1].Claim()}
	want := map[rdn.ChannelID]struct {
		tokens   int64
		function string
	}{a: {300, "withdrawTyped"}, b: {200, "withdraw"}}
	for _, res := range r.Withdraw(t.Context(), claims) {
		w := want[res.Claim.Channel]
		if res.Err != nil || res.Tokens.Int64() != w.tokens || res.Function != w.function || selectorOf(t, e.Client, res.Tx) != w.function {
			t.Errorf("withdraw of %s: %+v, want %d tokens by %s", res.Claim.Channel, res, w.tokens, w.function)
		}
	}
	if got := e.TokenBalance(receiver); got.Int64() != 500 {
		t.Errorf("receiver holds %s tokens after the withdrawals, want 500", got)
	}

	// More payments, then close all: alice's last proof typed, bob's legacy.
	pay(alice, a, 700, rdn.SchemeTyped)
	pay(bob, b, 450, rdn.SchemeLegacy)
	plan, err = chain.PlanClose(t.Context(), l, r)
	if err != nil || len(plan.Todo) != 2 {
		t.Fatalf("close plan: %+v, %v", plan, err)
	}
	claims, failed := r.SignCloses(t.Context(), l, plan.Todo)
	if len(failed) != 0 || len(claims) != 2 {
		t.Fatalf("signing the closes: %+v, %+v", claims, failed)
	}
	for _, c := range claims {
		ch, err := l.Channel(c.Channel)
		if err != nil || ch.ClosingScheme != ch.Scheme || ch.ClosingSignature != c.ClosingSignature || c.Scheme != ch.Scheme {
			t.Fatalf("ledger after signing the close of %s: %+v, %v", c.Channel, ch, err)
		}
		signer, err := rdn.Closing{Sender: c.Channel.Sender, OpenBlock: c.Channel.OpenBlock, Balance: c.Balance, Contract: e.Deploy.Channels,
			Scheme: c.Scheme, ChainID: e.ChainID.Uint64()}.Signer(c.ClosingSignature[:])
		if err != nil || signer != receiver {
			t.Errorf("the closing signature of %s does not recover to the receiver in %s: %v, %v", c.Channel, c.Scheme, signer, err)
		}
	}
	want = map[rdn.ChannelID]struct {
		tokens   int64
		function string
	}{a: {400, "cooperativeCloseTyped"}, b: {250, "cooperativeClose"}}
	for _, res := range r.CooperativeClose(t.Context(), claims) {
		w := want[res.Claim.Channel]
		if res.Err != nil || res.Tokens.Int64() != w.tokens || res.Function != w.function || selectorOf(t, e.Client, res.Tx) != w.function {
			t.Errorf("close of %s: %+v, want %d tokens by %s", res.Claim.Channel, res, w.tokens, w.function)
		}
	}
	if got := e.TokenBalance(receiver); got.Int64() != 700+450 {
		t.Errorf("receiver holds %s tokens, want 1150", got)
	}
	for _, id := range []rdn.ChannelID{a, b} {
		if _, ok := e.ChannelInfo(id); ok {
			t.Errorf("channel %s still on chain", id)
		}
	}
}
