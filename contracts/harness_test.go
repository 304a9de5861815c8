package contracts_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/rdn"
)

var (
	channelsABI = contracts.NewRaidenMicroTransferChannels()
	tokenABI    = contracts.NewUraidenTestToken()
	delegateABI = contracts.NewTrustedDelegate()

	ether       = big.NewInt(params.Ether)
	tokenSupply = new(big.Int).Mul(big.NewInt(1e6), ether) // 1e24 base units
	depositCap  = new(big.Int).Mul(big.NewInt(100), ether) // channel_deposit_bugbounty_limit
)

type account struct {
	key  *ecdsa.PrivateKey
	addr common.Address
	opts *bind.TransactOpts
}

// harness is a simulated chain with the token and the channel contract deployed, and four
// funded accounts. Blocks are mined only by commit, so a test decides what shares a block.
type harness struct {
	t                       *testing.T
	sim                     *simulated.Backend
	client                  simulated.Client
	owner, sender, receiver *account
	other                   *account
	tokenAddr, channelsAddr common.Address
	token, channels         *bind.BoundContract
	challengePeriod         uint32
}

func newAccount(t *testing.T, seed byte) *account {
	key, err := crypto.ToECDSA(common.LeftPadBytes([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	opts := bind.NewKeyedTransactor(key, big.NewInt(1337))
	return &account{key: key, addr: crypto.PubkeyToAddress(key.PublicKey), opts: opts}
}

// osaka runs the simulated chain on the rules of Ethereum mainnet today. The simulated
// backend's default also enables unreleased forks whose state-gas repricing would make every
// gas figure meaningless.
func osaka(_ *node.Config, eth *ethconfig.Config) {
	cfg := *eth.Genesis.Config
	cfg.BogotaTime = nil
	eth.Genesis.Config = &cfg
}

func newHarness(t *testing.T) *harness {
	return newHarnessWithPeriod(t, contracts.MinChallengePeriod)
}

func newHarnessWithPeriod(t *testing.T, challengePeriod uint32) *harness {
	t.Helper()
	h := &harness{t: t, challengePeriod: challengePeriod}
	h.owner, h.sender, h.receiver, h.other = newAccount(t, 1), newAccount(t, 2), newAccount(t, 3), newAccount(t, 4)
	alloc := types.GenesisAlloc{}
	for _, a := range []*account{h.owner, h.sender, h.receiver, h.other} {
		alloc[a.addr] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1000), ether)}
	}
	h.sim = simulated.NewBackend(alloc, osaka)
	t.Cleanup(func() { h.sim.Close() })
	h.client = h.sim.Client()

	h.tokenAddr = h.deploy(contracts.UraidenTestTokenMetaData.Bin,
		tokenABI.PackConstructor(tokenSupply, "Test Token", 18, "TKN"))
	h.token = tokenABI.Instance(h.client, h.tokenAddr)
	h.channelsAddr = h.deploy(contracts.RaidenMicroTransferChannelsMetaData.Bin,
		channelsABI.PackConstructor(h.tokenAddr, challengePeriod, nil))
	h.channels = channelsABI.Instance(h.client, h.channelsAddr)

	// Every party holds tokens already, as on a live network: the first transfer into an
	// empty balance costs 17,100 gas more and would blur the gas table.
	third := new(big.Int).Div(tokenSupply, big.NewInt(4))
	for _, a := range []*account{h.sender, h.receiver, h.other} {
		h.send(h.owner, h.token, tokenABI.PackTransfer(a.addr, third))
	}
	return h
}

func (h *harness) deploy(bin string, ctor []byte) common.Address {
	h.t.Helper()
	addr, tx, err := bind.DeployContract(h.owner.opts, common.FromHex(bin), h.client, ctor)
	if err != nil {
		h.t.Fatalf("deploy: %v", err)
	}
	if r := mineTxs(h.t, h.sim, tx)[0]; r.Status != types.ReceiptStatusSuccessful {
		h.t.Fatalf("deploy reverted")
	}
	return addr
}

// submit sends a transaction without mining it; gasLimit 0 lets the node estimate.
func (h *harness) submit(from *account, c *bind.BoundContract, data []byte, gasLimit uint64) (*types.Transaction, error) {
	opts := *from.opts
	opts.GasLimit = gasLimit
	tx, err := bind.Transact(c, &opts, data)
	if err == nil {
		// The simulated pool takes a transaction asynchronously: until it has, the pending
		// nonce is the same, and a second submit from the account would reuse it (under load
		// it did: "replacement transaction underpriced").
		waitPooled(h.t, h.sim, tx)
	}
	return tx, err
}

// send mines one transaction and fails the test unless it succeeds.
func (h *harness) send(from *account, c *bind.BoundContract, data []byte) *types.Receipt {
	h.t.Helper()
	tx, err := h.submit(from, c, data, 0)
	if err != nil {
		h.t.Fatalf("transaction failed: %v", err)
	}
	r := mineTxs(h.t, h.sim, tx)[0]
	if r.Status != types.ReceiptStatusSuccessful {
		h.t.Fatalf("transaction reverted")
	}
	return r
}

// reverts checks that a transaction is refused with the given reason and changes nothing.
func (h *harness) reverts(from *account, c *bind.BoundContract, data []byte, reason string) {
	h.t.Helper()
	tx, err := h.submit(from, c, data, 0)
	if err == nil {
		mineTxs(h.t, h.sim, tx)
		h.t.Fatalf("transaction did not revert, want %q", reason)
	}
	if !strings.Contains(err.Error(), "execution reverted: "+reason) {
		h.t.Fatalf("revert reason: got %v, want %q", err, reason)
	}
}

func (h *harness) call(c *bind.BoundContract, data []byte) ([]byte, error) {
	return c.CallRaw(&bind.CallOpts{}, data)
}

func (h *harness) tokenBalance(a common.Address) *big.Int {
	h.t.Helper()
	out, err := h.call(h.token, tokenABI.PackBalanceOf(a))
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := tokenABI.UnpackBalanceOf(out)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func (h *harness) approve(from *account, amount *big.Int) {
	h.t.Helper()
	h.send(from, h.token, tokenABI.PackApprove(h.channelsAddr, amount))
}

// createERC20 approves and creates a channel from sender to receiver; returns the open block.
func (h *harness) createERC20(from *account, receiver common.Address, deposit *big.Int) (uint32, *types.Receipt) {
	h.t.Helper()
	h.approve(from, deposit)
	h.sim.Commit() // see createERC223
	r := h.send(from, h.channels, channelsABI.PackCreateChannel(receiver, deposit))
	h.sim.Commit()
	return uint32(r.BlockNumber.Uint64()), r
}

// createERC223 opens a channel in one token transfer; returns the open block.
func (h *harness) createERC223(from *account, receiver common.Address, deposit *big.Int) (uint32, *types.Receipt) {
	h.t.Helper()
	// Gas estimation runs at the head's block number: a channel opened in the head block
	// already holds the key there, and cannot settle there. Keep the open block off the head.
	h.sim.Commit()
	r := h.send(from, h.token, tokenABI.PackTransfer0(h.channelsAddr, deposit, createData(from.addr, receiver)))
	h.sim.Commit()
	return uint32(r.BlockNumber.Uint64()), r
}

func createData(sender, receiver common.Address) []byte {
	return append(sender.Bytes()[:20:20], receiver.Bytes()...)
}

func topUpData(sender, receiver common.Address, openBlock uint32) []byte {
	return binary.BigEndian.AppendUint32(createData(sender, receiver), openBlock)
}

type channelInfo struct {
	key            [32]byte
	deposit        *big.Int
	settleBlock    uint32
	closingBalance *big.Int
	withdrawn      *big.Int
}

func (h *harness) info(sender, receiver common.Address, openBlock uint32) (channelInfo, error) {
	out, err := h.call(h.channels, channelsABI.PackGetChannelInfo(sender, receiver, openBlock))
	if err != nil {
		return channelInfo{}, err
	}
	o, err := channelsABI.UnpackGetChannelInfo(out)
	if err != nil {
		return channelInfo{}, err
	}
	return channelInfo{o.Arg0, o.Arg1, o.Arg2, o.Arg3, o.Arg4}, nil
}

func (h *harness) mustInfo(sender, receiver common.Address, openBlock uint32) channelInfo {
	h.t.Helper()
	ci, err := h.info(sender, receiver, openBlock)
	if err != nil {
		h.t.Fatalf("getChannelInfo: %v", err)
	}
	return ci
}

func (h *harness) balanceSig(sender *account, receiver common.Address, openBlock uint32, balance *big.Int) []byte {
	h.t.Helper()
	sig, err := rdn.Balance{Receiver: receiver, OpenBlock: openBlock, Balance: balance, Contract: h.channelsAddr}.Sign(sender.key)
	if err != nil {
		h.t.Fatal(err)
	}
	return sig[:]
}

func (h *harness) closingSig(receiver *account, sender common.Address, openBlock uint32, balance *big.Int) []byte {
	h.t.Helper()
	sig, err := rdn.Closing{Sender: sender, OpenBlock: openBlock, Balance: balance, Contract: h.channelsAddr}.Sign(receiver.key)
	if err != nil {
		h.t.Fatal(err)
	}
	return sig[:]
}

func (h *harness) mine(blocks int) {
	for range blocks {
		h.sim.Commit()
	}
}

func (h *harness) blockNumber() uint64 {
	h.t.Helper()
	n, err := h.client.BlockNumber(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func tokens(n int64) *big.Int { return big.NewInt(n) }

// assertBalances checks token balances against their values before, plus deltas.
func (h *harness) assertDeltas(before map[common.Address]*big.Int, deltas map[common.Address]*big.Int) {
	h.t.Helper()
	for addr, was := range before {
		want := new(big.Int).Set(was)
		if d, ok := deltas[addr]; ok {
			want.Add(want, d)
		}
		if got := h.tokenBalance(addr); got.Cmp(want) != 0 {
			h.t.Errorf("token balance of %s: got %s, want %s", addr, got, want)
		}
	}
}

func (h *harness) snapshot(addrs ...common.Address) map[common.Address]*big.Int {
	m := map[common.Address]*big.Int{}
	for _, a := range addrs {
		m[a] = h.tokenBalance(a)
	}
	return m
}
