package ledger

import (
	"context"
	"fmt"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// benchPay runs payments on many channels: go test -bench Pay -benchmem ./ledger compares the
// durable ledger (an fsync per group commit) with one that never syncs. In parallel, 50
// goroutines share the commits; serially, every payment waits for a commit of its own.
func benchPay(b *testing.B, noSync, parallel bool) { benchPayKeyed(b, noSync, parallel, false) }

// benchPayKeyed is benchPay, each payment with a retry key when keyed, as Envoy's
// x-request-id gives every request one: the difference is what remembering retries costs.
func benchPayKeyed(b *testing.B, noSync, parallel, keyed bool) {
	l, err := Open(Options{Dir: b.TempDir(), Identity: testIdentity, NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.Apply(context.Background(), Update{Events: benchChannels(0, benchChannelCount, false), Sync: SyncState{Cursor: 1, Confirmed: 1}}); err != nil {
		b.Fatal(err)
	}
	payOnChannels(b, l, parallel, keyed)
}

// benchChannelCount is how many channels the payment benchmarks pay on.
const benchChannelCount = 1000

// benchChannels are the Created events of the benchmarks' channels from, …, to-1; seeded
// events keep no undo record.
func benchChannels(from, to int, seeded bool) []Event {
	var events []Event
	for i := from; i < to; i++ {
		id := rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(int64(i + 1))), OpenBlock: 1}
		events = append(events, Event{Kind: Created, Channel: id, Block: 1, Amount: new(big.Int).Lsh(big.NewInt(1), 100), Seeded: seeded})
	}
	return events
}

// payOnChannels pays b.N times on the benchmarks' channels in turn, from 50 goroutines when
// parallel.
func payOnChannels(b *testing.B, l *Ledger, parallel, keyed bool) {
	const channels = benchChannelCount
	var next [channels]atomic.Int64
	var turn atomic.Int64
	payNext := func() bool {
		i := turn.Add(1) % channels
		bal := next[i].Add(1)
		id := rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(i + 1)), OpenBlock: 1}
		p := Payment{ID: id, Balance: big.NewInt(bal), Signature: sig(bal), Price: big.NewInt(1)}
		if keyed {
			p.RetryKey, p.Seen, p.RetryWindow = RetryKey{byte(bal), byte(bal >> 8), byte(i), 1}, time.Now(), 30*time.Second
		}
		r, err := l.Pay(context.Background(), p)
		if err != nil || r.Outcome != Accepted {
			b.Errorf("pay: %v %v", r.Outcome, err)
			return false
		}
		return true
	}
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			if !payNext() {
				return
			}
		}
		return
	}
	b.SetParallelism(25) // 50 goroutines on 2 cores, like 50 gRPC streams
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() && payNext() {
		}
	})
}

func BenchmarkPayDurable(b *testing.B) { benchPay(b, false, true) }
func BenchmarkPayNoSync(b *testing.B)  { benchPay(b, true, true) }

// go test -run - -bench 'Pay(Durable|NoSync)(RetryKey)?$' -benchmem ./ledger
func BenchmarkPayDurableRetryKey(b *testing.B) { benchPayKeyed(b, false, true, true) }
func BenchmarkPayNoSyncRetryKey(b *testing.B)  { benchPayKeyed(b, true, true, true) }
func BenchmarkPaySerialDurable(b *testing.B)   { benchPay(b, false, false) }
func BenchmarkPaySerialNoSync(b *testing.B)    { benchPay(b, true, false) }

// BenchmarkPayEtcd pays on the etcd store of a real three-member cluster in this process:
// 50 goroutines on 1,000 channels, as BenchmarkPayDurable does on Badger; the members share
// the cores. go test -run - -bench 'Pay(Etcd|Durable)$' -benchmem ./ledger
func BenchmarkPayEtcd(b *testing.B) { benchPayEtcd(b, true) }

// BenchmarkPaySerialEtcd is one payment per transaction: the latency of a quorum write.
func BenchmarkPaySerialEtcd(b *testing.B) { benchPayEtcd(b, false) }

// etcdBenchRound names each round's prefix: the benchmark function runs once per b.N, and
// every round needs a fresh ledger.
var etcdBenchRound atomic.Int64

func benchPayEtcd(b *testing.B, parallel bool) {
	c := cluster(b)
	prefix := fmt.Sprintf("/bench/%s/%d/", b.Name(), etcdBenchRound.Add(1))
	l, err := OpenEtcd(b.Context(), EtcdOptions{Client: etcdClient(b, c), Prefix: prefix, Identity: testIdentity})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	leadAt(b, c, l, prefix+"leader")
	// Seeded creations (no undo records), in one update written in parts.
	if err := l.Apply(b.Context(), Update{Events: benchChannels(0, benchChannelCount, true), Sync: SyncState{Cursor: 1, Confirmed: 1}}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	payOnChannels(b, l, parallel, false)
}

// go test -bench Encoding -benchmem ./ledger: a channel record is encoded for every payment
// and decoded when a channel is read from disk; the counters are encoded once per commit.
func BenchmarkEncoding(b *testing.B) {
	c := newChannel(alice, big.NewInt(1_000_000))
	c.accept(big.NewInt(1000), sig(1000), rdn.SchemeLegacy, big.NewInt(10))
	c.accept(big.NewInt(1010), sig(1010), rdn.SchemeLegacy, big.NewInt(10))
	data := c.marshal()
	b.Run("channel-marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.marshal()
		}
	})
	b.Run("channel-unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := unmarshalChannel(alice, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	st := zeroStats()
	st.add(contribution(c))
	b.Run("stats-marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			st.marshal()
		}
	})
}
