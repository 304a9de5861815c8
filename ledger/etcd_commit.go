package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd committer makes queued writes durable in the cluster, many channels per
// transaction, with a compare-and-swap per channel: the record's mod revision must still be
// the one the write was decided on (entry.rev), so a write decided on a state another replica
// has since changed is refused, never applied. When a transaction's compares fail, the
// channels that changed get their new record (entry.invalidate) and their writes fail with
// errConflict, which makes Pay decide again; the other writes go into the next transaction.
//
// A channel is in at most one transaction in flight: a write decided on top of one in flight
// waits, and its compare is the revision that one produced. Several transactions of
// different channels are in flight at once (etcdInflight), so that the cluster's group
// commit, not this loop, sets the pace.
//
// A transaction whose outcome is unknown (a timeout, a leader change, a broken connection)
// is resolved by reading back, never guessed. Each transaction also writes this replica's
// marker key of its slot, and compares that marker's mod revision; resolving is one more
// transaction that finds the marker as the lost one would have left it (applied), or else
// rewrites it, which makes the lost one fail its compare should it still reach the log.

// errConflict means a write was decided on a state of a channel that another replica, or a
// write of this one whose outcome was unknown, has changed since: nothing was stored.
var errConflict = errors.New("ledger: the channel changed under the write")

// ErrUnavailable means the replicated store did not store a write within its timeout, or
// cannot be reached: the payment is refused (503), not accepted.
var ErrUnavailable = errors.New("ledger: the replicated store is unavailable")

// errStaleSync refuses a chain write decided on a sync state older than the stored one:
// another replica ran the chain side since.
var errStaleSync = errors.New("ledger: the chain sync state changed under the write")

// etcdInflight is how many transactions the committer keeps in flight: two, so that one
// fills while the other is in the cluster. Each transaction costs the members a raft entry, a
// WAL write and an apply on every member whatever it holds, so more in flight means smaller
// transactions and more CPU per payment; on two shared cores with three members, 4 in flight
// paid 7–8 writes a transaction at 570–800 µs of CPU a check, 2 paid 13–14 at 430–440 µs and
// ran 1.7–2.2 times as many checks/s (docs/performance.md).
const etcdInflight = 2

// prefixReplica keys the replicas' in-flight markers: "replica/" ‖ replica ‖ "/" ‖ slot.
const prefixReplica = "replica/"

type etcdCommitter struct {
	l       *Ledger
	s       *etcdStore
	pending []*write
	busy    map[string]bool // keys in a transaction in flight
	free    []*slot
	slots   int // slots ever made, to name a new one
	results chan *etcdTxn
}

// slot is one of the transactions a replica keeps in flight, with its marker.
type slot struct {
	key string
	rev int64 // the marker's mod revision; 0 while absent
	seq uint64
}

// etcdTxn is one transaction: the writes it makes durable and, once run, its outcome.
type etcdTxn struct {
	writes  []*write
	keys    map[string]*txnKey
	order   []string
	chain   bool
	fence   *Fence
	syncRev int64 // compared when the transaction writes the sync state
	slot    *slot
	start   time.Time

	outcome txnOutcome
	rev     int64 // the commit revision, once committed
	err     error // why it was not committed
	// conflicts are the channel keys whose compare failed, with the records found; current
	// has the records found of every channel key of a refused transaction.
	conflicts map[string]*freshRecord
	current   map[string]*freshRecord
}

type txnOutcome uint8

const (
	txnCommitted txnOutcome = iota + 1
	txnRefused              // a compare failed: see conflicts and err
	txnFailed               // not committed, or unknown and abandoned: err
)

// txnKey is one key the transaction writes.
type txnKey struct {
	kv
	cmpRev int64 // for a channel record: the mod revision it must still have
	rev    int64 // the revision it was committed at (a split write's parts differ)
}

func (l *Ledger) etcdCommitLoop() {
	defer close(l.stopped)
	c := &etcdCommitter{l: l, s: l.etcd, busy: map[string]bool{}, results: make(chan *etcdTxn, etcdInflight)}
	for range etcdInflight {
		c.free = append(c.free, c.newSlot())
	}
	closing := l.closing
	for {
		select {
		case w := <-l.queue:
			c.pending = append(c.pending, w)
		case t := <-c.results:
			c.finish(t)
		case <-closing:
			closing = nil // writers enqueue under closeMu: nothing new arrives after this
		}
	drain:
		for {
			select {
			case w := <-l.queue:
				c.pending = append(c.pending, w)
			default:
				break drain
			}
		}
		c.dispatch()
		if closing == nil && len(c.pending) == 0 && len(c.free) == etcdInflight {
			return
		}
	}
}

func (c *etcdCommitter) newSlot() *slot {
	c.slots++
	return &slot{key: c.s.key([]byte(prefixReplica + c.s.replica + "/" + strconv.Itoa(c.slots)))}
}

// dispatch starts transactions while slots are free and writes can go.
func (c *etcdCommitter) dispatch() {
	for len(c.free) > 0 && len(c.pending) > 0 {
		t := c.build()
		if t == nil {
			return
		}
		t.slot = c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
		for k := range t.keys {
			c.busy[k] = true
		}
		go func() { c.results <- c.run(t) }()
	}
}

// build takes the writes of the next transaction out of pending, in order: a write waits
// while a key of it is in flight or held back for an earlier write; a chain-side write goes
// alone.
func (c *etcdCommitter) build() *etcdTxn {
	t := &etcdTxn{keys: map[string]*txnKey{}}
	held := map[string]bool{}
	var rest []*write
	full := false
	for _, w := range c.pending {
		if full || t.chain {
			rest = append(rest, w)
			continue
		}
		revs, ok := c.decidedOn(w)
		if !ok {
			c.answer(w, errConflict)
			continue
		}
		keys := make([]string, len(w.sets))
		blocked := false
		for i, s := range w.sets {
			keys[i] = c.s.key(s.key)
			blocked = blocked || c.busy[keys[i]] || held[keys[i]]
		}
		switch {
		case blocked || (w.chain && len(t.writes) > 0):
			for _, k := range keys {
				held[k] = true
			}
			rest = append(rest, w)
			continue
		case !w.chain && len(t.keys)+len(keys) > c.s.maxOps-2:
			full = true
			rest = append(rest, w)
			continue
		}
		t.add(w, keys, revs)
	}
	c.pending = rest
	if len(t.writes) == 0 {
		return nil
	}
	if t.chain {
		// As decided: a write decided under a leadership this replica has lost since is
		// refused even if it has won another (the cursor it carries may be behind).
		w := t.writes[0]
		if w.fence != c.s.fence.get() {
			w.fence = nil
		}
		t.fence, t.syncRev = w.fence, w.syncRev
	}
	return t
}

// decidedOn returns the revisions the write's channel records must still have, or false when
// the write was decided on a state known to be stale: a newer record waits to be installed,
// or was installed since (the gen changed). The revision is read before the gen, and refresh
// changes the gen before the revision: a revision raised by an install is always seen with
// its gen, so a write decided before the install never compares against the new record.
func (c *etcdCommitter) decidedOn(w *write) ([]int64, bool) {
	revs := make([]int64, len(w.sets))
	for i, s := range w.sets {
		if s.e == nil {
			continue
		}
		if s.e.fresh.Load() != nil {
			return nil, false
		}
		revs[i] = s.e.rev.Load()
		if s.e.gen.Load() != s.gen {
			return nil, false
		}
	}
	return revs, true
}

func (t *etcdTxn) add(w *write, keys []string, revs []int64) {
	t.writes = append(t.writes, w)
	t.chain = t.chain || w.chain
	for i, s := range w.sets {
		if k, ok := t.keys[keys[i]]; ok {
			// Decided on top of the earlier write: its compare stands.
			k.kv.value, k.kv.gen = s.value, s.gen
			continue
		}
		t.keys[keys[i]] = &txnKey{kv: s, cmpRev: revs[i]}
		t.order = append(t.order, keys[i])
	}
}

// run commits the transaction and settles its outcome; it runs on its own goroutine.
func (c *etcdCommitter) run(t *etcdTxn) *etcdTxn {
	t.start = time.Now()
	switch {
	case t.chain && t.fence == nil:
		t.outcome, t.err = txnFailed, ErrNotLeader
	case t.chain && len(t.order) > c.s.maxOps-4:
		c.runSplit(t)
	default:
		c.commit(t, t.order, false, true, t.resyncs())
	}
	return t
}

// resyncs reports whether the transaction holds a Resync, which clears the resync marker.
func (t *etcdTxn) resyncs() bool {
	for _, w := range t.writes {
		if w.resync {
			return true
		}
	}
	return false
}

// commit runs one transaction over keys (all of t's, or a part of a split write). The first
// part of a split write puts the resync marker (mark); the last writes the sync state, and
// deletes the marker when unmark.
func (c *etcdCommitter) commit(t *etcdTxn, keys []string, mark, last, unmark bool) {
	s := c.s
	var cmps []clientv3.Cmp
	var ops, elses []clientv3.Op
	for _, k := range keys {
		tk := t.keys[k]
		if tk.e != nil {
			if tk.absent {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
			} else {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", tk.cmpRev))
			}
			elses = append(elses, clientv3.OpGet(k))
			if tk.value != nil {
				tk.e.lastPut.Store(&tk.value)
			}
		}
		if tk.value == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(tk.value)))
		}
	}
	if t.chain {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(t.fence.Key), "=", t.fence.Rev))
		elses = append(elses, clientv3.OpGet(t.fence.Key))
		if t.writesSync() {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.key(keySync)), "=", t.syncRev))
			elses = append(elses, clientv3.OpGet(s.key(keySync)))
		}
		if mark {
			ops = append(ops, clientv3.OpPut(s.key(keyIncomplete), splitMarkerPrefix+t.fence.Key))
		}
		if sync := t.sync(); sync != nil && last {
			data, _ := json.Marshal(sync)
			ops = append(ops, clientv3.OpPut(s.key(keySync), string(data)))
		}
		if unmark {
			ops = append(ops, clientv3.OpDelete(s.key(keyIncomplete)))
		}
	}
	sl := t.slot
	sl.seq++
	seq := strconv.FormatUint(sl.seq, 10)
	cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(sl.key), "=", sl.rev))
	ops = append(ops, clientv3.OpPut(sl.key, seq))
	elses = append(elses, clientv3.OpGet(sl.key))

	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(elses...).Commit()
	cancel()
	switch {
	case err != nil:
		c.resolve(t, seq, err)
	case resp.Succeeded:
		t.outcome, t.rev, sl.rev = txnCommitted, resp.Header.Revision, resp.Header.Revision
	default:
		c.refused(t, keys, resp)
	}
	if t.outcome == txnCommitted {
		for _, k := range keys {
			t.keys[k].rev = t.rev
		}
	}
}

// sync is the sync state a chain write stores, if any.
func (t *etcdTxn) sync() *SyncState {
	for _, w := range t.writes {
		if w.sync != nil {
			return w.sync
		}
	}
	return nil
}

func (t *etcdTxn) writesSync() bool { return t.sync() != nil }

// refused reads why compares failed from the else branch, in the order commit put them.
func (c *etcdCommitter) refused(t *etcdTxn, keys []string, resp *clientv3.TxnResponse) {
	t.outcome = txnRefused
	t.conflicts, t.current = map[string]*freshRecord{}, map[string]*freshRecord{}
	i := 0
	next := func() (value []byte, mod, create int64) {
		kvs := resp.Responses[i].GetResponseRange().Kvs
		i++
		if len(kvs) == 0 {
			return nil, 0, 0
		}
		return kvs[0].Value, kvs[0].ModRevision, kvs[0].CreateRevision
	}
	for _, k := range keys {
		tk := t.keys[k]
		if tk.e == nil {
			continue
		}
		value, mod, _ := next()
		found := &freshRecord{value: value, rev: mod}
		t.current[k] = found
		if (tk.absent && mod != 0) || (!tk.absent && mod != tk.cmpRev) {
			t.conflicts[k] = found
		}
	}
	if t.chain {
		if _, _, create := next(); create != t.fence.Rev {
			t.err = ErrNotLeader
		}
		if t.writesSync() {
			if _, mod, _ := next(); mod != t.syncRev && t.err == nil {
				t.err = errStaleSync
			}
		}
	}
	// The slot's marker is this replica's alone; learn its revision whatever happened.
	_, t.slot.rev, _ = next()
	if t.err == nil && len(t.conflicts) == 0 {
		t.err = errConflict // the marker's revision was stale: nothing of the write failed
	}
}

// resolve settles a transaction whose outcome the error left unknown: either the marker
// holds the transaction's sequence number (it was applied), or it is rewritten, which makes
// the lost transaction's compare on it fail should it still be applied. When even that
// cannot be done, the slot is given up: the writes fail, their channels are read again
// before the next decision, and the marker keeps the lost transaction from mattering.
func (c *etcdCommitter) resolve(t *etcdTxn, seq string, cause error) {
	s, sl := c.s, t.slot
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(sl.key), "=", seq)).
		Then(clientv3.OpGet(sl.key)).
		Else(clientv3.OpPut(sl.key, "void "+seq)).Commit()
	switch {
	case err != nil:
		t.outcome, t.err = txnFailed, fmt.Errorf("%w: %v (and reading the outcome back: %v)", ErrUnavailable, cause, err)
		t.slot = nil // given up; finish makes a new one
	case resp.Succeeded:
		kvs := resp.Responses[0].GetResponseRange().Kvs
		t.outcome, t.rev, sl.rev = txnCommitted, kvs[0].ModRevision, kvs[0].ModRevision
	default:
		t.outcome, t.err, sl.rev = txnFailed, fmt.Errorf("%w: %v", ErrUnavailable, cause), resp.Header.Revision
	}
}

// runSplit commits a chain write too large for one transaction in parts, behind the resync
// marker: a part refused or lost after the marker is stored leaves the ledger waiting for a
// Resync (events cannot be applied twice safely), as a Badger write cut short does.
func (c *etcdCommitter) runSplit(t *etcdTxn) {
	per := c.s.maxOps - 4
	// A ledger waiting for a resync keeps its marker as it is (a resync request, which
	// stops payments everywhere) until the Resync's last part deletes it; otherwise the
	// first part puts a split marker, and the last deletes it.
	waiting := c.l.needsResync.Load()
	for start := 0; start < len(t.order); start += per {
		end := min(start+per, len(t.order))
		last := end == len(t.order)
		unmark := last && (t.resyncs() || !waiting)
		c.commit(t, t.order[start:end], start == 0 && !waiting, last, unmark)
		if t.outcome != txnCommitted {
			if start > 0 && t.err != ErrNotLeader {
				c.l.needsResync.Store(true)
				t.outcome, t.err = txnFailed, fmt.Errorf("%w (a chain write in several parts was cut short: %v)", ErrResyncing, t.err)
			}
			return
		}
		if t.slot == nil {
			return
		}
	}
}

// finish answers the writers of a transaction that ran, and frees its slot and keys.
func (c *etcdCommitter) finish(t *etcdTxn) {
	for k := range t.keys {
		delete(c.busy, k)
	}
	if t.slot == nil {
		t.slot = c.newSlot()
	}
	c.free = append(c.free, t.slot)
	switch t.outcome {
	case txnCommitted:
		c.committed(t)
	case txnRefused:
		c.conflicted(t)
	default:
		for _, k := range t.keys {
			if k.e != nil {
				k.e.invalidate(&freshRecord{reload: true})
			}
		}
		for _, w := range t.writes {
			c.answer(w, t.err)
		}
	}
}

func (c *etcdCommitter) committed(t *etcdTxn) {
	for _, k := range t.keys {
		if k.e == nil {
			continue
		}
		if k.e.gen.Load() != k.gen {
			// The entry was read again or replaced while this write was in flight: its state
			// lacks the write, which is now the newest record. Decisions made on it since
			// are dropped, and the next one starts from this record.
			k.e.invalidate(&freshRecord{value: k.value, rev: k.rev})
		}
		k.e.setRev(k.rev)
	}
	for _, w := range t.writes {
		if w.sync != nil {
			c.l.setSync(*w.sync, t.rev)
		}
		if w.resync {
			c.l.needsResync.Store(false)
		}
		w.durable.Store(true)
		w.done <- nil
	}
	if c.l.onCommit != nil {
		c.l.onCommit(len(t.writes), time.Since(t.start))
	}
}

// conflicted hands the changed channels their records and fails their writes; the other
// writes go back to the front of the queue, their compares still true.
func (c *etcdCommitter) conflicted(t *etcdTxn) {
	for k, f := range t.conflicts {
		t.keys[k].e.invalidate(f)
	}
	if t.chain {
		// A chain write sets the state of every channel it touches in memory before it is
		// stored (Ledger.change): none of it was, so each gets the record the store holds,
		// or is read again when its part was never sent. Otherwise a payment decided on an
		// unstored event would store it, and the retried event count twice.
		for k, tk := range t.keys {
			if f := t.current[k]; f != nil {
				tk.e.invalidate(f)
			} else if tk.e != nil {
				tk.e.invalidate(&freshRecord{reload: true})
			}
		}
	}
	if t.err == errStaleSync {
		// The leader before this one wrote a later cursor: continue from it. Not on this
		// goroutine, which every commit waits for.
		go func() {
			if err := c.l.refreshSync(context.Background()); err != nil {
				c.l.log.Warn("ledger: reading the sync state again failed", "err", err)
			}
		}()
	}
	var retry []*write
	for _, w := range t.writes {
		failed := t.chain
		for _, s := range w.sets {
			failed = failed || t.conflicts[c.s.key(s.key)] != nil
		}
		switch {
		case !failed:
			retry = append(retry, w)
		case t.err == ErrNotLeader || t.err == errStaleSync:
			c.answer(w, t.err)
		default:
			c.answer(w, errConflict)
		}
	}
	c.pending = append(retry, c.pending...)
}

// answer fails a write that will not be stored.
func (c *etcdCommitter) answer(w *write, err error) {
	w.dropped.Store(true)
	w.done <- err
}
