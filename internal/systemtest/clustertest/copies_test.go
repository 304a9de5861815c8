package clustertest

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// Three replicas over gRPC, each a `uraiden serve` process. 1,000 concurrent copies of one
// proof (each on a request of its own, as a replay is) spread over the replicas get exactly
// one OK. Then 16 proofs of one channel, each a price above the last, sent to different
// replicas at once, are all served, and the channel is charged for each exactly once.
func TestCopiesAndConcurrentProofsOverReplicas(t *testing.T) {
	c := startCluster(t, 2)
	rs := c.startReplicas(3, replicaOptions{})
	copies, spread := c.env.Channels[0], c.env.Channels[1]

	b, sig := copies.Take(c.env, price)
	var oks, others atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // requests in flight at once, as several Envoys send them
	for i := range 1000 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			status, hdr, err := c.env.Check(t.Context(), rs[i%3].client, copies, b, &sig)
			switch {
			case err != nil:
				t.Errorf("copy %d: %v", i, err)
			case status == http.StatusOK:
				oks.Add(1)
			case status != http.StatusPaymentRequired:
				others.Add(1)
				t.Logf("copy %d: %d %s", i, status, hdr["body"])
			}
		})
	}
	wg.Wait()
	if oks.Load() != 1 {
		t.Fatalf("1,000 copies of one proof over 3 replicas: %d OKs\n%s", oks.Load(), logs(rs))
	}
	copies.Paid(b)
	t.Logf("1,000 copies: 1 OK, %d answers neither OK nor 402", others.Load())

	balances := make([]int64, 16)
	var served atomic.Int64
	for i := range balances {
		bal, s := spread.Take(c.env, price)
		balances[i] = bal
		wg.Go(func() {
			status, hdr, err := c.env.Check(t.Context(), rs[i%3].client, spread, bal, &s)
			if err != nil || status != http.StatusOK {
				t.Errorf("proof %d (balance %d) at replica %d: %d %v %v", i, bal, i%3, status, hdr["body"], err)
				return
			}
			spread.Paid(bal)
			served.Add(1)
		})
	}
	wg.Wait()
	if served.Load() != 16 {
		t.Fatalf("16 proofs at once over 3 replicas: %d served\n%s", served.Load(), logs(rs))
	}
	l := c.readLedger()
	stored, err := l.Channel(spread.ID)
	if err != nil || stored == nil || stored.Charged.Int64() != 16*price {
		t.Fatalf("the channel of the 16 proofs: %+v, %v; want %d charged", stored, err, 16*price)
	}
	c.verifyLedger(rs)
}
