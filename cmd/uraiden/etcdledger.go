package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/etcdconn"
	"github.com/uraiden/uraiden/keys"
	"github.com/uraiden/uraiden/ledger"
)

// The operator's commands on an etcd ledger. Unlike a Badger directory, an etcd ledger is
// shared with running replicas, so the commands differ in what they need:
//   - backup reads at one revision and needs nothing stopped;
//   - restore writes only into an empty prefix, which no replica uses;
//   - resync, close-all and withdraw (but their dry runs) act as the chain side: resync
//     makes a chain-side write, and close-all and withdraw send the receiver's transactions,
//     whose nonces the watchtower of the chain side also takes. They campaign in the
//     replicas' election and refuse when a replica holds it, so that two chain sides never
//     act at once; holding it, their chain-side writes are fenced like a replica's.

// usesEtcd reports whether the configured ledger is on etcd.
func (a *app) usesEtcd() bool { return a.cfg.Ledger.Backend == config.BackendEtcd }

// configuredIdentity is the ledger the configuration names: chain.chain_id,
// chain.contract_address and the receiver of receiver.key_file. On etcd it is where the
// ledger's keys are; a Badger directory records its own.
func (a *app) configuredIdentity(command string) (ledger.Identity, error) {
	c := a.cfg
	if c.Chain.ChainID == 0 || c.Chain.ContractAddress == "" || c.Receiver.KeyFile == "" {
		return ledger.Identity{}, fmt.Errorf("%s: with ledger.backend: etcd the ledger's keys are named by chain.chain_id, "+
			"chain.contract_address and the receiver of receiver.key_file: set all three", command)
	}
	key, err := keys.Load(c.Receiver.KeyFile, c.Receiver.PasswordFile)
	if err != nil {
		return ledger.Identity{}, fmt.Errorf("receiver key: %w", err)
	}
	return ledger.Identity{ChainID: c.Chain.ChainID, Contract: c.Chain.Contract(), Receiver: crypto.PubkeyToAddress(key.PublicKey)}, nil
}

// connectEtcd connects to ledger.etcd's cluster.
func (a *app) connectEtcd(ctx context.Context) (*clientv3.Client, error) {
	cli, err := etcdconn.Connect(ctx, a.cfg.Ledger.Etcd, a.log)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return cli, nil
}

// errChainSideHeld refuses a command that acts as the chain side while a replica does.
var errChainSideHeld = errors.New("a running replica holds the chain side")

// chainSideWait bounds the wait for the election when no replica seemed to hold it: a
// replica that won it meanwhile keeps it, and the command gives up.
const chainSideWait = 3 * time.Second

// openEtcdLedger opens the existing etcd ledger of id. With chainSide, it also takes the
// chain side's election, as serve's replicas do, and fences the ledger's chain-side writes
// with it; it refuses when a replica holds it. The returned function lets everything go.
func (a *app) openEtcdLedger(ctx context.Context, id ledger.Identity, chainSide string) (*ledger.Ledger, func(), error) {
	cli, err := a.connectEtcd(ctx)
	if err != nil {
		return nil, nil, err
	}
	e := a.cfg.Ledger.Etcd
	l, err := ledger.OpenEtcd(ctx, ledger.EtcdOptions{
		Client: cli, Prefix: e.Prefix, Identity: id, Timeout: e.RequestTimeout, Logger: a.log, Existing: true,
	})
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	closeAll := func() { l.Close(); cli.Close() }
	if chainSide == "" {
		return l, closeAll, nil
	}
	release, err := takeChainSide(ctx, cli, l, ledger.ChainSideElectionPrefix(e.Prefix, id), chainSide)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return l, func() { release(); closeAll() }, nil
}

// takeChainSide wins the chain side's election for command, or refuses when another holds
// it, naming the holder. The lease is serve's: should the command die, the replicas take
// over within it.
func takeChainSide(ctx context.Context, cli *clientv3.Client, l *ledger.Ledger, prefix, command string) (func(), error) {
	session, err := concurrency.NewSession(cli, concurrency.WithTTL(5), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("chain side election: %w", err)
	}
	election := concurrency.NewElection(session, prefix)
	refuse := func(holder string) error {
		session.Close()
		return fmt.Errorf("%w (%s): 'uraiden %s' acts as the chain side, which must be alone: stop every replica "+
			"first (any running one would take the chain side)", errChainSideHeld, holder, command)
	}
	switch resp, err := election.Leader(ctx); {
	case err == nil:
		return nil, refuse(string(resp.Kvs[0].Value))
	case !errors.Is(err, concurrency.ErrElectionNoLeader):
		session.Close()
		return nil, fmt.Errorf("chain side election: %w", err)
	}
	host, _ := os.Hostname()
	cctx, cancel := context.WithTimeout(ctx, chainSideWait)
	defer cancel()
	if err := election.Campaign(cctx, fmt.Sprintf("%s pid %d (uraiden %s)", host, os.Getpid(), command)); err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return nil, refuse("it won the election first")
		}
		session.Close()
		return nil, fmt.Errorf("chain side election: %w", err)
	}
	if err := l.SetFence(ctx, &ledger.Fence{Key: election.Key(), Rev: election.Rev()}); err != nil {
		session.Close()
		return nil, err
	}
	return func() {
		_ = l.SetFence(context.Background(), nil)
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer rcancel()
		_ = election.Resign(rctx)
		session.Close()
	}, nil
}
