package admin

import (
	"context"
	"math/big"
	"sync"
	"time"
)

// ChainView caches what the admin server shows of the chain (its head and the receiver's
// token balance), so that neither /stats nor a metrics scrape calls the node per request.
type ChainView struct {
	head   func(context.Context) (uint64, error)
	liquid func(context.Context) (*big.Int, error)
	ttl    time.Duration

	mu   sync.Mutex // held during a refresh, so concurrent readers share one
	last ChainSnapshot
}

// ChainSnapshot is what was last read from the chain.
type ChainSnapshot struct {
	// Head and Liquid are the last values read; zero and nil before the first success.
	Head   uint64
	Liquid *big.Int
	// Known is true once both were read at least once.
	Known bool
	// Err is the error of the last refresh, if it failed; the values are then older.
	Err error
	// At is when the last refresh was tried.
	At time.Time
}

// NewChainView returns a view that reads head and liquid at most once per ttl.
func NewChainView(head func(context.Context) (uint64, error), liquid func(context.Context) (*big.Int, error), ttl time.Duration) *ChainView {
	return &ChainView{head: head, liquid: liquid, ttl: ttl}
}

// Get returns the snapshot, refreshing it first when it is older than the view's ttl.
func (v *ChainView) Get(ctx context.Context) ChainSnapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.last.At.IsZero() && time.Since(v.last.At) < v.ttl {
		return v.last
	}
	v.last.At, v.last.Err = time.Now(), nil
	head, err := v.head(ctx)
	if err != nil {
		v.last.Err = err
		return v.last
	}
	liquid, err := v.liquid(ctx)
	if err != nil {
		v.last.Err = err
		return v.last
	}
	v.last.Head, v.last.Liquid, v.last.Known = head, liquid, true
	return v.last
}

// Head returns the chain head for metrics, refreshing it within a short timeout.
func (v *ChainView) Head() (uint64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s := v.Get(ctx)
	return s.Head, s.Known
}
