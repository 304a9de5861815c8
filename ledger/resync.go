package ledger

import (
	"context"
	"math"
	"math/big"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// ChainChannel is a channel's state as the contract reports it (getChannelInfo).
type ChainChannel struct {
	ID             ChannelID
	Exists         bool
	Deposit        *big.Int
	SettleBlock    uint64
	ClosingBalance *big.Int
	Withdrawn      *big.Int
}

// Resync replaces what the ledger knows from the chain with the chain's current state, after
// a reorganization too deep to roll back: the listed channels are set to what the contract
// says (created when unknown, settled when gone), payments are kept, and every undo record
// is dropped.
func (l *Ledger) Resync(ctx context.Context, states []ChainChannel, sync SyncState) error {
	undo, err := l.undoKeys(0, math.MaxUint64)
	if err != nil {
		return err
	}
	return l.change(ctx, sync, func(get func(ChannelID) (*Channel, error), set func(ChannelID, *Channel)) ([]kv, error) {
		for _, s := range states {
			c, err := get(s.ID)
			if err != nil {
				return nil, err
			}
			set(s.ID, resynced(c, s))
		}
		writes := make([]kv, 0, len(undo))
		for _, k := range undo {
			writes = append(writes, kv{key: k})
		}
		return writes, nil
	})
}

func resynced(c *Channel, s ChainChannel) *Channel {
	if !s.Exists {
		if c != nil && (c.State == StateOpen || c.State == StateClosing) {
			// getChannelInfo cannot tell settled from never created; settled is the state
			// that takes no payment and keeps the record.
			c.State = StateSettled
		}
		return c
	}
	if c == nil {
		c = newChannel(s.ID, s.Deposit)
	}
	c.Deposit.Set(s.Deposit)
	c.TopUps = nil
	c.Withdrawn.Set(s.Withdrawn)
	c.CloseBalance.Set(s.ClosingBalance)
	c.SettleBlock = s.SettleBlock
	switch {
	case s.SettleBlock > 0 && c.State == StateOpen:
		c.State = StateClosing
	case s.SettleBlock == 0 && c.State != StateOpen && !c.CloseSigned():
		// A channel the receiver agreed to close cooperatively stays closed to payments.
		c.State = StateOpen
	}
	return c
}

// ChannelIDs lists the channels, as stored on disk, for which keep returns true.
func (l *Ledger) ChannelIDs(keep func(*Channel) bool) ([]ChannelID, error) {
	return l.ChannelIDsIn(nil, keep)
}

// ChannelIDsIn is ChannelIDs over the channels in the given states (all when empty). It
// decodes only the records of those states, so a scan for a rare state (closing channels
// at start) reads every record but decodes few.
func (l *Ledger) ChannelIDsIn(states []State, keep func(*Channel) bool) ([]ChannelID, error) {
	var ids []ChannelID
	err := l.db.View(func(txn *badger.Txn) error {
		// Without prefetching: records are small and stored in the tree, and copying each
		// value ahead costs several times the walk itself.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixChannel})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()[len(prefixChannel):]
			var id ChannelID
			copy(id.Sender[:], k[:20])
			id.OpenBlock = uint32(k[20])<<24 | uint32(k[21])<<16 | uint32(k[22])<<8 | uint32(k[23])
			err := it.Item().Value(func(v []byte) error {
				if len(states) > 0 && recordVersionKnown(v) && !slices.Contains(states, State(v[1])) {
					return nil
				}
				c, err := unmarshalChannel(id, v)
				if err == nil && keep(c) {
					ids = append(ids, id)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// recordVersionKnown reports whether a channel record starts with a version this binary
// reads, so that its second byte is the state; others are decoded, to report them.
func recordVersionKnown(v []byte) bool {
	return len(v) >= 2 && (v[0] == encodingVersion || v[0] == encodingVersionClosing)
}
