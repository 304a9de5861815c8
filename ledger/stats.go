package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
)

// statsVersion is the version of the stored counters. A ledger whose counters are older is
// counted again from its channels once, at Open.
const statsVersion = 2

// Stats are counters kept up to date with every write, so that reading them costs nothing.
// Sums are over channels not yet settled, unless said otherwise.
type Stats struct {
	OpenChannels    int64
	ClosingChannels int64
	SettledChannels int64
	// UniqueSenders counts the senders with at least one open channel. Each sender's count
	// of open channels is stored beside the counters ("snd/" keys) to keep this exact.
	UniqueSenders int64
	// DepositSum counts every deposit seen, confirmed or not.
	DepositSum *big.Int
	// BalanceSum is the sum of the highest balance proofs held.
	BalanceSum *big.Int
	// ChargedSum is the sum of the prices of the requests served.
	ChargedSum *big.Int
	// WithdrawnSum is what the receiver already took out of channels not yet settled.
	WithdrawnSum *big.Int
	// SettledSum is the sum of the balances settled channels closed at.
	SettledSum *big.Int

	// pending holds, per block above the confirmed height, the deposits (creations and
	// top-ups) of unsettled channels made in that block. Blocks at or below the confirmed
	// height are dropped at every commit: the confirmed height only rises, so they never
	// count again, and the map stays as small as the confirmation window.
	pending map[uint64]*big.Int
	// senders is, in a delta only, how each sender's count of open channels changes; the
	// committer folds it into the stored counts and UniqueSenders.
	senders map[common.Address]int64
}

// SyncState is how far the ledger has followed the chain.
type SyncState struct {
	// Cursor is the last block whose events are applied.
	Cursor uint64 `json:"cursor"`
	// CursorHash is that block's hash, to notice a different chain or a reorganization.
	CursorHash string `json:"cursor_hash"`
	// Confirmed is the highest block whose events count as confirmed.
	Confirmed uint64 `json:"confirmed"`
	// Recent are the hashes of the last blocks followed, newest last, deeper than the
	// confirmations: where to find the fork point of a reorganization.
	Recent []BlockRef `json:"recent,omitempty"`
}

// BlockRef names a block.
type BlockRef struct {
	Number uint64 `json:"n"`
	Hash   string `json:"h"`
}

func zeroStats() Stats {
	return Stats{DepositSum: new(big.Int), BalanceSum: new(big.Int), ChargedSum: new(big.Int),
		WithdrawnSum: new(big.Int), SettledSum: new(big.Int)}
}

// UnconfirmedDeposits is the part of DepositSum made in blocks above confirmedHeight.
func (s Stats) UnconfirmedDeposits(confirmedHeight uint64) *big.Int {
	sum := new(big.Int)
	for block, amount := range s.pending {
		if block > confirmedHeight {
			sum.Add(sum, amount)
		}
	}
	return sum
}

func (s Stats) clone() Stats {
	c := s
	c.DepositSum = new(big.Int).Set(s.DepositSum)
	c.BalanceSum = new(big.Int).Set(s.BalanceSum)
	c.ChargedSum = new(big.Int).Set(s.ChargedSum)
	c.WithdrawnSum = new(big.Int).Set(s.WithdrawnSum)
	c.SettledSum = new(big.Int).Set(s.SettledSum)
	c.pending = nil
	for block, amount := range s.pending {
		c.addPending(block, amount)
	}
	c.senders = maps.Clone(s.senders)
	return c
}

// add adds a delta; a nil sum in the delta counts as zero (a payment's delta has only two).
func (s *Stats) add(d Stats) {
	s.OpenChannels += d.OpenChannels
	s.ClosingChannels += d.ClosingChannels
	s.SettledChannels += d.SettledChannels
	s.UniqueSenders += d.UniqueSenders
	for _, sum := range [...][2]*big.Int{{s.DepositSum, d.DepositSum}, {s.BalanceSum, d.BalanceSum},
		{s.ChargedSum, d.ChargedSum}, {s.WithdrawnSum, d.WithdrawnSum}, {s.SettledSum, d.SettledSum}} {
		if sum[1] != nil {
			sum[0].Add(sum[0], sum[1])
		}
	}
	for block, amount := range d.pending {
		s.addPending(block, amount)
	}
	for sender, n := range d.senders {
		s.addSender(sender, n)
	}
}

// neg returns -s, for the "before" side of a delta.
func (s Stats) neg() Stats {
	n := zeroStats()
	n.OpenChannels, n.ClosingChannels, n.SettledChannels, n.UniqueSenders =
		-s.OpenChannels, -s.ClosingChannels, -s.SettledChannels, -s.UniqueSenders
	n.DepositSum.Neg(s.DepositSum)
	n.BalanceSum.Neg(s.BalanceSum)
	n.ChargedSum.Neg(s.ChargedSum)
	n.WithdrawnSum.Neg(s.WithdrawnSum)
	n.SettledSum.Neg(s.SettledSum)
	for block, amount := range s.pending {
		n.addPending(block, new(big.Int).Neg(amount))
	}
	for sender, c := range s.senders {
		n.addSender(sender, -c)
	}
	return n
}

func (s *Stats) addPending(block uint64, amount *big.Int) {
	if s.pending == nil {
		s.pending = map[uint64]*big.Int{}
	}
	sum, ok := s.pending[block]
	if !ok {
		sum = new(big.Int)
		s.pending[block] = sum
	}
	if sum.Add(sum, amount).Sign() == 0 {
		delete(s.pending, block)
	}
}

func (s *Stats) addSender(sender common.Address, n int64) {
	if s.senders == nil {
		s.senders = map[common.Address]int64{}
	}
	if s.senders[sender] += n; s.senders[sender] == 0 {
		delete(s.senders, sender)
	}
}

// confirm drops the pending deposits that the confirmed height now covers.
func (s *Stats) confirm(confirmedHeight uint64) {
	for block := range s.pending {
		if block <= confirmedHeight {
			delete(s.pending, block)
		}
	}
}

// contribution is what one channel adds to the counters; a change of a channel changes the
// counters by contribution(after) - contribution(before), which keeps them exact however a
// channel changes.
func contribution(c *Channel) Stats {
	s := zeroStats()
	if c == nil {
		return s
	}
	switch c.State {
	case StateOpen:
		s.OpenChannels = 1
		s.addSender(c.ID.Sender, 1)
	case StateClosing:
		s.ClosingChannels = 1
	case StateSettled:
		s.SettledChannels = 1
		s.SettledSum.Set(c.CloseBalance)
		return s
	case StateOrphaned:
		return s
	}
	s.DepositSum.Set(c.TotalDeposit())
	s.BalanceSum.Set(c.Balance)
	s.ChargedSum.Set(c.Charged)
	s.WithdrawnSum.Set(c.Withdrawn)
	// Deposit holds the creation's deposit plus top-ups folded in, which are folded only
	// once confirmed: counted at the open block, they are confirmed with it.
	s.addPending(uint64(c.ID.OpenBlock), c.Deposit)
	for _, t := range c.TopUps {
		s.addPending(t.Block, t.Amount)
	}
	return s
}

func statsDelta(before, after *Channel) Stats {
	d := contribution(after)
	d.add(contribution(before).neg())
	return d
}

// keySender is where a sender's count of open channels is stored: "snd/" ‖ sender.
func keySender(sender common.Address) []byte {
	return append(append([]byte(nil), prefixSender...), sender.Bytes()...)
}

// senderWrites folds a batch's per-sender deltas into the stored counts and counts the
// senders whose first channel opened or last closed. It reads the counts from the batch's
// transaction, which may not see what the previous batch wrote (see committer): the counts
// that batch wrote are in prev. It returns the writes of the new counts (the committer puts
// them, splitting the transaction if it must) and the counts by sender.
func (l *Ledger) senderWrites(txn *badger.Txn, s *Stats, prev map[common.Address]int64) ([]kv, map[common.Address]int64, error) {
	var writes []kv
	var written map[common.Address]int64
	for sender, delta := range s.senders {
		count, ok := prev[sender]
		if !ok {
			var err error
			if count, err = storedSenderCount(txn, sender); err != nil {
				return nil, nil, err
			}
		}
		next := count + delta
		if next < 0 {
			// A bug, not a reason to stop taking payments: keep the counters usable.
			l.log.Error("ledger: a sender's count of open channels went negative; clamped", "sender", sender, "count", next)
			next = 0
		}
		switch {
		case count == 0 && next > 0:
			s.UniqueSenders++
		case count > 0 && next == 0:
			s.UniqueSenders--
		}
		w := kv{key: keySender(sender)} // deleted at zero
		if next > 0 {
			w.value = binary.AppendUvarint(nil, uint64(next))
		}
		writes = append(writes, w)
		if written == nil {
			written = map[common.Address]int64{}
		}
		written[sender] = next
	}
	s.senders = nil
	return writes, written, nil
}

// storedSenderCount reads a sender's count of open channels.
func storedSenderCount(txn *badger.Txn, sender common.Address) (int64, error) {
	item, err := txn.Get(keySender(sender))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read open channels of %s: %w", sender, err)
	}
	var count int64
	err = item.Value(func(v []byte) error {
		n, k := binary.Uvarint(v)
		if k <= 0 {
			return errCorrupt
		}
		count = int64(n)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read open channels of %s: %w", sender, err)
	}
	return count, nil
}

// recount derives the counters and every sender's count from the channels. It reads every
// channel: only Open calls it, for a ledger written before the counters existed or one
// whose last write was cut short.
func recount(txn *badger.Txn, confirmedHeight uint64) (Stats, map[common.Address]int64, error) {
	s := zeroStats()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixChannel, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		id, err := channelIDFromKey(it.Item().Key())
		if err != nil {
			return Stats{}, nil, err
		}
		var c *Channel
		err = it.Item().Value(func(v []byte) error {
			c, err = unmarshalChannel(id, v)
			return err
		})
		if err != nil {
			return Stats{}, nil, err
		}
		s.add(contribution(c))
	}
	senders := s.senders
	s.senders = nil
	s.UniqueSenders = int64(len(senders))
	s.confirm(confirmedHeight)
	return s, senders, nil
}

// rewriteCounters replaces the stored counters and sender counts with a recount. The
// writes may exceed one transaction: the counters go last, in their own, so a crash in
// between leaves the reason for the recount (an old version of the counters, or
// keyIncomplete) in place, and the next Open counts again.
func (l *Ledger) rewriteCounters() (Stats, error) {
	var s Stats
	var senders map[common.Address]int64
	var stored [][]byte
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		if s, senders, err = recount(txn, l.sync.Confirmed); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixSender})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			stored = append(stored, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("ledger: recount the counters: %w", err)
	}
	wb := l.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range stored {
		if _, ok := senders[common.BytesToAddress(k[len(prefixSender):])]; !ok {
			err = errors.Join(err, wb.Delete(k))
		}
	}
	for sender, n := range senders {
		err = errors.Join(err, wb.Set(keySender(sender), binary.AppendUvarint(nil, uint64(n))))
	}
	if err = errors.Join(err, wb.Flush()); err != nil {
		return Stats{}, fmt.Errorf("ledger: write the recounted sender counts: %w", err)
	}
	err = l.db.Update(func(txn *badger.Txn) error { return txn.Set(keyStats, s.marshal()) })
	if err != nil {
		return Stats{}, fmt.Errorf("ledger: write the recounted counters: %w", err)
	}
	return s, nil
}

type statsJSON struct {
	Version                                          int
	Open, Closing, Settled, Senders                  int64
	Deposit, Balance, Charged, Withdrawn, SettledSum string
	// Pending maps a block number to the unconfirmed deposits made in it.
	Pending map[string]string `json:",omitempty"`
}

func (s Stats) marshal() []byte {
	j := statsJSON{Version: statsVersion,
		Open: s.OpenChannels, Closing: s.ClosingChannels, Settled: s.SettledChannels, Senders: s.UniqueSenders,
		Deposit: s.DepositSum.String(), Balance: s.BalanceSum.String(), Charged: s.ChargedSum.String(),
		Withdrawn: s.WithdrawnSum.String(), SettledSum: s.SettledSum.String()}
	for block, amount := range s.pending {
		if j.Pending == nil {
			j.Pending = map[string]string{}
		}
		j.Pending[strconv.FormatUint(block, 10)] = amount.String()
	}
	data, _ := json.Marshal(j)
	return data
}

// unmarshalStats decodes stored counters; current is false for counters of an older
// version, which must be recounted.
func unmarshalStats(data []byte) (s Stats, current bool, err error) {
	var j statsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Stats{}, false, err
	}
	if j.Version != statsVersion {
		return Stats{}, false, nil
	}
	s = zeroStats()
	s.OpenChannels, s.ClosingChannels, s.SettledChannels, s.UniqueSenders = j.Open, j.Closing, j.Settled, j.Senders
	for dst, src := range map[*big.Int]string{s.DepositSum: j.Deposit, s.BalanceSum: j.Balance, s.ChargedSum: j.Charged,
		s.WithdrawnSum: j.Withdrawn, s.SettledSum: j.SettledSum} {
		if _, ok := dst.SetString(src, 10); !ok {
			return Stats{}, false, errCorrupt
		}
	}
	for block, amount := range j.Pending {
		b, err := strconv.ParseUint(block, 10, 64)
		a, ok := new(big.Int).SetString(amount, 10)
		if err != nil || !ok {
			return Stats{}, false, errCorrupt
		}
		s.addPending(b, a)
	}
	return s, true, nil
}
