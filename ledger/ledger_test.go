package ledger

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

var (
	testIdentity = Identity{ChainID: 1337, Contract: common.HexToAddress("0xc0"), Receiver: common.HexToAddress("0xee")}
	alice        = rdn.ChannelID{Sender: common.HexToAddress("0xa1"), OpenBlock: 10}
)

func openDir(t *testing.T, dir string) *Ledger {
	t.Helper()
	l, err := Open(Options{Dir: dir, Identity: testIdentity})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func openTest(t *testing.T) (*Ledger, string) {
	dir := t.TempDir()
	l := openDir(t, dir)
	t.Cleanup(func() { l.Close() })
	return l, dir
}

// sig makes a distinct signature per balance: the ledger stores proofs, the caller verifies them.
func sig(balance int64) rdn.Signature {
	var s rdn.Signature
	big.NewInt(balance).FillBytes(s[:32])
	s[64] = 27
	return s
}

func create(t *testing.T, l *Ledger, id rdn.ChannelID, deposit int64, confirmedTo uint64) {
	t.Helper()
	err := l.Apply(context.Background(), Update{
		Events: []Event{{Kind: Created, Channel: id, Block: uint64(id.OpenBlock), Amount: big.NewInt(deposit)}},
		Sync:   SyncState{Cursor: confirmedTo, Confirmed: confirmedTo},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func pay(t *testing.T, l *Ledger, id rdn.ChannelID, balance, price int64) PayResult {
	t.Helper()
	r, err := l.Pay(context.Background(), Payment{ID: id, Balance: big.NewInt(balance), Signature: sig(balance), Price: big.NewInt(price)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPaymentRule(t *testing.T) {
	l, _ := openTest(t)
	if r := pay(t, l, alice, 5, 5); r.Outcome != NoChannel || r.Known {
		t.Errorf("unknown channel: %v", r.Outcome)
	}
	create(t, l, alice, 100, 5) // created in block 10, confirmed only to block 5
	if r := pay(t, l, alice, 5, 5); r.Outcome != Unconfirmed {
		t.Errorf("unconfirmed channel: %v", r.Outcome)
	}
	if err := l.Apply(t.Context(), Update{Sync: SyncState{Cursor: 10, Confirmed: 10}}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		balance, price int64
		want           Outcome
		charged        int64
	}{
		{5, 5, Accepted, 5},
		{5, 5, Replayed, 5},        // the stored proof again
		{9, 5, InvalidAmount, 5},   // 4 more for a price of 5
		{20, 5, Accepted, 10},      // 15 more: 10 of credit
		{12, 5, Accepted, 15},      // a lower, fresh value spends credit
		{12, 5, InvalidAmount, 15}, // used already (not the stored proof)
		{15, 5, Accepted, 20},      // uses the last credit
		{18, 5, InvalidAmount, 20}, // below the highest proof, no credit left
		{101, 5, ExceedsDeposit, 20},
		{25, 5, Accepted, 25},
	}
	for i, s := range steps {
		r := pay(t, l, alice, s.balance, s.price)
		if r.Outcome != s.want || r.Charged.Int64() != s.charged {
			t.Fatalf("step %d (balance %d): %v charged %s, want %v charged %d", i, s.balance, r.Outcome, r.Charged, s.want, s.charged)
		}
	}
	c, _ := l.Channel(alice)
	if c.Balance.Int64() != 25 || c.Signature != sig(25) || c.Charged.Int64() != 25 {
		t.Errorf("channel after the steps: balance %s charged %s", c.Balance, c.Charged)
	}
}

// 16 proofs of one channel, sent at once in random order: all served, charged 16 × price.
func TestConcurrentProofsAllServed(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 1000, 10)
	const price, n = 7, 16
	order := rand.Perm(n)
	var wg sync.WaitGroup
	outcomes := make([]Outcome, n)
	for i, k := range order {
		wg.Go(func() {
			r, err := l.Pay(context.Background(), Payment{ID: alice, Balance: big.NewInt(int64((k + 1) * price)), Signature: sig(int64((k + 1) * price)), Price: big.NewInt(price)})
			if err != nil {
				t.Error(err)
			}
			outcomes[i] = r.Outcome
		})
	}
	wg.Wait()
	for i, o := range outcomes {
		if o != Accepted {
			t.Errorf("proof %d: %v", order[i], o)
		}
	}
	c, _ := l.Channel(alice)
	if c.Charged.Int64() != n*price || c.Balance.Int64() != n*price {
		t.Errorf("charged %s balance %s, want %d", c.Charged, c.Balance, n*price)
	}
}

// 1,000 concurrent copies of one proof: exactly one buys a request.
func TestConcurrentCopiesOfOneProof(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 1000, 10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[Outcome]int{}
	for range 1000 {
		wg.Go(func() {
			r, err := l.Pay(context.Background(), Payment{ID: alice, Balance: big.NewInt(10), Signature: sig(10), Price: big.NewInt(10)})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			counts[r.Outcome]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[Accepted] != 1 || counts[Replayed] != 999 {
		t.Errorf("outcomes %v, want 1 accepted and 999 replayed", counts)
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	create(t, l, alice, 100, 10)
	for b := int64(3); b <= 30; b += 3 {
		if r := pay(t, l, alice, b, 3); r.Outcome != Accepted {
			t.Fatalf("balance %d: %v", b, r.Outcome)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openDir(t, dir)
	defer l.Close()
	c, err := l.Channel(alice)
	if err != nil || c == nil {
		t.Fatalf("channel lost: %v", err)
	}
	if c.Balance.Int64() != 30 || c.Charged.Int64() != 30 || c.Signature != sig(30) {
		t.Errorf("after reopen: balance %s charged %s", c.Balance, c.Charged)
	}
	if r := pay(t, l, alice, 30, 3); r.Outcome != Replayed {
		t.Errorf("replay after reopen: %v", r.Outcome)
	}
	if r := pay(t, l, alice, 27, 3); r.Outcome != InvalidAmount {
		t.Errorf("old proof after reopen: %v", r.Outcome)
	}
	if s := l.Sync(); s.Confirmed != 10 || s.Cursor != 10 {
		t.Errorf("sync state after reopen: %+v", s)
	}
	st := l.Stats()
	if st.OpenChannels != 1 || st.ChargedSum.Int64() != 30 || st.BalanceSum.Int64() != 30 || st.DepositSum.Int64() != 100 {
		t.Errorf("stats after reopen: %+v", st)
	}
}

func TestRefusesAnotherLedgerAndASecondProcess(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	// Badger's directory lock: a second opener fails while the first holds it, with an error
	// a tool can tell from a damaged directory.
	if _, err := Open(Options{Dir: dir, Identity: testIdentity}); !errors.Is(err, ErrLocked) {
		t.Errorf("second open of a directory in use: err = %v, want ErrLocked", err)
	}
	if _, err := OpenExisting(dir, nil); !errors.Is(err, ErrLocked) {
		t.Errorf("OpenExisting of a directory in use: err = %v, want ErrLocked", err)
	}
	l.Close()
	for _, id := range []Identity{
		{ChainID: 1, Contract: testIdentity.Contract, Receiver: testIdentity.Receiver},
		{ChainID: 1337, Contract: common.HexToAddress("0xc1"), Receiver: testIdentity.Receiver},
		{ChainID: 1337, Contract: testIdentity.Contract, Receiver: common.HexToAddress("0xef")},
	} {
		_, err := Open(Options{Dir: dir, Identity: id})
		if !errors.Is(err, ErrWrongLedger) {
			t.Errorf("identity %+v: err = %v", id, err)
		}
	}
}

func TestChainEvents(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 100, 10)
	topUp := func(block uint64, amount int64, confirmed uint64) {
		t.Helper()
		err := l.Apply(t.Context(), Update{
			Events: []Event{{Kind: ToppedUp, Channel: alice, Block: block, Amount: big.NewInt(amount)}},
			Sync:   SyncState{Cursor: block, Confirmed: confirmed},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	topUp(20, 50, 15)
	// The top-up counts once confirmed.
	if r := pay(t, l, alice, 120, 1); r.Outcome != ExceedsDeposit || r.Deposit.Int64() != 100 {
		t.Errorf("before the top-up is confirmed: %v deposit %s", r.Outcome, r.Deposit)
	}
	if err := l.Apply(t.Context(), Update{Sync: SyncState{Cursor: 21, Confirmed: 20}}); err != nil {
		t.Fatal(err)
	}
	if r := pay(t, l, alice, 120, 1); r.Outcome != Accepted || r.Deposit.Int64() != 150 {
		t.Errorf("after: %v deposit %s", r.Outcome, r.Deposit)
	}
	// A close request stops payments at once.
	err := l.Apply(t.Context(), Update{
		Events: []Event{{Kind: CloseRequested, Channel: alice, Block: 22, Amount: big.NewInt(50), SettleBlock: 522}},
		Sync:   SyncState{Cursor: 22, Confirmed: 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := pay(t, l, alice, 125, 1); r.Outcome != NoChannel || !r.Known {
		t.Errorf("closing channel: %v", r.Outcome)
	}
	if st := l.Stats(); st.OpenChannels != 0 || st.ClosingChannels != 1 {
		t.Errorf("stats while closing: %+v", st)
	}
	err = l.Apply(t.Context(), Update{
		Events: []Event{{Kind: Settled, Channel: alice, Block: 600, Amount: big.NewInt(120)}},
		Sync:   SyncState{Cursor: 600, Confirmed: 590},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := l.Channel(alice)
	if c == nil || c.State != StateSettled {
		t.Fatalf("settled channel not kept as history: %+v", c)
	}
	if st := l.Stats(); st.SettledChannels != 1 || st.ClosingChannels != 0 || st.DepositSum.Sign() != 0 {
		t.Errorf("stats after settlement: %+v", st)
	}
	// An event for a channel never seen is refused, and changes nothing.
	bob := rdn.ChannelID{Sender: common.HexToAddress("0xb0"), OpenBlock: 3}
	err = l.Apply(t.Context(), Update{
		Events: []Event{{Kind: Created, Channel: rdn.ChannelID{Sender: bob.Sender, OpenBlock: 601}, Block: 601, Amount: big.NewInt(5)},
			{Kind: ToppedUp, Channel: bob, Block: 601, Amount: big.NewInt(5)}},
		Sync: SyncState{Cursor: 601},
	})
	if err == nil || !strings.Contains(err.Error(), "unknown channel") {
		t.Errorf("top-up of an unknown channel: %v", err)
	}
	if ok, _ := l.Known(rdn.ChannelID{Sender: bob.Sender, OpenBlock: 601}); ok {
		t.Error("a refused update left a channel behind")
	}
}

func TestAcceptedValuesStayBounded(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 1_000_000, 10)
	// One big proof gives credit; then many fresh lower proofs spend it.
	if r := pay(t, l, alice, 5000, 1); r.Outcome != Accepted {
		t.Fatal(r.Outcome)
	}
	for b := int64(1); b <= 2*maxAccepted; b++ {
		if r := pay(t, l, alice, b, 1); r.Outcome != Accepted {
			t.Fatalf("balance %d: %v", b, r.Outcome)
		}
	}
	c, _ := l.Channel(alice)
	if len(c.Accepted) > maxAccepted {
		t.Errorf("%d accepted values remembered", len(c.Accepted))
	}
	// Forgotten values still count as used.
	if r := pay(t, l, alice, 1, 1); r.Outcome != InvalidAmount {
		t.Errorf("oldest value again: %v", r.Outcome)
	}
}

func TestChannelEncodingRoundTrip(t *testing.T) {
	c := newChannel(alice, big.NewInt(1e18))
	c.TopUps = []TopUp{{Block: 12, Amount: big.NewInt(7)}}
	c.accept(big.NewInt(500), sig(500), rdn.SchemeLegacy, big.NewInt(100))
	c.accept(big.NewInt(300), sig(300), rdn.SchemeLegacy, big.NewInt(100))
	c.State, c.SettleBlock = StateClosing, 99
	c.CloseBalance.SetInt64(42)
	c.Withdrawn.SetInt64(11)
	got, err := unmarshalChannel(alice, c.marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.marshal(), c.marshal()) || got.Balance.Int64() != 500 || len(got.Accepted) != 2 {
		t.Errorf("round trip changed the channel: %+v", got)
	}
	for _, n := range []int{0, 1, 10, len(c.marshal()) - 1} {
		if _, err := unmarshalChannel(alice, c.marshal()[:n]); err == nil {
			t.Errorf("truncated to %d bytes: decoded", n)
		}
	}
}

func TestBackupRestore(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 100, 10)
	pay(t, l, alice, 40, 40)
	var buf bytes.Buffer
	if err := l.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Restore(dir, bytes.NewReader(buf.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	r := openDir(t, dir)
	c, _ := r.Channel(alice)
	if c == nil || c.Balance.Int64() != 40 || c.Signature != sig(40) {
		t.Errorf("restored channel: %+v", c)
	}
	r.Close()
	if err := Restore(dir, bytes.NewReader(buf.Bytes()), nil); err == nil {
		t.Error("restore into a non-empty ledger succeeded")
	}
}

func TestRollbackUndoesOnlyTheChain(t *testing.T) {
	l, _ := openTest(t)
	apply := func(sync SyncState, events ...Event) {
		t.Helper()
		if err := l.Apply(t.Context(), Update{Events: events, Sync: sync}); err != nil {
			t.Fatal(err)
		}
	}
	bob := rdn.ChannelID{Sender: common.HexToAddress("0xb0"), OpenBlock: 21}
	// alice: created at 10, confirmed and paid; bob: created at 21, unconfirmed.
	apply(SyncState{Cursor: 20, Confirmed: 15}, Event{Kind: Created, Channel: alice, Block: 10, Amount: big.NewInt(100)})
	pay(t, l, alice, 30, 30)
	apply(SyncState{Cursor: 22, Confirmed: 17},
		Event{Kind: Created, Channel: bob, Block: 21, Amount: big.NewInt(50)},
		Event{Kind: ToppedUp, Channel: alice, Block: 21, Amount: big.NewInt(40)},
		Event{Kind: Withdrawn, Channel: alice, Block: 22, Amount: big.NewInt(10)},
		Event{Kind: CloseRequested, Channel: alice, Block: 22, Amount: big.NewInt(5), SettleBlock: 522})
	if c, _ := l.Channel(alice); c.State != StateClosing || c.TotalDeposit().Int64() != 140 || c.Withdrawn.Int64() != 10 {
		t.Fatalf("before the rollback: %v deposit %s withdrawn %s", c.State, c.TotalDeposit(), c.Withdrawn)
	}

	orphaned, err := l.Rollback(t.Context(), 20, SyncState{Cursor: 20, Confirmed: 15})
	if err != nil {
		t.Fatal(err)
	}
	if len(orphaned) != 0 {
		t.Errorf("orphaned %v", orphaned)
	}
	if ok, _ := l.Known(bob); ok {
		t.Error("bob's orphaned creation is still known")
	}
	c, _ := l.Channel(alice)
	if c.State != StateOpen || c.TotalDeposit().Int64() != 100 || c.Withdrawn.Sign() != 0 || c.CloseBalance.Sign() != 0 || c.SettleBlock != 0 {
		t.Errorf("alice after the rollback: %v deposit %s withdrawn %s close %s/%d", c.State, c.TotalDeposit(), c.Withdrawn, c.CloseBalance, c.SettleBlock)
	}
	if c.Balance.Int64() != 30 || c.Charged.Int64() != 30 || c.Signature != sig(30) {
		t.Errorf("payments lost in the rollback: balance %s charged %s", c.Balance, c.Charged)
	}
	if st := l.Stats(); st.OpenChannels != 1 || st.ClosingChannels != 0 || st.DepositSum.Int64() != 100 {
		t.Errorf("stats after the rollback: %+v", st)
	}
	if s := l.Sync(); s.Cursor != 20 || l.ConfirmedHeight() != 15 {
		t.Errorf("sync after the rollback: %+v", s)
	}
	// The new branch applies cleanly, and the undone blocks' records are gone.
	apply(SyncState{Cursor: 23, Confirmed: 18}, Event{Kind: ToppedUp, Channel: alice, Block: 23, Amount: big.NewInt(7)})
	if c, _ := l.Channel(alice); c.TotalDeposit().Int64() != 107 {
		t.Errorf("deposit on the new branch: %s", c.TotalDeposit())
	}

	// A creation undone under payments (deeper than the confirmations) is kept, orphaned.
	orphaned, err = l.Rollback(t.Context(), 5, SyncState{Cursor: 5, Confirmed: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(orphaned) != 1 || orphaned[0] != alice {
		t.Errorf("orphaned %v, want alice", orphaned)
	}
	if c, _ := l.Channel(alice); c == nil || c.State != StateOrphaned || c.Balance.Int64() != 30 {
		t.Errorf("alice after a deep rollback: %+v", c)
	}
	if r := pay(t, l, alice, 40, 10); r.Outcome != NoChannel {
		t.Errorf("payment on an orphaned channel: %v", r.Outcome)
	}
}

func TestForgetBelowPrunesUndoRecords(t *testing.T) {
	l, _ := openTest(t)
	for b := uint64(1); b <= 10; b++ {
		id := rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(int64(b))), OpenBlock: uint32(b)}
		err := l.Apply(t.Context(), Update{
			Events:      []Event{{Kind: Created, Channel: id, Block: b, Amount: big.NewInt(1)}},
			Sync:        SyncState{Cursor: b},
			ForgetBelow: b - min(b, 3),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	keys, err := l.undoKeys(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 { // blocks 7..10
		t.Errorf("%d undo records kept, want 4", len(keys))
	}
}

func TestUnknownChannelsAreNotCached(t *testing.T) {
	l, _ := openTest(t)
	for i := range 1000 {
		id := rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(int64(i + 1000))), OpenBlock: 1}
		if r := pay(t, l, id, 5, 5); r.Outcome != NoChannel {
			t.Fatalf("made-up channel: %v", r.Outcome)
		}
		if c, _ := l.Channel(id); c != nil {
			t.Fatal("made-up channel found")
		}
	}
	l.mu.RLock()
	n := len(l.channels)
	l.mu.RUnlock()
	if n != 0 {
		t.Errorf("%d made-up channels cached", n)
	}
	// A channel created afterwards is found.
	id := rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(1000)), OpenBlock: 1}
	create(t, l, id, 100, 10)
	if r := pay(t, l, id, 5, 5); r.Outcome != Accepted {
		t.Errorf("after creation: %v", r.Outcome)
	}
}

// A caller that gives up while the payment is being stored still gets the true answer: the
// payment is charged, so it must be reported as accepted, not as an error.
func TestPayAnswersAfterTheCallerGaveUp(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 100, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := l.Pay(ctx, Payment{ID: alice, Balance: big.NewInt(10), Signature: sig(10), Price: big.NewInt(10)})
	if err != nil || r.Outcome != Accepted {
		t.Fatalf("cancelled caller: %v, %v", r.Outcome, err)
	}
	if c, _ := l.Channel(alice); c.Charged.Int64() != 10 {
		t.Errorf("charged %s", c.Charged)
	}
}

// Many payments on one channel with large records fit in one commit: one write per key.
func TestBigBatchesCommit(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 1_000_000, 10)
	pay(t, l, alice, 900_000, 1) // credit: every later proof is remembered, records grow
	var wg sync.WaitGroup
	for b := range int64(maxAccepted - 24) { // fewer in flight than the values remembered
		wg.Go(func() {
			r, err := l.Pay(context.Background(), Payment{ID: alice, Balance: big.NewInt(b + 1), Signature: sig(b + 1), Price: big.NewInt(1)})
			if err != nil || r.Outcome != Accepted {
				t.Errorf("balance %d: %v %v", b+1, r.Outcome, err)
			}
		})
	}
	wg.Wait()
	if err := l.Err(); err != nil {
		t.Fatalf("ledger failed: %v", err)
	}
}
