package contracts_test

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	gmath "github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/dev/devtools"
	"github.com/uraiden/uraiden/rdn"
)

// The contract's recovery is checked against rdn's typed signatures, and both against
// go-ethereum's EIP-712 hashing (apitypes), written from the shared definition.

var typedTypes = apitypes.Types{
	"EIP712Domain": {
		{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
		{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"},
	},
	"BalanceProof": {
		{Name: "receiver", Type: "address"}, {Name: "openBlock", Type: "uint32"}, {Name: "balance", Type: "uint192"},
	},
	"ClosingBalance": {
		{Name: "sender", Type: "address"}, {Name: "openBlock", Type: "uint32"}, {Name: "balance", Type: "uint192"},
	},
}

// typedDigest is the eth_signTypedData_v4 digest of a BalanceProof (counterparty = receiver)
// or a ClosingBalance (counterparty = sender) in uraiden's domain on chainID at contract.
func typedDigest(t testing.TB, primary string, chainID int64, contract, counterparty common.Address, openBlock uint32, balance *big.Int) common.Hash {
	t.Helper()
	field := map[string]string{"BalanceProof": "receiver", "ClosingBalance": "sender"}[primary]
	digest, _, err := apitypes.TypedDataAndHash(apitypes.TypedData{
		Types:       typedTypes,
		PrimaryType: primary,
		Domain: apitypes.TypedDataDomain{
			Name: "uraiden", Version: "1", ChainId: gmath.NewHexOrDecimal256(chainID), VerifyingContract: contract.Hex(),
		},
		Message: apitypes.TypedDataMessage{
			field: counterparty.Hex(), "openBlock": new(big.Int).SetUint64(uint64(openBlock)), "balance": balance,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return common.BytesToHash(digest)
}

func legacyBalanceSig(key *ecdsa.PrivateKey, contract, receiver common.Address, openBlock uint32, balance *big.Int) ([]byte, error) {
	sig, err := rdn.Balance{Receiver: receiver, OpenBlock: openBlock, Balance: balance, Contract: contract}.Sign(key)
	return sig[:], err
}

func legacyClosingSig(key *ecdsa.PrivateKey, contract, sender common.Address, openBlock uint32, balance *big.Int) ([]byte, error) {
	sig, err := rdn.Closing{Sender: sender, OpenBlock: openBlock, Balance: balance, Contract: contract}.Sign(key)
	return sig[:], err
}

// signDigest signs as wallets do: r ‖ s ‖ v with v 27/28 (go-ethereum's signatures have low s).
func signDigest(t testing.TB, key *ecdsa.PrivateKey, digest common.Hash) []byte {
	t.Helper()
	sig, err := crypto.Sign(digest[:], key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	return sig
}

// typedBalanceSig and typedClosingSig sign with rdn, the code the client and server use, so
// that the contract's recovery checks it; typedDigest (go-ethereum's) pins the digests.
func typedBalanceSig(t testing.TB, sender *ecdsa.PrivateKey, chainID int64, contract, receiver common.Address, openBlock uint32, balance *big.Int) []byte {
	t.Helper()
	sig, err := rdn.Balance{Receiver: receiver, OpenBlock: openBlock, Balance: balance, Contract: contract,
		Scheme: rdn.SchemeTyped, ChainID: uint64(chainID)}.Sign(sender)
	if err != nil {
		t.Fatal(err)
	}
	if want := signDigest(t, sender, typedDigest(t, "BalanceProof", chainID, contract, receiver, openBlock, balance)); string(sig[:]) != string(want) {
		t.Fatalf("rdn's typed balance proof differs from go-ethereum's: %x, %x", sig, want)
	}
	return sig[:]
}

func typedClosingSig(t testing.TB, receiver *ecdsa.PrivateKey, chainID int64, contract, sender common.Address, openBlock uint32, balance *big.Int) []byte {
	t.Helper()
	sig, err := rdn.Closing{Sender: sender, OpenBlock: openBlock, Balance: balance, Contract: contract,
		Scheme: rdn.SchemeTyped, ChainID: uint64(chainID)}.Sign(receiver)
	if err != nil {
		t.Fatal(err)
	}
	if want := signDigest(t, receiver, typedDigest(t, "ClosingBalance", chainID, contract, sender, openBlock, balance)); string(sig[:]) != string(want) {
		t.Fatalf("rdn's typed closing signature differs from go-ethereum's: %x, %x", sig, want)
	}
	return sig[:]
}

// simChainID is the simulated backend's chain id (and the gas test's).
const simChainID = 1337

func (h *harness) typedBalanceSig(sender *account, receiver common.Address, openBlock uint32, balance *big.Int) []byte {
	return typedBalanceSig(h.t, sender.key, simChainID, h.channelsAddr, receiver, openBlock, balance)
}

func (h *harness) typedClosingSig(receiver *account, sender common.Address, openBlock uint32, balance *big.Int) []byte {
	return typedClosingSig(h.t, receiver.key, simChainID, h.channelsAddr, sender, openBlock, balance)
}

func TestTypedInterface(t *testing.T) {
	want := map[string]string{
		"cooperativeCloseTyped":             "cooperativeCloseTyped(address,uint32,uint192,bytes,bytes)",
		"withdrawTyped":                     "withdrawTyped(uint32,uint192,bytes)",
		"extractBalanceProofSignatureTyped": "extractBalanceProofSignatureTyped(address,uint32,uint192,bytes)",
		"extractClosingSignatureTyped":      "extractClosingSignatureTyped(address,uint32,uint192,bytes)",
		"eip712Domain":                      "eip712Domain()",
	}
	methods := channelsABI.GetABI().Methods
	for name, sig := range want {
		if m, ok := methods[name]; !ok || m.Sig != sig {
			t.Errorf("%s: got %q, want %q", name, m.Sig, sig)
		}
	}
	if !slices.Equal(contracts.TypedMethods, slices.Sorted(func(yield func(string) bool) {
		for name := range want {
			if !yield(name) {
				return
			}
		}
	})) {
		t.Errorf("contracts.TypedMethods = %v", contracts.TypedMethods)
	}
}

func TestTypedCooperativeClose(t *testing.T) {
	h := newHarness(t)
	obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
	bal := tokens(30)
	bsig, csig := h.typedBalanceSig(h.sender, h.receiver.addr, obn, bal), h.typedClosingSig(h.receiver, h.sender.addr, obn, bal)
	legacyB, legacyC := h.balanceSig(h.sender, h.receiver.addr, obn, bal), h.closingSig(h.receiver, h.sender.addr, obn, bal)
	highS := flipS(bsig)
	badV := slices.Clone(bsig)
	badV[64] = 29

	// Each scheme's signatures only through its own function, and not mixed: a legacy proof
	// read as typed (or the reverse) recovers a stranger, whose channel does not exist.
	for _, tc := range []struct {
		name       string
		typed      bool
		bsig, csig []byte
		reason     string
	}{
		{"legacy proofs, typed function", true, legacyB, legacyC, "closing signature is not the receiver's"},
		{"typed proofs, legacy function", false, bsig, csig, "closing signature is not the receiver's"},
		{"typed balance, legacy closing", true, bsig, legacyC, "closing signature is not the receiver's"},
		{"legacy balance, typed closing", true, legacyB, csig, "closing signature is not the receiver's"},
		{"closing signed by a stranger", true, bsig, h.typedClosingSig(h.other, h.sender.addr, obn, bal), "closing signature is not the receiver's"},
		{"high s", true, highS, csig, "signature s is not in the lower half order"},
		{"high s closing", true, bsig, flipS(csig), "signature s is not in the lower half order"},
		{"v = 29", true, badV, csig, "signature v must be 0, 1, 27 or 28"},
		{"short", true, bsig[:64], csig, "signature must be 65 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			data := channelsABI.PackCooperativeClose(h.receiver.addr, obn, bal, tc.bsig, tc.csig)
			if tc.typed {
				data = channelsABI.PackCooperativeCloseTyped(h.receiver.addr, obn, bal, tc.bsig, tc.csig)
			}
			h.reverts(h.other, h.channels, data, tc.reason)
		})
	}
	h.t = t

	before := h.snapshot(h.sender.addr, h.receiver.addr, h.other.addr, h.channelsAddr)
	// v as 0/1 is accepted, as for legacy proofs.
	low := slices.Clone(bsig)
	low[64] -= 27
	r := h.send(h.other, h.channels, channelsABI.PackCooperativeCloseTyped(h.receiver.addr, obn, bal, low, csig))
	ev := settledEvent(t, r)
	if ev.Balance.Cmp(bal) != 0 || ev.ReceiverTokens.Cmp(bal) != 0 {
		t.Errorf("ChannelSettled balance %s receiver tokens %s", ev.Balance, ev.ReceiverTokens)
	}
	assertEvent(t, r, "ChannelSettled", h.sender.addr, h.receiver.addr, obnTopic(obn))
	h.assertDeltas(before, map[common.Address]*big.Int{
		h.receiver.addr: tokens(30), h.sender.addr: tokens(70), h.channelsAddr: tokens(-100)})
	h.reverts(h.other, h.channels, channelsABI.PackCooperativeCloseTyped(h.receiver.addr, obn, bal, bsig, csig), "channel does not exist")

	// Legacy proofs still close a channel through the legacy function.
	obn2, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
	h.send(h.other, h.channels, channelsABI.PackCooperativeClose(h.receiver.addr, obn2, bal,
		h.balanceSig(h.sender, h.receiver.addr, obn2, bal), h.closingSig(h.receiver, h.sender.addr, obn2, bal)))
}

func TestTypedWithdraw(t *testing.T) {
	h := newHarness(t)
	obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
	typed := func(bal int64) []byte {
		return channelsABI.PackWithdrawTyped(obn, tokens(bal), h.typedBalanceSig(h.sender, h.receiver.addr, obn, tokens(bal)))
	}
	before := h.snapshot(h.receiver.addr, h.channelsAddr)
	r := h.send(h.receiver, h.channels, typed(30))
	assertEvent(t, r, "ChannelWithdraw", h.sender.addr, h.receiver.addr, obnTopic(obn))
	// The two schemes share one withdrawn balance.
	h.send(h.receiver, h.channels, channelsABI.PackWithdraw(obn, tokens(45), h.balanceSig(h.sender, h.receiver.addr, obn, tokens(45))))
	h.reverts(h.receiver, h.channels, typed(45), "balance already withdrawn")
	h.send(h.receiver, h.channels, typed(60))
	h.assertDeltas(before, map[common.Address]*big.Int{h.receiver.addr: tokens(60), h.channelsAddr: tokens(-60)})
	if ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn); ci.withdrawn.Cmp(tokens(60)) != 0 {
		t.Errorf("withdrawn = %s, want 60", ci.withdrawn)
	}

	h.reverts(h.receiver, h.channels, typed(0), "balance must be positive")
	h.reverts(h.receiver, h.channels, typed(101), "balance exceeds deposit")
	h.reverts(h.other, h.channels, typed(70), "channel does not exist")
	// A typed proof through the legacy withdraw, and the reverse, recover a stranger.
	h.reverts(h.receiver, h.channels, channelsABI.PackWithdraw(obn, tokens(70), h.typedBalanceSig(h.sender, h.receiver.addr, obn, tokens(70))), "channel does not exist")
	h.reverts(h.receiver, h.channels, channelsABI.PackWithdrawTyped(obn, tokens(70), h.balanceSig(h.sender, h.receiver.addr, obn, tokens(70))), "channel does not exist")
	h.reverts(h.receiver, h.channels, channelsABI.PackWithdrawTyped(obn, tokens(70), flipS(h.typedBalanceSig(h.sender, h.receiver.addr, obn, tokens(70)))), "signature s is not in the lower half order")

	// Settling after a typed withdrawal pays only the rest, as after a legacy one.
	before = h.snapshot(h.sender.addr, h.receiver.addr, h.channelsAddr)
	bal := tokens(80)
	r = h.send(h.sender, h.channels, channelsABI.PackCooperativeCloseTyped(h.receiver.addr, obn, bal,
		h.typedBalanceSig(h.sender, h.receiver.addr, obn, bal), h.typedClosingSig(h.receiver, h.sender.addr, obn, bal)))
	if ev := settledEvent(t, r); ev.Balance.Cmp(bal) != 0 || ev.ReceiverTokens.Cmp(tokens(20)) != 0 {
		t.Errorf("settled %s / %s, want 80 / 20", ev.Balance, ev.ReceiverTokens)
	}
	h.assertDeltas(before, map[common.Address]*big.Int{h.receiver.addr: tokens(20), h.sender.addr: tokens(20), h.channelsAddr: tokens(-40)})
}

// Typed signatures follow the legacy rules exactly: v in {0, 1, 27, 28}, s at most N/2.
func TestTypedSignatureRules(t *testing.T) {
	h := newHarness(t)
	const obn = 77
	bal := tokens(9)
	good := h.typedBalanceSig(h.sender, h.receiver.addr, obn, bal)
	halfN := new(big.Int).Rsh(secp256k1N, 1)
	extract := func(sig []byte) (common.Address, error) {
		out, err := h.call(h.channels, channelsABI.PackExtractBalanceProofSignatureTyped(h.receiver.addr, obn, bal, sig))
		if err != nil {
			return common.Address{}, err
		}
		return channelsABI.UnpackExtractBalanceProofSignatureTyped(out)
	}
	for v := range 256 {
		sig := slices.Clone(good)
		sig[64] = byte(v)
		signer, err := extract(sig)
		switch {
		case v == int(good[64]) || v == int(good[64])-27:
			if err != nil || signer != h.sender.addr {
				t.Errorf("v = %d: %s, %v; want the sender", v, signer, err)
			}
		case v == 0 || v == 1 || v == 27 || v == 28:
			// The other parity recovers another key, or none.
			if signer == h.sender.addr {
				t.Errorf("v = %d recovers the sender", v)
			}
		default:
			if !containsReason(err, "signature v must be 0, 1, 27 or 28") {
				t.Errorf("v = %d: %s, %v", v, signer, err)
			}
		}
	}
	if signer, _ := extract(flipS(good)); signer == h.sender.addr {
		t.Error("the malleable twin recovers the sender")
	}
	atHalf := slices.Clone(good)
	halfN.FillBytes(atHalf[32:64])
	if _, err := extract(atHalf); containsReason(err, "signature s is not") {
		t.Errorf("s = N/2 refused: %v", err)
	}
	aboveHalf := slices.Clone(good)
	new(big.Int).Add(halfN, big.NewInt(1)).FillBytes(aboveHalf[32:64])
	if _, err := extract(aboveHalf); !containsReason(err, "signature s is not in the lower half order") {
		t.Errorf("s = N/2+1: %v", err)
	}
	if _, err := extract(good[:64]); !containsReason(err, "signature must be 65 bytes") {
		t.Errorf("64 bytes: %v", err)
	}
	// Every signed field matters.
	closing := h.typedClosingSig(h.receiver, h.sender.addr, obn, bal)
	extractClosing := func(sender common.Address, block uint32, balance *big.Int, sig []byte) common.Address {
		out, err := h.call(h.channels, channelsABI.PackExtractClosingSignatureTyped(sender, block, balance, sig))
		if err != nil {
			return common.Address{}
		}
		a, _ := channelsABI.UnpackExtractClosingSignatureTyped(out)
		return a
	}
	if got := extractClosing(h.sender.addr, obn, bal, closing); got != h.receiver.addr {
		t.Errorf("extractClosingSignatureTyped = %s, want the receiver", got)
	}
	for name, got := range map[string]common.Address{
		"closing, sender":     extractClosing(h.other.addr, obn, bal, closing),
		"closing, open block": extractClosing(h.sender.addr, obn+1, bal, closing),
		"closing, balance":    extractClosing(h.sender.addr, obn, tokens(10), closing),
		// The same fields under the other type name: the type hash separates the two.
		"balance proof as closing": extractClosing(h.receiver.addr, obn, bal, good),
	} {
		if got == h.sender.addr || got == h.receiver.addr {
			t.Errorf("%s changed, still recovers %s", name, got)
		}
	}
}

// ---- Against anvil: the known-answer vectors, the domain, and replay across chains ----

// The known-answer vector set shared with rdn and the viem test (docs/protocol.md).
var (
	vectorContract = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	vectorReceiver = common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	vectorSender   = common.HexToAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
	vectorBlock    = uint32(42)
	vectorBalance  = big.NewInt(1e18)
)

// anvil's second published development key, the vectors' receiver.
const anvilKey1 = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

// anvilChain is anvil with the token deployed by account 1 and then the channel contract by
// account 0 at its nonce 0, which puts it at the vectors' address on every chain id.
type anvilChain struct {
	t                 *testing.T
	ec                *ethclient.Client
	chainID           int64
	key0, key1        *ecdsa.PrivateKey
	token, channels   common.Address
	tokenC, channelsC *bind.BoundContract
}

func newAnvilChain(t *testing.T, chainID int64) *anvilChain {
	t.Helper()
	node := devtools.StartAnvil(t, "--chain-id", big.NewInt(chainID).String())
	ec, err := ethclient.Dial(node.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ec.Close)
	c := &anvilChain{t: t, ec: ec, chainID: chainID}
	c.key0, _ = crypto.HexToECDSA(devtools.AnvilKey)
	c.key1, _ = crypto.HexToECDSA(anvilKey1)
	c.token = c.deploy(c.key1, contracts.UraidenTestTokenMetaData.Bin, tokenABI.PackConstructor(tokenSupply, "Test Token", 18, "TKN"))
	c.channels = c.deploy(c.key0, contracts.RaidenMicroTransferChannelsMetaData.Bin, channelsABI.PackConstructor(c.token, contracts.MinChallengePeriod, nil))
	if c.channels != vectorContract {
		t.Fatalf("channel contract at %s, want %s", c.channels, vectorContract)
	}
	c.tokenC, c.channelsC = tokenABI.Instance(ec, c.token), channelsABI.Instance(ec, c.channels)
	c.send(c.key1, c.tokenC, tokenABI.PackTransfer(vectorSender, new(big.Int).Div(tokenSupply, big.NewInt(2))))
	return c
}

func (c *anvilChain) opts(key *ecdsa.PrivateKey) *bind.TransactOpts {
	opts := bind.NewKeyedTransactor(key, big.NewInt(c.chainID))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.t.Cleanup(cancel)
	opts.Context = ctx
	return opts
}

func (c *anvilChain) deploy(key *ecdsa.PrivateKey, bin string, ctor []byte) common.Address {
	c.t.Helper()
	opts := c.opts(key)
	addr, tx, err := bind.DeployContract(opts, common.FromHex(bin), c.ec, ctor)
	if err != nil {
		c.t.Fatalf("deploy: %v", err)
	}
	if r, err := contracts.WaitMined(opts.Context, c.ec, tx.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatalf("deploy: %v", err)
	}
	return addr
}

// transact mines a transaction (anvil mines one block per transaction) and returns its
// receipt, or the node's refusal (gas estimation runs it first and reports the revert).
func (c *anvilChain) transact(key *ecdsa.PrivateKey, to *bind.BoundContract, data []byte) (*types.Receipt, error) {
	opts := c.opts(key)
	tx, err := bind.Transact(to, opts, data)
	if err != nil {
		return nil, err
	}
	return contracts.WaitMined(opts.Context, c.ec, tx.Hash())
}

func (c *anvilChain) send(key *ecdsa.PrivateKey, to *bind.BoundContract, data []byte) *types.Receipt {
	c.t.Helper()
	r, err := c.transact(key, to, data)
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatalf("transaction failed: %v", err)
	}
	return r
}

func (c *anvilChain) extract(data []byte, unpack func([]byte) (common.Address, error)) (common.Address, error) {
	out, err := c.channelsC.CallRaw(&bind.CallOpts{}, data)
	if err != nil {
		return common.Address{}, err
	}
	return unpack(out)
}

func (c *anvilChain) domain() *contracts.Eip712DomainOutput {
	c.t.Helper()
	out, err := c.channelsC.CallRaw(&bind.CallOpts{}, channelsABI.PackEip712Domain())
	if err != nil {
		c.t.Fatal(err)
	}
	d, err := channelsABI.UnpackEip712Domain(out)
	if err != nil {
		c.t.Fatal(err)
	}
	return &d
}

func checkDomain(t *testing.T, d *contracts.Eip712DomainOutput, chainID int64) {
	t.Helper()
	if d.Fields != [1]byte{0x0f} || d.Name != "uraiden" || d.Version != "1" || d.ChainId.Cmp(big.NewInt(chainID)) != 0 ||
		d.VerifyingContract != vectorContract || d.Salt != ([32]byte{}) || len(d.Extensions) != 0 {
		t.Errorf("eip712Domain() = %+v, want 0x0f, uraiden, 1, %d, %s, no salt, no extensions", *d, chainID, vectorContract)
	}
}

// The contract recovers the vectors' signers from digests computed off chain, on both chain
// ids of the vector set; the digests are logged for comparison with rdn's and viem's.
func TestTypedKnownAnswers(t *testing.T) {
	for _, chainID := range []int64{31337, 1337} {
		c := newAnvilChain(t, chainID)
		checkDomain(t, c.domain(), chainID)
		bDigest := typedDigest(t, "BalanceProof", chainID, vectorContract, vectorReceiver, vectorBlock, vectorBalance)
		cDigest := typedDigest(t, "ClosingBalance", chainID, vectorContract, vectorSender, vectorBlock, vectorBalance)
		bSig, cSig := signDigest(t, c.key0, bDigest), signDigest(t, c.key1, cDigest)
		t.Logf("chain %d BalanceProof digest %s signature (sender) %s", chainID, bDigest, hexutil.Encode(bSig))
		t.Logf("chain %d ClosingBalance digest %s signature (receiver) %s", chainID, cDigest, hexutil.Encode(cSig))

		got, err := c.extract(channelsABI.PackExtractBalanceProofSignatureTyped(vectorReceiver, vectorBlock, vectorBalance, bSig), channelsABI.UnpackExtractBalanceProofSignatureTyped)
		if err != nil || got != vectorSender {
			t.Errorf("chain %d: extractBalanceProofSignatureTyped = %s, %v; want %s", chainID, got, err, vectorSender)
		}
		got, err = c.extract(channelsABI.PackExtractClosingSignatureTyped(vectorSender, vectorBlock, vectorBalance, cSig), channelsABI.UnpackExtractClosingSignatureTyped)
		if err != nil || got != vectorReceiver {
			t.Errorf("chain %d: extractClosingSignatureTyped = %s, %v; want %s", chainID, got, err, vectorReceiver)
		}
	}
	// Pinned, so that a change to the hashing on either side shows here and not only as a
	// disagreement between two implementations that changed together.
	for _, v := range []struct {
		primary string
		chainID int64
		want    string
	}{
		{"BalanceProof", 31337, knownBalanceDigest31337},
		{"ClosingBalance", 31337, knownClosingDigest31337},
		{"BalanceProof", 1337, knownBalanceDigest1337},
		{"ClosingBalance", 1337, knownClosingDigest1337},
	} {
		other := map[string]common.Address{"BalanceProof": vectorReceiver, "ClosingBalance": vectorSender}[v.primary]
		if got := typedDigest(t, v.primary, v.chainID, vectorContract, other, vectorBlock, vectorBalance); got != common.HexToHash(v.want) {
			t.Errorf("%s on chain %d: digest %s, want %s", v.primary, v.chainID, got, v.want)
		}
	}
}

// The digests of the vector set; viem's hashTypedData (the pinned npm package) gives the same.
const (
	knownBalanceDigest31337 = "0x799425b301c3e3d92eede9450b868ce207ca9df4a64a78979c7ab999b259bfd5"
	knownClosingDigest31337 = "0xc71e11d0946368b0d1bd52dd6e638f6af4f111030d914e9916d472ff4b6182ba"
	knownBalanceDigest1337  = "0x5cbabe86bc78c625fae6d58b5c45a02b90d218304e3f4c2dcbef87b790f7686c"
	knownClosingDigest1337  = "0xa85f1a8e35f4d6d85af8f7dab5978742dbc253913b0122db052cbc01c4881564"
)

// Two chains with the contract at the same address and a channel with the same key: a legacy
// proof is valid on both (it binds the contract, not the chain), a typed one only on the
// chain it was signed for.
func TestTypedProofRefusedOnAnotherChain(t *testing.T) {
	a, b := newAnvilChain(t, 31337), newAnvilChain(t, 1337)
	open := func(c *anvilChain) uint32 {
		data := append(vectorSender.Bytes(), vectorReceiver.Bytes()...)
		r := c.send(c.key0, c.tokenC, tokenABI.PackTransfer0(c.channels, tokens(100), data))
		return uint32(r.BlockNumber.Uint64())
	}
	obn := open(a)
	if obnB := open(b); obnB != obn {
		t.Fatalf("setup: channels opened in blocks %d and %d", obn, obnB)
	}
	bal := tokens(30)
	typedB := typedBalanceSig(t, a.key0, a.chainID, vectorContract, vectorReceiver, obn, bal)
	typedC := typedClosingSig(t, a.key1, a.chainID, vectorContract, vectorSender, obn, bal)
	legacyB, err := legacyBalanceSig(a.key0, vectorContract, vectorReceiver, obn, bal)
	if err != nil {
		t.Fatal(err)
	}
	legacyC, err := legacyClosingSig(a.key1, vectorContract, vectorSender, obn, bal)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []*anvilChain{a, b} {
		got, err := c.extract(channelsABI.PackExtractBalanceProofSignature(vectorReceiver, obn, bal, legacyB), channelsABI.UnpackExtractBalanceProofSignature)
		if err != nil || got != vectorSender {
			t.Errorf("chain %d: legacy proof recovers %s, %v; want the sender on both chains", c.chainID, got, err)
		}
		got, err = c.extract(channelsABI.PackExtractBalanceProofSignatureTyped(vectorReceiver, obn, bal, typedB), channelsABI.UnpackExtractBalanceProofSignatureTyped)
		if wantSender := c == a; err != nil || (got == vectorSender) != wantSender {
			t.Errorf("chain %d: typed proof signed for chain %d recovers %s, %v", c.chainID, a.chainID, got, err)
		}
	}

	closeTyped := channelsABI.PackCooperativeCloseTyped(vectorReceiver, obn, bal, typedB, typedC)
	if _, err := b.transact(b.key1, b.channelsC, closeTyped); !containsReason(err, "closing signature is not the receiver's") {
		t.Errorf("typed close replayed on chain %d: %v, want refused", b.chainID, err)
	}
	// Why it matters: the same channel on chain B closes with chain A's legacy proofs.
	r := b.send(b.key1, b.channelsC, channelsABI.PackCooperativeClose(vectorReceiver, obn, bal, legacyB, legacyC))
	if ev := settledEvent(t, r); ev.Balance.Cmp(bal) != 0 {
		t.Errorf("legacy replay settled %s", ev.Balance)
	}
	r = a.send(a.key1, a.channelsC, closeTyped)
	if ev := settledEvent(t, r); ev.Balance.Cmp(bal) != 0 || ev.ReceiverTokens.Cmp(bal) != 0 {
		t.Errorf("typed close on its own chain settled %s / %s", ev.Balance, ev.ReceiverTokens)
	}
}

// After a fork that changes the chain id, the cached domain separator no longer applies: the
// domain and the recovery follow block.chainid.
func TestTypedDomainFollowsChainID(t *testing.T) {
	c := newAnvilChain(t, 31337)
	sig := typedBalanceSig(t, c.key0, 31337, vectorContract, vectorReceiver, vectorBlock, vectorBalance)
	extract := func() common.Address {
		got, err := c.extract(channelsABI.PackExtractBalanceProofSignatureTyped(vectorReceiver, vectorBlock, vectorBalance, sig), channelsABI.UnpackExtractBalanceProofSignatureTyped)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if extract() != vectorSender {
		t.Fatal("the proof does not verify on its own chain")
	}
	if err := c.ec.Client().CallContext(t.Context(), nil, "anvil_setChainId", 4242); err != nil {
		t.Fatal(err)
	}
	checkDomain(t, c.domain(), 4242)
	if got := extract(); got == vectorSender {
		t.Error("after the chain id changed, a proof for the old chain still verifies")
	}
	sig = typedBalanceSig(t, c.key0, 4242, vectorContract, vectorReceiver, vectorBlock, vectorBalance)
	if got := extract(); got != vectorSender {
		t.Errorf("a proof for the new chain id recovers %s", got)
	}
}
