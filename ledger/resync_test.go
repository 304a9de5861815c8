package ledger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uraiden/uraiden/rdn"
)

// hugeUpdate is n channels topped up by 50 in block 11: with their undo records, more than
// one Badger transaction holds, so the committer writes it in parts.
func hugeUpdate(ids []rdn.ChannelID) Update {
	u := Update{Sync: SyncState{Cursor: 11, Confirmed: 11}}
	for _, id := range ids {
		u.Events = append(u.Events, Event{Kind: ToppedUp, Channel: id, Block: 11, Amount: big.NewInt(50)})
	}
	return u
}

// topUpsOnDisk counts the channels by how many top-ups their records hold.
func topUpsOnDisk(t *testing.T, l *Ledger) map[int]int {
	t.Helper()
	out := map[int]int{}
	ids, err := l.ChannelIDs(func(c *Channel) bool {
		out[len(c.TopUps)]++
		return false
	})
	if err != nil || len(ids) != 0 {
		t.Fatal(err)
	}
	return out
}

// chainTruth is the contract's state after hugeUpdate: every channel holds 150, confirmed.
func chainTruth(ids []rdn.ChannelID) []ChainChannel {
	states := make([]ChainChannel, 0, len(ids))
	for _, id := range ids {
		states = append(states, ChainChannel{ID: id, Exists: true, Deposit: big.NewInt(150), ConfirmedDeposit: big.NewInt(150),
			ClosingBalance: new(big.Int), Withdrawn: new(big.Int)})
	}
	return states
}

// resyncAll tells the ledger the chain's truth.
func resyncAll(t *testing.T, l *Ledger, ids []rdn.ChannelID) {
	t.Helper()
	if err := l.Resync(context.Background(), chainTruth(ids), SyncState{Cursor: 12, Confirmed: 12}); err != nil {
		t.Fatal(err)
	}
}

// assertResynced checks that every channel holds exactly the chain's deposit, the payment
// kept, and the counters equal a recount, also after a reopen.
func assertResynced(t *testing.T, l *Ledger, dir string, ids []rdn.ChannelID) *Ledger {
	t.Helper()
	for _, reopen := range []bool{false, true} {
		if reopen {
			l.Close()
			l = openDir(t, dir)
		}
		if l.NeedsResync() || l.Err() != nil {
			t.Fatalf("after the resync (reopened %v): needs resync %v, err %v", reopen, l.NeedsResync(), l.Err())
		}
		if got := topUpsOnDisk(t, l); got[0] != len(ids) {
			t.Fatalf("after the resync: channels by top-ups held %v", got)
		}
		for _, id := range []rdn.ChannelID{ids[0], ids[len(ids)/2], ids[len(ids)-1]} {
			c, _ := l.Channel(id)
			if c.Deposit.Int64() != 150 {
				t.Fatalf("channel %s: deposit %s, want 150", id, c.Deposit)
			}
		}
		want, _ := recounted(t, l)
		assertStatsEqual(t, "after the resync", l.Stats(), want, 12)
		if want.DepositSum.Int64() != 150*int64(len(ids)) {
			t.Fatalf("deposits %s, want %d", want.DepositSum, 150*len(ids))
		}
	}
	if c, _ := l.Channel(ids[0]); c.Charged.Int64() != 5 {
		t.Fatalf("the payment before the crash is gone: charged %s", c.Charged)
	}
	if r := pay(t, l, ids[0], 150, 145); r.Outcome != Accepted {
		t.Fatalf("a payment of the whole deposit after the resync: %v", r.Outcome)
	}
	return l
}

// A chain update too large for one transaction fails after its first part, as a crash
// would stop it: the earlier parts' records hold the top-up while the cursor does not, so
// the watcher's replay would count it twice. The reopened ledger knows, takes no payment,
// and counts its counters again; a Resync makes it exact.
func TestUpdateCutShortBetweenPartsNeedsResync(t *testing.T) {
	const n = 30_000
	dir := t.TempDir()
	l := openDir(t, dir)
	ids := createChannels(t, l, n, true)
	if r := pay(t, l, ids[0], 5, 5); r.Outcome != Accepted {
		t.Fatal(r.Outcome)
	}
	// The first parts hold undo records; stop after the first that holds a top-up. The
	// marker must be on disk with every part.
	parts, unmarked := 0, 0
	l.partCommitted = func() error {
		parts++
		if !markerOnDisk(l) {
			unmarked++
		}
		held := 0
		_, err := l.ChannelIDs(func(c *Channel) bool { held += len(c.TopUps); return false })
		if held > 0 || err != nil {
			return errors.Join(errors.New("the process stops here"), err)
		}
		return nil
	}
	if err := l.Apply(context.Background(), hugeUpdate(ids)); !errors.Is(err, ErrFailed) {
		t.Fatalf("the cut update: %v, want ErrFailed", err)
	}
	// A failed write refuses every payment until a restart: memory may be ahead of the disk.
	if _, err := l.Pay(context.Background(), Payment{ID: ids[1], Balance: big.NewInt(5), Signature: sig(5), Price: big.NewInt(5)}); !errors.Is(err, ErrFailed) || !errors.Is(l.Err(), ErrFailed) {
		t.Fatalf("a payment after the failed write: %v (ledger: %v), want ErrFailed", err, l.Err())
	}
	l.Close()
	if unmarked > 0 {
		t.Fatalf("%d of %d parts reached the disk without the marker", unmarked, parts)
	}
	t.Logf("stopped after part %d", parts)

	l = openDir(t, dir)
	defer func() { l.Close() }()
	if !l.NeedsResync() || !errors.Is(l.Err(), ErrResyncing) {
		t.Fatalf("reopened: needs resync %v, err %v", l.NeedsResync(), l.Err())
	}
	if _, err := l.Pay(context.Background(), Payment{ID: ids[1], Balance: big.NewInt(150), Signature: sig(150), Price: big.NewInt(1)}); !errors.Is(err, ErrResyncing) {
		t.Fatalf("a payment before the resync: %v", err)
	}
	held := topUpsOnDisk(t, l)
	if l.Sync().Cursor != 10 || held[1] == 0 || held[0] == 0 {
		t.Fatalf("setup: cursor %d, channels by top-ups held %v: want the old cursor and a part on disk", l.Sync().Cursor, held)
	}
	want, _ := recounted(t, l)
	assertStatsEqual(t, "reopened", l.Stats(), want, 10)

	// The resync is as large, and is cut too: the ledger still waits for one.
	l.partCommitted = func() error { return errors.New("the process stops here") }
	if err := l.Resync(context.Background(), chainTruth(ids), SyncState{Cursor: 12, Confirmed: 12}); !errors.Is(err, ErrFailed) {
		t.Fatalf("the cut resync: %v, want ErrFailed", err)
	}
	l.Close()
	l = openDir(t, dir)
	if !l.NeedsResync() || !markerOnDisk(l) {
		t.Fatal("a cut resync satisfied the need for one")
	}

	resyncAll(t, l, ids)
	l = assertResynced(t, l, dir, ids)
}

func markerOnDisk(l *Ledger) bool {
	return l.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(keyIncomplete)
		return err
	}) == nil
}

// The same update, written by a process killed with SIGKILL at a random moment, again and
// again: whatever the moment, the reopened ledger either holds the update whole, or none of
// it, or knows it needs a resync, and after a resync it is exact.
func TestKilledDuringAHugeUpdate(t *testing.T) {
	if dir := os.Getenv("URAIDEN_LEDGER_HUGE_UPDATE"); dir != "" {
		applyHugeUpdateAndExit(dir)
	}
	if testing.Short() || raceEnabled {
		t.Skip("kills a writer process several times; nothing to race across processes")
	}
	const n, kills = 30_000, 5
	base := t.TempDir()
	l := openDir(t, base)
	ids := createChannels(t, l, n, true)
	if r := pay(t, l, ids[0], 5, 5); r.Outcome != Accepted {
		t.Fatal(r.Outcome)
	}
	l.Close()

	took := applyInChild(t, copyDir(t, base), -1)
	outcomes := map[string]int{}
	for i := range kills {
		dir := copyDir(t, base)
		// Every other kill comes as the first part is on disk; the others at random.
		killAfter := afterFirstPart
		if i%2 == 1 {
			killAfter = time.Duration(rand.Int64N(int64(took)))
		}
		applyInChild(t, dir, killAfter)
		l := openDir(t, dir)
		held := topUpsOnDisk(t, l)
		switch {
		case l.NeedsResync():
			outcomes["cut, resynced"]++
		case held[0] == n && l.Sync().Cursor == 10:
			outcomes["before"]++
		case held[1] == n && l.Sync().Cursor == 11:
			outcomes["whole"]++
		default:
			l.Close()
			t.Fatalf("kill %d: cursor %d, channels by top-ups held %v, and no resync asked for", i, l.Sync().Cursor, held)
		}
		want, _ := recounted(t, l)
		assertStatsEqual(t, fmt.Sprintf("kill %d", i), l.Stats(), want, l.Sync().Confirmed)
		resyncAll(t, l, ids)
		assertResynced(t, l, dir, ids).Close()
	}
	t.Logf("%d kills within the %s the update takes: %v", kills, took.Round(time.Millisecond), outcomes)
	if outcomes["cut, resynced"] == 0 {
		t.Error("no kill landed between the parts")
	}
}

// afterFirstPart tells applyInChild to kill the writer as soon as it says a first part of
// the update is committed.
const afterFirstPart = time.Duration(-2)

// applyInChild runs this test binary as a process that applies hugeUpdate to the ledger in
// dir, and kills it with SIGKILL after the given time from the start of the update, or
// afterFirstPart, or never (-1). It returns how long the update took in the child.
func applyInChild(t *testing.T, dir string, killAfter time.Duration) time.Duration {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledDuringAHugeUpdate$")
	cmd.Env = append(os.Environ(), "URAIDEN_LEDGER_HUGE_UPDATE="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "applying" {
		cmd.Process.Kill()
		t.Fatalf("the writer did not start: %q", lines.Text())
	}
	start := time.Now()
	switch {
	case killAfter == afterFirstPart:
		if !lines.Scan() || lines.Text() != "part" {
			t.Fatalf("the writer wrote no part: %q", lines.Text())
		}
		cmd.Process.Kill()
		return time.Since(start)
	case killAfter >= 0:
		time.Sleep(killAfter)
		cmd.Process.Kill()
		return killAfter
	}
	for lines.Scan() && lines.Text() == "part" {
	}
	if !strings.HasPrefix(lines.Text(), "applied") {
		t.Fatalf("the writer failed: %q", lines.Text())
	}
	return time.Since(start)
}

// applyHugeUpdateAndExit is the child's side of applyInChild.
func applyHugeUpdateAndExit(dir string) {
	l, err := Open(Options{Dir: dir, Identity: testIdentity})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ids, err := l.ChannelIDs(func(*Channel) bool { return true })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	u := hugeUpdate(ids)
	l.partCommitted = func() error {
		fmt.Println("part")
		return nil
	}
	fmt.Println("applying")
	if err := l.Apply(context.Background(), u); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("applied")
	os.Exit(0)
}

// copyDir copies a closed ledger directory.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(to, e.Name()), data, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return to
}
