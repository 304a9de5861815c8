package ledger

import (
	"context"
	"errors"
	"sync"
)

// ErrNotLeader refuses a chain-side write (events, resyncs, disputes) on a replica of a
// replicated ledger that does not hold the chain side's leadership, or lost it.
var ErrNotLeader = errors.New("ledger: this replica does not run the chain side")

// Fence is a replica's leadership of the chain side: the key an election created for it and
// that key's create revision. Every chain-side write compares the key's create revision with
// Rev, so a replica that lost the leadership while it was paused or cut off writes nothing,
// even if it has not noticed yet.
type Fence struct {
	Key string
	Rev int64
}

type fenceBox struct {
	mu sync.Mutex
	f  *Fence
}

func (b *fenceBox) get() *Fence {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.f
}

// SetFence makes this replica the chain side of a replicated ledger, its writes fenced by f,
// or (f nil) no longer. Taking the leadership reads the sync state from the cluster first,
// so that the chain watcher continues from the cursor the last leader stored, and turns an
// update in several parts that the last leader left unfinished into a resync request. A Badger
// ledger has one writer and ignores fences.
func (l *Ledger) SetFence(ctx context.Context, f *Fence) error {
	if l.etcd == nil {
		return nil
	}
	if f != nil {
		if err := l.refreshSync(ctx); err != nil {
			return err
		}
	}
	l.etcd.fence.mu.Lock()
	l.etcd.fence.f = f
	l.etcd.fence.mu.Unlock()
	if f != nil {
		return l.takeMarker(ctx)
	}
	return nil
}

// Replicated reports whether other replicas share the ledger: then only the one holding the
// fence runs the chain side.
func (l *Ledger) Replicated() bool { return l.etcd != nil }
