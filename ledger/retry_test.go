package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/uraiden/uraiden/rdn"
)

var (
	t0     = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	window = 30 * time.Second
	keyA   = RetryKey{0xa}
	keyB   = RetryKey{0xb}
)

// keyed is a payment of balance for price 5 whose request carries key, seen at t0+after.
func keyed(balance int64, key RetryKey, after time.Duration) Payment {
	return Payment{ID: alice, Balance: big.NewInt(balance), Signature: sig(balance), Price: big.NewInt(5),
		RetryKey: key, Seen: t0.Add(after), RetryWindow: window}
}

func payKeyed(t *testing.T, l *Ledger, p Payment) PayResult {
	t.Helper()
	r, err := l.Pay(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A retry of a paid request is served, uncharged, within the window, at most
// maxRetriesServed times; its count survives a restart. Everything else that reuses the
// balance is refused as before.
func TestRetryIsServedUncharged(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	create(t, l, alice, 1000, 10)
	if r := payKeyed(t, l, keyed(5, keyA, 0)); r.Outcome != Accepted {
		t.Fatalf("payment: %v", r.Outcome)
	}
	charged := l.Stats().ChargedSum.Int64()
	r := payKeyed(t, l, keyed(5, keyA, 10*time.Second))
	if r.Outcome != Retried || r.Charged.Int64() != 5 || r.Balance.Int64() != 5 {
		t.Fatalf("retry: %v, charged %s, balance %s; want retried, charged 5", r.Outcome, r.Charged, r.Balance)
	}
	if got := l.Stats().ChargedSum.Int64(); got != charged {
		t.Errorf("charged sum %d after the retry, was %d", got, charged)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openDir(t, dir)
	defer l.Close()
	c, _ := l.Channel(alice)
	if len(c.Retries) != 1 || c.Retries[0].Served != 1 || !c.Retries[0].At.Equal(t0) || c.Charged.Int64() != 5 {
		t.Fatalf("after a restart: retries %+v, charged %s", c.Retries, c.Charged)
	}
	for i := 2; i <= maxRetriesServed; i++ {
		if r := payKeyed(t, l, keyed(5, keyA, time.Second)); r.Outcome != Retried {
			t.Fatalf("retry %d: %v", i, r.Outcome)
		}
	}
	if r := payKeyed(t, l, keyed(5, keyA, time.Second)); r.Outcome != Replayed {
		t.Errorf("retry %d, one more than a payment buys: %v", maxRetriesServed+1, r.Outcome)
	}
	if c, _ := l.Channel(alice); c.Charged.Int64() != 5 {
		t.Errorf("charged %s after the retries, want 5", c.Charged)
	}
}

// What is not a retry of the request that paid gets the refusal it got before.
func TestWhatIsNotARetryIsRefused(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 1000, 10)
	payKeyed(t, l, keyed(5, keyA, 0))
	payKeyed(t, l, keyed(10, keyB, time.Second))
	payKeyed(t, l, keyed(15, RetryKey{}, 2*time.Second))
	noWindow := keyed(10, keyB, 3*time.Second)
	noWindow.RetryWindow = 0
	for _, tc := range []struct {
		name string
		p    Payment
		want Outcome
	}{
		{"after the window", keyed(5, keyA, window+time.Millisecond), InvalidAmount},
		{"the window's last millisecond", keyed(5, keyA, window), Retried},
		{"another key", keyed(10, keyA, 3*time.Second), InvalidAmount},
		{"the same key on another used balance", keyed(15, keyB, 3*time.Second), Replayed},
		{"no key", keyed(10, RetryKey{}, 3*time.Second), InvalidAmount},
		{"a request that paid without a key", keyed(15, keyA, 3*time.Second), Replayed},
		{"retries turned off", noWindow, InvalidAmount},
		{"a clock behind the one that took the payment", keyed(10, keyB, -20*time.Second), Retried},
		{"a clock far behind", keyed(10, keyB, -window-2*time.Second), InvalidAmount},
		{"a fresh balance with a remembered key pays", keyed(20, keyA, 3*time.Second), Accepted},
	} {
		if r := payKeyed(t, l, tc.p); r.Outcome != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, r.Outcome, tc.want)
		}
	}
	if c, _ := l.Channel(alice); c.Charged.Int64() != 20 {
		t.Errorf("charged %s, want the 4 payments' 20", c.Charged)
	}
}

// The channel remembers the last maxRetries keyed payments, and none out of the window: the
// record shrinks back to the encoding older binaries read once retries stop.
func TestRetriesStayBounded(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 1000, 10)
	for i := range int64(maxRetries + 2) {
		payKeyed(t, l, keyed(5*(i+1), RetryKey{byte(i + 1)}, time.Duration(i)*time.Millisecond))
	}
	c, _ := l.Channel(alice)
	if len(c.Retries) != maxRetries || c.Retries[0].BalanceInt().Int64() != 15 {
		t.Fatalf("retries %+v, want the last %d", c.Retries, maxRetries)
	}
	if r := payKeyed(t, l, keyed(5, RetryKey{1}, time.Second)); r.Outcome != InvalidAmount {
		t.Errorf("retry of a forgotten payment: %v", r.Outcome)
	}
	if r := payKeyed(t, l, keyed(15, RetryKey{3}, time.Second)); r.Outcome != Retried {
		t.Errorf("retry of the oldest remembered payment: %v", r.Outcome)
	}
	// A payment after the window, with no key of its own, forgets them all.
	payKeyed(t, l, keyed(100, RetryKey{}, window+time.Second))
	c, _ = l.Channel(alice)
	if len(c.Retries) != 0 || c.marshal()[0] != encodingVersion {
		t.Errorf("after the window: retries %+v, version %d", c.Retries, c.marshal()[0])
	}
}

// Concurrent copies of one retry are counted under the channel's lock: exactly
// maxRetriesServed are served.
func TestConcurrentRetriesAreCounted(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 1000, 10)
	payKeyed(t, l, keyed(5, keyA, 0))
	var mu sync.Mutex
	counts := map[Outcome]int{}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			r, err := l.Pay(context.Background(), keyed(5, keyA, time.Second))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			counts[r.Outcome]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[Retried] != maxRetriesServed || counts[Replayed] != 100-maxRetriesServed {
		t.Errorf("outcomes %v, want %d retried", counts, maxRetriesServed)
	}
}

// Records written before retries existed decode unchanged, and are written again byte for
// byte. The bytes are those the previous version wrote (a channel with a top-up, two
// accepted proofs and, for version 2, a closing signature).
func TestOlderRecordsDecode(t *testing.T) {
	for _, tc := range []struct{ version, hex string }{
		{"1", "01010203e8010c01070132000000000000000000000000000000000000000000000000000000000000003200000000000000000000000000000000000000000000000000000000000000001b010a0002011e0132000000"},
		{"2", "02020203e8010c01070132000000000000000000000000000000000000000000000000000000000000003200000000000000000000000000000000000000000000000000000000000000001b010a0002011e0132000000000000000000000000000000000000000000000000000000000000000000003200000000000000000000000000000000000000000000000000000000000000001b"},
	} {
		data, _ := hex.DecodeString(tc.hex)
		c, err := unmarshalChannel(alice, data)
		if err != nil {
			t.Fatalf("version %s: %v", tc.version, err)
		}
		if c.Balance.Int64() != 50 || c.Charged.Int64() != 10 || len(c.Accepted) != 2 || len(c.TopUps) != 1 || c.Retries != nil ||
			c.Signature != sig(50) || (tc.version == "2") != c.CloseSigned() {
			t.Errorf("version %s: %+v", tc.version, c)
		}
		if got := hex.EncodeToString(c.marshal()); got != tc.hex {
			t.Errorf("version %s written again as %s", tc.version, got)
		}
	}
}

func TestRetriesEncoding(t *testing.T) {
	c := newChannel(alice, big.NewInt(100))
	c.accept(big.NewInt(5), sig(5), rdn.SchemeLegacy, big.NewInt(5))
	c.rememberRetry(keyed(5, keyA, 1500*time.Microsecond))
	c.Retries[0].Served = 2
	data := c.marshal()
	if data[0] != encodingVersionRetries {
		t.Fatalf("a channel with retries is written as version %d", data[0])
	}
	got, err := unmarshalChannel(alice, data)
	if err != nil || len(got.Retries) != 1 || got.CloseSigned() {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	r := got.Retries[0]
	if r.BalanceInt().Int64() != 5 || r.Key != keyA || !r.At.Equal(t0.Add(time.Millisecond)) || r.Served != 2 {
		t.Errorf("retry read back as %+v", r)
	}
	for n := len(data) - 1; n > len(data)-30; n-- {
		if _, err := unmarshalChannel(alice, data[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: decoded", n, len(data))
		}
	}
}

// bal256 is n as Retry.Balance holds it.
func bal256(n int64) [32]byte {
	b, _ := retryBalance(big.NewInt(n))
	return b
}

// Retry.Balance is held by value now; the entries are written byte for byte as when it was a
// *big.Int (appendBig: length, then the bytes without leading zeros), so records written
// before read back the same and older binaries read what this one writes.
func TestRetryEntryEncodingIsUnchanged(t *testing.T) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	for _, bal := range []*big.Int{big.NewInt(0), big.NewInt(5), new(big.Int).Lsh(big.NewInt(1), 64), max} {
		at := time.UnixMilli(1_790_000_000_123)
		balance, ok := retryBalance(bal)
		if !ok {
			t.Fatalf("%s does not fit", bal)
		}
		got := appendRetries(nil, []Retry{{Balance: balance, Key: keyA, At: at, Served: 2}})
		// The entry as the pointer version wrote it.
		want := binary.AppendUvarint(nil, 1)
		want = appendBig(want, bal)
		want = append(want, keyA[:]...)
		want = binary.AppendUvarint(want, uint64(at.UnixMilli()))
		want = append(want, 2)
		if !bytes.Equal(got, want) {
			t.Errorf("balance %s: written %x, before %x", bal, got, want)
		}
		r := reader{b: want}
		back := r.retries()
		if r.err != nil || len(r.b) != 0 || len(back) != 1 || back[0].BalanceInt().Cmp(bal) != 0 || back[0].Served != 2 {
			t.Errorf("balance %s: read back %+v, %v", bal, back, r.err)
		}
	}
	// A balance of 33 bytes was never written and is corrupt.
	bad := binary.AppendUvarint(nil, 1)
	bad = appendBig(bad, new(big.Int).Lsh(big.NewInt(1), 256))
	bad = append(bad, keyA[:]...)
	bad = append(bad, 1, 0)
	if r := (reader{b: bad}); r.retries() == nil || r.err == nil {
		t.Error("a 33-byte balance decoded")
	}
	if _, ok := retryBalance(new(big.Int).Lsh(big.NewInt(1), 256)); ok {
		t.Error("2^256 fits Retry.Balance")
	}
	if _, ok := retryBalance(big.NewInt(-1)); ok {
		t.Error("-1 fits Retry.Balance")
	}
}
