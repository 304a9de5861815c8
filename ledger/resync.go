package ledger

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"slices"
	"time"

	"github.com/uraiden/uraiden/rdn"
)

// ChainChannel is a channel's state as the contract reports it (getChannelInfo).
type ChainChannel struct {
	ID      rdn.ChannelID
	Exists  bool
	Deposit *big.Int
	// ConfirmedDeposit is the deposit at the confirmed height; nil when the channel was
	// created after it, or the node no longer holds that block's state: then all of Deposit
	// waits for confirmations.
	ConfirmedDeposit *big.Int
	SettleBlock      uint64
	ClosingBalance   *big.Int
	Withdrawn        *big.Int
}

// Resync replaces what the ledger knows from the chain with the chain's state at block
// sync.Cursor, after a reorganization too deep to roll back or a write cut short (see
// NeedsResync): the listed channels are set to what the contract says (created when
// unknown, settled when gone), payments are kept, and every undo record is dropped. A
// deposit above the confirmed one counts as a top-up made at sync.Cursor, so it waits for
// confirmations like any other. Once the write is durable, NeedsResync is false.
func (l *Ledger) Resync(ctx context.Context, states []ChainChannel, sync SyncState) error {
	undo, err := l.undoKeys(0, math.MaxUint64)
	if err != nil {
		return err
	}
	return l.change(ctx, &write{sync: &sync, resync: true}, func(get func(rdn.ChannelID) (*Channel, error), set func(rdn.ChannelID, *Channel)) ([]kv, error) {
		for _, s := range states {
			c, err := get(s.ID)
			if err != nil {
				return nil, err
			}
			set(s.ID, resynced(c, s, sync.Cursor))
		}
		writes := make([]kv, 0, len(undo))
		for _, k := range undo {
			writes = append(writes, kv{key: k})
		}
		return writes, nil
	})
}

func resynced(c *Channel, s ChainChannel, at uint64) *Channel {
	if !s.Exists {
		if c != nil && (c.State == StateOpen || c.State == StateClosing) {
			// getChannelInfo cannot tell settled from never created; settled is the state
			// that takes no payment and keeps the record.
			c.State = StateSettled
		}
		return c
	}
	confirmed := new(big.Int)
	if s.ConfirmedDeposit != nil {
		confirmed.Set(s.ConfirmedDeposit)
	}
	if confirmed.Cmp(s.Deposit) > 0 {
		confirmed.Set(s.Deposit) // deposits only grow; never count more than the latest
	}
	if c == nil {
		c = newChannel(s.ID, confirmed)
	}
	c.Deposit.Set(confirmed)
	c.TopUps = nil
	if unconfirmed := new(big.Int).Sub(s.Deposit, confirmed); unconfirmed.Sign() > 0 {
		c.TopUps = []TopUp{{Block: at, Amount: unconfirmed}}
	}
	c.Withdrawn.Set(s.Withdrawn)
	c.CloseBalance.Set(s.ClosingBalance)
	c.SettleBlock = s.SettleBlock
	switch {
	case s.SettleBlock > 0:
		// Whatever the ledger believed (open, or settled by a reorganized-away event): the
		// watchtower watches closing channels only.
		c.State = StateClosing
	case s.SettleBlock == 0 && c.State != StateOpen && !c.CloseSigned():
		// A channel the receiver agreed to close cooperatively stays closed to payments.
		c.State = StateOpen
	}
	return c
}

// NeedsResync reports whether the ledger waits for a Resync before it takes payments again:
// a write in several parts (a chain update too large for one transaction) was cut short by
// a crash, so an event may be applied twice if replayed, or RequestResync asked for one.
func (l *Ledger) NeedsResync() bool { return l.needsResync.Load() }

// RequestResync makes the ledger take no payment until the chain watcher has read every
// channel from the contract again (Resync), now and after restarts until then: for an
// operator who doubts the ledger's view of the chain, say after a node served wrong logs,
// and for the watcher when it had to guess. A Resync already under way when it is called
// satisfies it, so call it from the goroutine that calls Resync, or with no watcher running.
func (l *Ledger) RequestResync() error {
	if l.etcd != nil {
		// A chain-side write like the others: only the elected replica makes it.
		w := l.chainWrite(&write{sets: []kv{{key: keyIncomplete, value: []byte(time.Now().UTC().Format(time.RFC3339))}}, delta: zeroStats()})
		if err := l.enqueue(w); err != nil {
			return err
		}
		if err := wait(context.Background(), w); err != nil {
			return fmt.Errorf("ledger: request a resync: %w", err)
		}
		l.needsResync.Store(true)
		return nil
	}
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if err := l.errLocked(); err != nil {
		return err
	}
	if err := l.markIncomplete(); err != nil {
		return fmt.Errorf("ledger: request a resync: %w", err)
	}
	l.needsResync.Store(true)
	return nil
}

// ChannelIDs lists the channels, as stored on disk, for which keep returns true.
func (l *Ledger) ChannelIDs(keep func(*Channel) bool) ([]rdn.ChannelID, error) {
	return l.ChannelIDsIn(nil, keep)
}

// ChannelIDsIn is ChannelIDs over the channels in the given states (all when empty). It
// decodes only the records of those states, so a scan for a rare state (closing channels
// at start) reads every record but decodes few.
func (l *Ledger) ChannelIDsIn(states []State, keep func(*Channel) bool) ([]rdn.ChannelID, error) {
	var ids []rdn.ChannelID
	err := l.store.scan(context.Background(), prefixChannel, nil, 0, func(key, v []byte) (bool, error) {
		id, err := channelIDFromKey(key)
		if err != nil {
			return false, err
		}
		if len(states) > 0 && recordVersionKnown(v) && !slices.Contains(states, State(v[1])) {
			return true, nil
		}
		c, err := unmarshalChannel(id, v)
		if err == nil && keep(c) {
			ids = append(ids, id)
		}
		return err == nil, err
	})
	return ids, err
}

// recordVersionKnown reports whether a channel record starts with a version this binary
// reads, so that its second byte is the state; others are decoded, to report them.
func recordVersionKnown(v []byte) bool {
	return len(v) >= 2 && (v[0] == encodingVersion || v[0] == encodingVersionClosing)
}
