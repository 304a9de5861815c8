package ledger

import (
	"context"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
)

// A ledger whose file system has less free space than its minimum refuses payments with
// ErrLowSpace, says how much is free, and stores nothing; chain events are still applied.
// The free space is the real file system's: no disk has 2^64-1 bytes free, every disk has 1.
func TestLowSpaceRefusesPayments(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	create(t, l, alice, 100, 10)
	pay(t, l, alice, 5, 5)
	l.Close()

	l, err := Open(Options{Dir: dir, Identity: testIdentity, MinFreeBytes: math.MaxUint64})
	if err != nil {
		t.Fatal(err)
	}
	err = l.Err()
	if !errors.Is(err, ErrLowSpace) || !strings.Contains(err.Error(), "MiB free in "+dir) {
		t.Errorf("Err() = %v, want ErrLowSpace naming the free space and the directory", err)
	}
	r, err := l.Pay(context.Background(), Payment{ID: alice, Balance: big.NewInt(10), Signature: sig(10), Price: big.NewInt(5)})
	if !errors.Is(err, ErrLowSpace) || r.Outcome != 0 {
		t.Errorf("Pay with too little space: %v %v, want ErrLowSpace and no decision", r.Outcome, err)
	}
	if err := l.Apply(context.Background(), Update{Events: []Event{{Kind: ToppedUp, Channel: alice, Block: 11, Amount: big.NewInt(50)}},
		Sync: SyncState{Cursor: 11, Confirmed: 11}}); err != nil {
		t.Errorf("a chain event with too little space: %v", err)
	}
	l.Close()

	l, err = Open(Options{Dir: dir, Identity: testIdentity, MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Err(); err != nil {
		t.Errorf("Err() with space: %v", err)
	}
	c, _ := l.Channel(alice)
	if c.Balance.Int64() != 5 || c.Charged.Int64() != 5 || c.ConfirmedDeposit(11).Int64() != 150 {
		t.Errorf("channel after the refused payment: balance %s charged %s deposit %s", c.Balance, c.Charged, c.ConfirmedDeposit(11))
	}
	if r := pay(t, l, alice, 10, 5); r.Outcome != Accepted {
		t.Errorf("payment with space: %v", r.Outcome)
	}
}
