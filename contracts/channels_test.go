package contracts_test

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/rdn"
)

// The external interface of µRaiden 0.2.0 (docs/protocol.md §1). Clients call by selector, so the
// signatures must match to the byte.
func TestInterfaceMatchesMicroRaiden(t *testing.T) {
	want := []string{
		"addTrustedContracts(address[])",
		"challenge_period()",
		"channel_deposit_bugbounty_limit()",
		"cooperativeClose(address,uint32,uint192,bytes,bytes)",
		"createChannel(address,uint192)",
		"createChannelDelegate(address,address,uint192)",
		"extractBalanceProofSignature(address,uint32,uint192,bytes)",
		"extractClosingSignature(address,uint32,uint192,bytes)",
		"getChannelInfo(address,address,uint32)",
		"getKey(address,address,uint32)",
		"owner_address()",
		"removeTrustedContracts(address[])",
		"settle(address,uint32)",
		"token()",
		"tokenFallback(address,uint256,bytes)",
		"topUp(address,uint32,uint192)",
		"topUpDelegate(address,address,uint32,uint192)",
		"trusted_contracts(address)",
		"uncooperativeClose(address,uint32,uint192)",
		"version()",
		"withdraw(uint32,uint192,bytes)",
	}
	abi := channelsABI.GetABI()
	var got []string
	for name, m := range abi.Methods {
		// Checked by TestTypedInterface.
		if !slices.Contains(contracts.TypedMethods, name) {
			got = append(got, m.Sig)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("methods\n got %v\nwant %v", got, want)
	}
	events := map[string]string{
		"ChannelCreated":        "ChannelCreated(address,address,uint192)",
		"ChannelToppedUp":       "ChannelToppedUp(address,address,uint32,uint192)",
		"ChannelCloseRequested": "ChannelCloseRequested(address,address,uint32,uint192)",
		"ChannelSettled":        "ChannelSettled(address,address,uint32,uint192,uint192)",
		"ChannelWithdraw":       "ChannelWithdraw(address,address,uint32,uint192)",
		"TrustedContract":       "TrustedContract(address,bool)",
	}
	indexed := map[string]int{"ChannelCreated": 2, "ChannelToppedUp": 3, "ChannelCloseRequested": 3,
		"ChannelSettled": 3, "ChannelWithdraw": 3, "TrustedContract": 1}
	if len(abi.Events) != len(events) {
		t.Errorf("%d events, want %d", len(abi.Events), len(events))
	}
	for name, sig := range events {
		ev, ok := abi.Events[name]
		if !ok || ev.Sig != sig || ev.ID != crypto.Keccak256Hash([]byte(sig)) {
			t.Errorf("event %s: got %q", name, ev.Sig)
			continue
		}
		n := 0
		for _, in := range ev.Inputs {
			if in.Indexed {
				n++
			}
		}
		if n != indexed[name] {
			t.Errorf("event %s: %d indexed fields, want %d", name, n, indexed[name])
		}
	}
}

func TestGetters(t *testing.T) {
	h := newHarness(t)
	check := func(data []byte, unpack func([]byte) (any, error), want any) {
		t.Helper()
		out, err := h.call(h.channels, data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := unpack(out)
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := got.(*big.Int); ok {
			if g.Cmp(want.(*big.Int)) != 0 {
				t.Errorf("got %v, want %v", got, want)
			}
		} else if got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	check(channelsABI.PackVersion(), func(b []byte) (any, error) { return channelsABI.UnpackVersion(b) }, contracts.Version)
	check(channelsABI.PackToken(), func(b []byte) (any, error) { return channelsABI.UnpackToken(b) }, h.tokenAddr)
	check(channelsABI.PackOwnerAddress(), func(b []byte) (any, error) { return channelsABI.UnpackOwnerAddress(b) }, h.owner.addr)
	check(channelsABI.PackChallengePeriod(), func(b []byte) (any, error) { return channelsABI.UnpackChallengePeriod(b) }, uint32(500))
	check(channelsABI.PackChannelDepositBugbountyLimit(), func(b []byte) (any, error) { return channelsABI.UnpackChannelDepositBugbountyLimit(b) }, depositCap)

	key := crypto.Keccak256Hash(h.sender.addr.Bytes(), h.receiver.addr.Bytes(), []byte{0, 0, 1, 2})
	check(channelsABI.PackGetKey(h.sender.addr, h.receiver.addr, 258), func(b []byte) (any, error) { return channelsABI.UnpackGetKey(b) }, [32]byte(key))
}

func TestConstructorRequirements(t *testing.T) {
	h := newHarness(t)
	bin := common.FromHex(contracts.RaidenMicroTransferChannelsMetaData.Bin)
	for _, tc := range []struct {
		name   string
		token  common.Address
		period uint32
		reason string
	}{
		{"short period", h.tokenAddr, 499, "challenge period must be at least 500 blocks"},
		{"token without code", h.other.addr, 500, "token address has no code"},
	} {
		data := append(slices.Clone(bin), channelsABI.PackConstructor(tc.token, tc.period, nil)...)
		_, err := h.client.EstimateGas(t.Context(), ethCall(h.owner.addr, nil, data))
		if err == nil || !containsReason(err, tc.reason) {
			t.Errorf("%s: got %v, want revert %q", tc.name, err, tc.reason)
		}
	}
}

func TestCreateChannel(t *testing.T) {
	h := newHarness(t)
	before := h.snapshot(h.sender.addr, h.channelsAddr)

	obn, r := h.createERC20(h.sender, h.receiver.addr, tokens(1000))
	assertEvent(t, r, "ChannelCreated", h.sender.addr, h.receiver.addr)
	ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn)
	if ci.deposit.Cmp(tokens(1000)) != 0 || ci.settleBlock != 0 || ci.closingBalance.Sign() != 0 || ci.withdrawn.Sign() != 0 {
		t.Errorf("channel info after create: %+v", ci)
	}
	obn223, r := h.createERC223(h.sender, h.receiver.addr, tokens(500))
	assertEvent(t, r, "ChannelCreated", h.sender.addr, h.receiver.addr)
	if obn223 == obn {
		t.Fatal("test setup: both channels in one block")
	}
	if ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn223); ci.deposit.Cmp(tokens(500)) != 0 {
		t.Errorf("ERC223 deposit = %s", ci.deposit)
	}
	h.assertDeltas(before, map[common.Address]*big.Int{h.sender.addr: tokens(-1500), h.channelsAddr: tokens(1500)})

	// Nobody but the sender (or a trusted contract) opens or tops up a channel in its name.
	h.reverts(h.other, h.token, tokenABI.PackTransfer0(h.channelsAddr, tokens(7), createData(h.sender.addr, h.other.addr)), "payer is not the channel's sender")
	h.reverts(h.other, h.token, tokenABI.PackTransfer0(h.channelsAddr, tokens(7), topUpData(h.sender.addr, h.receiver.addr, obn)), "payer is not the channel's sender")

	// Unknown channels revert in getChannelInfo rather than reading as zero.
	if _, err := h.info(h.sender.addr, h.receiver.addr, obn+100); !containsReason(err, "channel does not exist") {
		t.Errorf("getChannelInfo of an unknown channel: %v", err)
	}
}

func TestCreateChannelReverts(t *testing.T) {
	h := newHarness(t)
	h.approve(h.sender, new(big.Int).Mul(depositCap, big.NewInt(2)))
	over := new(big.Int).Add(depositCap, big.NewInt(1))

	h.reverts(h.sender, h.channels, channelsABI.PackCreateChannel(h.receiver.addr, tokens(0)), "deposit must be positive")
	h.reverts(h.sender, h.channels, channelsABI.PackCreateChannel(common.Address{}, tokens(1)), "receiver is the zero address")
	h.reverts(h.sender, h.channels, channelsABI.PackCreateChannel(h.receiver.addr, over), "deposit exceeds the channel limit")
	h.reverts(h.sender, h.token, tokenABI.PackTransfer0(h.channelsAddr, tokens(0), createData(h.sender.addr, h.receiver.addr)), "deposit must be positive")
	h.reverts(h.sender, h.token, tokenABI.PackTransfer0(h.channelsAddr, over, createData(h.sender.addr, h.receiver.addr)), "deposit exceeds the channel limit")
	for _, n := range []int{0, 20, 39, 41, 43, 45, 64} {
		h.reverts(h.sender, h.token, tokenABI.PackTransfer0(h.channelsAddr, tokens(1), make([]byte, n)), "data must be 40 or 44 bytes")
	}
	// Only the token may claim that tokens arrived.
	h.reverts(h.sender, h.channels, channelsABI.PackTokenFallback(h.sender.addr, tokens(10), createData(h.sender.addr, h.receiver.addr)), "only the token may call tokenFallback")
	// Without an approval the ERC20 path fails in the token.
	h.approve(h.other, tokens(0))
	h.reverts(h.other, h.channels, channelsABI.PackCreateChannel(h.receiver.addr, tokens(1)), "allowance too low")

	// The limit itself is allowed.
	h.send(h.sender, h.channels, channelsABI.PackCreateChannel(h.receiver.addr, depositCap))
}

func TestTwoChannelsOfOnePair(t *testing.T) {
	h := newHarness(t)
	h.approve(h.sender, tokens(1000))
	// Same block: same key, the second creation fails.
	first, err := h.submit(h.sender, h.channels, channelsABI.PackCreateChannel(h.receiver.addr, tokens(10)), 200_000)
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.submit(h.sender, h.channels, channelsABI.PackCreateChannel(h.receiver.addr, tokens(20)), 200_000)
	if err != nil {
		t.Fatal(err)
	}
	rs := mineTxs(t, h.sim, first, second)
	r1, r2 := rs[0], rs[1]
	if r1.BlockNumber.Cmp(r2.BlockNumber) != 0 {
		t.Fatal("test setup: transactions in different blocks")
	}
	if r1.Status != types.ReceiptStatusSuccessful || r2.Status != types.ReceiptStatusFailed {
		t.Errorf("statuses %d, %d; want success then failure", r1.Status, r2.Status)
	}
	obn := uint32(r1.BlockNumber.Uint64())
	if ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn); ci.deposit.Cmp(tokens(10)) != 0 {
		t.Errorf("deposit = %s, want the first channel's 10", ci.deposit)
	}
	// Different blocks: two independent channels.
	obn2, _ := h.createERC20(h.sender, h.receiver.addr, tokens(30))
	if obn2 == obn {
		t.Fatal("same block")
	}
	if ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn2); ci.deposit.Cmp(tokens(30)) != 0 {
		t.Errorf("second channel deposit = %s", ci.deposit)
	}
	if ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn); ci.deposit.Cmp(tokens(10)) != 0 {
		t.Errorf("first channel changed: %s", ci.deposit)
	}
}

func TestTopUp(t *testing.T) {
	h := newHarness(t)
	obn, _ := h.createERC20(h.sender, h.receiver.addr, tokens(100))
	h.approve(h.sender, tokens(50))
	r := h.send(h.sender, h.channels, channelsABI.PackTopUp(h.receiver.addr, obn, tokens(50)))
	assertEvent(t, r, "ChannelToppedUp", h.sender.addr, h.receiver.addr, obnTopic(obn))
	r = h.send(h.sender, h.token, tokenABI.PackTransfer0(h.channelsAddr, tokens(25), topUpData(h.sender.addr, h.receiver.addr, obn)))
	assertEvent(t, r, "ChannelToppedUp", h.sender.addr, h.receiver.addr, obnTopic(obn))
	if ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn); ci.deposit.Cmp(tokens(175)) != 0 {
		t.Errorf("deposit after top-ups = %s, want 175", ci.deposit)
	}

	h.approve(h.sender, depositCap)
	for _, tc := range []struct {
		name   string
		data   []byte
		erc223 []byte
		reason string
	}{
		{"wrong receiver", channelsABI.PackTopUp(h.other.addr, obn, tokens(1)), topUpData(h.sender.addr, h.other.addr, obn), "channel does not exist"},
		{"wrong block", channelsABI.PackTopUp(h.receiver.addr, obn+1, tokens(1)), topUpData(h.sender.addr, h.receiver.addr, obn+1), "channel does not exist"},
		{"zero", channelsABI.PackTopUp(h.receiver.addr, obn, tokens(0)), nil, "added deposit must be positive"},
		{"over the limit", channelsABI.PackTopUp(h.receiver.addr, obn, depositCap), nil, "deposit exceeds the channel limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			h.reverts(h.sender, h.channels, tc.data, tc.reason)
			if tc.erc223 != nil {
				h.reverts(h.sender, h.token, tokenABI.PackTransfer0(h.channelsAddr, tokens(1), tc.erc223), tc.reason)
			}
		})
	}
	h.t = t
	h.reverts(h.sender, h.token, tokenABI.PackTransfer0(h.channelsAddr, tokens(0), topUpData(h.sender.addr, h.receiver.addr, obn)), "added deposit must be positive")

	// During a challenge period no more money goes in.
	h.send(h.sender, h.channels, channelsABI.PackUncooperativeClose(h.receiver.addr, obn, tokens(10)))
	h.reverts(h.sender, h.channels, channelsABI.PackTopUp(h.receiver.addr, obn, tokens(1)), "channel is closing")
	h.reverts(h.sender, h.token, tokenABI.PackTransfer0(h.channelsAddr, tokens(1), topUpData(h.sender.addr, h.receiver.addr, obn)), "channel is closing")
}

func TestCooperativeClose(t *testing.T) {
	for _, who := range []string{"sender", "receiver", "third party"} {
		t.Run(who, func(t *testing.T) {
			h := newHarness(t)
			caller := map[string]*account{"sender": h.sender, "receiver": h.receiver, "third party": h.other}[who]
			obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
			before := h.snapshot(h.sender.addr, h.receiver.addr, h.other.addr, h.channelsAddr)

			bal := tokens(30)
			r := h.send(caller, h.channels, channelsABI.PackCooperativeClose(h.receiver.addr, obn, bal,
				h.balanceSig(h.sender, h.receiver.addr, obn, bal), h.closingSig(h.receiver, h.sender.addr, obn, bal)))
			ev := settledEvent(t, r)
			if ev.Balance.Cmp(bal) != 0 || ev.ReceiverTokens.Cmp(bal) != 0 {
				t.Errorf("ChannelSettled balance %s receiver tokens %s", ev.Balance, ev.ReceiverTokens)
			}
			h.assertDeltas(before, map[common.Address]*big.Int{
				h.receiver.addr: tokens(30), h.sender.addr: tokens(70), h.channelsAddr: tokens(-100)})
			if _, err := h.info(h.sender.addr, h.receiver.addr, obn); !containsReason(err, "channel does not exist") {
				t.Errorf("channel still exists after settlement: %v", err)
			}
		})
	}
}

func TestCooperativeCloseReverts(t *testing.T) {
	h := newHarness(t)
	obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
	bal := tokens(30)
	bsig := h.balanceSig(h.sender, h.receiver.addr, obn, bal)
	csig := h.closingSig(h.receiver, h.sender.addr, obn, bal)
	highS := flipS(bsig)
	v37 := slices.Clone(bsig)
	v37[64] = 37

	for _, tc := range []struct {
		name       string
		bsig, csig []byte
		balance    *big.Int
		reason     string
	}{
		{"closing signed by a stranger", bsig, h.closingSig(h.other, h.sender.addr, obn, bal), bal, "closing signature is not the receiver's"},
		{"balance differs from the signed one", bsig, csig, tokens(31), "closing signature is not the receiver's"},
		{"short balance signature", bsig[:64], csig, bal, "signature must be 65 bytes"},
		{"short closing signature", bsig, csig[:64], bal, "signature must be 65 bytes"},
		{"high s", highS, csig, bal, "signature s is not in the lower half order"},
		{"v = 37", v37, csig, bal, "signature v must be 0, 1, 27 or 28"},
		{"balance above deposit", h.balanceSig(h.sender, h.receiver.addr, obn, tokens(101)), h.closingSig(h.receiver, h.sender.addr, obn, tokens(101)), tokens(101), "balance exceeds deposit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			h.reverts(h.other, h.channels, channelsABI.PackCooperativeClose(h.receiver.addr, obn, tc.balance, tc.bsig, tc.csig), tc.reason)
		})
	}
	h.t = t
	// v as 0/1 is accepted, as in µRaiden.
	low := slices.Clone(bsig)
	low[64] -= 27
	h.send(h.other, h.channels, channelsABI.PackCooperativeClose(h.receiver.addr, obn, bal, low, csig))
	// Only once.
	h.reverts(h.other, h.channels, channelsABI.PackCooperativeClose(h.receiver.addr, obn, bal, bsig, csig), "channel does not exist")
}

func TestUncooperativeCloseAndSettle(t *testing.T) {
	h := newHarness(t)
	obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))

	h.reverts(h.receiver, h.channels, channelsABI.PackUncooperativeClose(h.receiver.addr, obn, tokens(10)), "channel does not exist")
	h.reverts(h.sender, h.channels, channelsABI.PackUncooperativeClose(h.receiver.addr, obn, tokens(101)), "balance exceeds deposit")
	h.reverts(h.sender, h.channels, channelsABI.PackSettle(h.receiver.addr, obn), "no close requested")

	r := h.send(h.sender, h.channels, channelsABI.PackUncooperativeClose(h.receiver.addr, obn, tokens(40)))
	assertEvent(t, r, "ChannelCloseRequested", h.sender.addr, h.receiver.addr, obnTopic(obn))
	settleBlock := uint32(r.BlockNumber.Uint64()) + h.challengePeriod
	ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn)
	if ci.settleBlock != settleBlock || ci.closingBalance.Cmp(tokens(40)) != 0 {
		t.Errorf("after close request: settle block %d closing balance %s; want %d, 40", ci.settleBlock, ci.closingBalance, settleBlock)
	}
	h.reverts(h.sender, h.channels, channelsABI.PackUncooperativeClose(h.receiver.addr, obn, tokens(10)), "close already requested")

	// Before and at the settle block: too early. Mine until the next transaction lands in the
	// settle block itself.
	h.mine(int(uint64(settleBlock) - h.blockNumber() - 1))
	h.reverts(h.sender, h.channels, channelsABI.PackSettle(h.receiver.addr, obn), "challenge period not over")
	tx, err := h.submit(h.sender, h.channels, channelsABI.PackSettle(h.receiver.addr, obn), 200_000)
	if err != nil {
		t.Fatal(err)
	}
	if r := mineTxs(t, h.sim, tx)[0]; r.BlockNumber.Uint64() != uint64(settleBlock) || r.Status != types.ReceiptStatusFailed {
		t.Fatalf("settle in block %d (settle block %d): status %d, want failure", r.BlockNumber, settleBlock, r.Status)
	}
	// Only the sender settles.
	h.reverts(h.receiver, h.channels, channelsABI.PackSettle(h.receiver.addr, obn), "no close requested")

	h.sim.Commit() // gas estimation runs at the head's number, now the settle block
	before := h.snapshot(h.sender.addr, h.receiver.addr, h.channelsAddr)
	r = h.send(h.sender, h.channels, channelsABI.PackSettle(h.receiver.addr, obn))
	if r.BlockNumber.Uint64() <= uint64(settleBlock) {
		t.Fatal("test setup: settled too early")
	}
	ev := settledEvent(t, r)
	if ev.Balance.Cmp(tokens(40)) != 0 || ev.ReceiverTokens.Cmp(tokens(40)) != 0 {
		t.Errorf("settled %s / %s, want 40 / 40", ev.Balance, ev.ReceiverTokens)
	}
	h.assertDeltas(before, map[common.Address]*big.Int{h.receiver.addr: tokens(40), h.sender.addr: tokens(60), h.channelsAddr: tokens(-100)})
	h.reverts(h.sender, h.channels, channelsABI.PackSettle(h.receiver.addr, obn), "no close requested")
}

func TestReceiverDisputesDuringChallenge(t *testing.T) {
	h := newHarness(t)
	obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
	// The sender signed 80 but asks to close at 10.
	h.send(h.sender, h.channels, channelsABI.PackUncooperativeClose(h.receiver.addr, obn, tokens(10)))
	before := h.snapshot(h.sender.addr, h.receiver.addr)
	bal := tokens(80)
	r := h.send(h.receiver, h.channels, channelsABI.PackCooperativeClose(h.receiver.addr, obn, bal,
		h.balanceSig(h.sender, h.receiver.addr, obn, bal), h.closingSig(h.receiver, h.sender.addr, obn, bal)))
	if ev := settledEvent(t, r); ev.Balance.Cmp(bal) != 0 {
		t.Errorf("dispute settled at %s, want 80", ev.Balance)
	}
	h.assertDeltas(before, map[common.Address]*big.Int{h.receiver.addr: tokens(80), h.sender.addr: tokens(20)})
	h.mine(int(h.challengePeriod) + 1)
	h.reverts(h.sender, h.channels, channelsABI.PackSettle(h.receiver.addr, obn), "no close requested")
}

func TestSettleBlockOverflow(t *testing.T) {
	h := newHarnessWithPeriod(t, math.MaxUint32)
	obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
	h.reverts(h.sender, h.channels, channelsABI.PackUncooperativeClose(h.receiver.addr, obn, tokens(1)), "settle block does not fit uint32")
}

func TestWithdraw(t *testing.T) {
	h := newHarness(t)
	obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
	withdraw := func(bal int64) []byte {
		return channelsABI.PackWithdraw(obn, tokens(bal), h.balanceSig(h.sender, h.receiver.addr, obn, tokens(bal)))
	}
	before := h.snapshot(h.receiver.addr, h.channelsAddr)
	r := h.send(h.receiver, h.channels, withdraw(30))
	assertEvent(t, r, "ChannelWithdraw", h.sender.addr, h.receiver.addr, obnTopic(obn))
	h.send(h.receiver, h.channels, withdraw(45))
	h.assertDeltas(before, map[common.Address]*big.Int{h.receiver.addr: tokens(45), h.channelsAddr: tokens(-45)})
	if ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn); ci.withdrawn.Cmp(tokens(45)) != 0 {
		t.Errorf("withdrawn = %s, want 45", ci.withdrawn)
	}

	h.reverts(h.receiver, h.channels, withdraw(45), "balance already withdrawn")
	h.reverts(h.receiver, h.channels, withdraw(20), "balance already withdrawn")
	h.reverts(h.receiver, h.channels, withdraw(0), "balance must be positive")
	h.reverts(h.receiver, h.channels, withdraw(101), "balance exceeds deposit")
	// Somebody else presenting the proof is a different receiver: no such channel.
	h.reverts(h.other, h.channels, withdraw(50), "channel does not exist")

	// Full withdrawal, then a cooperative close pays only what remains.
	h.send(h.receiver, h.channels, withdraw(100))
	before = h.snapshot(h.sender.addr, h.receiver.addr, h.channelsAddr)
	bal := tokens(100)
	r = h.send(h.sender, h.channels, channelsABI.PackCooperativeClose(h.receiver.addr, obn, bal,
		h.balanceSig(h.sender, h.receiver.addr, obn, bal), h.closingSig(h.receiver, h.sender.addr, obn, bal)))
	if ev := settledEvent(t, r); ev.ReceiverTokens.Sign() != 0 {
		t.Errorf("receiver tokens after full withdrawal = %s", ev.ReceiverTokens)
	}
	h.assertDeltas(before, map[common.Address]*big.Int{})
}

func TestWithdrawThenClose(t *testing.T) {
	h := newHarness(t)
	obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
	h.send(h.receiver, h.channels, channelsABI.PackWithdraw(obn, tokens(30), h.balanceSig(h.sender, h.receiver.addr, obn, tokens(30))))

	before := h.snapshot(h.sender.addr, h.receiver.addr, h.channelsAddr)
	bal := tokens(50)
	r := h.send(h.other, h.channels, channelsABI.PackCooperativeClose(h.receiver.addr, obn, bal,
		h.balanceSig(h.sender, h.receiver.addr, obn, bal), h.closingSig(h.receiver, h.sender.addr, obn, bal)))
	if ev := settledEvent(t, r); ev.Balance.Cmp(bal) != 0 || ev.ReceiverTokens.Cmp(tokens(20)) != 0 {
		t.Errorf("settled %s / %s, want 50 / 20", ev.Balance, ev.ReceiverTokens)
	}
	h.assertDeltas(before, map[common.Address]*big.Int{h.receiver.addr: tokens(20), h.sender.addr: tokens(50), h.channelsAddr: tokens(-70)})
}

// µRaiden's settle reverted forever when the sender closed below what the receiver had
// already withdrawn; ours settles at the withdrawn amount.
func TestCloseBelowWithdrawnSettles(t *testing.T) {
	h := newHarness(t)
	obn, _ := h.createERC223(h.sender, h.receiver.addr, tokens(100))
	h.send(h.receiver, h.channels, channelsABI.PackWithdraw(obn, tokens(60), h.balanceSig(h.sender, h.receiver.addr, obn, tokens(60))))
	h.send(h.sender, h.channels, channelsABI.PackUncooperativeClose(h.receiver.addr, obn, tokens(10)))
	// No withdrawing during the challenge period.
	h.reverts(h.receiver, h.channels, channelsABI.PackWithdraw(obn, tokens(70), h.balanceSig(h.sender, h.receiver.addr, obn, tokens(70))), "channel is closing")
	h.mine(int(h.challengePeriod) + 1)
	before := h.snapshot(h.sender.addr, h.receiver.addr, h.channelsAddr)
	r := h.send(h.sender, h.channels, channelsABI.PackSettle(h.receiver.addr, obn))
	if ev := settledEvent(t, r); ev.Balance.Cmp(tokens(60)) != 0 || ev.ReceiverTokens.Sign() != 0 {
		t.Errorf("settled %s / %s, want 60 / 0", ev.Balance, ev.ReceiverTokens)
	}
	h.assertDeltas(before, map[common.Address]*big.Int{h.sender.addr: tokens(40), h.channelsAddr: tokens(-40)})
}

// A key (sender, receiver, open block) is never reused: a channel cannot settle in its
// opening block, and in any later block a new channel gets a new key. Otherwise every old
// proof, and µRaiden's stale withdrawn balance, would apply to the new channel.
func TestKeyIsNeverReused(t *testing.T) {
	h := newHarness(t)
	h.approve(h.sender, tokens(1000))
	h.sim.Commit()
	head := uint32(h.blockNumber()) + 1 // the block the pending transactions land in
	bal := tokens(5)
	nonce, _ := h.client.PendingNonceAt(t.Context(), h.sender.addr)
	var txs []*types.Transaction
	for i, data := range [][]byte{
		channelsABI.PackCreateChannel(h.receiver.addr, tokens(50)),
		channelsABI.PackCooperativeClose(h.receiver.addr, head, bal,
			h.balanceSig(h.sender, h.receiver.addr, head, bal), h.closingSig(h.receiver, h.sender.addr, head, bal)),
		channelsABI.PackCreateChannel(h.receiver.addr, tokens(60)),
	} {
		opts := *h.sender.opts
		opts.Nonce, opts.GasLimit = new(big.Int).SetUint64(nonce+uint64(i)), 300_000
		tx, err := bindTransact(h, &opts, data)
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	var statuses []uint64
	for _, r := range mineTxs(t, h.sim, txs...) {
		if r.BlockNumber.Uint64() != uint64(head) {
			t.Fatalf("setup: transaction in block %s, want %d", r.BlockNumber, head)
		}
		statuses = append(statuses, r.Status)
	}
	if !slices.Equal(statuses, []uint64{1, 0, 0}) {
		t.Errorf("open, close, reopen in one block: statuses %v, want [1 0 0]", statuses)
	}
	if ci := h.mustInfo(h.sender.addr, h.receiver.addr, head); ci.deposit.Cmp(tokens(50)) != 0 {
		t.Errorf("deposit %s, want the first channel's 50", ci.deposit)
	}
	// Gas estimation runs at the head's number, the open block: creating again is refused.
	h.reverts(h.sender, h.channels, channelsABI.PackCreateChannel(h.receiver.addr, tokens(1)), "channel already exists")
	h.sim.Commit()
	// Closed in a later block, the proofs of the channel are dead for good.
	closeData := channelsABI.PackCooperativeClose(h.receiver.addr, head, bal,
		h.balanceSig(h.sender, h.receiver.addr, head, bal), h.closingSig(h.receiver, h.sender.addr, head, bal))
	h.send(h.other, h.channels, closeData)
	h.reverts(h.other, h.channels, closeData, "channel does not exist")
}

func TestTrustedDelegates(t *testing.T) {
	h := newHarness(t)
	delegateAddr := h.deploy(contracts.TrustedDelegateMetaData.Bin, delegateABI.PackConstructor(h.channelsAddr, h.tokenAddr))
	delegate := delegateABI.Instance(h.client, delegateAddr)
	h.send(h.owner, h.token, tokenABI.PackTransfer(delegateAddr, tokens(1000)))

	// Not trusted yet.
	h.reverts(h.other, delegate, delegateABI.PackOpen(h.sender.addr, h.receiver.addr, tokens(100)), "caller is not a trusted contract")
	h.reverts(h.other, h.channels, channelsABI.PackAddTrustedContracts([]common.Address{delegateAddr}), "caller is not the owner")

	r := h.send(h.owner, h.channels, channelsABI.PackAddTrustedContracts([]common.Address{delegateAddr, h.other.addr}))
	if n := countEvents(r, "TrustedContract"); n != 1 {
		t.Errorf("%d TrustedContract events, want 1 (accounts without code are skipped)", n)
	}
	r = h.send(h.other, delegate, delegateABI.PackOpen(h.sender.addr, h.receiver.addr, tokens(100)))
	obn := uint32(r.BlockNumber.Uint64())
	h.send(h.other, delegate, delegateABI.PackTopUp(h.sender.addr, h.receiver.addr, obn, tokens(20)))
	if ci := h.mustInfo(h.sender.addr, h.receiver.addr, obn); ci.deposit.Cmp(tokens(120)) != 0 {
		t.Errorf("delegated deposit = %s, want 120", ci.deposit)
	}
	if b := h.tokenBalance(delegateAddr); b.Cmp(tokens(880)) != 0 {
		t.Errorf("delegate paid %s, want 120 of 1000", new(big.Int).Sub(tokens(1000), b))
	}
	// The channel is the sender's: the sender closes it.
	h.send(h.sender, h.channels, channelsABI.PackUncooperativeClose(h.receiver.addr, obn, tokens(0)))

	h.reverts(h.other, h.channels, channelsABI.PackRemoveTrustedContracts([]common.Address{delegateAddr}), "caller is not the owner")
	r = h.send(h.owner, h.channels, channelsABI.PackRemoveTrustedContracts([]common.Address{delegateAddr}))
	if n := countEvents(r, "TrustedContract"); n != 1 {
		t.Errorf("%d TrustedContract events on removal, want 1", n)
	}
	h.reverts(h.other, delegate, delegateABI.PackOpen(h.sender.addr, h.receiver.addr, tokens(1)), "caller is not a trusted contract")
}

// The contract's recovery and the Go signer agree, and every signed field matters.
func TestExtractSignaturesAgreeWithGo(t *testing.T) {
	h := newHarness(t)
	const obn = 1234
	bal := tokens(77)
	bsig := h.balanceSig(h.sender, h.receiver.addr, obn, bal)
	csig := h.closingSig(h.receiver, h.sender.addr, obn, bal)

	extractBalance := func(receiver common.Address, block uint32, balance *big.Int, sig []byte) common.Address {
		out, err := h.call(h.channels, channelsABI.PackExtractBalanceProofSignature(receiver, block, balance, sig))
		if err != nil {
			return common.Address{}
		}
		a, _ := channelsABI.UnpackExtractBalanceProofSignature(out)
		return a
	}
	extractClosing := func(sender common.Address, block uint32, balance *big.Int, sig []byte) common.Address {
		out, err := h.call(h.channels, channelsABI.PackExtractClosingSignature(sender, block, balance, sig))
		if err != nil {
			return common.Address{}
		}
		a, _ := channelsABI.UnpackExtractClosingSignature(out)
		return a
	}
	if got := extractBalance(h.receiver.addr, obn, bal, bsig); got != h.sender.addr {
		t.Errorf("extractBalanceProofSignature = %s, want sender %s", got, h.sender.addr)
	}
	if got := extractClosing(h.sender.addr, obn, bal, csig); got != h.receiver.addr {
		t.Errorf("extractClosingSignature = %s, want receiver %s", got, h.receiver.addr)
	}
	for name, got := range map[string]common.Address{
		"balance proof, receiver":   extractBalance(h.other.addr, obn, bal, bsig),
		"balance proof, open block": extractBalance(h.receiver.addr, obn+1, bal, bsig),
		"balance proof, balance":    extractBalance(h.receiver.addr, obn, tokens(78), bsig),
		"balance proof, signature":  extractBalance(h.receiver.addr, obn, bal, flipByte(bsig, 10)),
		"closing, sender":           extractClosing(h.other.addr, obn, bal, csig),
		"closing, open block":       extractClosing(h.sender.addr, obn-1, bal, csig),
		"closing, balance":          extractClosing(h.sender.addr, obn, tokens(76), csig),
		"closing, signature":        extractClosing(h.sender.addr, obn, bal, flipByte(csig, 40)),
		"closing sig as balance":    extractBalance(h.receiver.addr, obn, bal, csig),
	} {
		if got == h.sender.addr || got == h.receiver.addr {
			t.Errorf("%s changed, still recovers %s", name, got)
		}
	}
	// The contract address is signed too: a second deployment does not accept the proof.
	other := h.deploy(contracts.RaidenMicroTransferChannelsMetaData.Bin, channelsABI.PackConstructor(h.tokenAddr, 500, nil))
	out, err := channelsABI.Instance(h.client, other).CallRaw(nil, channelsABI.PackExtractBalanceProofSignature(h.receiver.addr, obn, bal, bsig))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := channelsABI.UnpackExtractBalanceProofSignature(out); a == h.sender.addr {
		t.Error("another contract recovers the same sender")
	}
}

// The Go side must accept exactly the signatures the contract accepts: a server that takes a
// proof the contract rejects has taken worthless money.
func TestSignatureAcceptanceMatchesGo(t *testing.T) {
	h := newHarness(t)
	const obn = 77
	bal := tokens(9)
	good := h.balanceSig(h.sender, h.receiver.addr, obn, bal)
	halfN := new(big.Int).Rsh(secp256k1N, 1)
	withS := func(s *big.Int) []byte {
		out := slices.Clone(good)
		s.FillBytes(out[32:64])
		return out
	}
	withR := func(r *big.Int) []byte {
		out := slices.Clone(good)
		r.FillBytes(out[:32])
		return out
	}
	cases := map[string][]byte{
		"good":      good,
		"s = N/2":   withS(halfN),
		"s = N/2+1": withS(new(big.Int).Add(halfN, big.NewInt(1))),
		"r = 0":     withR(new(big.Int)),
		"r = N-1":   withR(new(big.Int).Sub(secp256k1N, big.NewInt(1))),
		"64 bytes":  good[:64],
		"66 bytes":  append(slices.Clone(good), 0),
	}
	for v := range 256 {
		sig := slices.Clone(good)
		sig[64] = byte(v)
		cases[fmt.Sprintf("v = %d", v)] = sig
	}
	for name, sig := range cases {
		hash, _ := rdn.Balance{Receiver: h.receiver.addr, OpenBlock: obn, Balance: bal, Contract: h.channelsAddr}.Hash()
		goSigner, goErr := rdn.Recover(hash, sig)
		out, evmErr := h.call(h.channels, channelsABI.PackExtractBalanceProofSignature(h.receiver.addr, obn, bal, sig))
		var evmSigner common.Address
		if evmErr == nil {
			evmSigner, _ = channelsABI.UnpackExtractBalanceProofSignature(out)
		}
		if (goErr == nil) != (evmErr == nil) || goSigner != evmSigner {
			t.Errorf("%s: Go %s (%v), contract %s (%v)", name, goSigner, goErr, evmSigner, evmErr)
		}
	}
}
