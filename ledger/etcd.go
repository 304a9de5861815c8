package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uraiden/uraiden/rdn"
)

// EtcdOptions configure OpenEtcd.
type EtcdOptions struct {
	// Client is a connected client of the cluster; the ledger uses it and leaves it open.
	Client *clientv3.Client
	// Prefix is the root of uraiden's keys (say "/uraiden/"); the ledger keeps its own under
	// Prefix ‖ "<chain id>/<contract>/<receiver>/", so receivers can share a cluster.
	Prefix   string
	Identity Identity
	// Timeout bounds each request to the cluster (default 2 s): a payment whose write does
	// not finish in time is refused, and its outcome read back.
	Timeout time.Duration
	// MaxTxnOps is the cluster's limit of operations in one transaction (etcd's
	// --max-txn-ops, default 128).
	MaxTxnOps int
	// MaxCached bounds the channels kept in memory (default DefaultMaxCached).
	MaxCached int
	Logger    *slog.Logger
	// OnCommit is as in Options.
	OnCommit func(writes int, took time.Duration)
	// Existing refuses to create the ledger: for tools that act on one already there.
	Existing bool
}

// DefaultEtcdTimeout is EtcdOptions.Timeout's default.
const DefaultEtcdTimeout = 2 * time.Second

// etcdStore is a ledger's keys in an etcd cluster, under one prefix.
type etcdStore struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	maxOps  int
	// replica names this process's in-flight markers (see etcdCommitter).
	replica string

	// syncMu guards syncRev: the mod revision of the sync state l.sync holds.
	syncMu  sync.Mutex
	syncRev int64

	fence fenceBox

	// senders counts each sender's open channels, for Stats.UniqueSenders; guarded by the
	// ledger's statsMu.
	senders map[common.Address]int64

	cancelWatch context.CancelFunc
	watchDone   chan struct{}
	probeDone   chan struct{}

	// unreachable is set while the cluster has not answered the probe: the time of the
	// first unanswered one, and why.
	unreachable atomic.Pointer[probeFailure]
}

type probeFailure struct {
	since time.Time
	err   error
}

// probeInterval is how often a replica checks that the cluster answers it; after
// unreachableAfter without an answer the ledger reports ErrUnavailable, so that the replica
// refuses payments at once and its readiness takes it out of Envoy's rotation. A leader
// election (about a second) does not reach that far.
const (
	probeInterval    = time.Second
	unreachableAfter = 2 * time.Second
)

// probe reads a key the way a payment would (linearizable: a quorum must answer) every
// probeInterval until ctx ends.
func (s *etcdStore) probe(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _, err := s.get(ctx, keyIdentity)
		switch prev := s.unreachable.Load(); {
		case err == nil && prev != nil:
			s.unreachable.Store(nil)
			log.Info("ledger: the etcd cluster answers again")
		case err != nil && prev == nil && ctx.Err() == nil:
			s.unreachable.Store(&probeFailure{since: time.Now(), err: err})
			log.Warn("ledger: the etcd cluster does not answer", "err", err)
		}
	}
}

// reachErr is ErrUnavailable once the cluster has not answered for unreachableAfter.
func (s *etcdStore) reachErr() error {
	f := s.unreachable.Load()
	if f == nil || time.Since(f.since) < unreachableAfter {
		return nil
	}
	return fmt.Errorf("%w: no answer for %s: %v", ErrUnavailable, time.Since(f.since).Round(time.Second), f.err)
}

// EtcdPrefix is where a ledger of this identity keeps its keys under root.
func EtcdPrefix(root string, id Identity) string {
	return fmt.Sprintf("%s%d/%s/%s/", root, id.ChainID, id.Contract.Hex(), id.Receiver.Hex())
}

// OpenEtcd opens or creates a ledger in an etcd cluster. It reads every channel once, to
// count the statistics, then follows the other replicas' writes through a watch.
func OpenEtcd(ctx context.Context, opts EtcdOptions) (*Ledger, error) {
	if opts.Client == nil {
		return nil, errors.New("ledger: etcd: no client")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultEtcdTimeout
	}
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = 128
	}
	if opts.MaxTxnOps < 8 {
		return nil, fmt.Errorf("ledger: etcd: MaxTxnOps %d is too small to commit anything", opts.MaxTxnOps)
	}
	if opts.MaxCached <= 0 {
		opts.MaxCached = DefaultMaxCached
	}
	replica := make([]byte, 8)
	_, _ = rand.Read(replica)
	s := &etcdStore{
		cli: opts.Client, prefix: EtcdPrefix(opts.Prefix, opts.Identity), timeout: opts.Timeout,
		maxOps: opts.MaxTxnOps, replica: hex.EncodeToString(replica),
	}
	l := &Ledger{
		store: s, etcd: s, log: opts.Logger, id: opts.Identity,
		channels: map[rdn.ChannelID]*entry{}, maxCached: opts.MaxCached,
		queue:    make(chan *write, 4096),
		maxBatch: opts.MaxTxnOps,
		onCommit: opts.OnCommit,
		closing:  make(chan struct{}),
		stopped:  make(chan struct{}),
		stats:    zeroStats(),
	}
	if err := s.claim(ctx, opts.Identity, opts.Existing); err != nil {
		return nil, err
	}
	rev, err := l.loadEtcd(ctx)
	if err != nil {
		return nil, err
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	s.cancelWatch, s.watchDone = cancel, make(chan struct{})
	s.probeDone = make(chan struct{})
	go l.follow(watchCtx, rev)
	go func() {
		defer close(s.probeDone)
		s.probe(watchCtx, l.log)
	}()
	go l.etcdCommitLoop()
	return l, nil
}

// claim writes the identity into a new prefix (unless existing: then the ledger must be
// there), or checks the one there. A prefix a restore is writing into is refused: its
// ledger is not whole yet.
func (s *etcdStore) claim(ctx context.Context, id Identity, existing bool) error {
	data, _ := json.Marshal(id)
	key, mark := s.key(keyIdentity), s.key(keyRestoring)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	put := []clientv3.Op{clientv3.OpPut(key, string(data))}
	if existing {
		put = nil
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0), clientv3.Compare(clientv3.CreateRevision(mark), "=", 0)).
		Then(put...).
		Else(clientv3.OpGet(key), clientv3.OpGet(mark)).Commit()
	if err != nil {
		return fmt.Errorf("ledger: etcd: claim %s: %w", s.prefix, err)
	}
	if resp.Succeeded {
		if existing {
			return fmt.Errorf("ledger: etcd %s holds no ledger", s.prefix)
		}
		return nil
	}
	if len(resp.Responses[1].GetResponseRange().Kvs) > 0 {
		return fmt.Errorf("%w: etcd %s (its %s key is there)", ErrRestoring, s.prefix, keyRestoring)
	}
	var stored Identity
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) != 1 || json.Unmarshal(kvs[0].Value, &stored) != nil {
		return fmt.Errorf("ledger: etcd: %s holds an unreadable identity", key)
	}
	if stored != id {
		return fmt.Errorf("%w: %s holds chain %d, contract %s, receiver %s", ErrWrongLedger, s.prefix,
			stored.ChainID, stored.Contract, stored.Receiver)
	}
	return nil
}

// loadEtcd reads the sync state, the resync marker and every channel at one revision, and
// counts the statistics from them; it returns that revision, from which the watch follows.
func (l *Ledger) loadEtcd(ctx context.Context) (int64, error) {
	s := l.etcd
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	resp, err := s.cli.Txn(rctx).Then(clientv3.OpGet(s.key(keySync)), clientv3.OpGet(s.key(keyIncomplete))).Commit()
	cancel()
	if err != nil {
		return 0, fmt.Errorf("ledger: etcd: read the sync state: %w", err)
	}
	rev := resp.Header.Revision
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
		if err := json.Unmarshal(kvs[0].Value, &l.sync); err != nil {
			return 0, fmt.Errorf("ledger: etcd: read the sync state: %w", err)
		}
		s.syncRev = kvs[0].ModRevision
	}
	l.confirmed.Store(l.sync.Confirmed)
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) == 1 && markerNeedsResync(kvs[0].Value) {
		l.needsResync.Store(true)
		l.log.Warn("ledger: a resync was asked for: taking no payment until the channels are read from the contract again")
	}
	st, senders, _, err := s.count(ctx, rev)
	if err != nil {
		return 0, err
	}
	st.confirm(l.sync.Confirmed)
	l.stats, s.senders = st, senders
	return rev, nil
}

// key is a ledger key's etcd key.
func (s *etcdStore) key(k []byte) string { return s.prefix + string(k) }

func (s *etcdStore) get(ctx context.Context, key []byte) ([]byte, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.key(key))
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

func (s *etcdStore) scan(ctx context.Context, prefix, start []byte, _ int, fn func(key, value []byte) (bool, error)) error {
	_, err := s.scanAt(ctx, 0, prefix, start, fn)
	return err
}

// scanPage is how many keys one request of a scan reads.
const scanPage = 1000

// scanAt scans at revision rev (0: the current one), a page at a time, every page at the
// first page's revision: one consistent view however long the scan. It returns that
// revision.
func (s *etcdStore) scanAt(ctx context.Context, rev int64, prefix, start []byte, fn func(key, value []byte) (bool, error)) (int64, error) {
	end := clientv3.GetPrefixRangeEnd(s.key(prefix))
	from := s.key(prefix)
	if start != nil {
		from = s.key(start)
	}
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(scanPage)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(ctx, s.timeout)
		resp, err := s.cli.Get(rctx, from, opts...)
		cancel()
		if err != nil {
			return rev, err
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			more, err := fn(kv.Key[len(s.prefix):], kv.Value)
			if err != nil || !more {
				return rev, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		from = string(append(bytes.Clone(resp.Kvs[len(resp.Kvs)-1].Key), 0))
	}
}

// setSync records the sync state stored at rev, unless a newer one is known.
func (l *Ledger) setSync(sync SyncState, rev int64) {
	s := l.etcd
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if rev < s.syncRev {
		return
	}
	s.syncRev = rev
	l.statsMu.Lock()
	l.sync = sync
	l.stats.confirm(sync.Confirmed)
	l.statsMu.Unlock()
	l.confirmed.Store(sync.Confirmed)
}

// refreshSync reads the sync state from the cluster: a replica that becomes the chain side
// must continue from the last cursor written, not from what its watch has seen so far.
func (l *Ledger) refreshSync(ctx context.Context) error {
	v, rev, err := l.etcd.get(ctx, keySync)
	if err != nil {
		return fmt.Errorf("ledger: etcd: read the sync state: %w", err)
	}
	var sync SyncState
	if v != nil {
		if err := json.Unmarshal(v, &sync); err != nil {
			return fmt.Errorf("ledger: etcd: read the sync state: %w", err)
		}
	}
	l.setSync(sync, rev)
	return nil
}

func (s *etcdStore) syncRevision() int64 {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.syncRev
}
