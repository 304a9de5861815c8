package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// follow keeps the replica in step with the others through a watch on the ledger's prefix,
// from the revision the ledger was loaded at: a cached channel another replica changed gets
// the new record (a stale entry would only cost a refused compare and a retry), the
// statistics move with every channel change, and the sync state and the resync marker follow
// the chain side's writes. Counting the statistics from the watch keeps every payment to one
// key: no counter that all replicas would write.
func (l *Ledger) follow(ctx context.Context, rev int64) {
	s := l.etcd
	defer close(s.watchDone)
	for ctx.Err() == nil {
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.prefix,
			clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV())
		for resp := range wch {
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					l.log.Warn("ledger: the watch fell behind the cluster's compaction; counting again", "revision", rev)
					if r, err := l.recountEtcd(ctx); err == nil {
						rev = r
					}
				} else if ctx.Err() == nil {
					l.log.Warn("ledger: the watch of the other replicas' writes broke; resuming", "err", err)
				}
				break
			}
			for _, ev := range resp.Events {
				l.observe(ev)
				rev = ev.Kv.ModRevision
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// observe applies one change of the ledger's keys.
func (l *Ledger) observe(ev *clientv3.Event) {
	s := l.etcd
	key := ev.Kv.Key[len(s.prefix):]
	var value []byte
	if ev.Type == mvccpb.PUT {
		value = ev.Kv.Value
	}
	switch {
	case bytes.HasPrefix(key, prefixChannel):
		id, err := channelIDFromKey(key)
		if err != nil {
			l.log.Error("ledger: a channel key of the cluster is not one", "key", fmt.Sprintf("%x", key))
			return
		}
		l.countChange(ev.PrevKv, value, key)
		l.mu.RLock()
		e := l.channels[id]
		l.mu.RUnlock()
		if e == nil {
			return
		}
		// lastPut before rev: the committer records a write's revision before it sends the
		// next write, so an own record is recognised by one or the other.
		own := e.lastPut.Load()
		if ev.Kv.ModRevision <= e.rev.Load() {
			return
		}
		if own != nil && value != nil && bytes.Equal(*own, value) {
			return // this replica's write: the committer records its revision
		}
		e.invalidate(&freshRecord{value: value, rev: ev.Kv.ModRevision})
	case bytes.Equal(key, keySync) && value != nil:
		var sync SyncState
		if err := json.Unmarshal(value, &sync); err != nil {
			l.log.Error("ledger: unreadable sync state in the cluster", "err", err)
			return
		}
		l.setSync(sync, ev.Kv.ModRevision)
	case bytes.Equal(key, keyIncomplete):
		l.needsResync.Store(markerNeedsResync(value))
	}
}

// countChange moves the statistics by a channel record's change.
func (l *Ledger) countChange(prev *mvccpb.KeyValue, value, key []byte) {
	id, _ := channelIDFromKey(key)
	decode := func(v []byte) *Channel {
		if v == nil {
			return nil
		}
		c, err := unmarshalChannel(id, v)
		if err != nil {
			l.log.Error("ledger: unreadable channel record in the cluster", "channel", id, "err", err)
			return nil
		}
		return c
	}
	var before *Channel
	if prev != nil {
		before = decode(prev.Value)
	}
	d := statsDelta(before, decode(value))
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	l.etcd.countSenders(&d)
	l.stats.add(d)
	l.stats.confirm(l.sync.Confirmed)
}

// countSenders folds a delta's per-sender counts of open channels into the replica's own
// and turns them into UniqueSenders, so that Stats need not copy a map of every sender. The
// caller holds statsMu.
func (s *etcdStore) countSenders(d *Stats) {
	if s.senders == nil {
		s.senders = map[common.Address]int64{}
	}
	for sender, n := range d.senders {
		before := s.senders[sender]
		after := before + n
		if after > 0 {
			s.senders[sender] = after
		} else {
			delete(s.senders, sender)
		}
		switch {
		case before <= 0 && after > 0:
			d.UniqueSenders++
		case before > 0 && after <= 0:
			d.UniqueSenders--
		}
	}
	d.senders = nil
}

// recountEtcd counts the statistics again and drops the cache, after the watch lost events
// to compaction; it returns the revision to follow from.
func (l *Ledger) recountEtcd(ctx context.Context) (int64, error) {
	st, senders, rev, err := l.etcd.count(ctx, 0)
	if err != nil {
		l.log.Error("ledger: counting the channels again failed", "err", err)
		return 0, err
	}
	l.statsMu.Lock()
	l.stats, l.etcd.senders = st, senders
	l.stats.confirm(l.sync.Confirmed)
	l.statsMu.Unlock()
	l.mu.RLock()
	for _, e := range l.channels {
		e.invalidate(&freshRecord{reload: true})
	}
	l.mu.RUnlock()
	if err := l.refreshSync(ctx); err != nil {
		return 0, err
	}
	return rev, l.refreshResyncMarker(ctx)
}

// count reads every channel at revision rev (0: the current one) and counts the statistics
// and the senders; it returns the revision read.
func (s *etcdStore) count(ctx context.Context, rev int64) (Stats, map[common.Address]int64, int64, error) {
	st := zeroStats()
	rev, err := s.scanAt(ctx, rev, prefixChannel, nil, func(key, value []byte) (bool, error) {
		id, err := channelIDFromKey(key)
		if err != nil {
			return false, err
		}
		c, err := unmarshalChannel(id, value)
		if err != nil {
			return false, err
		}
		st.add(contribution(c))
		return true, nil
	})
	if err != nil {
		return Stats{}, nil, 0, fmt.Errorf("ledger: etcd: count the channels: %w", err)
	}
	senders := st.senders
	st.senders = nil
	st.UniqueSenders = int64(len(senders))
	return st, senders, rev, nil
}

// splitMarkerPrefix starts the resync marker's value while the chain side writes an update
// too large for one transaction, followed by its election key.
const splitMarkerPrefix = "split "

// markerNeedsResync tells from the resync marker's value (nil: absent) whether payments wait
// for a resync. A split write in progress does not stop them: the chain side that writes it
// is alive, the cursor moves only with its last part, and no event can be applied twice
// while the marker stands. If that chain side dies before the last part, the next one finds
// the marker when it takes over and turns it into a resync request (takeMarker).
func markerNeedsResync(value []byte) bool {
	return value != nil && !bytes.HasPrefix(value, []byte(splitMarkerPrefix))
}

// refreshResyncMarker reads whether payments wait for a resync.
func (l *Ledger) refreshResyncMarker(ctx context.Context) error {
	v, _, err := l.etcd.get(ctx, keyIncomplete)
	if err != nil {
		return fmt.Errorf("ledger: etcd: read the resync marker: %w", err)
	}
	l.needsResync.Store(markerNeedsResync(v))
	return nil
}

// takeMarker, run by a replica that just took the chain side, turns a split write's marker
// that its last chain side left behind into a resync request, which every replica honours.
func (l *Ledger) takeMarker(ctx context.Context) error {
	v, _, err := l.etcd.get(ctx, keyIncomplete)
	if err != nil {
		return fmt.Errorf("ledger: etcd: read the resync marker: %w", err)
	}
	if v == nil {
		l.needsResync.Store(false)
		return nil
	}
	if markerNeedsResync(v) {
		l.needsResync.Store(true)
		return nil
	}
	l.log.Warn("ledger: the last chain side stopped in the middle of an update in several parts: " +
		"taking no payment until the channels are read from the contract again")
	return l.RequestResync()
}
