package ledger

import (
	"math/big"
	"testing"
	"time"

	"github.com/uraiden/uraiden/rdn"
)

// go test -run - -bench RetryRecord -benchmem ./ledger: what a payment does to its channel
// in memory (accept, remember the retry, encode the record), with and without a retry key;
// the difference is what remembering retries costs a payment before the store sees it.
func BenchmarkRetryRecord(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		name := "no-key"
		if keyed {
			name = "key"
		}
		b.Run(name, func(b *testing.B) {
			c := newChannel(alice, new(big.Int).Lsh(big.NewInt(1), 100))
			// Prices of the bench's size (wei of a token with 18 decimals), each balance paying one.
			bal, price := new(big.Int), big.NewInt(1_000_000_000_000_000)
			seen := t0
			var n int
			b.ReportAllocs()
			for b.Loop() {
				bal = new(big.Int).Add(bal, price)
				seen = seen.Add(time.Millisecond)
				p := Payment{ID: alice, Balance: bal, Signature: sig(1), Scheme: rdn.SchemeLegacy, Price: price, Seen: seen, RetryWindow: window}
				if keyed {
					p.RetryKey = RetryKey{byte(n), byte(n >> 8), 0xa}
				}
				_ = paymentDelta(c, p)
				c.accept(p.Balance, p.Signature, p.Scheme, p.Price)
				c.rememberRetry(p)
				n += len(c.marshal())
			}
			b.ReportMetric(float64(n)/float64(b.N), "record-bytes")
		})
	}
}
