package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/uraiden/uraiden/internal/dev/etcdcluster"
	"github.com/uraiden/uraiden/rdn"
)

// The etcd tests share one real three-member cluster, started on first use; each test keeps
// its ledgers under a prefix of its own. Tests that stop members start their own cluster.
var (
	sharedOnce    sync.Once
	sharedCluster *etcdcluster.Cluster
	sharedErr     error
	sharedDir     string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCluster != nil {
		sharedCluster.Close()
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

func cluster(t testing.TB) *etcdcluster.Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "ledger-etcd-")
		if sharedErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sharedCluster, sharedErr = etcdcluster.Start(ctx, etcdcluster.Options{Dir: sharedDir})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedCluster
}

func etcdClient(t testing.TB, c *etcdcluster.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// replica opens a ledger on the cluster under the test's prefix, with its own client, as a
// separate uraiden process would.
func replica(t *testing.T, c *etcdcluster.Cluster, timeout time.Duration) *Ledger {
	t.Helper()
	l, err := OpenEtcd(t.Context(), EtcdOptions{
		Client: etcdClient(t, c), Prefix: "/test/" + t.Name() + "/", Identity: testIdentity, Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// lead makes l the chain side, through a real election on the cluster.
func lead(t *testing.T, c *etcdcluster.Cluster, l *Ledger) {
	t.Helper()
	leadAt(t, c, l, "/test/"+t.Name()+"-leader")
}

// leadAt makes l the chain side through an election under prefix.
func leadAt(t testing.TB, c *etcdcluster.Cluster, l *Ledger, prefix string) {
	t.Helper()
	session, err := concurrency.NewSession(etcdClient(t, c), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { session.Close() })
	e := concurrency.NewElection(session, prefix)
	if err := e.Campaign(t.Context(), "me"); err != nil {
		t.Fatal(err)
	}
	if err := l.SetFence(t.Context(), &Fence{Key: e.Key(), Rev: e.Rev()}); err != nil {
		t.Fatal(err)
	}
}

func payment(id rdn.ChannelID, balance, price int64) Payment {
	return Payment{ID: id, Balance: big.NewInt(balance), Signature: sig(balance), Price: big.NewInt(price)}
}

func TestEtcdPaymentRule(t *testing.T) {
	c := cluster(t)
	l := replica(t, c, 0)
	if err := l.Apply(t.Context(), Update{Sync: SyncState{Cursor: 1}}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a chain write without the leadership: %v", err)
	}
	lead(t, c, l)
	create(t, l, alice, 100, 10)
	for _, step := range []struct {
		balance, price int64
		want           Outcome
	}{
		{5, 5, Accepted},
		{5, 5, Replayed},
		{10, 5, Accepted},
		{7, 1, InvalidAmount}, // under the highest balance, and charged already covers it
		{200, 5, ExceedsDeposit},
		{20, 5, Accepted},
	} {
		r := pay(t, l, alice, step.balance, step.price)
		if r.Outcome != step.want {
			t.Fatalf("pay %d for %d: %v, want %v", step.balance, step.price, r.Outcome, step.want)
		}
	}
	eventually(t, "statistics follow the payments", func() bool {
		st := l.Stats()
		return st.ChargedSum.Int64() == 15 && st.BalanceSum.Int64() == 20 && st.OpenChannels == 1 && st.UniqueSenders == 1
	})

	// A second replica reads the channel from the cluster: the proofs are spent there too.
	other := replica(t, c, 0)
	if r := pay(t, other, alice, 20, 5); r.Outcome != Replayed {
		t.Fatalf("the first replica's proof at the second: %v", r.Outcome)
	}
	if st := other.Stats(); st.ChargedSum.Int64() != 15 || st.UniqueSenders != 1 {
		t.Fatalf("the second replica counts %v charged, %d senders", st.ChargedSum, st.UniqueSenders)
	}
}

// TestEtcdReplicasAgree pays on one channel through three replicas whose caches each go stale
// as the others write: every payment is decided on the latest record, through refused
// compares and retries, and the charged sum is exactly what was accepted.
func TestEtcdReplicasAgree(t *testing.T) {
	c := cluster(t)
	rs := []*Ledger{replica(t, c, 0), replica(t, c, 0), replica(t, c, 0)}
	lead(t, c, rs[0])
	create(t, rs[0], alice, 1_000_000, 10)
	for _, r := range rs {
		// Until a replica's watch brings the confirmed height, it answers Unconfirmed.
		eventually(t, "every replica sees the confirmed height", func() bool { return r.ConfirmedHeight() == 10 })
	}

	// 16 proofs of one channel, each a step of 5 above the last, sent to different replicas
	// at once: all are served, the channel charged for each exactly once.
	var wg sync.WaitGroup
	outcomes := make([]Outcome, 16)
	for i := range 16 {
		wg.Go(func() {
			r, err := rs[i%3].Pay(context.Background(), payment(alice, int64(5*(i+1)), 5))
			if err != nil {
				t.Error(err)
			}
			outcomes[i] = r.Outcome
		})
	}
	wg.Wait()
	for i, o := range outcomes {
		if o != Accepted {
			t.Errorf("proof %d: %v", i, o)
		}
	}
	for _, r := range rs {
		eventually(t, "every replica sees the 16 payments", func() bool {
			ch, err := r.Channel(alice)
			if err != nil || ch.Charged.Int64() != 80 || ch.Balance.Int64() != 80 {
				return false
			}
			return true
		})
	}

	// 1,000 copies of one new proof spread over the replicas: exactly one is accepted.
	var accepted atomic.Int64
	for i := range 1000 {
		wg.Go(func() {
			r, err := rs[i%3].Pay(context.Background(), payment(alice, 85, 5))
			if err != nil {
				t.Error(err)
			}
			if r.Outcome == Accepted {
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 1 {
		t.Fatalf("one proof accepted %d times", accepted.Load())
	}
	ch, err := rs[2].Channel(alice)
	if err != nil || ch.Charged.Int64() != 85 {
		t.Fatalf("after the copies: %v, %v", ch, err)
	}
}

// TestEtcdChainSideIsFenced deposes the chain side by ending its election session: its
// writes fail even though it still holds its fence, and the new leader continues from the
// cursor the old one stored.
func TestEtcdChainSideIsFenced(t *testing.T) {
	c := cluster(t)
	old, next := replica(t, c, 0), replica(t, c, 0)
	session, err := concurrency.NewSession(etcdClient(t, c), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	e := concurrency.NewElection(session, "/test/"+t.Name()+"-leader")
	if err := e.Campaign(t.Context(), "old"); err != nil {
		t.Fatal(err)
	}
	if err := old.SetFence(t.Context(), &Fence{Key: e.Key(), Rev: e.Rev()}); err != nil {
		t.Fatal(err)
	}
	create(t, old, alice, 100, 10)
	session.Close() // the lease ends: the old leader's key is gone

	err = old.Apply(t.Context(), Update{Events: []Event{{Kind: ToppedUp, Channel: alice, Block: 11, Amount: big.NewInt(50)}}, Sync: SyncState{Cursor: 11, Confirmed: 11}})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a deposed leader's write: %v", err)
	}
	lead(t, c, next)
	if got := next.Sync().Cursor; got != 10 {
		t.Fatalf("the new leader starts from cursor %d, want 10", got)
	}
	ch, err := next.Channel(alice)
	if err != nil || ch.TotalDeposit().Int64() != 100 {
		t.Fatalf("the deposed leader's top-up reached the ledger: %v, %v", ch, err)
	}
}

// TestEtcdLeaderLossAndQuorum pays on many channels while the etcd leader is stopped, then
// stops a second member: no acknowledged payment is lost, and without a quorum payments
// fail (never Accepted) within the timeout; with the quorum back they are taken again.
func TestEtcdLeaderLossAndQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own cluster")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := etcdcluster.Start(ctx, etcdcluster.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := replica(t, c, time.Second)
	lead(t, c, l)
	const channels = 32
	ids := make([]rdn.ChannelID, channels)
	var events []Event
	for i := range ids {
		ids[i] = rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(int64(0x100 + i))), OpenBlock: 5}
		events = append(events, Event{Kind: Created, Channel: ids[i], Block: 5, Amount: big.NewInt(1 << 40)})
	}
	if err := l.Apply(ctx, Update{Events: events, Sync: SyncState{Cursor: 10, Confirmed: 10}}); err != nil {
		t.Fatal(err)
	}

	var accepted [channels]atomic.Int64 // the highest accepted balance
	var failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range channels {
		wg.Go(func() {
			for n := int64(1); ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := l.Pay(context.Background(), payment(ids[i], n, 1))
				switch {
				case err != nil:
					failures.Add(1)
					n-- // not stored: the same balance again
					time.Sleep(10 * time.Millisecond)
				case r.Outcome == Accepted:
					accepted[i].Store(n)
				default:
					t.Errorf("channel %d balance %d: %v", i, n, r.Outcome)
					return
				}
			}
		})
	}
	time.Sleep(time.Second)
	leader := c.Leader()
	c.Stop(leader)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	check := func(when string) {
		for i, id := range ids {
			v, _, err := l.store.get(ctx, channelKey(id))
			if err != nil {
				t.Fatal(err)
			}
			ch, err := unmarshalChannel(id, v)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Charged.Int64() < accepted[i].Load() {
				t.Fatalf("%s: channel %d: acknowledged balance %d, stored charged %d", when, i, accepted[i].Load(), ch.Charged.Int64())
			}
		}
	}
	check("after the leader stopped")
	t.Logf("payments refused while the leader changed: %d", failures.Load())

	// A second member down: no quorum.
	for i := range c.Members() {
		if i != leader {
			c.Stop(i)
			break
		}
	}
	start := time.Now()
	next := accepted[0].Load() + 1
	r, err := l.Pay(context.Background(), payment(ids[0], next, 1))
	if err == nil || r.Outcome == Accepted {
		t.Fatalf("without a quorum: %v, %v", r.Outcome, err)
	}
	t.Logf("without a quorum, refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err := c.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	eventually(t, "payments are taken again with a quorum", func() bool {
		r, err := l.Pay(context.Background(), payment(ids[0], next, 1))
		if err == nil && r.Outcome == Accepted {
			accepted[0].Store(next)
			return true
		}
		if err == nil && r.Outcome == Replayed {
			return true // the refused attempt was applied after all: stored, not served twice
		}
		return false
	})
	check("with the quorum back")
}

func TestEtcdRefusesAnotherIdentity(t *testing.T) {
	c := cluster(t)
	cli := etcdClient(t, c)
	other := testIdentity
	other.Receiver = common.HexToAddress("0xff")
	prefix := "/test/" + t.Name() + "/"
	// Another receiver's identity under this receiver's prefix, as a mistaken copy would
	// leave it.
	if _, err := cli.Put(t.Context(), EtcdPrefix(prefix, testIdentity)+string(keyIdentity), fmt.Sprintf(`{"chain_id":%d,"contract":"%s","receiver":"%s"}`, other.ChainID, other.Contract, other.Receiver)); err != nil {
		t.Fatal(err)
	}
	_, err := OpenEtcd(t.Context(), EtcdOptions{Client: cli, Prefix: prefix, Identity: testIdentity})
	if !errors.Is(err, ErrWrongLedger) {
		t.Fatalf("another receiver's ledger: %v", err)
	}
}

// TestEtcdChainWritesRaceWithPayments applies top-ups on the chain side's replica while
// another replica pays on the same channel: the chain writes are refused by the payments'
// compares and applied again, each exactly once, and no payment is lost.
func TestEtcdChainWritesRaceWithPayments(t *testing.T) {
	c := cluster(t)
	side, payer := replica(t, c, 0), replica(t, c, 0)
	lead(t, c, side)
	create(t, side, alice, 1000, 10)
	eventually(t, "the paying replica sees the confirmed height", func() bool { return payer.ConfirmedHeight() == 10 })

	const rounds = 40
	done := make(chan error, 1)
	go func() {
		for i := range rounds {
			block := uint64(11 + i)
			for {
				err := side.Apply(context.Background(), Update{
					Events: []Event{{Kind: ToppedUp, Channel: alice, Block: block, Amount: big.NewInt(10)}},
					Sync:   SyncState{Cursor: block, Confirmed: block},
				})
				if errors.Is(err, errConflict) {
					continue // refused every time: the watcher tries again at its next poll
				}
				if err != nil {
					done <- err
					return
				}
				break
			}
		}
		done <- nil
	}()
	charged := int64(0)
	for n := int64(1); n <= 200; n++ {
		r, err := payer.Pay(context.Background(), payment(alice, n, 1))
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != Accepted {
			t.Fatalf("balance %d: %v", n, r.Outcome)
		}
		charged++
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	v, _, err := side.store.get(t.Context(), channelKey(alice))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := unmarshalChannel(alice, v)
	if err != nil {
		t.Fatal(err)
	}
	if got := ch.TotalDeposit().Int64(); got != 1000+10*rounds {
		t.Errorf("deposit %d after %d top-ups of 10 on 1000", got, rounds)
	}
	if ch.Charged.Int64() != charged {
		t.Errorf("charged %d, %d payments accepted", ch.Charged.Int64(), charged)
	}
}

// TestEtcdSplitChainWrite applies one update too large for a transaction (200 creations, in
// parts behind the resync marker): every channel takes payments afterwards, on the chain
// side's replica and on another, whichever part wrote it, and no replica is left waiting
// for a resync.
func TestEtcdSplitChainWrite(t *testing.T) {
	c := cluster(t)
	side, other := replica(t, c, 0), replica(t, c, 0)
	lead(t, c, side)
	ids := make([]rdn.ChannelID, 200)
	events := make([]Event, len(ids))
	for i := range ids {
		ids[i] = rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(int64(0x1000 + i))), OpenBlock: 5}
		events[i] = Event{Kind: Created, Channel: ids[i], Block: 5, Amount: big.NewInt(100)}
	}
	if err := side.Apply(t.Context(), Update{Events: events, Sync: SyncState{Cursor: 10, CursorHash: "0x10", Confirmed: 10}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other replica sees the update whole", func() bool {
		return other.ConfirmedHeight() == 10 && !other.NeedsResync() && other.Stats().OpenChannels == 200
	})
	if side.NeedsResync() {
		t.Fatal("the chain side waits for a resync after its own split write")
	}
	for _, i := range []int{0, 1, 120, 150, 199} {
		for n, l := range []*Ledger{side, other} {
			r, err := l.Pay(t.Context(), payment(ids[i], int64(n+1), 1))
			if err != nil || r.Outcome != Accepted {
				t.Fatalf("channel %d on replica %d: %v, %v", i, n, r.Outcome, err)
			}
		}
	}
}

// TestEtcdRefusedSplitLeavesNoPhantom: a chain write in several parts (transactions of 8
// operations here) refused in its first part, by a fence that no longer holds, leaves none of
// its events in any replica's cache: a payment above the real deposit is still refused.
func TestEtcdRefusedSplitLeavesNoPhantom(t *testing.T) {
	c := cluster(t)
	l, err := OpenEtcd(t.Context(), EtcdOptions{Client: etcdClient(t, c), Prefix: "/test/" + t.Name() + "/", Identity: testIdentity, MaxTxnOps: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lead(t, c, l)
	ids := make([]rdn.ChannelID, 3)
	var topUps []Event
	for i := range ids {
		ids[i] = rdn.ChannelID{Sender: common.BigToAddress(big.NewInt(int64(0x2000 + i))), OpenBlock: 5}
		create(t, l, ids[i], 100, 10)
		topUps = append(topUps, Event{Kind: ToppedUp, Channel: ids[i], Block: 6, Amount: big.NewInt(1000)})
	}
	if err := l.SetFence(t.Context(), &Fence{Key: "/no-such-election", Rev: 12345}); err != nil {
		t.Fatal(err)
	}
	err = l.Apply(t.Context(), Update{Events: topUps, Sync: SyncState{Cursor: 11, Confirmed: 10}})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a write under a fence that does not hold: %v", err)
	}
	for i, id := range ids {
		if r, err := l.Pay(t.Context(), payment(id, 500, 1)); err != nil || r.Outcome != ExceedsDeposit {
			t.Errorf("channel %d: a payment of 500 on a deposit of 100 whose top-up was refused: %v, %v", i, r.Outcome, err)
		}
	}
}

// TestEtcdReloadWhileAWriteIsInFlight reads every cached channel again (what the watch does
// after a compaction) while payments are in flight: no accepted payment is overwritten.
func TestEtcdReloadWhileAWriteIsInFlight(t *testing.T) {
	c := cluster(t)
	l := replica(t, c, 0)
	lead(t, c, l)
	create(t, l, alice, 1_000_000, 10)
	accepted := int64(0)
	for b := int64(1); b <= 150; b++ {
		done := make(chan PayResult)
		go func() {
			r, err := l.Pay(context.Background(), payment(alice, b, 1))
			if err != nil {
				t.Log(err)
			}
			done <- r
		}()
		time.Sleep(time.Duration(b%15) * 100 * time.Microsecond)
		if _, err := l.recountEtcd(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Channel(alice); err != nil {
			t.Fatal(err)
		}
		if r := <-done; r.Outcome == Accepted {
			accepted++
		}
	}
	v, _, err := l.store.get(t.Context(), channelKey(alice))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := unmarshalChannel(alice, v)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Charged.Int64() != accepted {
		t.Fatalf("%d payments accepted, %s stored", accepted, ch.Charged)
	}
}
