package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"
)

// The committer makes queued writes durable, as many per transaction as are waiting: one
// fsync for the whole batch (group commit). It is pipelined one batch deep: while a batch's
// transaction is being written and synced, the next batch is gathered and its writes are put
// into the next transaction, and that one is committed as soon as the previous is durable.
// Badger syncs once per transaction and never two at once, so deeper would gain nothing.
//
// The next transaction is created before the previous one is committed (creating it later
// would wait for that commit), so it reads the disk as it was before the previous batch.
// The committer therefore never reads, inside a transaction, a key the previous batch
// wrote: the only keys it reads are the per-sender counts, and those the previous batch
// wrote it takes from that batch (committer.prevSenders). The counters it writes are a
// running total over every batch handed to Badger (committer.stats); a batch's counters
// become Ledger.Stats when it is durable.
//
// A batch is committed only once the previous one is known durable, so after a failed write
// nothing later reaches the disk: the disk then holds a prefix of the batches, with the
// counters of that prefix, and possibly the first parts of a batch split across
// transactions, behind keyIncomplete (see put).
type committer struct {
	l   *Ledger
	txn *badger.Txn // the transaction of the batch being gathered

	batch []*write
	size  int

	stats       Stats // counters after every batch handed over, then this one's deltas
	sync        SyncState
	syncChanged bool
	split       bool // a part of the batch is committed, behind keyIncomplete
	resync      bool // the batch holds a Resync: it clears keyIncomplete

	prev        *inflight                // the batch being synced, if any
	prevSenders map[common.Address]int64 // the open-channel counts the last batch handed over wrote
}

// inflight is a batch handed to Badger and not yet known durable.
type inflight struct {
	batch  []*write
	stats  Stats
	sync   SyncState
	start  time.Time
	result chan error // the commit's outcome, once every writer was answered
}

// commitLoop runs the committer until Close.
func (l *Ledger) commitLoop() {
	defer close(l.stopped)
	l.statsMu.Lock()
	c := &committer{l: l, txn: l.db.NewTransaction(true), stats: l.stats.clone(), sync: l.sync}
	l.statsMu.Unlock()
	defer func() { c.txn.Discard() }()
	for {
		select {
		case w := <-l.queue:
			c.add(w)
		case <-l.closing:
			// Writers enqueue under closeMu, so after closing nothing new arrives.
			c.drainAll()
			return
		}
		c.fill()  // what else is queued, while the previous batch syncs
		c.await() // the previous batch is durable, or failed
		c.fill()  // what arrived during that sync
		c.submit()
	}
}

// drainAll commits what is left in the queue, in as many batches as it takes.
func (c *committer) drainAll() {
	for {
		c.fill()
		if len(c.batch) == 0 {
			c.await()
			return
		}
		c.await()
		c.submit()
	}
}

// fill adds queued writes to the batch while it has room.
func (c *committer) fill() {
	for len(c.batch) < c.l.maxBatch && c.size < maxBatchBytes {
		select {
		case w := <-c.l.queue:
			c.add(w)
		default:
			return
		}
	}
}

// maxBatchBytes keeps a batch well under Badger's transaction size limit (15% of the
// memtable: about 4.8 MB with the ledger's 32 MB memtable): a sender can make its channel
// record a few kilobytes.
const maxBatchBytes = 2 << 20

func (w *write) size() int {
	n := 0
	for _, s := range w.sets {
		n += len(s.key) + len(s.value)
	}
	return n
}

// add puts a write into the batch's transaction. A key written twice in one transaction
// keeps its last value, so a busy channel is stored once per batch.
func (c *committer) add(w *write) {
	if errp := c.l.failed.Load(); errp != nil {
		w.done <- *errp
		return
	}
	c.batch = append(c.batch, w)
	c.size += w.size()
	c.stats.add(w.delta)
	if w.sync != nil {
		c.sync, c.syncChanged = *w.sync, true
	}
	c.resync = c.resync || w.resync
	for _, s := range w.sets {
		if err := c.put(s); err != nil {
			c.fail(err)
			return
		}
	}
}

// put sets or deletes one key in the batch's transaction. A batch too big for one
// transaction is split: its writers hear nothing until the last part is durable.
//
// A part on disk without the rest is a state no replay mends: events applied twice (a
// top-up counted again) and counters short of the records. So before the first part is
// committed, keyIncomplete is made durable on its own, and the last part deletes it; an Open
// that finds it counts the counters again and takes no payment until a Resync has read the
// chain's state.
func (c *committer) put(s kv) error {
	for {
		var err error
		if s.value == nil {
			err = c.txn.Delete(s.key)
		} else {
			err = c.txn.Set(s.key, s.value)
		}
		if !errors.Is(err, badger.ErrTxnTooBig) {
			return err
		}
		// The part may reach the disk only after the previous batch did.
		if err := c.await(); err != nil {
			return err
		}
		if !c.split {
			if err := c.l.markIncomplete(); err != nil {
				return err
			}
			c.split = true
		}
		if err := c.txn.Commit(); err != nil {
			return err
		}
		c.txn = c.l.db.NewTransaction(true)
		if c.l.partCommitted != nil {
			if err := c.l.partCommitted(); err != nil {
				return err
			}
		}
	}
}

// markIncomplete makes keyIncomplete durable.
func (l *Ledger) markIncomplete() error {
	return l.db.Update(func(txn *badger.Txn) error {
		return txn.Set(keyIncomplete, []byte(time.Now().UTC().Format(time.RFC3339)))
	})
}

// await waits for the batch being synced, if any, and returns the ledger's failure if that
// or an earlier write failed.
func (c *committer) await() error {
	if c.prev != nil {
		<-c.prev.result
		c.prev = nil
	}
	if errp := c.l.failed.Load(); errp != nil {
		if len(c.batch) > 0 {
			c.fail(*errp)
		}
		return *errp
	}
	return nil
}

// submit hands the batch to Badger with the counters, the sender counts and the sync state
// it changes; the previous batch must be durable (await).
func (c *committer) submit() {
	if len(c.batch) == 0 {
		return
	}
	if err := c.finish(); err != nil {
		c.fail(err)
		return
	}
	// Created now, while nothing is in flight, so that it need not wait for this commit.
	next := c.l.db.NewTransaction(true)
	f := &inflight{batch: c.batch, stats: c.stats.clone(), sync: c.sync, start: time.Now(), result: make(chan error, 1)}
	c.txn.CommitWith(func(err error) { c.l.committed(f, err) })
	c.txn, c.prev = next, f
	c.reset()
}

// finish writes the batch's counters, sender counts and sync state into its transaction.
func (c *committer) finish() error {
	writes, written, err := c.l.senderWrites(c.txn, &c.stats, c.prevSenders)
	if err != nil {
		return err
	}
	for _, w := range writes {
		if err := c.put(w); err != nil {
			return err
		}
	}
	c.prevSenders = written
	c.stats.confirm(c.sync.Confirmed)
	if err := c.put(kv{key: keyStats, value: c.stats.marshal()}); err != nil {
		return err
	}
	if c.syncChanged {
		data, _ := json.Marshal(c.sync)
		if err := c.put(kv{key: keySync, value: data}); err != nil {
			return err
		}
	}
	// A split batch leaves the marker to the Resync a ledger that needs one waits for.
	if c.resync || (c.split && !c.l.needsResync.Load()) {
		return c.put(kv{key: keyIncomplete})
	}
	return nil
}

// fail refuses the batch and everything after it: the in-memory state is now ahead of the
// disk.
func (c *committer) fail(err error) {
	if !errors.Is(err, ErrFailed) {
		err = fmt.Errorf("%w: %v", ErrFailed, err)
	}
	if c.l.failed.CompareAndSwap(nil, &err) {
		c.l.log.Error("ledger write failed; refusing all payments until restart", "err", err, "writes", len(c.batch))
	}
	errp := c.l.failed.Load()
	for _, w := range c.batch {
		w.done <- *errp
	}
	c.reset()
	c.txn.Discard()
	c.txn = c.l.db.NewTransaction(true)
}

// reset starts a new batch.
func (c *committer) reset() {
	c.batch, c.size, c.syncChanged, c.split, c.resync = nil, 0, false, false, false
}

// committed runs when a batch's commit is over: it publishes the counters, then answers the
// writers, then lets the committer go on.
func (l *Ledger) committed(f *inflight, err error) {
	if err == nil {
		l.statsMu.Lock()
		l.stats, l.sync = f.stats, f.sync
		l.statsMu.Unlock()
		if l.onCommit != nil {
			l.onCommit(len(f.batch), time.Since(f.start))
		}
		for _, w := range f.batch {
			w.durable.Store(true)
			if w.resync {
				l.needsResync.Store(false)
			}
		}
	} else {
		err = fmt.Errorf("%w: %v", ErrFailed, err)
		if l.failed.CompareAndSwap(nil, &err) {
			l.log.Error("ledger write failed; refusing all payments until restart", "err", err, "writes", len(f.batch))
		}
		err = *l.failed.Load()
	}
	for _, w := range f.batch {
		w.done <- err
	}
	f.result <- err
}
