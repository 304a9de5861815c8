package ledger

import (
	"context"
	"math/big"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// benchPay runs payments in parallel on many channels: go test -bench Pay -benchmem ./ledger
// compares the durable ledger (an fsync per group commit) with one that never syncs.
func benchPay(b *testing.B, noSync bool) {
	l, err := Open(Options{Dir: b.TempDir(), Identity: testIdentity, NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const channels = 1000
	var events []Event
	for i := range channels {
		id := ChannelID{Sender: common.BigToAddress(big.NewInt(int64(i + 1))), OpenBlock: 1}
		events = append(events, Event{Kind: Created, Channel: id, Block: 1, Amount: new(big.Int).Lsh(big.NewInt(1), 100)})
	}
	if err := l.Apply(context.Background(), Update{Events: events, Sync: SyncState{Cursor: 1, Confirmed: 1}}); err != nil {
		b.Fatal(err)
	}
	var next [channels]atomic.Int64
	var turn atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(25) // 50 goroutines on 2 cores, like 50 gRPC streams
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := turn.Add(1) % channels
			bal := next[i].Add(1)
			id := ChannelID{Sender: common.BigToAddress(big.NewInt(i + 1)), OpenBlock: 1}
			r, err := l.Pay(context.Background(), Payment{ID: id, Balance: big.NewInt(bal), Signature: sig(bal), Price: big.NewInt(1)})
			if err != nil || r.Outcome != Accepted {
				b.Errorf("pay: %v %v", r.Outcome, err)
				return
			}
		}
	})
}

func BenchmarkPayDurable(b *testing.B) { benchPay(b, false) }
func BenchmarkPayNoSync(b *testing.B)  { benchPay(b, true) }
