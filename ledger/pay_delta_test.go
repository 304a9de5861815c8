package ledger

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// TestPaymentDeltaIsStatsDelta checks the fast path of decide against statsDelta on the
// same payments: fresh balances, credit, out-of-order proofs, unconfirmed top-ups.
func TestPaymentDeltaIsStatsDelta(t *testing.T) {
	id := rdn.ChannelID{Sender: common.HexToAddress("0x5e"), OpenBlock: 10}
	c := newChannel(id, big.NewInt(1000))
	c.TopUps = []TopUp{{Block: 50, Amount: big.NewInt(300)}} // above the confirmed height
	const confirmed = 20
	price := big.NewInt(5)
	for i, balance := range []int64{5, 10, 30, 15, 20, 25, 40, 35} {
		p := Payment{ID: id, Balance: big.NewInt(balance), Signature: sig(balance), Price: price}
		if c.hasTopUpsBelow(confirmed) {
			t.Fatal("a top-up above the confirmed height would be folded")
		}
		fast := paymentDelta(c, p)
		before := c.clone()
		c.foldTopUps(confirmed)
		c.accept(p.Balance, p.Signature, p.Scheme, p.Price)
		slow := statsDelta(before, c)
		if !sameStats(fast, slow) {
			t.Fatalf("payment %d (balance %d): fast %+v, statsDelta %+v", i, balance, fast, slow)
		}
	}
	if !c.hasTopUpsBelow(50) {
		t.Fatal("a top-up at the confirmed height is not folded")
	}
}

// sameStats compares deltas by value, an empty map being the same as none and a nil sum
// the same as zero.
func sameStats(a, b Stats) bool {
	if a.OpenChannels != b.OpenChannels || a.ClosingChannels != b.ClosingChannels ||
		a.SettledChannels != b.SettledChannels || a.UniqueSenders != b.UniqueSenders {
		return false
	}
	orZero := func(x *big.Int) *big.Int {
		if x == nil {
			return new(big.Int)
		}
		return x
	}
	for _, pair := range [][2]*big.Int{{a.DepositSum, b.DepositSum}, {a.BalanceSum, b.BalanceSum},
		{a.ChargedSum, b.ChargedSum}, {a.WithdrawnSum, b.WithdrawnSum}, {a.SettledSum, b.SettledSum}} {
		if orZero(pair[0]).Cmp(orZero(pair[1])) != 0 {
			return false
		}
	}
	if len(a.pending) != len(b.pending) || len(a.senders) != len(b.senders) {
		return false
	}
	for k, v := range a.pending {
		if w, ok := b.pending[k]; !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	for k, v := range a.senders {
		if b.senders[k] != v {
			return false
		}
	}
	return true
}
