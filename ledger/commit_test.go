package ledger

import (
	"context"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// eventually polls cond until it holds; the limit only bounds a hung test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
	}
}

// Two batches in flight at once, touching the same channel and the same sender: the second
// batch's transaction was begun before the first was committed, so it cannot read the
// first's sender count from disk. Nothing of the second batch is answered before the first
// is durable, and the counters, the sender counts and the channel end up exact, also after
// a reopen.
func TestPipelinedBatchesShareChannelAndSender(t *testing.T) {
	dir := t.TempDir()
	var hold atomic.Pointer[chan struct{}] // when set, the next commit's callback waits for it
	held := make(chan struct{}, 1)
	l, err := Open(Options{Dir: dir, Identity: testIdentity, OnCommit: func(int, time.Duration) {
		if release := hold.Swap(nil); release != nil {
			held <- struct{}{}
			<-*release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()

	sender := common.HexToAddress("0xa7")
	first, second := rdn.ChannelID{Sender: sender, OpenBlock: 10}, rdn.ChannelID{Sender: sender, OpenBlock: 11}
	createErr := make(chan error, 2)
	createIn := func(id rdn.ChannelID) {
		createErr <- l.Apply(context.Background(), Update{
			Events: []Event{{Kind: Created, Channel: id, Block: uint64(id.OpenBlock), Amount: big.NewInt(100)}},
			Sync:   SyncState{Cursor: 20, Confirmed: 20},
		})
	}

	// Batch 1 creates the sender's first channel and is held in its commit callback.
	release := make(chan struct{})
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	defer let() // before Close, which waits for the held commit
	hold.Store(&release)
	go createIn(first)
	<-held

	// Batch 2: the sender's second channel and a payment on the first.
	go createIn(second)
	paid := make(chan PayResult, 1)
	go func() {
		r, err := l.Pay(context.Background(), Payment{ID: first, Balance: big.NewInt(5), Signature: sig(5), Price: big.NewInt(5)})
		if err != nil {
			t.Error(err)
		}
		paid <- r
	}()
	eventually(t, "batch 2 queued", func() bool {
		c1, _ := l.cachedChannel(first)
		c2, _ := l.cachedChannel(second)
		return c1 != nil && c1.Charged.Int64() == 5 && c2 != nil
	})
	// Batch 2 would be committed well within this if the committer did not wait for batch 1
	// (the wait only gives a bug time to show; it asserts nothing about speed).
	select {
	case r := <-paid:
		t.Fatalf("payment answered (%v) while the batch before it was not durable", r.Outcome)
	case <-time.After(100 * time.Millisecond):
	}

	let()
	for range 2 {
		if err := <-createErr; err != nil {
			t.Fatal(err)
		}
	}
	if r := <-paid; r.Outcome != Accepted {
		t.Fatalf("payment: %v", r.Outcome)
	}
	check := func(step string) {
		t.Helper()
		want, wantSenders := recounted(t, l)
		assertStatsEqual(t, step, l.Stats(), want, 20)
		if got := storedSenders(t, l); got[sender] != 2 || wantSenders[sender] != 2 {
			t.Fatalf("%s: sender count stored %d, recount %d, want 2", step, got[sender], wantSenders[sender])
		}
		if st := l.Stats(); st.UniqueSenders != 1 || st.OpenChannels != 2 || st.ChargedSum.Int64() != 5 {
			t.Fatalf("%s: stats %+v", step, st)
		}
		if c, err := l.Channel(first); err != nil || c.Charged.Int64() != 5 || c.Balance.Int64() != 5 {
			t.Fatalf("%s: first channel %+v %v", step, c, err)
		}
	}
	check("after the commits")
	l.Close()
	l = openDir(t, dir)
	check("after a reopen")
}

// cachedChannel returns the in-memory state of a cached channel without touching the disk.
func (l *Ledger) cachedChannel(id rdn.ChannelID) (*Channel, bool) {
	c := l.cached(id)
	return c, c != nil
}

// channelsOf creates n funded, confirmed channels in one update.
func channelsOf(t *testing.T, l *Ledger, n int) []rdn.ChannelID {
	return createChannels(t, l, n, false)
}

// createChannels creates n funded, confirmed channels of n senders in one update; seeded
// ones, as for channels opened before the watcher's start block, have no undo records.
func createChannels(t *testing.T, l *Ledger, n int, seeded bool) []rdn.ChannelID {
	t.Helper()
	var ids []rdn.ChannelID
	var events []Event
	for i := range n {
		id := rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(int64(0x1000 + i))), OpenBlock: 5}
		ids = append(ids, id)
		events = append(events, Event{Kind: Created, Channel: id, Block: 5, Amount: big.NewInt(100), Seeded: seeded})
	}
	if err := l.Apply(context.Background(), Update{Events: events, Sync: SyncState{Cursor: 10, Confirmed: 10}}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func (l *Ledger) cachedEntries() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.channels)
}

// With more channels than the cache holds, channels leave it and are read again from disk
// with everything they were paid: a proof used before an eviction is still refused after.
func TestCacheIsBounded(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, Identity: testIdentity, MaxCached: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	ids := channelsOf(t, l, 60)
	for round := int64(1); round <= 2; round++ {
		for _, id := range ids {
			if r := pay(t, l, id, round*3, 3); r.Outcome != Accepted {
				t.Fatalf("round %d, %s: %v", round, id, r.Outcome)
			}
			if n := l.cachedEntries(); n > 10 {
				t.Fatalf("%d channels cached, bound 10", n)
			}
		}
	}
	for _, id := range ids {
		if r := pay(t, l, id, 3, 3); r.Outcome != InvalidAmount {
			t.Fatalf("%s: a used balance after eviction: %v", id, r.Outcome)
		}
		if r := pay(t, l, id, 6, 3); r.Outcome != Replayed {
			t.Fatalf("%s: the stored proof after eviction: %v", id, r.Outcome)
		}
	}
	want, _ := recounted(t, l)
	assertStatsEqual(t, "after evictions", l.Stats(), want, 10)
	if st := l.Stats(); st.ChargedSum.Int64() != 60*6 {
		t.Fatalf("charged %s, want %d", st.ChargedSum, 60*6)
	}
}

// A channel whose latest write is not yet durable stays cached however full the cache is: the
// disk may not hold what it was paid yet.
func TestCacheKeepsChannelsWithWritesInFlight(t *testing.T) {
	var hold atomic.Pointer[chan struct{}]
	held := make(chan struct{}, 1)
	l, err := Open(Options{Dir: t.TempDir(), Identity: testIdentity, MaxCached: 10, OnCommit: func(int, time.Duration) {
		if release := hold.Swap(nil); release != nil {
			held <- struct{}{}
			<-*release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ids := channelsOf(t, l, 40)
	busy := ids[0]
	release := make(chan struct{})
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	defer let() // before Close, which waits for the held commit
	hold.Store(&release)
	paid := make(chan PayResult, 1)
	go func() {
		r, _ := l.Pay(context.Background(), Payment{ID: busy, Balance: big.NewInt(4), Signature: sig(4), Price: big.NewInt(4)})
		paid <- r
	}()
	<-held
	l.mu.RLock()
	kept := l.channels[busy]
	l.mu.RUnlock()
	for range 3 {
		for _, id := range ids[1:] {
			if c, err := l.Channel(id); err != nil || c == nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
	}
	l.mu.RLock()
	still := l.channels[busy]
	l.mu.RUnlock()
	if kept == nil || still != kept {
		t.Fatal("a channel with a write in flight left the cache")
	}
	let()
	if r := <-paid; r.Outcome != Accepted {
		t.Fatalf("payment: %v", r.Outcome)
	}
	for _, id := range ids[1:] {
		l.Channel(id)
	}
	if n := l.cachedEntries(); n > 10 {
		t.Fatalf("%d channels cached after the write landed, bound 10", n)
	}
}

// A chain update creating more channels of new senders than one Badger transaction holds is
// split over several transactions, the sender counts included, and the counters come out
// exact.
func TestHugeUpdateCommits(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	// A channel record and a sender count each: 60,000 small keys, over the ~52,000 entries
	// of a transaction with the ledger's 32 MB memtable, the sender counts last.
	const n = 30_000
	ids := createChannels(t, l, n, true)
	if st := l.Stats(); st.OpenChannels != n || st.UniqueSenders != n {
		t.Fatalf("stats %+v", st)
	}
	if r := pay(t, l, ids[n-1], 5, 5); r.Outcome != Accepted {
		t.Fatalf("payment after the update: %v", r.Outcome)
	}
	l.Close()
	l = openDir(t, dir)
	defer l.Close()
	want, senders := recounted(t, l)
	assertStatsEqual(t, "after a reopen", l.Stats(), want, 10)
	if len(senders) != n || len(storedSenders(t, l)) != n {
		t.Fatalf("%d senders recounted, %d stored, want %d", len(senders), len(storedSenders(t, l)), n)
	}
}

// A channel whose record cannot be read leaves no entry behind: an unloaded entry could never
// be evicted, so requests naming damaged records would grow the cache without bound.
func TestUnreadableChannelLeavesNoEntry(t *testing.T) {
	l, _ := openTest(t)
	id := rdn.ChannelID{Sender: common.HexToAddress("0xbad"), OpenBlock: 1}
	if err := l.db.Update(func(txn *badger.Txn) error { return txn.Set(channelKey(id), []byte{0xff, 1, 2}) }); err != nil {
		t.Fatal(err)
	}
	before := l.cachedEntries()
	for range 3 {
		if _, err := l.Channel(id); err == nil {
			t.Fatal("a damaged record was read")
		}
	}
	if after := l.cachedEntries(); after != before {
		t.Fatalf("cache entries %d before, %d after reading a damaged record", before, after)
	}
}
