package ledger

import (
	"bytes"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/uraiden/uraiden/rdn"
)

func FuzzUnmarshalChannel(f *testing.F) {
	c := newChannel(alice, big.NewInt(1e18))
	f.Add(c.marshal())
	c.TopUps = []TopUp{{Block: 12, Amount: big.NewInt(7)}, {Block: 1 << 40, Amount: new(big.Int).Lsh(big.NewInt(1), 191)}}
	c.accept(big.NewInt(500), sig(500), rdn.SchemeLegacy, big.NewInt(100))
	c.accept(big.NewInt(300), sig(300), rdn.SchemeLegacy, big.NewInt(100))
	f.Add(c.marshal())
	c.State, c.SettleBlock = StateClosing, 99
	c.CloseBalance.SetInt64(42)
	c.Withdrawn.SetInt64(11)
	c.ClosingSignature = sig(42)
	f.Add(c.marshal())
	c.Retries = []Retry{{Balance: bal256(300), Key: RetryKey{1, 2}, At: time.UnixMilli(1_790_000_000_123), Served: 1},
		{Balance: bal256(500), Key: RetryKey{15: 9}, At: time.UnixMilli(1_790_000_000_456)}}
	f.Add(c.marshal())
	c.ClosingSignature = rdn.Signature{}
	f.Add(c.marshal())
	f.Add([]byte{})
	f.Add([]byte{3})
	f.Add([]byte{1, 1, 33})
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := unmarshalChannel(alice, data)
		if err != nil {
			if c != nil {
				t.Fatal("unmarshalChannel returned a channel and an error")
			}
			return
		}
		// What marshal writes is canonical: it decodes and encodes to itself. (The decoder
		// tolerates non-canonical input, e.g. big integers with leading zero bytes, so the
		// fuzzed bytes themselves need not come back.)
		m := c.marshal()
		c2, err := unmarshalChannel(alice, m)
		if err != nil {
			t.Fatalf("re-marshaled channel does not decode: %v", err)
		}
		if !bytes.Equal(c2.marshal(), m) {
			t.Fatalf("round trip changed the record:\n%x\n%x", m, c2.marshal())
		}
		if c2.State != c.State || c2.Balance.Cmp(c.Balance) != 0 || c2.Deposit.Cmp(c.Deposit) != 0 ||
			len(c2.TopUps) != len(c.TopUps) || len(c2.Accepted) != len(c.Accepted) ||
			c2.Signature != c.Signature || c2.ClosingSignature != c.ClosingSignature || c2.SettleBlock != c.SettleBlock {
			t.Fatalf("round trip changed the channel: %+v vs %+v", c, c2)
		}
		if !sameRetries(c.Retries, c2.Retries) {
			t.Fatalf("round trip changed the retries: %+v vs %+v", c.Retries, c2.Retries)
		}
		if !bytes.Equal(c.clone().marshal(), m) {
			t.Fatal("a clone marshals differently")
		}
	})
}

func sameRetries(a, b []Retry) bool {
	return slices.EqualFunc(a, b, func(x, y Retry) bool {
		return x.Balance == y.Balance && x.Key == y.Key && x.At.Equal(y.At) && x.Served == y.Served
	})
}
