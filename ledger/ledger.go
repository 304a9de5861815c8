// Package ledger is the receiver's durable record of its payment channels: every channel's
// deposit, state and the highest balance proof its sender signed, what has been charged, the
// chain sync cursor, and counters for statistics. It decides whether a payment is accepted
// (the payment rule) and answers only once the payment is durable.
//
// Channels are cached in memory after first use; each has its own lock, so payments on
// different channels never wait for each other, and payments on one channel are applied in
// order and may be in flight together. Beneath the rule are two stores (store.go):
//
//   - Badger (Open), the embedded default: one process per directory, synchronous writes, and
//     one committer that groups everything queued into a single transaction, so one fsync
//     makes many payments durable at once (commit.go). A directory belongs to one chain,
//     contract and receiver; Open refuses another's, and Badger's lock a second process.
//   - etcd (OpenEtcd), shared by several replicas: each channel record is written with a
//     compare-and-swap on the revision it was decided on, many channels per transaction
//     (etcd_commit.go); a watch keeps every replica's cache and counters in step
//     (etcd_watch.go); chain-side writes are fenced by an election (fence.go).
package ledger

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

var (
	prefixChannel = []byte("ch/")
	prefixSender  = []byte("snd/")
	keyIdentity   = []byte("meta/identity")
	keySync       = []byte("meta/sync")
	keyStats      = []byte("meta/stats")
	// keyIncomplete marks a write committed in several transactions (see committer.put)
	// whose last part is not on disk yet, or a resync an operator asked for: the chain's
	// view must be read again from the contract (NeedsResync).
	keyIncomplete = []byte("meta/incomplete")
)

// Errors.
var (
	ErrClosed      = errors.New("ledger: closed")
	ErrFailed      = errors.New("ledger: a write failed; restart to recover from disk")
	ErrWrongLedger = errors.New("ledger: directory belongs to another chain, contract or receiver")
	// ErrLocked means another process has the directory open: Badger allows one per directory.
	ErrLocked = errors.New("ledger: the directory is in use by another process")
	// ErrResyncing means the ledger takes no payment until the chain watcher has read every
	// channel from the contract again (see NeedsResync).
	ErrResyncing = errors.New("ledger: waiting to read the channels from the contract again")
)

// Identity is what a ledger directory belongs to.
type Identity struct {
	ChainID  uint64         `json:"chain_id"`
	Contract common.Address `json:"contract"`
	Receiver common.Address `json:"receiver"`
}

// Options configure Open.
type Options struct {
	// Dir is the data directory; empty with InMemory for tests and benchmarks.
	Dir      string
	InMemory bool
	Identity Identity
	// NoSync turns off fsync: only for benchmarks that measure what durability costs.
	NoSync bool
	// MinFreeBytes, when positive, is the free space Dir's file system must keep for the
	// ledger to take payments: below it Pay and Err return ErrLowSpace, until space is
	// freed. It is read at Open and every second after.
	MinFreeBytes uint64
	// MaxBatch caps how many queued writes share one transaction.
	MaxBatch int
	// MaxCached bounds the channels kept in memory (default DefaultMaxCached); beyond it,
	// channels whose writes are all durable are dropped and read again when next used.
	MaxCached int
	Logger    *slog.Logger
	// OnCommit, when set, is told how many writes each durable transaction held and how
	// long it took, fsync included: a hook for metrics that keeps this package free of them.
	OnCommit func(writes int, took time.Duration)
}

// Ledger is an open ledger.
type Ledger struct {
	store store
	db    *badger.DB // the Badger store's database; nil on etcd
	etcd  *etcdStore // the etcd store; nil on Badger
	log   *slog.Logger
	id    Identity
	dir   string

	minFree  uint64
	lowSpace atomic.Pointer[error] // ErrLowSpace with the figures, or nil

	mu        sync.RWMutex
	channels  map[rdn.ChannelID]*entry
	maxCached int

	// confirmed is the highest block whose events count as confirmed.
	confirmed atomic.Uint64

	queue    chan *write
	maxBatch int
	onCommit func(writes int, took time.Duration)
	failed   atomic.Pointer[error]
	closing  chan struct{}
	stopped  chan struct{}
	closeMu  sync.RWMutex // held shared by writers while enqueueing, exclusively by Close
	isClosed bool

	// needsResync is set while keyIncomplete is on disk, from Open or RequestResync until a
	// Resync is durable.
	needsResync atomic.Bool
	// partCommitted, set by tests only, runs after each part of a split write is committed;
	// an error fails the write there, as a crash would stop it.
	partCommitted func() error

	statsMu sync.Mutex
	stats   Stats // durable: the sum of committed deltas
	sync    SyncState
}

type entry struct {
	mu       sync.Mutex
	loaded   bool
	detached bool     // dropped from the cache: look the channel up again
	ch       *Channel // nil: no such channel
	// last is the latest write of the channel's state: until it is durable the disk is
	// behind ch, and the entry must stay in the cache.
	last *write

	// The rest serves a replicated store (etcd), where other replicas write too; see
	// etcd_commit.go. rev is the mod revision of the newest record known durable, the one a
	// compare-and-swap of the next write expects.
	rev atomic.Int64
	// gen changes, under mu, whenever ch is replaced by a record from the store: a write
	// carries the gen it was decided under, so the committer can tell writes decided on
	// the state before.
	gen atomic.Uint64
	// fresh is a newer record seen by the committer or the watch (or a request to read the
	// record again), installed at next lock. Until then the writes decided on the entry are
	// known to be decided on a stale state, and are dropped.
	fresh atomic.Pointer[freshRecord]
	// lastPut is the record this replica last sent, to tell its own writes in the watch.
	lastPut atomic.Pointer[[]byte]
}

// freshRecord is a channel's record as the store holds it at rev; nil value: no record.
// reload asks for the record to be read again instead.
type freshRecord struct {
	value  []byte
	rev    int64
	reload bool
}

// setRev raises rev to r: revisions only grow, and the committer and the watch may learn of
// the same record in either order.
func (e *entry) setRev(r int64) {
	for {
		cur := e.rev.Load()
		if r <= cur || e.rev.CompareAndSwap(cur, r) {
			return
		}
	}
}

// invalidate has the entry's cached state replaced by f at next lock. The committer and
// the watch may learn of records in either order: the newest is kept, and a reload beats
// any.
func (e *entry) invalidate(f *freshRecord) {
	for {
		cur := e.fresh.Load()
		if cur != nil && (cur.reload || (!f.reload && cur.rev >= f.rev)) {
			return
		}
		if e.fresh.CompareAndSwap(cur, f) {
			return
		}
	}
}

// refresh installs a record left by invalidate; the caller holds e.mu. The gen changes
// before the revision does: see etcdCommitter.decidedOn.
func (e *entry) refresh(id rdn.ChannelID) error {
	if e.fresh.Load() == nil {
		return nil // the common case, and on Badger always: a read, not a write
	}
	f := e.fresh.Swap(nil)
	if f == nil {
		return nil
	}
	e.gen.Add(1)
	switch {
	case !e.loaded:
		return nil
	case f.reload || f.rev < e.rev.Load():
		// Asked for, or older than a record the entry was decided on since: writes
		// decided on the entry may have changed ch in memory, so read the record again.
		// (A record at e.rev itself is the durable state those writes started from.)
		e.loaded = false
		return nil
	case f.value == nil:
		e.ch = nil
	default:
		ch, err := unmarshalChannel(id, f.value)
		if err != nil {
			return err
		}
		e.ch = ch
	}
	e.setRev(f.rev)
	return nil
}

// evictable reports whether the entry may leave the cache: the disk holds its state. The
// caller holds e.mu.
func (e *entry) evictable() bool {
	if e.last != nil && (e.last.durable.Load() || e.last.dropped.Load()) {
		e.last = nil // let the write go
	}
	return e.loaded && e.last == nil
}

// write is one unit the committer makes durable: key/value sets and the stats it changes.
type write struct {
	sets  []kv
	delta Stats
	sync  *SyncState
	// resync marks Resync's write: once durable, the ledger no longer needs one.
	resync bool
	done   chan error
	// durable is set once the write is on disk, before done is told.
	durable atomic.Bool
	// dropped is set when a replicated store refused the write (another replica wrote
	// first, or the outcome is unknown and was not applied): the entry's state is replaced.
	dropped atomic.Bool
	// chain marks a write of the chain side (events, resyncs, disputes): in a replicated
	// store only the elected replica may make it, fenced by its leadership (see Fence).
	chain bool
	// fence and syncRev are, for a chain write to a replicated store, the leadership and
	// the sync state's revision it was decided under (see chainWrite).
	fence   *Fence
	syncRev int64
}

// chainWrite marks w as the chain side's, decided now: under the current leadership and
// sync state of a replicated store, which its transaction compares.
func (l *Ledger) chainWrite(w *write) *write {
	w.chain = true
	if l.etcd != nil {
		w.fence, w.syncRev = l.etcd.fence.get(), l.etcd.syncRevision()
	}
	return w
}

// kv is a key to set, or to delete when value is nil. A channel record's kv names its entry
// and the entry's gen when it was decided, for a replicated store's compare (see entry).
type kv struct {
	key, value []byte
	e          *entry
	gen        uint64
	absent     bool // decided on no record of the channel
}

// channelKV is the write of a channel's new state, decided on e's state.
func channelKV(e *entry, c *Channel) kv {
	return kv{key: channelKey(c.ID), value: c.marshal(), e: e, gen: e.gen.Load()}
}

// Open opens or creates a ledger.
func Open(opts Options) (*Ledger, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 4096
	}
	if opts.MaxCached <= 0 {
		opts.MaxCached = DefaultMaxCached
	}
	bo := badgerOptions(opts.Dir, opts.Logger).
		WithInMemory(opts.InMemory).
		WithSyncWrites(!opts.NoSync).
		WithNumVersionsToKeep(1)
	db, err := openBadger(bo)
	if err != nil {
		return nil, err
	}
	l := &Ledger{
		store: badgerStore{db}, db: db, log: opts.Logger, id: opts.Identity, dir: opts.Dir, minFree: opts.MinFreeBytes,
		channels: map[rdn.ChannelID]*entry{}, maxCached: opts.MaxCached,
		queue:    make(chan *write, opts.MaxBatch),
		maxBatch: opts.MaxBatch,
		onCommit: opts.OnCommit,
		closing:  make(chan struct{}),
		stopped:  make(chan struct{}),
		stats:    zeroStats(),
	}
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	go l.commitLoop()
	l.guardSpace(opts.InMemory)
	return l, nil
}

// load checks the identity (writing it into a new ledger), reads the sync state and the
// counters, and notices a write cut short (keyIncomplete): then the counters are counted
// again from the channels and payments wait for a Resync.
func (l *Ledger) load() error {
	current := true
	err := l.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keyIdentity)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			data, _ := json.Marshal(l.id)
			return txn.Set(keyIdentity, data)
		case err != nil:
			return fmt.Errorf("ledger: read identity: %w", err)
		}
		var stored Identity
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &stored) }); err != nil {
			return fmt.Errorf("ledger: read identity: %w", err)
		}
		if stored != l.id {
			return fmt.Errorf("%w: it holds chain %d, contract %s, receiver %s; configured chain %d, contract %s, receiver %s",
				ErrWrongLedger, stored.ChainID, stored.Contract, stored.Receiver, l.id.ChainID, l.id.Contract, l.id.Receiver)
		}
		if err := getJSON(txn, keySync, &l.sync); err != nil {
			return err
		}
		l.confirmed.Store(l.sync.Confirmed)
		switch _, err := txn.Get(keyIncomplete); {
		case err == nil:
			l.needsResync.Store(true)
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("ledger: read %s: %w", keyIncomplete, err)
		}
		current, err = l.loadStats(txn)
		return err
	})
	switch {
	case err != nil:
		return err
	case l.needsResync.Load():
		l.log.Warn("ledger: a write in several parts was cut short, or a resync was asked for: " +
			"counting the statistics again, and taking no payment until the channels are read from the contract again")
	case !current:
		l.log.Info("ledger: counting the statistics of every channel once, for this version")
	default:
		return nil
	}
	l.stats, err = l.rewriteCounters()
	return err
}

// loadStats reads the counters; current is false when a version that kept fewer wrote them.
func (l *Ledger) loadStats(txn *badger.Txn) (current bool, err error) {
	item, err := txn.Get(keyStats)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return true, nil // a new ledger: no channels yet
	}
	if err != nil {
		return false, fmt.Errorf("ledger: read stats: %w", err)
	}
	err = item.Value(func(v []byte) error {
		l.stats, current, err = unmarshalStats(v)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("ledger: read stats: %w", err)
	}
	return current, nil
}

// badgerOptions are Badger's options for a ledger directory: synchronous writes, and memory
// bounded for a ledger of millions of channels (Badger's defaults allow five 64 MB memtables
// and a 256 MB block cache). A memtable of 32 MB holds some 100,000 channel records, and
// bounds a transaction to 15% of it (see maxBatchBytes); at most three exist while older ones
// are written out. The block cache keeps recently read table blocks for channels not in the
// ledger's own cache.
func badgerOptions(dir string, logger *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{logger}).
		WithMemTableSize(32 << 20).
		WithNumMemtables(3).
		WithBlockCacheSize(64 << 20)
}

// openBadger opens the database, reporting a directory held by another process as ErrLocked.
// Badger says so only in its error text (it formats the cause with %+v, so errors.Is cannot
// find the flock error), and a caller must be able to tell "stop the server first" from a
// damaged directory.
func openBadger(bo badger.Options) (*badger.DB, error) {
	db, err := badger.Open(bo)
	if err != nil && removeEmptyValueLog(bo.Dir, err, bo.Logger) {
		db, err = badger.Open(bo)
	}
	if err == nil {
		return db, nil
	}
	if strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return nil, fmt.Errorf("%w: %s", ErrLocked, bo.Dir)
	}
	return nil, fmt.Errorf("ledger: open %s: %w", bo.Dir, err)
}

// removeEmptyValueLog mends what a kill leaves when it lands just as Badger creates a value
// log file: the file, empty, which Badger then refuses to open ("Create a new file"), having
// grown it to its full size with zeros. A file of zeros was never written (its header alone
// holds a random IV), let alone holds an acknowledged payment, so it is removed and the open
// tried again. It acts only on that error, which Badger returns after taking the directory's
// lock: no other process is using the directory.
func removeEmptyValueLog(dir string, openErr error, logger badger.Logger) bool {
	msg := openErr.Error()
	if !strings.Contains(msg, "Create a new file") || !strings.Contains(msg, ".vlog") {
		return false
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil || len(files) == 0 {
		return false
	}
	newest := slices.Max(files) // fixed-width numbered names: the highest sorts last
	if !neverWritten(newest) {
		return false
	}
	if os.Remove(newest) != nil {
		return false
	}
	if logger != nil {
		logger.Warningf("removed the empty value log file %s, left by a crash as it was created", newest)
	}
	return true
}

// neverWritten reports whether a value log file's first megabyte is all zeros.
func neverWritten(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 1<<20)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false
	}
	for _, b := range head[:n] {
		if b != 0 {
			return false
		}
	}
	return true
}

func getJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: read %s: %w", key, err)
	}
	return item.Value(func(data []byte) error { return json.Unmarshal(data, v) })
}

// OpenExisting opens a ledger directory that must already hold a ledger, whatever it belongs
// to: for tools (backup) that act on the directory as it is.
func OpenExisting(dir string, logger *slog.Logger) (*Ledger, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db, err := openBadger(badgerOptions(dir, logger))
	if err != nil {
		return nil, err
	}
	var id Identity
	err = db.View(func(txn *badger.Txn) error {
		if _, err := txn.Get(keyIdentity); errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("ledger: %s holds no ledger", dir)
		}
		return getJSON(txn, keyIdentity, &id)
	})
	db.Close()
	if err != nil {
		return nil, err
	}
	return Open(Options{Dir: dir, Identity: id, Logger: logger})
}

// Identity returns what the ledger belongs to.
func (l *Ledger) Identity() Identity { return l.id }

// Close waits for queued writes and closes the database.
func (l *Ledger) Close() error {
	l.closeMu.Lock()
	if l.isClosed {
		l.closeMu.Unlock()
		return nil
	}
	l.isClosed = true
	close(l.closing)
	l.closeMu.Unlock()
	<-l.stopped
	if l.etcd != nil {
		l.etcd.cancelWatch()
		<-l.etcd.watchDone
		<-l.etcd.probeDone
		return nil // the client is the caller's
	}
	return l.db.Close()
}

// entry returns the cached entry of a channel, loading it from disk on first use. The
// entry is returned locked.
func (l *Ledger) lockEntry(id rdn.ChannelID) (*entry, error) {
	for {
		l.mu.RLock()
		e := l.channels[id]
		l.mu.RUnlock()
		if e == nil {
			l.mu.Lock()
			if e = l.channels[id]; e == nil {
				if len(l.channels) >= l.maxCached {
					l.evictLocked(evictProbes)
				}
				e = &entry{}
				l.channels[id] = e
			}
			l.mu.Unlock()
		}
		e.mu.Lock()
		if e.detached {
			e.mu.Unlock()
			continue
		}
		if err := e.refresh(id); err != nil {
			e.mu.Unlock()
			return nil, fmt.Errorf("ledger: channel %s: %w", id, err)
		}
		if !e.loaded {
			ch, rev, err := l.read(id)
			if err != nil {
				// Unloaded, the entry could never be evicted: let it go.
				l.mu.Lock()
				if l.channels[id] == e {
					delete(l.channels, id)
				}
				e.detached = true
				l.mu.Unlock()
				e.mu.Unlock()
				return nil, err
			}
			// The revision read is the record's: stored as it is, not raised to, so a
			// revision wrongly remembered higher heals here.
			e.ch, e.loaded = ch, true
			e.rev.Store(rev)
		}
		return e, nil
	}
}

// DefaultMaxCached is how many channels a ledger keeps in memory by default: a cached channel
// takes about 1 KB, so 100,000 take about 100 MB.
const DefaultMaxCached = 100_000

// evictProbes bounds the cached channels one eviction looks at.
const evictProbes = 32

// evictLocked drops channels from the cache, starting at a random one (Go's map order), until
// it is below its bound or maxProbes were looked at: channels in use, or with a write not
// yet durable, stay. The caller holds l.mu; an entry's lock is only tried, since unlockEntry
// takes l.mu while holding one.
func (l *Ledger) evictLocked(maxProbes int) {
	probes := 0
	for id, e := range l.channels {
		if len(l.channels) < l.maxCached || probes == maxProbes {
			return
		}
		probes++
		if !e.mu.TryLock() {
			continue
		}
		if e.evictable() {
			delete(l.channels, id)
			e.detached = true
		}
		e.mu.Unlock()
	}
}

// trimCache brings the cache back under its bound after a change of many channels, which
// holds them all while it runs.
func (l *Ledger) trimCache() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if excess := len(l.channels) - l.maxCached; excess >= 0 {
		l.evictLocked(excess + evictProbes)
	}
}

// unlockEntry releases an entry locked by lockEntry. An entry of a channel that does not exist
// leaves the cache, so that requests naming made-up channels cannot fill the memory; one
// whose deletion is not yet durable stays, or the disk would bring the channel back.
func (l *Ledger) unlockEntry(id rdn.ChannelID, e *entry) {
	if e.ch == nil && e.evictable() {
		l.mu.Lock()
		if l.channels[id] == e {
			delete(l.channels, id)
		}
		e.detached = true
		l.mu.Unlock()
	}
	e.mu.Unlock()
}

// read reads a channel's record and its revision (see store.get); a nil channel when the
// ledger has no record of it.
func (l *Ledger) read(id rdn.ChannelID) (*Channel, int64, error) {
	v, rev, err := l.store.get(context.Background(), channelKey(id))
	if err == nil && v != nil {
		var ch *Channel
		if ch, err = unmarshalChannel(id, v); err == nil {
			return ch, rev, nil
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: read channel %s: %w", id, err)
	}
	return nil, rev, nil
}

// Channel returns a copy of a channel's current state, or nil if the ledger does not know it.
func (l *Ledger) Channel(id rdn.ChannelID) (*Channel, error) {
	e, err := l.lockEntry(id)
	if err != nil {
		return nil, err
	}
	defer l.unlockEntry(id, e)
	if e.ch == nil {
		return nil, nil
	}
	return e.ch.clone(), nil
}

// Err returns nil while the ledger takes payments, ErrClosed after Close, the write error
// after a failed write (see ErrFailed), ErrResyncing until a needed Resync is durable,
// ErrLowSpace while the disk is nearly full, and ErrUnavailable while an etcd cluster has
// not answered for a while (see etcdStore.probe).
func (l *Ledger) Err() error {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if err := l.errLocked(); err != nil {
		return err
	}
	// Not in errLocked: these refuse new payments, never a write already decided, and a
	// resync must be able to write.
	if l.needsResync.Load() {
		return ErrResyncing
	}
	if l.etcd != nil {
		return l.etcd.reachErr()
	}
	return l.spaceErr()
}

// errLocked is Err for a caller holding closeMu.
func (l *Ledger) errLocked() error {
	if errp := l.failed.Load(); errp != nil {
		return *errp
	}
	if l.isClosed {
		return ErrClosed
	}
	return nil
}

// ConfirmedHeight is the highest block whose events count as confirmed.
func (l *Ledger) ConfirmedHeight() uint64 { return l.confirmed.Load() }

// enqueue hands a write to the committer. The caller holds the locks of the channels the
// write touches, so writes to one channel are queued in the order they were applied.
func (l *Ledger) enqueue(w *write) error {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if err := l.errLocked(); err != nil {
		return err
	}
	w.done = make(chan error, 1)
	l.queue <- w
	return nil
}

// wait blocks until the write is durable.
func wait(ctx context.Context, w *write) error {
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("ledger: waiting for the write: %w", ctx.Err())
	}
}

// Stats returns the counters as of the last durable write.
func (l *Ledger) Stats() Stats {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	return l.stats.clone()
}

// Sync returns the chain sync state as of the last durable write.
func (l *Ledger) Sync() SyncState {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	return l.sync
}

// Backup writes a full backup to w: Badger's backup stream (read by Restore), or on etcd
// the portable format at one revision (see Export; read by RestoreEtcd).
func (l *Ledger) Backup(w io.Writer) error {
	if l.etcd != nil {
		_, err := l.Export(context.Background(), w)
		return err
	}
	if _, err := l.db.Backup(w, 0); err != nil {
		return fmt.Errorf("ledger: backup: %w", err)
	}
	return nil
}

// Restore loads a backup stream into an empty, closed ledger directory.
func Restore(dir string, r io.Reader, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	br := bufio.NewReader(r)
	if head, _ := br.Peek(len(portableMagic)); string(head) == portableMagic {
		return errors.New("ledger: restore: this is a portable backup (uraiden backup --format portable, or of an etcd ledger): " +
			"it restores into an etcd ledger (ledger.backend: etcd); a Badger directory restores Badger's own backups")
	}
	r = br
	db, err := openBadger(badgerOptions(dir, logger))
	if err != nil {
		return err
	}
	empty := true
	_ = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	if !empty {
		db.Close()
		return fmt.Errorf("ledger: restore into %s: the directory already holds a ledger", dir)
	}
	if err := db.Load(r, 256); err != nil {
		db.Close()
		return fmt.Errorf("ledger: restore: %w", err)
	}
	// Badger asks for this after a load: the loaded tables overlap, and until they are
	// compacted reads look through all of them while compaction competes for the disk.
	if err := db.Flatten(2); err != nil {
		db.Close()
		return fmt.Errorf("ledger: restore: compact: %w", err)
	}
	if err := db.Sync(); err != nil {
		db.Close()
		return fmt.Errorf("ledger: restore: %w", err)
	}
	return db.Close()
}

// badgerLogger sends Badger's logs to slog.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error("badger: " + trim(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn("badger: " + trim(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug("badger: " + trim(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug("badger: " + trim(fmt.Sprintf(f, a...))) }

func trim(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
