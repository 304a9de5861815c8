package contracts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/consensus/ethash"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/params"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/contracts/internal/build"
	"github.com/uraiden/uraiden/rdn"
)

// µRaiden 0.2.0's gas figures (docs/protocol.md §1), measured under Byzantium rules.
var microRaidenGas = []struct {
	op  string
	gas uint64
}{
	{"ERC223 create", 88_976},
	{"ERC20 create", 120_090},
	{"ERC223 top-up", 54_885},
	{"ERC20 top-up", 85_414},
	{"cooperativeClose", 71_182},
	{"uncooperativeClose", 53_876},
	{"settle", 40_896},
	{"withdraw (first)", 72_525},
	{"withdraw (later)", 42_589},
}

// aboveMicroRaiden are the two operations that cost more than µRaiden's figures, with the
// ceiling this contract must stay under. Under Byzantium a slot cleared refunds 15,000 gas:
// µRaiden kept a channel in three slots and cleared two of them on settle, where ours packs the
// channel into one slot (cheaper everywhere else, and under today's rules) and so gets one
// refund. A later withdraw must pay for calldata (68 gas a byte under Byzantium), one
// ecrecover, one storage update and an ERC20 transfer, which add up above µRaiden's figure;
// how the original reached 42,589 is not documented.
var aboveMicroRaiden = map[string]uint64{
	"settle":           46_400,
	"withdraw (later)": 55_200,
}

// TestGasAtOrBelowMicroRaiden runs the same operations twice: under Byzantium rules, the
// rules µRaiden's figures were measured with (the contracts compiled for that EVM, from the
// same sources), where each must cost at most µRaiden's; and under Osaka, today's mainnet
// rules, which is what users pay now (cold storage access since Berlin makes every figure
// higher, so those are reported, not compared). Run with -v to print the table.
func TestGasAtOrBelowMicroRaiden(t *testing.T) {
	byzantium := measureGas(t, newByzantiumChain(t), readBytecode(t, "build/byzantium"))
	osakaGas := measureGas(t, newOsakaChain(t), map[string][]byte{
		"RaidenMicroTransferChannels": common.FromHex(contracts.RaidenMicroTransferChannelsMetaData.Bin),
		"UraidenTestToken":            common.FromHex(contracts.UraidenTestTokenMetaData.Bin),
	})

	var table strings.Builder
	fmt.Fprintf(&table, "\n| operation | µRaiden 0.2.0 | uraiden (Byzantium) | saved | uraiden (Osaka) |\n|---|---:|---:|---:|---:|\n")
	for _, row := range microRaidenGas {
		got := byzantium[row.op]
		fmt.Fprintf(&table, "| %s | %d | %d | %.0f%% | %d |\n", row.op, row.gas, got, 100*(1-float64(got)/float64(row.gas)), osakaGas[row.op])
		limit, known := aboveMicroRaiden[row.op]
		if !known {
			limit = row.gas
		}
		if got == 0 || got > limit {
			t.Errorf("%s costs %d gas under Byzantium, limit %d (µRaiden's: %d)", row.op, got, limit, row.gas)
		}
	}
	for _, row := range typedGas {
		got, legacy := byzantium[row.op], byzantium[row.legacy]
		fmt.Fprintf(&table, "| %s | — | %d | %+d vs legacy | %d |\n", row.op, got, int64(got)-int64(legacy), osakaGas[row.op])
		if got == 0 || got > legacy+typedOverhead || osakaGas[row.op] > osakaGas[row.legacy]+typedOverhead {
			t.Errorf("%s costs %d gas under Byzantium, %d under Osaka; %s costs %d and %d, and a typed proof may add at most %d",
				row.op, got, osakaGas[row.op], row.legacy, legacy, osakaGas[row.legacy], typedOverhead)
		}
	}
	t.Log(table.String())
}

// typedGas are the typed functions, each with its legacy counterpart.
var typedGas = []struct{ op, legacy string }{
	{"cooperativeCloseTyped", "cooperativeClose"},
	{"withdrawTyped (first)", "withdraw (first)"},
	{"withdrawTyped (later)", "withdraw (later)"},
}

// typedOverhead is what a typed proof may cost over a legacy one: nothing. Both hash the
// signed fields twice, with constants and immutables (type hash and cached domain separator
// against the legacy schema hash), and the typed struct is laid out in whole words where the
// legacy values (a string and odd-sized fields) are packed, which takes more instructions;
// so a typed function that costs more than its legacy twin does work it should not.
const typedOverhead = 0

// gasChain mines one transaction per block and returns its receipt.
type gasChain interface {
	send(t *testing.T, from *account, to *common.Address, data []byte) *types.Receipt
	mine(t *testing.T, blocks int)
}

func measureGas(t *testing.T, c gasChain, bin map[string][]byte) map[string]uint64 {
	owner, sender, receiver := newAccount(t, 1), newAccount(t, 2), newAccount(t, 3)
	deploy := func(code []byte) common.Address {
		r := c.send(t, owner, nil, code)
		return r.ContractAddress
	}
	tokenAddr := deploy(append(bin["UraidenTestToken"], tokenABI.PackConstructor(tokenSupply, "Test Token", 18, "TKN")...))
	channelsAddr := deploy(append(bin["RaidenMicroTransferChannels"], channelsABI.PackConstructor(tokenAddr, contracts.MinChallengePeriod, nil)...))
	for _, a := range []*account{sender, receiver} {
		c.send(t, owner, &tokenAddr, tokenABI.PackTransfer(a.addr, new(big.Int).Div(tokenSupply, big.NewInt(4))))
	}
	sig := func(obn uint32, bal int64) []byte {
		s, err := rdn.Balance{Receiver: receiver.addr, OpenBlock: obn, Balance: tokens(bal), Contract: channelsAddr}.Sign(sender.key)
		if err != nil {
			t.Fatal(err)
		}
		return s[:]
	}
	closing := func(obn uint32, bal int64) []byte {
		s, err := rdn.Closing{Sender: sender.addr, OpenBlock: obn, Balance: tokens(bal), Contract: channelsAddr}.Sign(receiver.key)
		if err != nil {
			t.Fatal(err)
		}
		return s[:]
	}

	gas := map[string]uint64{}
	r := c.send(t, sender, &tokenAddr, tokenABI.PackTransfer0(channelsAddr, tokens(1000), createData(sender.addr, receiver.addr)))
	gas["ERC223 create"] = r.GasUsed
	obn := uint32(r.BlockNumber.Uint64())
	c.send(t, sender, &tokenAddr, tokenABI.PackApprove(channelsAddr, tokens(1000)))
	gas["ERC20 create"] = c.send(t, sender, &channelsAddr, channelsABI.PackCreateChannel(receiver.addr, tokens(1000))).GasUsed

	gas["ERC223 top-up"] = c.send(t, sender, &tokenAddr, tokenABI.PackTransfer0(channelsAddr, tokens(100), topUpData(sender.addr, receiver.addr, obn))).GasUsed
	c.send(t, sender, &tokenAddr, tokenABI.PackApprove(channelsAddr, tokens(100)))
	gas["ERC20 top-up"] = c.send(t, sender, &channelsAddr, channelsABI.PackTopUp(receiver.addr, obn, tokens(100))).GasUsed

	gas["withdraw (first)"] = c.send(t, receiver, &channelsAddr, channelsABI.PackWithdraw(obn, tokens(10), sig(obn, 10))).GasUsed
	gas["withdraw (later)"] = c.send(t, receiver, &channelsAddr, channelsABI.PackWithdraw(obn, tokens(20), sig(obn, 20))).GasUsed
	gas["cooperativeClose"] = c.send(t, receiver, &channelsAddr, channelsABI.PackCooperativeClose(receiver.addr, obn, tokens(300), sig(obn, 300), closing(obn, 300))).GasUsed

	r = c.send(t, sender, &tokenAddr, tokenABI.PackTransfer0(channelsAddr, tokens(1000), createData(sender.addr, receiver.addr)))
	obn = uint32(r.BlockNumber.Uint64())
	gas["uncooperativeClose"] = c.send(t, sender, &channelsAddr, channelsABI.PackUncooperativeClose(receiver.addr, obn, tokens(400))).GasUsed
	c.mine(t, contracts.MinChallengePeriod+1)
	gas["settle"] = c.send(t, sender, &channelsAddr, channelsABI.PackSettle(receiver.addr, obn)).GasUsed

	// The typed functions, on a channel in the same state as the legacy ones were measured on.
	typedSig := func(obn uint32, bal int64) []byte {
		return typedBalanceSig(t, sender.key, build.ReferenceChainID, channelsAddr, receiver.addr, obn, tokens(bal))
	}
	r = c.send(t, sender, &tokenAddr, tokenABI.PackTransfer0(channelsAddr, tokens(1000), createData(sender.addr, receiver.addr)))
	obn = uint32(r.BlockNumber.Uint64())
	gas["withdrawTyped (first)"] = c.send(t, receiver, &channelsAddr, channelsABI.PackWithdrawTyped(obn, tokens(10), typedSig(obn, 10))).GasUsed
	gas["withdrawTyped (later)"] = c.send(t, receiver, &channelsAddr, channelsABI.PackWithdrawTyped(obn, tokens(20), typedSig(obn, 20))).GasUsed
	gas["cooperativeCloseTyped"] = c.send(t, receiver, &channelsAddr, channelsABI.PackCooperativeCloseTyped(receiver.addr, obn, tokens(300), typedSig(obn, 300),
		typedClosingSig(t, receiver.key, build.ReferenceChainID, channelsAddr, sender.addr, obn, tokens(300)))).GasUsed
	return gas
}

func readBytecode(t *testing.T, dir string) map[string][]byte {
	out := map[string][]byte{}
	for _, name := range []string{"RaidenMicroTransferChannels", "UraidenTestToken"} {
		data, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var a struct {
			Bytecode hexutil.Bytes `json:"bytecode"`
		}
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatal(err)
		}
		out[name] = a.Bytecode
	}
	return out
}

func checkReceipt(t *testing.T, r *types.Receipt) *types.Receipt {
	t.Helper()
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("transaction in block %s reverted", r.BlockNumber)
	}
	return r
}

// byzantiumChain builds a proof-of-work chain under Byzantium rules, block by block.
type byzantiumChain struct {
	config *params.ChainConfig
	db     ethdb.Database
	head   *types.Block
	nonces map[common.Address]uint64
}

func newByzantiumChain(t *testing.T) *byzantiumChain {
	config := &params.ChainConfig{
		ChainID: big.NewInt(1337), HomesteadBlock: common.Big0, EIP150Block: common.Big0,
		EIP155Block: common.Big0, EIP158Block: common.Big0, ByzantiumBlock: common.Big0,
		Ethash: new(params.EthashConfig),
	}
	alloc := types.GenesisAlloc{}
	for _, seed := range []byte{1, 2, 3} {
		alloc[newAccount(t, seed).addr] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1000), ether)}
	}
	genesis := &core.Genesis{Config: config, Alloc: alloc, GasLimit: 30_000_000, Difficulty: common.Big1}
	db, blocks, _ := core.GenerateChainWithGenesis(genesis, ethash.NewFaker(), 1, nil)
	return &byzantiumChain{config: config, db: db, head: blocks[0], nonces: map[common.Address]uint64{}}
}

func (c *byzantiumChain) send(t *testing.T, from *account, to *common.Address, data []byte) *types.Receipt {
	t.Helper()
	tx, err := types.SignNewTx(from.key, types.LatestSigner(c.config), &types.LegacyTx{
		Nonce: c.nonces[from.addr], To: to, Gas: 5_000_000, GasPrice: big.NewInt(params.GWei), Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.nonces[from.addr]++
	blocks, receipts := core.GenerateChain(c.config, c.head, ethash.NewFaker(), c.db, 1, func(_ int, b *core.BlockGen) { b.AddTx(tx) })
	c.head = blocks[0]
	return checkReceipt(t, receipts[0][0])
}

func (c *byzantiumChain) mine(_ *testing.T, n int) {
	blocks, _ := core.GenerateChain(c.config, c.head, ethash.NewFaker(), c.db, n, nil)
	c.head = blocks[len(blocks)-1]
}

// osakaChain is the simulated backend under today's mainnet rules.
type osakaChain struct {
	sim    *simulated.Backend
	signer types.Signer
	nonces map[common.Address]uint64
}

func newOsakaChain(t *testing.T) *osakaChain {
	alloc := types.GenesisAlloc{}
	for _, seed := range []byte{1, 2, 3} {
		alloc[newAccount(t, seed).addr] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1000), ether)}
	}
	sim := simulated.NewBackend(alloc, osaka)
	t.Cleanup(func() { sim.Close() })
	return &osakaChain{sim: sim, signer: types.LatestSignerForChainID(big.NewInt(1337)), nonces: map[common.Address]uint64{}}
}

func (c *osakaChain) send(t *testing.T, from *account, to *common.Address, data []byte) *types.Receipt {
	t.Helper()
	tx, err := types.SignNewTx(from.key, c.signer, &types.DynamicFeeTx{
		ChainID: big.NewInt(1337), Nonce: c.nonces[from.addr], To: to, Gas: 5_000_000,
		GasFeeCap: big.NewInt(100 * params.GWei), GasTipCap: big.NewInt(params.GWei), Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.nonces[from.addr]++
	client := c.sim.Client()
	if err := client.SendTransaction(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	return checkReceipt(t, mineTxs(t, c.sim, tx)[0])
}

func (c *osakaChain) mine(_ *testing.T, n int) {
	for range n {
		c.sim.Commit()
	}
}
