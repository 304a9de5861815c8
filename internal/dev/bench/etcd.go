package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/internal/dev/etcdcluster"
	"github.com/uraiden/uraiden/internal/metrics"
	"github.com/uraiden/uraiden/ledger"
)

// EtcdMembers is how many members the bench's etcd cluster has: the smallest that survives
// the loss of one, as a deployment would run.
const EtcdMembers = 3

// etcdPrefix is the root of the bench ledger's keys in its cluster.
const etcdPrefix = "/uraiden-bench/"

// EtcdService is the authz service over the etcd store of a cluster of EtcdMembers members
// running in this process, each with its data under a directory of its own in dir, holding
// every channel of the fixture, funded and confirmed. Close stops it all.
type EtcdService struct {
	*authz.Service
	Ledger  *ledger.Ledger
	Metrics *metrics.Metrics // the server's, which its checks and the ledger's commits feed
	cluster *etcdcluster.Cluster
	cli     *clientv3.Client
}

// Close closes the ledger, the client and the members.
func (s *EtcdService) Close() error {
	var err error
	if s.Ledger != nil {
		err = s.Ledger.Close()
	}
	if s.cli != nil {
		err = errors.Join(err, s.cli.Close())
	}
	if s.cluster != nil {
		s.cluster.Close()
	}
	return err
}

// NewEtcdService starts the members, opens the ledger with ledger.OpenEtcd and creates the
// channels in it. The members' goroutines carry the profile label side=etcd.
func (fx *Fixture) NewEtcdService(ctx context.Context, dir string) (s *EtcdService, err error) {
	s = &EtcdService{}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	pprof.Do(ctx, pprof.Labels("side", "etcd"), func(ctx context.Context) {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		s.cluster, err = etcdcluster.Start(sctx, etcdcluster.Options{Members: EtcdMembers, Dir: dir})
	})
	if err != nil {
		return s, fmt.Errorf("bench: start the etcd members: %w", err)
	}
	if s.cli, err = s.cluster.Client(); err != nil {
		return s, fmt.Errorf("bench: etcd client: %w", err)
	}
	var l *ledger.Ledger
	m := newMetrics(func() *ledger.Ledger { return l })
	// The committer and the watch inherit the label of the goroutine that opens the ledger.
	pprof.Do(ctx, pprof.Labels("side", "server"), func(ctx context.Context) {
		l, err = ledger.OpenEtcd(ctx, ledger.EtcdOptions{
			Client: s.cli, Prefix: etcdPrefix, Identity: fx.Identity(),
			OnCommit: func(writes int, took time.Duration) {
				m.ObserveCommit(writes, took)
				fx.commits.add(writes, took)
			},
		})
	})
	if err != nil {
		return s, err
	}
	s.Ledger = l
	if err := fx.createChannelsFenced(ctx, s.cli, l); err != nil {
		return s, err
	}
	s.Service, s.Metrics = fx.serviceOver(l, m), m
	return s, nil
}

// createChannelsFenced creates the channels as the chain side of a replicated ledger does:
// fenced by an election won on the cluster, given up once done (the chain side is not
// what the bench measures).
func (fx *Fixture) createChannelsFenced(ctx context.Context, cli *clientv3.Client, l *ledger.Ledger) error {
	session, err := concurrency.NewSession(cli, concurrency.WithTTL(10), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("bench: etcd session: %w", err)
	}
	defer session.Close()
	election := concurrency.NewElection(session, etcdPrefix+"chain-side")
	if err := election.Campaign(ctx, "bench"); err != nil {
		return fmt.Errorf("bench: etcd election: %w", err)
	}
	if err := l.SetFence(ctx, &ledger.Fence{Key: election.Key(), Rev: election.Rev()}); err != nil {
		return err
	}
	err = fx.createChannels(l, fx.senders)
	return errors.Join(err, l.SetFence(ctx, nil), election.Resign(ctx))
}

// runEtcdPhase serves uraiden over the etcd store and runs the durable paid phase against
// it, the load and the three members on the same cores.
func (fx *Fixture) runEtcdPhase(ctx context.Context, cfg Config, rep *Report, proofs *Proofs) (err error) {
	dir, err := os.MkdirTemp("", "uraiden-bench-etcd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(cfg.Progress, "starting %d etcd members…\n", EtcdMembers)
	srv, err := startPhaseServer(ctx, cfg.command(), ServeSpec{Kind: serveEtcd, Dir: dir, StandardCodec: cfg.Codec == CodecStandard, Channels: cfg.Channels})
	if err != nil {
		return err
	}
	defer func() {
		if serr := srv.stop(); err == nil {
			err = serr
		}
	}()
	fmt.Fprintln(cfg.Progress, "phase: paid (etcd)")
	return driveCommits(ctx, PhaseDurableEtcd, fmt.Sprintf("paid (etcd, %d members)", EtcdMembers), srv, cfg, fx.paidLoad(proofs, cfg.Streams), &rep.PaidEtcd)
}
