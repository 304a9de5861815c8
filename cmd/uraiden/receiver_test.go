package main

import (
	"crypto/ecdsa"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/dev/devtools"
	"github.com/uraiden/uraiden/internal/testkit/chaintest"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// receiverEnv is anvil with the contracts, and the configuration of the receiver's commands
// pointing at it (URAIDEN_* variables) with a ledger directory.
func receiverEnv(t *testing.T) (*chaintest.Env, string) {
	t.Helper()
	e := chaintest.Start(t)
	dir := t.TempDir()
	t.Setenv("URAIDEN_CHAIN_RPC_URL", e.Node.HTTP)
	t.Setenv("URAIDEN_CHAIN_CHAIN_ID", strconv.Itoa(devtools.AnvilChainID))
	t.Setenv("URAIDEN_CHAIN_CONTRACT_ADDRESS", e.Deploy.Channels.Hex())
	t.Setenv("URAIDEN_RECEIVER_KEY_FILE", e.WriteReceiverKey())
	t.Setenv("URAIDEN_LEDGER_DIR", dir)
	return e, dir
}

// paidChannel opens a channel on chain and, in the ledger, pays it up to balance (0: no
// payment) with the sender's proof.
type paidChannel struct {
	sender  *ecdsa.PrivateKey
	id      rdn.ChannelID
	deposit int64
	balance int64
}

func openPaid(t *testing.T, e *chaintest.Env, l *ledger.Ledger, deposits, balances []int64) []paidChannel {
	t.Helper()
	chs := make([]paidChannel, len(deposits))
	created := map[rdn.ChannelID]int64{}
	for i, d := range deposits {
		s := e.NewSender(d)
		chs[i] = paidChannel{sender: s, id: e.OpenChannel(s, d), deposit: d, balance: balances[i]}
		created[chs[i].id] = d
	}
	e.Record(l, created)
	for _, c := range chs {
		if c.balance > 0 {
			e.Pay(l, c.id, c.balance, e.Sign(c.sender, c.id, c.balance))
		}
	}
	return chs
}

func (e *receiverTest) ethSpentSince(before *big.Int) *big.Int {
	e.t.Helper()
	now, err := e.Client.BalanceAt(e.t.Context(), e.ReceiverAddress(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return new(big.Int).Sub(before, now)
}

type receiverTest struct {
	*chaintest.Env
	t   *testing.T
	dir string
}

func (e *receiverTest) eth() *big.Int {
	e.t.Helper()
	b, err := e.Client.BalanceAt(e.t.Context(), e.ReceiverAddress(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *receiverTest) nonce() uint64 {
	e.t.Helper()
	n, err := e.Client.NonceAt(e.t.Context(), e.ReceiverAddress(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *receiverTest) channel(id rdn.ChannelID) *ledger.Channel {
	e.t.Helper()
	l := e.OpenLedger(e.dir)
	defer l.Close()
	c, err := l.Channel(id)
	if err != nil || c == nil {
		e.t.Fatalf("channel %s: %v", id, err)
	}
	return c
}

var totalRe = regexp.MustCompile(`(?m)^total: (\d+) channels (?:closed|withdrawn from), (\d+) failed, (\d+) skipped; (?:recovered|received) (\d+) tokens; gas (\d+) = ([0-9.]+) ETH$`)

// total parses the total line: done, failed, skipped, tokens, gas and the ETH spent.
func total(t *testing.T, out string) (done, failed, skipped, tokens, gas int64, eth string) {
	t.Helper()
	m := totalRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no total line:\n%s", out)
	}
	n := make([]int64, 5)
	for i := range n {
		n[i], _ = strconv.ParseInt(m[i+1], 10, 64)
	}
	return n[0], n[1], n[2], n[3], n[4], m[6]
}

// `uraiden close-all` against anvil: channels with a payment are closed at their
// proofs, one without is skipped, a bogus proof fails alone, a channel already settled is
// skipped; the report's tokens and gas are what moved on chain.
func TestCloseAllCommand(t *testing.T) {
	env, dir := receiverEnv(t)
	e := &receiverTest{Env: env, t: t, dir: dir}
	l := e.OpenLedger(dir)
	// alice and bob paid, carol did not, dave's ledger proof is not his signature, eve's
	// channel is closed on chain behind the ledger's back.
	chs := openPaid(t, e.Env, l, []int64{1000, 500, 300, 200, 100}, []int64{400, 120, 0, 0, 30})
	alice, bob, carol, dave, eve := chs[0], chs[1], chs[2], chs[3], chs[4]
	e.Pay(l, dave.id, 50, e.Sign(e.NewAccount(big.NewInt(0)), dave.id, 50))
	eveClose, _ := rdn.Closing{Sender: eve.id.Sender, OpenBlock: eve.id.OpenBlock, Balance: big.NewInt(30), Contract: e.Deploy.Channels}.Sign(e.Receiver)
	eveProof := e.Sign(eve.sender, eve.id, 30)
	e.Transact(e.Deployer, e.Deploy.Channels, contracts.NewRaidenMicroTransferChannels().PackCooperativeClose(e.ReceiverAddress(), eve.id.OpenBlock, big.NewInt(30), eveProof[:], eveClose[:]))

	// While the ledger is open (the server running), the command refuses clearly.
	out, err := run(t.Context(), "close-all")
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), "stop 'uraiden serve' first") {
		t.Errorf("close-all with the ledger in use: %v\n%s", err, out)
	}
	l.Close()

	tokensBefore := map[common.Address]*big.Int{}
	for _, c := range append(chs, paidChannel{id: rdn.ChannelID{Sender: e.ReceiverAddress()}}) {
		tokensBefore[c.id.Sender] = e.TokenBalance(c.id.Sender)
	}
	ethBefore := e.eth()

	out, err = run(t.Context(), "close-all", "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"would close " + alice.id.String() + " at balance 400: 400 tokens",
		"would close " + bob.id.String() + " at balance 120: 120 tokens",
		"would close " + dave.id.String() + " at balance 50: 50 tokens",
		"skipped " + carol.id.String() + ": no payment (balance 0)",
		"skipped " + eve.id.String() + ": not on chain",
		"dry run: would close 3 channels for 570 tokens; nothing sent",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if n := e.nonce(); n != 0 {
		t.Errorf("the dry run sent %d transactions", n)
	}
	if c := e.channel(alice.id); c.State != ledger.StateOpen || c.CloseSigned() {
		t.Errorf("the dry run changed the ledger: %v, close signed %v", c.State, c.CloseSigned())
	}

	// A cap that binds (the base fee is far below 1 gwei by now, anvil's tip is 1 gwei).
	out, err = run(t.Context(), "close-all", "--max-fee-gwei", "1")
	if err == nil || !strings.Contains(err.Error(), "1 of 3 channels failed") {
		t.Errorf("close-all with a failing channel: err = %v", err)
	}
	closedRe := regexp.MustCompile(`(?m)^closed (\S+) at balance (\d+): recovered (\d+) tokens, gas (\d+) = [0-9.]+ ETH, tx (0x[0-9a-f]{64})`)
	closed := map[string][]string{}
	for _, m := range closedRe.FindAllStringSubmatch(out, -1) {
		closed[m[1]] = m[2:]
	}
	for _, c := range []paidChannel{alice, bob} {
		m := closed[c.id.String()]
		if m == nil || m[0] != strconv.FormatInt(c.balance, 10) || m[1] != strconv.FormatInt(c.balance, 10) || m[2] == "0" {
			t.Errorf("%s not reported closed at %d with gas:\n%s", c.id, c.balance, out)
			continue
		}
		tx, _, err := e.Client.TransactionByHash(t.Context(), common.HexToHash(m[3]))
		if err != nil || tx.GasFeeCap().Cmp(big.NewInt(params.GWei)) != 0 {
			t.Errorf("transaction %s: %v, fee cap %v, want --max-fee-gwei 1", m[3], err, tx.GasFeeCap())
		}
	}
	if !strings.Contains(out, "FAILED "+dave.id.String()+" at balance 50: transaction reverted") || len(closed) != 2 {
		t.Errorf("dave's bogus proof not reported as the one failure:\n%s", out)
	}
	done, failed, skipped, tokens, gas, eth := total(t, out)
	if done != 2 || failed != 1 || skipped != 2 || tokens != 520 || gas <= 0 {
		t.Errorf("total: %d closed, %d failed, %d skipped, %d tokens, gas %d\n%s", done, failed, skipped, tokens, gas, out)
	}
	if spent := formatUnits(e.ethSpentSince(ethBefore), 18); eth != spent {
		t.Errorf("reported %s ETH of gas, the receiver spent %s", eth, spent)
	}

	// On chain: the receiver got the proofs' balances, each sender the rest of its deposit.
	gained := func(a common.Address) int64 { return new(big.Int).Sub(e.TokenBalance(a), tokensBefore[a]).Int64() }
	if got := gained(e.ReceiverAddress()); got != 520 {
		t.Errorf("the receiver gained %d tokens, want 520", got)
	}
	for _, c := range []paidChannel{alice, bob} {
		if got := gained(c.id.Sender); got != c.deposit-c.balance {
			t.Errorf("sender of %s got %d back, want %d", c.id, got, c.deposit-c.balance)
		}
		if _, ok := e.ChannelInfo(c.id); ok {
			t.Errorf("%s is still on chain", c.id)
		}
	}
	if _, ok := e.ChannelInfo(carol.id); !ok || gained(carol.id.Sender) != 0 || gained(dave.id.Sender) != 0 {
		t.Error("carol's channel without payment, or dave's, was touched")
	}
	// The ledger recorded the closes, so the channels take no more payments.
	for _, c := range []paidChannel{alice, bob} {
		if ch := e.channel(c.id); ch.State != ledger.StateClosing || !ch.CloseSigned() {
			t.Errorf("%s in the ledger: %v, close signed %v", c.id, ch.State, ch.CloseSigned())
		}
	}
	if ch := e.channel(carol.id); ch.State != ledger.StateOpen {
		t.Errorf("carol's channel is %v", ch.State)
	}
}

// `uraiden withdraw --min N`: only channels with at least N unwithdrawn (as the contract
// counts it) are paid out; the channels stay open.
func TestWithdrawCommand(t *testing.T) {
	env, dir := receiverEnv(t)
	e := &receiverTest{Env: env, t: t, dir: dir}
	l := e.OpenLedger(dir)
	chs := openPaid(t, e.Env, l, []int64{1000, 500, 300}, []int64{400, 50, 0})
	alice, bob, carol := chs[0], chs[1], chs[2]
	l.Close()
	receiver := e.ReceiverAddress()

	out, err := run(t.Context(), "withdraw", "--min", "100", "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"would withdraw from " + alice.id.String() + " at balance 400: 400 tokens",
		"skipped " + bob.id.String() + ": balance 50 below --min 100",
		"skipped " + carol.id.String() + ": balance 0 below --min 100",
		"dry run: would withdraw from 1 channels for 400 tokens; nothing sent",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if n := e.nonce(); n != 0 {
		t.Errorf("the dry run sent %d transactions", n)
	}

	// A cap below the base fee: nothing can be mined, so nothing is sent.
	out, err = run(t.Context(), "withdraw", "--min", "100", "--max-fee-gwei", "0.000000001")
	if err == nil || !strings.Contains(out, "base fee is above the fee cap") || e.nonce() != 0 {
		t.Errorf("withdraw under a 1 wei cap: %v\n%s", err, out)
	}

	ethBefore := e.eth()
	out, err = run(t.Context(), "withdraw", "--min", "100")
	if err != nil {
		t.Fatalf("withdraw: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^withdrew from ` + regexp.QuoteMeta(alice.id.String()) + ` at balance 400: received 400 tokens, gas [1-9]\d* = `).MatchString(out) {
		t.Errorf("alice's withdrawal not reported:\n%s", out)
	}
	done, failed, skipped, tokens, gas, eth := total(t, out)
	if done != 1 || failed != 0 || skipped != 2 || tokens != 400 || gas <= 0 {
		t.Errorf("total: %d withdrawn, %d failed, %d skipped, %d tokens, gas %d\n%s", done, failed, skipped, tokens, gas, out)
	}
	if spent := formatUnits(e.ethSpentSince(ethBefore), 18); eth != spent {
		t.Errorf("reported %s ETH of gas, the receiver spent %s", eth, spent)
	}
	if got := e.TokenBalance(receiver); got.Int64() != 400 {
		t.Errorf("the receiver holds %s tokens, want 400", got)
	}
	if info, ok := e.ChannelInfo(alice.id); !ok || info.Arg4.Int64() != 400 || info.Arg2 != 0 {
		t.Errorf("alice's channel on chain: %+v %v", info, ok)
	}
	if info, _ := e.ChannelInfo(bob.id); info.Arg4.Sign() != 0 {
		t.Errorf("bob's channel, below --min, was withdrawn from: %+v", info)
	}
	// The ledger is left to the watcher, which applies ChannelWithdraw when the server runs.
	if c := e.channel(alice.id); c.Withdrawn.Sign() != 0 || c.State != ledger.StateOpen {
		t.Errorf("alice in the ledger: withdrawn %s, %v", c.Withdrawn, c.State)
	}

	// Alice pays 50 more: the contract's withdrawn count decides what is left.
	l = e.OpenLedger(dir)
	e.Pay(l, alice.id, 450, e.Sign(alice.sender, alice.id, 450))
	l.Close()
	out, err = run(t.Context(), "withdraw", "--min", "100")
	if err != nil || !strings.Contains(out, "skipped "+alice.id.String()+": unwithdrawn 50 below --min 100") {
		t.Errorf("withdraw of 50 under --min 100: %v\n%s", err, out)
	}
	if done, _, _, _, _, _ := total(t, out); done != 0 {
		t.Errorf("withdrew from %d channels", done)
	}
	out, err = run(t.Context(), "withdraw", "--min", "50")
	if err != nil {
		t.Fatalf("withdraw --min 50: %v\n%s", err, out)
	}
	if done, _, _, tokens, _, _ := total(t, out); done != 2 || tokens != 100 {
		t.Errorf("withdraw --min 50: %d channels, %d tokens\n%s", done, tokens, out)
	}
	if got := e.TokenBalance(receiver); got.Int64() != 500 {
		t.Errorf("the receiver holds %s tokens, want 500", got)
	}
}

// Refusals that need no transaction: no node configured, bad flags, another receiver's
// ledger, no ledger.
func TestReceiverCommandsRefuse(t *testing.T) {
	env, dir := receiverEnv(t)
	l := env.OpenLedger(dir)
	l.Close()
	base := map[string]string{"URAIDEN_CHAIN_RPC_URL": env.Node.HTTP, "URAIDEN_RECEIVER_KEY_FILE": os.Getenv("URAIDEN_RECEIVER_KEY_FILE"), "URAIDEN_LEDGER_DIR": dir}
	other := filepath.Join(t.TempDir(), "other.key")
	otherKey, _ := crypto.GenerateKey()
	os.WriteFile(other, []byte(common.Bytes2Hex(crypto.FromECDSA(otherKey))), 0o600)

	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"URAIDEN_CHAIN_RPC_URL": ""}, []string{"close-all"}, "chain.rpc_url is not set"},
		// close-all's name before the commands were grouped still works.
		{map[string]string{"URAIDEN_CHAIN_RPC_URL": ""}, []string{"channels", "close-all"}, "chain.rpc_url is not set"},
		{map[string]string{"URAIDEN_CHAIN_RPC_URL": ""}, []string{"withdraw"}, "the embedded dev chain lives only inside a running 'uraiden serve'"},
		{nil, []string{"withdraw", "--min", "0"}, "--min: not a positive whole number"},
		{nil, []string{"close-all", "--max-fee-gwei", "lots"}, "--max-fee-gwei: not a positive decimal"},
		{map[string]string{"URAIDEN_RECEIVER_KEY_FILE": other}, []string{"close-all"}, "belongs to another chain, contract or receiver"},
		{map[string]string{"URAIDEN_LEDGER_DIR": filepath.Join(dir, "nothing")}, []string{"withdraw"}, "ledger.dir"},
		{map[string]string{"URAIDEN_LEDGER_DIR": t.TempDir()}, []string{"withdraw"}, "holds no ledger"},
	} {
		for k, v := range base {
			t.Setenv(k, v)
		}
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		out, err := run(t.Context(), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v with %v: err = %v, want %q\n%s", tc.args, tc.env, err, tc.want, out)
		}
	}
}

func TestFormatUnits(t *testing.T) {
	for _, tc := range []struct {
		x    int64
		d    int
		want string
	}{
		{0, 18, "0"}, {1, 18, "0.000000000000000001"}, {1e18, 18, "1"}, {1_500_000_000, 9, "1.5"}, {-25, 1, "-2.5"}, {123, 0, "123"},
	} {
		if got := formatUnits(big.NewInt(tc.x), tc.d); got != tc.want {
			t.Errorf("formatUnits(%d, %d) = %s, want %s", tc.x, tc.d, got, tc.want)
		}
	}
}
