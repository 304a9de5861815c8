package ledger

import (
	"context"
	"math/big"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// listAll pages through a query and returns every channel in order.
func listAll(t *testing.T, l *Ledger, q Query) []rdn.ChannelID {
	t.Helper()
	var out []rdn.ChannelID
	for range 1000 {
		p, err := l.Channels(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Channels) > q.Limit {
			t.Fatalf("page of %d channels, limit %d", len(p.Channels), q.Limit)
		}
		for _, c := range p.Channels {
			out = append(out, c.ID)
		}
		if p.Next == nil {
			return out
		}
		q.After = p.Next
	}
	t.Fatal("listing did not end")
	return nil
}

func TestChannelsPaging(t *testing.T) {
	l, _ := openTest(t)
	var all []rdn.ChannelID
	for s := 1; s <= 4; s++ {
		for b := 1; b <= 5; b++ {
			id := rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(int64(0xa0 + s))), OpenBlock: uint32(10 * b)}
			create(t, l, id, 100, 100)
			all = append(all, id)
		}
	}
	// The first sender's channels at blocks 20 and 40 close.
	for _, id := range []rdn.ChannelID{all[1], all[3]} {
		err := l.Apply(context.Background(), Update{Events: []Event{{Kind: CloseRequested, Channel: id, Block: 101, Amount: big.NewInt(0), SettleBlock: 601}},
			Sync: SyncState{Cursor: 101, Confirmed: 100}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{1, 3, 7, 20, 100} {
		if got := listAll(t, l, Query{Limit: limit}); !slices.Equal(got, all) {
			t.Errorf("limit %d: %v", limit, got)
		}
	}
	open := listAll(t, l, Query{Limit: 2, States: []State{StateOpen}})
	if len(open) != 18 || slices.Contains(open, all[1]) || slices.Contains(open, all[3]) {
		t.Errorf("open channels: %d %v", len(open), open)
	}
	closing := listAll(t, l, Query{Limit: 1, States: []State{StateClosing}})
	if !slices.Equal(closing, []rdn.ChannelID{all[1], all[3]}) {
		t.Errorf("closing channels: %v", closing)
	}
	sender := all[7].Sender
	if got := listAll(t, l, Query{Limit: 2, Sender: &sender}); !slices.Equal(got, all[5:10]) {
		t.Errorf("one sender's channels: %v", got)
	}
	p, err := l.Channels(Query{Limit: 5, Sender: &sender, After: &all[9]})
	if err != nil || len(p.Channels) != 0 || p.Next != nil {
		t.Errorf("after the sender's last channel: %d channels, next %v, %v", len(p.Channels), p.Next, err)
	}
}

// A listing shows a payment the moment it is accepted, as Channel does: it reads the cache.
func TestChannelsReadTheCache(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 100, 10)
	pay(t, l, alice, 40, 40)
	p, err := l.Channels(Query{Limit: 10})
	if err != nil || len(p.Channels) != 1 {
		t.Fatalf("%d channels, %v", len(p.Channels), err)
	}
	c := p.Channels[0]
	if c.Balance.Int64() != 40 || c.Charged.Int64() != 40 || c.Signature != sig(40) {
		t.Errorf("listed channel: balance %s charged %s", c.Balance, c.Charged)
	}
	// The listing is a copy: changing it changes nothing in the ledger.
	c.Balance.SetInt64(1)
	if again, _ := l.Channel(alice); again.Balance.Int64() != 40 {
		t.Errorf("a listed copy changed the ledger: %s", again.Balance)
	}
}

// A listing filtered by state over more records than MaxScan stops early with a cursor, and
// paging on still finds every match.
func TestChannelsScanIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10,000 channels")
	}
	l, _ := openTest(t)
	var evs []Event
	for i := range MaxScan + 10 {
		id := rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(int64(i + 1))), OpenBlock: 5}
		evs = append(evs, Event{Kind: Created, Channel: id, Block: 5, Amount: big.NewInt(1)})
	}
	if err := l.Apply(context.Background(), Update{Events: evs, Sync: SyncState{Cursor: 5, Confirmed: 5}}); err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1].Channel
	err := l.Apply(context.Background(), Update{Events: []Event{{Kind: CloseRequested, Channel: last, Block: 6, Amount: big.NewInt(0)}}, Sync: SyncState{Cursor: 6, Confirmed: 6}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Channels(Query{Limit: 10, States: []State{StateClosing}})
	if err != nil || len(p.Channels) != 0 || p.Next == nil {
		t.Fatalf("first page: %d channels, next %v, %v", len(p.Channels), p.Next, err)
	}
	if got := listAll(t, l, Query{Limit: 10, States: []State{StateClosing}}); !slices.Equal(got, []rdn.ChannelID{last}) {
		t.Errorf("closing channels: %v", got)
	}
}
