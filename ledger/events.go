package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/uraiden/uraiden/rdn"
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
	Channel rdn.ChannelID
	Block   uint64
	// Amount is the deposit (Created), the added deposit (ToppedUp), the closing balance
	// (CloseRequested, Settled) or the withdrawn amount (Withdrawn).
	Amount *big.Int
	// SettleBlock is when a requested close may settle.
	SettleBlock uint64
	// Seeded marks a Created event made up from getChannelInfo for a channel opened before
	// the watcher's start block: it is not undone by a reorganization.
	Seeded bool
}

// Update is what the watcher hands over after following the chain to Sync.Cursor: the
// events in (block, log index) order, applied and made durable together with the cursor.
type Update struct {
	Events []Event
	Sync   SyncState
	// ForgetBelow drops the undo records of blocks below it: they are too deep to be
	// reorganized away.
	ForgetBelow uint64
}

// prefixUndo keys the undo records: "undo/" ‖ uint64 block ‖ uint32 sequence.
var prefixUndo = []byte("undo/")

// undoRecord is what Rollback needs to take one event back without touching the payments
// made since: the event, and the fields it overwrote.
type undoRecord struct {
	Event            Event
	PrevState        State
	PrevCloseBalance *big.Int
	PrevSettleBlock  uint64
}

func undoKey(block uint64, seq uint32) []byte {
	k := append([]byte{}, prefixUndo...)
	k = binary.BigEndian.AppendUint64(k, block)
	return binary.BigEndian.AppendUint32(k, seq)
}

// Apply applies a chain update. Events for channels the ledger does not know must be
// preceded by a (Seeded) Created event; Apply refuses the whole update otherwise.
func (l *Ledger) Apply(ctx context.Context, u Update) error {
	forget, err := l.undoKeys(0, u.ForgetBelow)
	if err != nil {
		return err
	}
	return l.change(ctx, &write{sync: &u.Sync}, func(get func(rdn.ChannelID) (*Channel, error), set func(rdn.ChannelID, *Channel)) ([]kv, error) {
		var writes []kv
		for _, k := range forget {
			writes = append(writes, kv{key: k})
		}
		for i, ev := range u.Events {
			c, err := get(ev.Channel)
			if err != nil {
				return nil, err
			}
			rec := undoRecord{Event: ev}
			if c != nil {
				rec.PrevState, rec.PrevCloseBalance, rec.PrevSettleBlock = c.State, new(big.Int).Set(c.CloseBalance), c.SettleBlock
			}
			after, err := applyEvent(c, ev)
			if err != nil {
				return nil, err
			}
			set(ev.Channel, after)
			if !ev.Seeded {
				data, _ := json.Marshal(rec)
				writes = append(writes, kv{key: undoKey(ev.Block, uint32(i)), value: data})
			}
		}
		return writes, nil
	})
}

// Rollback takes back every event of the blocks after fork, newest first, because a
// reorganization orphaned them, and records the new sync state. Payments are kept: only what
// the chain decided is undone. It returns the channels that had payments and lost their
// creation (now StateOrphaned).
func (l *Ledger) Rollback(ctx context.Context, fork uint64, sync SyncState) ([]rdn.ChannelID, error) {
	keys, records, err := l.undoRecords(fork + 1)
	if err != nil {
		return nil, err
	}
	var orphaned []rdn.ChannelID
	err = l.change(ctx, &write{sync: &sync}, func(get func(rdn.ChannelID) (*Channel, error), set func(rdn.ChannelID, *Channel)) ([]kv, error) {
		var writes []kv
		for i := len(records) - 1; i >= 0; i-- {
			rec := records[i]
			c, err := get(rec.Event.Channel)
			if err != nil {
				return nil, err
			}
			after, wasPaid := undoEvent(c, rec)
			if wasPaid {
				orphaned = append(orphaned, rec.Event.Channel)
			}
			set(rec.Event.Channel, after)
			writes = append(writes, kv{key: keys[i]})
		}
		return writes, nil
	})
	return orphaned, err
}

// change runs f over copies of the channels it touches, then makes the new channels and f's
// extra writes durable in w, with w's sync state. Nothing changes in memory unless f
// succeeds.
func (l *Ledger) change(ctx context.Context, w *write, f func(get func(rdn.ChannelID) (*Channel, error), set func(rdn.ChannelID, *Channel)) ([]kv, error)) error {
	for attempt := 1; ; attempt++ {
		// Each attempt writes a new copy: the committer may still hold the last one.
		try := &write{sync: w.sync, resync: w.resync}
		err := l.changeOnce(ctx, try, f)
		// Nothing of a refused attempt was stored (a write too large for one transaction
		// that is cut short needs a Resync instead: see etcdCommitter), and f is run again
		// on the channels as another replica left them.
		if !errors.Is(err, errConflict) || attempt == maxChainAttempts {
			return err
		}
	}
}

// maxChainAttempts bounds the attempts of a chain write refused because payments on other
// replicas changed its channels first. Each attempt takes one round trip (the refusal brings
// the records), so a busy channel is caught between two payments; the watcher tries the
// update again at its next poll otherwise.
const maxChainAttempts = 64

func (l *Ledger) changeOnce(ctx context.Context, w *write, f func(get func(rdn.ChannelID) (*Channel, error), set func(rdn.ChannelID, *Channel)) ([]kv, error)) error {
	l.chainWrite(w)
	entries := map[rdn.ChannelID]*entry{}
	defer func() {
		for _, e := range entries {
			e.mu.Unlock()
		}
	}()
	next := map[rdn.ChannelID]*Channel{}
	get := func(id rdn.ChannelID) (*Channel, error) {
		if c, ok := next[id]; ok {
			return c, nil
		}
		e, err := l.lockEntry(id)
		if err != nil {
			return nil, err
		}
		entries[id] = e
		if e.ch != nil {
			next[id] = e.ch.clone()
		} else {
			next[id] = nil
		}
		return next[id], nil
	}
	set := func(id rdn.ChannelID, c *Channel) { next[id] = c }
	extra, err := f(get, set)
	if err != nil {
		return err
	}
	w.delta, w.sets = zeroStats(), extra
	for id, c := range next {
		before := entries[id].ch
		var data []byte // nil deletes
		if c != nil {
			data = c.marshal()
		}
		if (before == nil) == (c == nil) && (c == nil || bytes.Equal(before.marshal(), data)) {
			continue // unchanged: a resync of a channel the ledger already had right
		}
		w.delta.add(statsDelta(before, c))
		e := entries[id]
		w.sets = append(w.sets, kv{key: channelKey(id), value: data, e: e, gen: e.gen.Load(), absent: before == nil})
	}
	if err := l.enqueue(w); err != nil {
		return err
	}
	for id, c := range next {
		entries[id].ch, entries[id].last = c, w
	}
	// Confirmations move with the sync state before the write is durable; that only lets a
	// payment be decided earlier, on a height the chain has reached. On Badger every payment
	// is made durable after this write; on etcd a payment on another channel may commit
	// first, and if this write then fails, the height goes back (see below) while that
	// payment stands, decided on a confirmation that was true. A rollback may lower them.
	l.confirmed.Store(w.sync.Confirmed)
	for id, e := range entries {
		e.mu.Unlock()
		delete(entries, id)
	}
	err = wait(ctx, w)
	if err != nil && l.etcd != nil {
		// Not stored (a replicated store refuses a write and lives on): the confirmations
		// go back to what the store holds. The channels are read again (etcdCommitter).
		l.confirmed.Store(l.Sync().Confirmed)
	}
	if len(next) > evictProbes {
		l.trimCache()
	}
	return err
}

// applyEvent returns the channel after the event, modifying c (a copy) in place.
func applyEvent(c *Channel, ev Event) (*Channel, error) {
	if ev.Kind == Created {
		if c != nil && c.State != StateSettled && c.State != StateOrphaned {
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

// undoEvent takes one event back; wasPaid reports a creation undone under payments.
func undoEvent(c *Channel, rec undoRecord) (_ *Channel, wasPaid bool) {
	ev := rec.Event
	if c == nil {
		return nil, false
	}
	switch ev.Kind {
	case Created:
		if c.Charged.Sign() == 0 {
			return nil, false
		}
		c.State = StateOrphaned
		return c, true
	case ToppedUp:
		i := slices.IndexFunc(c.TopUps, func(t TopUp) bool { return t.Block == ev.Block && t.Amount.Cmp(ev.Amount) == 0 })
		if i >= 0 {
			c.TopUps = slices.Delete(c.TopUps, i, i+1)
		} else if c.Deposit.Cmp(ev.Amount) >= 0 {
			// Already counted as confirmed: the reorganization was deeper than the confirmations.
			c.Deposit.Sub(c.Deposit, ev.Amount)
		}
	case CloseRequested, Settled:
		c.State = rec.PrevState
		if c.State == StateOpen && c.CloseSigned() {
			// The receiver signed a cooperative close since: no payments any more.
			c.State = StateClosing
		}
		c.CloseBalance = new(big.Int).Set(rec.PrevCloseBalance)
		c.SettleBlock = rec.PrevSettleBlock
	case Withdrawn:
		c.Withdrawn.Sub(c.Withdrawn, ev.Amount)
	}
	return c, false
}

// undoKeys lists the undo records of blocks in [from, below).
func (l *Ledger) undoKeys(from, below uint64) ([][]byte, error) {
	if below <= from {
		return nil, nil
	}
	var keys [][]byte
	err := l.store.scan(context.Background(), prefixUndo, undoKey(from, 0), 0, func(key, _ []byte) (bool, error) {
		if binary.BigEndian.Uint64(key[len(prefixUndo):]) >= below {
			return false, nil
		}
		keys = append(keys, bytes.Clone(key))
		return true, nil
	})
	return keys, err
}

// undoRecords returns the undo records of blocks from `from` on, oldest first.
func (l *Ledger) undoRecords(from uint64) ([][]byte, []undoRecord, error) {
	var keys [][]byte
	var records []undoRecord
	err := l.store.scan(context.Background(), prefixUndo, undoKey(from, 0), 0, func(key, value []byte) (bool, error) {
		var rec undoRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			return false, errors.Join(errCorrupt, err)
		}
		keys = append(keys, bytes.Clone(key))
		records = append(records, rec)
		return true, nil
	})
	return keys, records, err
}

// Known reports whether the ledger has a record of the channel.
func (l *Ledger) Known(id rdn.ChannelID) (bool, error) {
	c, err := l.Channel(id)
	return c != nil, err
}
