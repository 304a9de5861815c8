package ledger

import (
	"context"
	"encoding/binary"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// recounted derives the counters from every channel on disk, the oracle the incremental
// counters must equal.
func recounted(t *testing.T, l *Ledger) (Stats, map[common.Address]int64) {
	t.Helper()
	var s Stats
	var senders map[common.Address]int64
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		s, senders, err = recount(txn, l.Sync().Confirmed)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, senders
}

// storedSenders reads the per-sender counts of open channels.
func storedSenders(t *testing.T, l *Ledger) map[common.Address]int64 {
	t.Helper()
	out := map[common.Address]int64{}
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixSender})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			n, _ := binary.Uvarint(v)
			out[common.BytesToAddress(it.Item().Key()[len(prefixSender):])] = int64(n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertStatsEqual(t *testing.T, step string, got, want Stats, heights ...uint64) {
	t.Helper()
	if got.OpenChannels != want.OpenChannels || got.ClosingChannels != want.ClosingChannels ||
		got.SettledChannels != want.SettledChannels || got.UniqueSenders != want.UniqueSenders {
		t.Fatalf("%s: counts %d/%d/%d senders %d, recount %d/%d/%d senders %d", step,
			got.OpenChannels, got.ClosingChannels, got.SettledChannels, got.UniqueSenders,
			want.OpenChannels, want.ClosingChannels, want.SettledChannels, want.UniqueSenders)
	}
	for name, pair := range map[string][2]*big.Int{
		"deposit": {got.DepositSum, want.DepositSum}, "balance": {got.BalanceSum, want.BalanceSum},
		"charged": {got.ChargedSum, want.ChargedSum}, "withdrawn": {got.WithdrawnSum, want.WithdrawnSum},
		"settled": {got.SettledSum, want.SettledSum},
	} {
		if pair[0].Cmp(pair[1]) != 0 {
			t.Fatalf("%s: %s sum %s, recount %s", step, name, pair[0], pair[1])
		}
	}
	for _, h := range heights {
		if g, w := got.UnconfirmedDeposits(h), want.UnconfirmedDeposits(h); g.Cmp(w) != 0 {
			t.Fatalf("%s: unconfirmed deposits at %d: %s, recount %s", step, h, g, w)
		}
	}
}

// A random history of creations, top-ups, payments, close requests, cooperative closes,
// withdrawals and settlements over a few senders: after every step the counters kept by
// deltas equal a recount of every channel, and so do they after a reopen.
func TestStatsStayExact(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	rng := rand.New(rand.NewPCG(5, 7))
	senders := []common.Address{common.HexToAddress("0xa1"), common.HexToAddress("0xa2"), common.HexToAddress("0xa3")}
	var ids []rdn.ChannelID
	block, confirmed := uint64(10), uint64(0)
	apply := func(evs ...Event) {
		t.Helper()
		if err := l.Apply(context.Background(), Update{Events: evs, Sync: SyncState{Cursor: block, Confirmed: confirmed}}); err != nil {
			t.Fatal(err)
		}
	}
	signer := func(id rdn.ChannelID, b *big.Int, _ rdn.Scheme) (rdn.Signature, error) {
		return sig(b.Int64() + 1_000_000), nil
	}
	for step := range 300 {
		block++
		if rng.IntN(3) == 0 {
			confirmed = block - uint64(rng.IntN(4)) // rises, never falls
			if confirmed < l.Sync().Confirmed {
				confirmed = l.Sync().Confirmed
			}
		}
		var id rdn.ChannelID
		if len(ids) > 0 {
			id = ids[rng.IntN(len(ids))]
		}
		c, _ := l.Channel(id)
		switch k := rng.IntN(10); {
		case k < 2 || len(ids) == 0:
			id = rdn.ChannelID{Sender: senders[rng.IntN(len(senders))], OpenBlock: uint32(block)}
			ids = append(ids, id)
			apply(Event{Kind: Created, Channel: id, Block: block, Amount: big.NewInt(int64(100 + rng.IntN(100)))})
		case k == 2 && c.State != StateSettled:
			apply(Event{Kind: ToppedUp, Channel: id, Block: block, Amount: big.NewInt(int64(1 + rng.IntN(50)))})
		case k <= 5 && c.State == StateOpen:
			b := c.Balance.Int64() + int64(1+rng.IntN(5))
			if _, err := l.Pay(context.Background(), Payment{ID: id, Balance: big.NewInt(b), Signature: sig(b), Price: big.NewInt(1)}); err != nil {
				t.Fatal(err)
			}
		case k == 6 && c.State == StateOpen:
			apply(Event{Kind: CloseRequested, Channel: id, Block: block, Amount: c.Balance, SettleBlock: block + 500})
		case k == 7 && c.State != StateSettled:
			if _, err := l.CloseCooperatively(context.Background(), id, c.Balance, rdn.SchemeLegacy, signer); err != nil {
				t.Fatal(err)
			}
		case k == 8 && c.State != StateSettled && c.Balance.Sign() > 0:
			apply(Event{Kind: Withdrawn, Channel: id, Block: block, Amount: big.NewInt(1)})
		case k == 9 && c.State == StateClosing:
			apply(Event{Kind: Settled, Channel: id, Block: block, Amount: c.Balance})
		default:
			apply() // the chain moved on
		}
		want, wantSenders := recounted(t, l)
		assertStatsEqual(t, "step", l.Stats(), want, confirmed, confirmed+1, block)
		got := storedSenders(t, l)
		if len(got) != len(wantSenders) {
			t.Fatalf("step %d: stored sender counts %v, recount %v", step, got, wantSenders)
		}
		for s, n := range wantSenders {
			if got[s] != n {
				t.Fatalf("step %d: sender %s has %d open channels stored, recount %d", step, s, got[s], n)
			}
		}
	}
	final := l.Stats()
	if final.OpenChannels == 0 || final.SettledChannels == 0 || final.UniqueSenders == 0 {
		t.Fatalf("the history did not reach every state: %+v", final)
	}
	l.Close()
	l = openDir(t, dir)
	defer l.Close()
	want, _ := recounted(t, l)
	assertStatsEqual(t, "after reopen", l.Stats(), want, confirmed, block)
}

func TestUnconfirmedDeposits(t *testing.T) {
	l, _ := openTest(t)
	bob := rdn.ChannelID{Sender: common.HexToAddress("0xb0"), OpenBlock: 12}
	create(t, l, alice, 100, 9) // block 10, unconfirmed at 9
	create(t, l, bob, 30, 9)    // block 12
	err := l.Apply(t.Context(), Update{
		Events: []Event{{Kind: ToppedUp, Channel: alice, Block: 14, Amount: big.NewInt(7)}},
		Sync:   SyncState{Cursor: 14, Confirmed: 9},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	for h, want := range map[uint64]int64{9: 137, 10: 37, 12: 7, 14: 0} {
		if got := st.UnconfirmedDeposits(h); got.Int64() != want {
			t.Errorf("unconfirmed at %d: %s, want %d", h, got, want)
		}
	}
	if err := l.Apply(t.Context(), Update{Sync: SyncState{Cursor: 15, Confirmed: 12}}); err != nil {
		t.Fatal(err)
	}
	st = l.Stats()
	if got := st.UnconfirmedDeposits(l.ConfirmedHeight()); got.Int64() != 7 || len(st.pending) != 1 {
		t.Errorf("after confirming to 12: %s unconfirmed over %d blocks, want 7 over 1", got, len(st.pending))
	}
	if st.DepositSum.Int64() != 137 || st.UniqueSenders != 2 {
		t.Errorf("deposit sum %s, senders %d", st.DepositSum, st.UniqueSenders)
	}
}

// A ledger written before the per-sender counts existed is recounted once when opened.
func TestOldCountersAreRecounted(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	bob := rdn.ChannelID{Sender: alice.Sender, OpenBlock: 11}
	create(t, l, alice, 100, 20)
	create(t, l, bob, 50, 20)
	pay(t, l, alice, 10, 10)
	// Rewrite the counters as the previous version stored them, without the sender counts.
	err := l.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(keySender(alice.Sender)); err != nil {
			return err
		}
		return txn.Set(keyStats, []byte(`{"Open":2,"Closing":0,"Settled":0,"Deposit":"150","Balance":"10","Charged":"10","Withdrawn":"0"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openDir(t, dir)
	defer l.Close()
	st := l.Stats()
	if st.UniqueSenders != 1 || st.OpenChannels != 2 || st.DepositSum.Int64() != 150 || st.BalanceSum.Int64() != 10 {
		t.Errorf("recounted stats: %+v", st)
	}
	if got := storedSenders(t, l); got[alice.Sender] != 2 {
		t.Errorf("recounted sender counts: %v", got)
	}
}
