package ledger

import (
	"context"
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// store is where a ledger's records live, seen from the code shared by both stores: reads
// of single keys and of key ranges. Writes are each store's own committer's (commit.go for
// Badger, etcd_commit.go for etcd), since that is where the two differ: Badger has one
// writer per directory and needs no compare, etcd is shared by replicas and commits each
// channel with a compare-and-swap on the revision it was decided on.
type store interface {
	// get returns a key's value and revision (etcd's mod revision; 0 in Badger), or a nil
	// value when the key is absent.
	get(ctx context.Context, key []byte) (value []byte, rev int64, err error)
	// scan calls fn for the keys under prefix from start on, in key order, until fn returns
	// false or an error. The slices are fn's to read, not to keep. prefetch hints how many
	// values are read together.
	scan(ctx context.Context, prefix, start []byte, prefetch int, fn func(key, value []byte) (bool, error)) error
}

// badgerStore reads a Badger ledger.
type badgerStore struct{ db *badger.DB }

func (s badgerStore) get(_ context.Context, key []byte) (value []byte, _ int64, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		value, err = item.ValueCopy(nil)
		return err
	})
	return value, 0, err
}

func (s badgerStore) scan(_ context.Context, prefix, start []byte, prefetch int, fn func(key, value []byte) (bool, error)) error {
	return s.db.View(func(txn *badger.Txn) error {
		// Without prefetching unless asked: records are small and stored in the tree, and
		// copying each value ahead costs several times the walk itself.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: prefetch > 0, PrefetchSize: prefetch})
		defer it.Close()
		if start == nil {
			start = prefix
		}
		for it.Seek(start); it.Valid(); it.Next() {
			var more bool
			err := it.Item().Value(func(v []byte) error {
				var err error
				more, err = fn(it.Item().Key(), v)
				return err
			})
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}
