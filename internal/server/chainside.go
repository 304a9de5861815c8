package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/ledger"
)

// chainSideLease is the lease of the chain side's election, in seconds: how long the
// replicas go without a chain side when its replica dies without resigning. It is well under
// any challenge period a dispute must fit in.
const chainSideLease = 5

// startChainSide syncs with the chain once, resumes the watchtower's disputes, and runs the
// watcher and the watchtower until ctx ends.
func (s *Server) startChainSide(ctx, runCtx context.Context) {
	if err := s.Watcher.Poll(ctx); err != nil {
		// Serve anyway: Check answers 502 until the chain is reachable again.
		s.log.Warn("initial chain sync failed; payments are suspended until it succeeds", "err", err)
	}
	if err := s.Tower.Resume(ctx); err != nil {
		s.log.Error("watchtower: resuming disputes failed; retrying in the background", "err", err)
	}
	// Resume read every channel record of the ledger: hand that memory back to the system
	// now, rather than have the runtime release it piecemeal while the first requests run.
	debug.FreeOSMemory()
	s.goRun(func() { s.Watcher.Run(runCtx) })
	s.goRun(func() { s.Tower.Run(runCtx) })
}

// runChainSide campaigns for the chain side of a replicated ledger and, each time this
// replica wins, runs the watcher and the watchtower for as long as it holds the election's
// lease. Its writes are fenced by the election key (ledger.Fence): once the lease is lost,
// they fail, even before this replica notices. Another replica then wins within the lease,
// reads the stored cursor and the disputes, and carries on.
func (s *Server) runChainSide(ctx context.Context) {
	name, _ := os.Hostname()
	value := fmt.Sprintf("%s pid %d", name, os.Getpid())
	prefix := ledger.ChainSideElectionPrefix(s.cfg.Ledger.Etcd.Prefix, s.Ledger.Identity())
	for ctx.Err() == nil {
		if err := s.leadOnce(ctx, prefix, value); err != nil && ctx.Err() == nil {
			s.log.Warn("chain side: election failed; trying again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// leadOnce opens a session, waits to win the election, and runs the chain side until the
// session or ctx ends.
func (s *Server) leadOnce(ctx context.Context, prefix, value string) error {
	session, err := concurrency.NewSession(s.etcd, concurrency.WithTTL(chainSideLease), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer session.Close()
	election := concurrency.NewElection(session, prefix)
	if err := election.Campaign(ctx, value); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	fence := &ledger.Fence{Key: election.Key(), Rev: election.Rev()}
	if err := s.Ledger.SetFence(ctx, fence); err != nil {
		return err
	}
	s.log.Info("chain side: this replica runs the watcher and the watchtower", "election", election.Key())
	leadCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		select {
		case <-session.Done():
			s.log.Warn("chain side: the election's lease is lost; stepping down")
		case <-leadCtx.Done():
		}
	})
	s.leadSince.Store(time.Now().UnixNano())
	s.leading.Store(true)
	s.startChainSideIn(leadCtx, &wg)
	wg.Wait()
	s.leading.Store(false)
	_ = s.Ledger.SetFence(context.Background(), nil)
	if ctx.Err() != nil {
		// Leaving: let another replica take over now rather than when the lease runs out.
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer rcancel()
		_ = election.Resign(rctx)
	}
	return nil
}

// startChainSideIn is startChainSide with the goroutines counted in wg.
func (s *Server) startChainSideIn(ctx context.Context, wg *sync.WaitGroup) {
	if err := s.Watcher.Poll(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("chain side: first sync failed; retrying", "err", err)
	}
	if err := s.Tower.Resume(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("watchtower: resuming disputes failed; retrying in the background", "err", err)
	}
	wg.Go(func() { s.Watcher.Run(ctx) })
	wg.Go(func() { s.Tower.Run(ctx) })
}

// chainHealth is what authz asks before it takes a payment.
func (s *Server) chainHealth() authz.ChainHealth {
	if s.etcd == nil {
		return chainHealth{s.Watcher, s.Tower}
	}
	return replicatedHealth{s}
}

// chainHealth is healthy when the watcher sees the chain and no dispute waits for funds.
type chainHealth struct {
	watcher *chain.Watcher
	tower   *chain.Watchtower
}

func (h chainHealth) Healthy() error {
	if err := h.watcher.Healthy(); err != nil {
		return err
	}
	return h.tower.Healthy()
}

// replicatedHealth is the chain side's own health on the replica that runs it, and on the
// others whether the replicated cursor keeps up with the chain.
type replicatedHealth struct{ s *Server }

func (h replicatedHealth) Healthy() error {
	s := h.s
	// A replica that just took the chain side over has not polled yet: until it has, the
	// cursor the last one stored is as good a sign as on any other replica.
	if s.leading.Load() && s.Watcher.LastSynced().UnixNano() >= s.leadSince.Load() {
		return chainHealth{s.Watcher, s.Tower}.Healthy()
	}
	if err := s.follower.Healthy(); err != nil {
		return err
	}
	return s.Tower.Healthy()
}

// followerHealth judges, on a replica that does not run the chain side, whether the one that
// does keeps the ledger in step with the chain: the stored cursor must be within a few blocks
// of the head this replica sees, as of a look no older than maxLag.
type followerHealth struct {
	head   func(context.Context) (uint64, error)
	ledger *ledger.Ledger
	maxLag time.Duration
	lastOK atomic.Int64
	err    atomic.Pointer[error]
}

// followerMaxBehind is how many blocks the stored cursor may trail the head: the chain side
// polls on its own schedule, and a block may arrive between its look and ours.
const followerMaxBehind = 8

type headReader interface {
	BlockNumber(context.Context) (uint64, error)
}

func newFollowerHealth(client headReader, l *ledger.Ledger, maxLag time.Duration) *followerHealth {
	return &followerHealth{head: client.BlockNumber, ledger: l, maxLag: maxLag}
}

func (f *followerHealth) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		f.look(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *followerHealth) look(ctx context.Context) {
	head, err := f.head(ctx)
	sync := f.ledger.Sync()
	switch cursor := sync.Cursor; {
	case err != nil:
	case sync.CursorHash == "":
		err = errors.New("the chain side has not stored a cursor yet")
	case cursor+followerMaxBehind < head:
		err = fmt.Errorf("the chain side is %d blocks behind the chain (cursor %d, head %d)", head-cursor, cursor, head)
	}
	if err != nil {
		f.err.Store(&err)
		return
	}
	f.err.Store(nil)
	f.lastOK.Store(time.Now().UnixNano())
}

func (f *followerHealth) Healthy() error {
	last := f.lastOK.Load()
	var problem error
	if p := f.err.Load(); p != nil {
		problem = *p
	}
	if last == 0 {
		return errors.Join(errors.New("the chain side has not synchronized with the chain yet"), problem)
	}
	if age := time.Since(time.Unix(0, last)); age > f.maxLag {
		return errors.Join(fmt.Errorf("chain backend: no sign of the chain side keeping up for %s", age.Round(time.Second)), problem)
	}
	return nil
}

// RunsChainSide reports whether this replica runs the watcher and the watchtower: always on
// a Badger ledger, while it holds the election on a replicated one.
func (s *Server) RunsChainSide() bool { return s.etcd == nil || s.leading.Load() }
