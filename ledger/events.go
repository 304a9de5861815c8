package ledger

import (
	"context"
	"fmt"
	"math/big"
)

// EventKind is a channel-contract event that changes a channel.
type EventKind uint8

const (
	Created EventKind = iota + 1
	ToppedUp
	CloseRequested
	Settled
	Withdrawn
)

func (k EventKind) String() string {
	return [...]string{"", "created", "topped-up", "close-requested", "settled", "withdrawn"}[k]
}

// Event is a contract event for one of our channels, as the chain watcher decoded it.
type Event struct {
	Kind    EventKind
	Channel ChannelID
	Block   uint64
	// Amount is the deposit (Created), the added deposit (ToppedUp), the closing balance
	// (CloseRequested, Settled) or the withdrawn amount (Withdrawn).
	Amount *big.Int
	// SettleBlock is when a requested close may settle.
	SettleBlock uint64
}

// Update is what the watcher hands over after following the chain to Sync.Cursor: the
// events in (block, log index) order, applied and made durable together with the cursor.
type Update struct {
	Events []Event
	Sync   SyncState
}

// Apply applies a chain update. Events for channels the ledger does not know (opened before
// it started following the chain) need the channel looked up first: see Known and Seed.
func (l *Ledger) Apply(ctx context.Context, u Update) error {
	entries := map[ChannelID]*entry{}
	defer func() {
		for _, e := range entries {
			e.mu.Unlock()
		}
	}()
	// Work on copies: nothing changes in memory unless every event applies.
	next := map[ChannelID]*Channel{}
	for _, ev := range u.Events {
		if _, ok := entries[ev.Channel]; !ok {
			e, err := l.lockEntry(ev.Channel)
			if err != nil {
				return err
			}
			entries[ev.Channel] = e
			if e.ch != nil {
				next[ev.Channel] = e.ch.clone()
			}
		}
		after, err := applyEvent(next[ev.Channel], ev)
		if err != nil {
			return err
		}
		next[ev.Channel] = after
	}
	w := &write{delta: zeroStats(), sync: &u.Sync}
	for id, c := range next {
		w.delta.add(statsDelta(entries[id].ch, c))
		w.sets = append(w.sets, kv{id.key(), c.marshal()})
	}
	if err := l.enqueue(w); err != nil {
		return err
	}
	for id, c := range next {
		entries[id].ch = c
	}
	// Confirmations advance with the cursor before the write is durable; that only lets a
	// payment be decided earlier, and every payment is made durable after this write.
	for {
		cur := l.confirmed.Load()
		if u.Sync.Confirmed <= cur || l.confirmed.CompareAndSwap(cur, u.Sync.Confirmed) {
			break
		}
	}
	for id, e := range entries {
		e.mu.Unlock()
		delete(entries, id)
	}
	return wait(ctx, w)
}

// applyEvent returns the channel after the event, modifying c (a copy) in place.
func applyEvent(c *Channel, ev Event) (*Channel, error) {
	if ev.Kind == Created {
		if c != nil && c.State != StateSettled {
			// Seen twice (a resync over the same blocks): the first one counts.
			return c, nil
		}
		return newChannel(ev.Channel, ev.Amount), nil
	}
	if c == nil {
		return nil, fmt.Errorf("ledger: %s event for unknown channel %s", ev.Kind, ev.Channel)
	}
	switch ev.Kind {
	case ToppedUp:
		c.TopUps = append(c.TopUps, TopUp{Block: ev.Block, Amount: new(big.Int).Set(ev.Amount)})
	case CloseRequested:
		if c.State == StateOpen {
			c.State = StateClosing
		}
		c.CloseBalance.Set(ev.Amount)
		c.SettleBlock = ev.SettleBlock
	case Settled:
		c.State = StateSettled
		c.CloseBalance.Set(ev.Amount)
	case Withdrawn:
		c.Withdrawn.Add(c.Withdrawn, ev.Amount)
	default:
		return nil, fmt.Errorf("ledger: unknown event kind %d", ev.Kind)
	}
	return c, nil
}

// Known reports whether the ledger has a record of the channel.
func (l *Ledger) Known(id ChannelID) (bool, error) {
	c, err := l.Channel(id)
	return c != nil, err
}
