package clustertest

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/testkit/proctest"
	"github.com/uraiden/uraiden/ledger"
)

// blockPace is how often the cheating sender mines a block while it waits to settle: the
// contract's shortest challenge period (500 blocks) then lasts about 20 s, room for the
// election's 5 s lease to run out, another replica to win it, catch up with the chain and
// get a dispute mined, on a busy machine.
const blockPace = 40 * time.Millisecond

// A sender pays through three replicas, then asks to close its channel uncooperatively at a
// balance below its last proof. The replica running the chain side (the watcher and the
// watchtower) is frozen before the close request is mined and SIGKILLed after, so it never
// disputes. The sender then mines blocks up to the settle block and settles. Another replica
// must take the chain side over and dispute in time: the channel settles at the receiver's
// balance, by a dispute mined before the settle block and recorded in etcd.
func TestChainSideKilledWhileACheatingCloseIsPending(t *testing.T) {
	c := startCluster(t, 1)
	rs := c.startReplicas(3, replicaOptions{})
	e, ch := c.env, c.env.Channels[0]

	const paid = 12
	for i := range paid {
		c.mustPay(rs[i%len(rs)], ch)
	}

	side := c.waitChainSide(rs)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	receiver := e.ReceiverAddress()
	before, err := contracts.TokenBalance(ctx, e.Chain.Client(), e.Chain.Deployment().Token, receiver)
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("freezing replica %d (pid %d), the chain side, and closing the channel at 1 of %d", side.i, side.proc.Pid(), paid)
	if err := side.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	closeBlock := cheat(t, ctx, e.Chain, ch, receiver, 1)
	side.kill()
	sender, err := client.New(ctx, client.Config{Node: e.Chain.Client(), Key: ch.Key, Contract: e.Contract()})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	info, err := sender.Info(ctx, receiver, ch.ID.OpenBlock)
	if err != nil || info.SettleBlock == 0 {
		t.Fatalf("the close request is not on chain: %+v, %v", info, err)
	}
	settleBlock := uint64(info.SettleBlock)
	t.Logf("close requested in block %d; it may settle after block %d", closeBlock, settleBlock)

	// The cheating sender mines until it may settle, and settles, unless the channel is gone.
	var cheated atomic.Bool
	var wg sync.WaitGroup
	cheatCtx, stopCheating := context.WithCancel(ctx)
	defer func() { stopCheating(); wg.Wait() }()
	wg.Go(func() {
		for cheatCtx.Err() == nil {
			info, err := sender.Info(cheatCtx, receiver, ch.ID.OpenBlock)
			if err == nil && !info.Exists {
				return // settled, by a dispute
			}
			head, err := e.Chain.Client().BlockNumber(cheatCtx)
			if err == nil && head+1 > settleBlock {
				if _, err := sender.Settle(cheatCtx, receiver, ch.ID.OpenBlock); err == nil {
					cheated.Store(true)
				}
				return
			}
			e.Chain.Commit()
			time.Sleep(blockPace)
		}
	})

	survivors := []*replica{}
	for _, r := range rs {
		if r != side {
			survivors = append(survivors, r)
		}
	}
	next := c.waitChainSide(survivors)
	t.Logf("replica %d (pid %d) runs the chain side now", next.i, next.proc.Pid())

	l := c.readLedger()
	proctest.WaitFor(t, "the channel settled on chain and in etcd", 90*time.Second, func() bool {
		stored, err := l.Channel(ch.ID)
		return err == nil && stored != nil && stored.State == ledger.StateSettled
	})
	stopCheating()
	wg.Wait()

	after, err := contracts.TokenBalance(ctx, e.Chain.Client(), e.Chain.Deployment().Token, receiver)
	if err != nil {
		t.Fatal(err)
	}
	if got := new(big.Int).Sub(after, before); got.Cmp(big.NewInt(paid*price)) != 0 {
		t.Errorf("the settlement paid the receiver %s, want %d, its last proof", got, paid*price)
	}
	if cheated.Load() {
		t.Error("the sender settled its cheating close")
	}
	ds, err := l.Disputes()
	if err != nil || len(ds) != 1 {
		t.Fatalf("disputes %+v, %v: want one", ds, err)
	}
	d := ds[0]
	if d.Channel != ch.ID || d.Status != ledger.DisputeDone || d.MinedTx == "" || d.Balance != big.NewInt(paid*price).String() {
		t.Errorf("the dispute record %+v: want done, mined, for balance %d on %s", d, paid*price, ch.ID)
	} else {
		rc, err := e.Chain.Client().TransactionReceipt(ctx, common.HexToHash(d.MinedTx))
		switch {
		case err != nil:
			t.Errorf("the dispute's transaction %s: %v", d.MinedTx, err)
		case rc.Status != 1:
			t.Errorf("the dispute's transaction %s failed", d.MinedTx)
		case rc.BlockNumber.Uint64() > settleBlock:
			t.Errorf("the dispute was mined in block %d, after the settle block %d", rc.BlockNumber, settleBlock)
		default:
			t.Logf("disputed in block %d, %d blocks before the settle block", rc.BlockNumber, settleBlock-rc.BlockNumber.Uint64())
		}
	}
	if next.proc.Exited() {
		t.Errorf("replica %d exited: %v", next.i, next.proc.Err())
	}
	if t.Failed() {
		t.Log(logs(rs))
	}
}

// cheat has ch's sender ask to close it uncooperatively at balance, below what it paid, and
// returns the block that mined the request.
func cheat(t *testing.T, ctx context.Context, c *devchain.Chain, ch *proctest.Channel, receiver common.Address, balance int64) uint64 {
	t.Helper()
	mgr := contracts.NewRaidenMicroTransferChannels()
	opts := bind.NewKeyedTransactor(ch.Key, big.NewInt(devchain.ChainID))
	opts.Context = ctx
	tx, err := bind.Transact(mgr.Instance(c.Client(), c.Deployment().Channels), opts,
		mgr.PackUncooperativeClose(receiver, ch.ID.OpenBlock, big.NewInt(balance)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := contracts.WaitMined(ctx, c.Client(), tx.Hash())
	if err == nil && r.Status != 1 {
		err = errors.New("reverted")
	}
	if err != nil {
		t.Fatalf("uncooperative close: %v", err)
	}
	return r.BlockNumber.Uint64()
}
