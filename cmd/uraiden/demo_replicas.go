package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/dev/etcdcluster"
	"github.com/uraiden/uraiden/internal/gateway"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// The replicated demo's pace: how many requests the client keeps in flight, and how long
// each act runs at least (and at most) before the next failure is staged.
const (
	demoPayers   = 3
	demoActMin   = 2 * time.Second
	demoActMax   = 30 * time.Second
	demoActBatch = 30 // requests served in each act, at least
)

// replicaDemo is the state of `uraiden demo --replicas N`.
type replicaDemo struct {
	out      io.Writer
	cfg      config.Config // the replicas' configuration, their ports aside
	cluster  *etcdcluster.Cluster
	chain    *devchain.Chain
	replicas []*server.Server
	closed   []bool
	answered []atomic.Int64 // Checks each replica answered
	front    *gateway.RoundRobin
	conns    []*grpc.ClientConn // the front's, to each replica
	gw       *gateway.Gateway

	// What the paying client saw.
	served, failed atomic.Int64
	sumMu          sync.Mutex
	servedSum      *big.Int     // the prices of the requests served (sumMu)
	retried        atomic.Int64 // 502/503 answers sent again with the same proof
	firstFailure   atomic.Pointer[string]
	stop           atomic.Bool // the payers stop before their next request
	// charged and stats are each running replica's charge for the channel and its stats'
	// charged sum once the payments have stopped (the stats count open channels only).
	charged, stats map[int]*big.Int
}

// say prints one line of the story.
func (d *replicaDemo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func runReplicaDemo(ctx context.Context, out io.Writer, a *app, n int, logger *slog.Logger) error {
	if n < 2 {
		return fmt.Errorf("--replicas must be at least 2, got %d", n)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	d := &replicaDemo{out: out, closed: make([]bool, n), answered: make([]atomic.Int64, n), servedSum: new(big.Int)}
	start := time.Now()
	d.say("uraiden demo --replicas %d: %d uraiden replicas share one ledger on a 3-member etcd cluster;", n, n)
	d.say("a client pays for requests across them while a replica and then the etcd leader are stopped.")

	dir, err := os.MkdirTemp("", "uraiden-demo-etcd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if d.cluster, err = etcdcluster.Start(ctx, etcdcluster.Options{Dir: dir}); err != nil {
		return fmt.Errorf("start the etcd cluster: %w", err)
	}
	defer d.cluster.Close()
	d.say("\n1. etcd: 3 members on loopback (m0 m1 m2), m%d leads; a payment is stored once a majority has it.", d.cluster.Leader())

	dc := a.cfg.DevChain
	if d.chain, err = devchain.Start(ctx, devchain.Config{
		BlockPeriod: dc.BlockPeriod, Accounts: max(dc.Accounts, 2), ChallengePeriod: dc.ChallengePeriod, Logger: logger,
	}); err != nil {
		return fmt.Errorf("start the dev chain: %w", err)
	}
	defer d.chain.Close()
	dep := d.chain.Deployment()
	d.say("2. dev chain: channel contract %s; receiver dev account 0, sender dev account 1.", dep.Channels)

	if err := d.startReplicas(ctx, a.cfg, n, logger); err != nil {
		return err
	}
	defer d.closeReplicas()
	chainSide, err := d.waitChainSide(ctx)
	if err != nil {
		return err
	}
	if err := d.waitReady(ctx); err != nil {
		return err
	}
	var addrs []string
	for i, r := range d.replicas {
		addrs = append(addrs, fmt.Sprintf("r%d %s", i, r.Addr()))
	}
	d.say("3. %d replicas (ext_authz gRPC: %s), one ledger on etcd.", n, strings.Join(addrs, ", "))
	d.say("   r%d won the etcd election for the chain side (chain watcher and watchtower); the others follow.", chainSide)

	if err := d.startFront(); err != nil {
		return err
	}
	defer func() {
		_ = d.gw.Close(context.Background())
		for _, c := range d.conns {
			_ = c.Close()
		}
	}()
	d.say("4. a gateway standing in for Envoy sends each request's Check to the next replica in turn,")
	d.say("   and to the one after when a replica does not answer.")

	receiver, sender := d.chain.Accounts()[0].Address, d.chain.Accounts()[1]
	before, err := tokenBalances(ctx, d.chain, receiver, sender.Address)
	if err != nil {
		return err
	}
	c, err := client.New(ctx, client.Config{Node: d.chain.Client(), Key: sender.Key, Contract: dep.Channels, Logger: logger})
	if err != nil {
		return err
	}
	// One deposit covers the whole run, so that no top-up waits on the chain mid-story:
	// 19,000 requests at prices.yaml's 0.005 token is 95 tokens, just under the contract's
	// limit of 100 tokens a channel.
	retry := &retryTransport{base: http.DefaultTransport, retried: &d.retried}
	rt := c.Transport(client.TransportConfig{Base: retry, OpenFactor: 19_000})
	d.say("5. the client opens a channel and pays for GET /echofix/... , %d requests at a time. Each carries an", demoPayers)
	d.say("   Idempotency-Key, and a 502/503 answer is sent again with the same proof: a retry of a stored")
	d.say("   payment is served uncharged, one that was never stored is charged once. (The replicas'")
	d.say("   warnings, on stderr, say why a request got a 502 or 503.)")
	// The payers stop between requests: cancelling one in flight could leave a payment
	// stored (and charged) for a request the client gave up on. payCtx is cancelled only
	// when the demo fails.
	payCtx, cancelPaying := context.WithCancel(ctx)
	var payers sync.WaitGroup
	for g := range demoPayers {
		payers.Go(func() { d.pay(payCtx, rt, g) })
	}
	defer func() {
		d.stop.Store(true)
		cancelPaying()
		payers.Wait()
	}()
	if err := d.act(ctx); err != nil {
		return err
	}
	d.say("   %d requests served so far, Checks answered by %s.", d.served.Load(), d.answers())

	d.say("\n6. stopping r%d, the replica that runs the chain side ...", chainSide)
	d.front.SetDown(chainSide, true) // as Envoy's health check would
	t0 := time.Now()
	if err := d.replicas[chainSide].Close(); err != nil {
		d.say("   (r%d closed with %v)", chainSide, err)
	}
	d.closed[chainSide] = true
	next, err := d.waitChainSide(ctx)
	if err != nil {
		return err
	}
	d.say("   r%d took the chain side over %s later and resumed from the stored cursor", next, time.Since(t0).Round(10*time.Millisecond))
	d.say("   (r%d resigned as it stopped; a replica that dies without resigning is replaced once its", chainSide)
	d.say("   5 s lease runs out). The front no longer sends it Checks, as Envoy's health check would not.")
	if err := d.act(ctx); err != nil {
		return err
	}
	d.say("   payments went on: %d served, Checks answered by %s.", d.served.Load(), d.answers())

	leader := d.cluster.Leader()
	d.say("\n7. stopping etcd member m%d, the Raft leader ...", leader)
	retriedBefore := d.retried.Load()
	t0 = time.Now()
	stopped := make(chan struct{})
	go func() { d.cluster.Stop(leader); close(stopped) }()
	newLeader, err := d.waitEtcdLeader(ctx, leader)
	if err != nil {
		return err
	}
	d.say("   m%d leads %s later (a stopping member first lets its clients move to the other members,", newLeader, time.Since(t0).Round(10*time.Millisecond))
	d.say("   for up to 7 s, then hands the leadership over). 2 of 3 members are still a majority.")
	if err := d.act(ctx); err != nil {
		return err
	}
	<-stopped // the member's shutdown ends once its clients have moved (payments go on meanwhile)
	d.say("   payments went on: %d served; 502/503 answers retried since the stop: %d.",
		d.served.Load(), d.retried.Load()-retriedBefore)

	d.stop.Store(true)
	payers.Wait()
	d.say("\n8. the client stops paying: %d requests served, %d failed.", d.served.Load(), d.failed.Load())
	if f := d.firstFailure.Load(); f != nil {
		d.say("   first failure: %s", *f)
	}
	id := rdn.ChannelID{Sender: sender.Address}
	survivor := -1
	for i := range d.replicas {
		if !d.closed[i] {
			survivor = i
			break
		}
	}
	chs, err := c.Channels(ctx, &receiver)
	if err != nil {
		return err
	}
	var open *client.Channel
	for i := range chs {
		if chs[i].State == client.StateOpen {
			open = &chs[i]
		}
	}
	if open == nil {
		return errors.New("demo: the client has no open channel to close")
	}
	id.OpenBlock = open.OpenBlock
	d.agree(ctx, id)
	api := "http://" + d.replicas[survivor].Admin.Addr() + d.cfg.APIPrefix()
	d.say("   it closes its channel cooperatively: r%d's admin API signs the closing balance, the client", survivor)
	d.say("   sends cooperativeClose to the contract, and the chain side sees the settlement.")
	if _, err := c.CloseCooperatively(ctx, open.Receiver, open.OpenBlock, api); err != nil {
		return fmt.Errorf("cooperative close through r%d: %w", survivor, err)
	}
	settled, err := d.waitSettled(ctx, id)
	if err != nil {
		return err
	}
	after, err := tokenBalances(ctx, d.chain, receiver, sender.Address)
	if err != nil {
		return err
	}
	return d.tally(id, rt.Spent(), settled, before, after, time.Since(start))
}

func (d *replicaDemo) startReplicas(ctx context.Context, base config.Config, n int, logger *slog.Logger) error {
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	for i := range n {
		cfg := base
		cfg.Chain.RPCURL = ""
		// Fast polling makes a new channel usable and a settlement visible within a fraction
		// of a second; the dev chain mines as transactions arrive.
		cfg.Chain.PollInterval = min(cfg.Chain.PollInterval, 200*time.Millisecond)
		cfg.DevChain.Listen, cfg.DevChain.Confirmations = "", 0
		cfg.Authz.Listen, cfg.Authz.HTTPListen, cfg.Admin.Listen = "127.0.0.1:0", "", "127.0.0.1:0"
		cfg.Gateway.Listen, cfg.Gateway.Upstream = "", ""
		cfg.Admin.Token, cfg.Admin.TokenFile = hex.EncodeToString(token), ""
		cfg.Ledger.Backend = config.BackendEtcd
		cfg.Ledger.Etcd.Endpoints = d.cluster.Endpoints()
		cfg.Ledger.Etcd.Username, cfg.Ledger.Etcd.PasswordFile = "", ""
		cfg.Ledger.Etcd.TLS = config.EtcdTLS{}
		srv, err := server.StartWith(ctx, cfg, logger.With("replica", fmt.Sprintf("r%d", i)), server.Options{DevChain: d.chain})
		if err != nil {
			return fmt.Errorf("start replica r%d: %w", i, err)
		}
		d.replicas = append(d.replicas, srv)
		d.cfg = cfg
	}
	return nil
}

func (d *replicaDemo) closeReplicas() {
	for i, r := range d.replicas {
		if !d.closed[i] {
			_ = r.Close()
			d.closed[i] = true
		}
	}
}

// startFront connects to every replica over gRPC and serves the gateway in front of them.
func (d *replicaDemo) startFront() error {
	var checkers []gateway.Checker
	for i, r := range d.replicas {
		conn, err := grpc.NewClient(r.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("connect to replica r%d: %w", i, err)
		}
		d.conns = append(d.conns, conn)
		checkers = append(checkers, countingChecker{gateway.GRPCChecker(authv3.NewAuthorizationClient(conn)), &d.answered[i]})
	}
	d.front = gateway.NewRoundRobin(checkers...)
	g, err := gateway.Start(gateway.Config{Listen: "127.0.0.1:0", Authz: d.front})
	if err != nil {
		return err
	}
	d.gw = g
	return nil
}

// countingChecker counts the Checks a replica answered.
type countingChecker struct {
	gateway.Checker
	n *atomic.Int64
}

func (c countingChecker) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	resp, err := c.Checker.Check(ctx, req)
	if err == nil {
		c.n.Add(1)
	}
	return resp, err
}

func (d *replicaDemo) answers() string {
	var parts []string
	for i := range d.replicas {
		parts = append(parts, fmt.Sprintf("r%d %d", i, d.answered[i].Load()))
	}
	return strings.Join(parts, ", ")
}

// pay sends paid requests one after the other until ctx ends.
func (d *replicaDemo) pay(ctx context.Context, rt http.RoundTripper, g int) {
	hc := &http.Client{Transport: rt}
	for n := 0; ctx.Err() == nil && !d.stop.Load(); n++ {
		param := fmt.Sprintf("c%d-%d", g, n)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.gw.URL()+"/echofix/"+param, nil)
		if err != nil {
			d.fail(err.Error())
			return
		}
		key := make([]byte, 12)
		_, _ = rand.Read(key)
		req.Header.Set(authz.HeaderIdempotencyKey, hex.EncodeToString(key))
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				d.fail(err.Error())
			}
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		price, ok := new(big.Int).SetString(resp.Header.Get(rdn.HeaderPrice), 10)
		if resp.StatusCode != http.StatusOK || string(body) != param || !ok {
			d.fail(fmt.Sprintf("%s: %s %q", param, resp.Status, body))
			continue
		}
		d.sumMu.Lock()
		d.servedSum.Add(d.servedSum, price)
		d.served.Add(1)
		d.sumMu.Unlock()
	}
}

func (d *replicaDemo) sum() *big.Int {
	d.sumMu.Lock()
	defer d.sumMu.Unlock()
	return new(big.Int).Set(d.servedSum)
}

func (d *replicaDemo) fail(msg string) {
	d.failed.Add(1)
	d.firstFailure.CompareAndSwap(nil, &msg)
}

// act lets the client pay for at least demoActMin and demoActBatch requests.
func (d *replicaDemo) act(ctx context.Context) error {
	from, start := d.served.Load(), time.Now()
	for d.served.Load() < from+demoActBatch || time.Since(start) < demoActMin {
		if time.Since(start) > demoActMax {
			return fmt.Errorf("demo: only %d requests served in %s (%d failed)", d.served.Load()-from, demoActMax, d.failed.Load())
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// waitChainSide waits until exactly one running replica runs the chain side.
func (d *replicaDemo) waitChainSide(ctx context.Context) (int, error) {
	return waitFor(ctx, 20*time.Second, "no replica took the chain side", func() (int, bool) {
		found := -1
		for i, r := range d.replicas {
			if !d.closed[i] && r.RunsChainSide() {
				if found >= 0 {
					return -1, false // two for a moment: the old lease is running out
				}
				found = i
			}
		}
		return found, found >= 0
	})
}

// waitReady waits until every replica's /readyz says it takes payments: a follower does
// once it has seen the chain side's first sync.
func (d *replicaDemo) waitReady(ctx context.Context) error {
	_, err := waitFor(ctx, 20*time.Second, "the replicas were not ready", func() (int, bool) {
		for _, r := range d.replicas {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Admin.Addr()+"/readyz", nil)
			if err != nil {
				return 0, false
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return 0, false
			}
		}
		return 0, true
	})
	return err
}

func (d *replicaDemo) waitEtcdLeader(ctx context.Context, old int) (int, error) {
	return waitFor(ctx, 20*time.Second, "the etcd cluster elected no new leader", func() (int, bool) {
		l := d.cluster.Leader()
		return l, l >= 0 && l != old
	})
}

// agree waits (a few seconds at most) until every running replica's ledger charges the
// channel what the client was served: each replica learns of the others' payments through
// its etcd Watch, so the last ones may still be on their way. It records what each holds
// then, agreeing or not: the tally judges.
func (d *replicaDemo) agree(ctx context.Context, id rdn.ChannelID) {
	want := d.sum()
	d.charged, d.stats = map[int]*big.Int{}, map[int]*big.Int{}
	_, _ = waitFor(ctx, 10*time.Second, "", func() (int, bool) {
		all := true
		for i, r := range d.replicas {
			if d.closed[i] {
				continue
			}
			d.charged[i], d.stats[i] = new(big.Int), r.Ledger.Stats().ChargedSum
			if ch, err := r.Ledger.Channel(id); err == nil && ch != nil {
				d.charged[i] = ch.Charged
			}
			all = all && d.charged[i].Cmp(want) == 0 && d.stats[i].Cmp(want) == 0
		}
		return 0, all
	})
}

// waitSettled waits until every running replica's ledger holds the channel settled, and
// returns the balance it settled at.
func (d *replicaDemo) waitSettled(ctx context.Context, id rdn.ChannelID) (*big.Int, error) {
	var settled *big.Int
	_, err := waitFor(ctx, 20*time.Second, "the replicas did not see the settlement", func() (int, bool) {
		for i, r := range d.replicas {
			if d.closed[i] {
				continue
			}
			ch, err := r.Ledger.Channel(id)
			if err != nil || ch == nil || ch.State != ledger.StateSettled {
				return 0, false
			}
			settled = ch.CloseBalance
		}
		return 0, true
	})
	return settled, err
}

func waitFor(ctx context.Context, limit time.Duration, what string, done func() (int, bool)) (int, error) {
	deadline := time.Now().Add(limit)
	for {
		if v, ok := done(); ok {
			return v, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("demo: %s within %s", what, limit)
		}
		if err := pause(ctx, 20*time.Millisecond); err != nil {
			return -1, err
		}
	}
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// tally prints what each party counted and checks that they agree.
func (d *replicaDemo) tally(id rdn.ChannelID, signed, settled *big.Int, before, after [2]*big.Int, took time.Duration) error {
	served, sum := d.served.Load(), d.sum()
	gain, loss := new(big.Int).Sub(after[0], before[0]), new(big.Int).Sub(before[1], after[1])
	d.say("\nTally (in token units):")
	d.say("  requests served                 %d, their prices sum to %s", served, sum)
	d.say("  client signed for               %s", signed)
	var problems []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for i, r := range d.replicas {
		if d.closed[i] {
			continue
		}
		settledSum := r.Ledger.Stats().SettledSum
		d.say("  charged in r%d's ledger          %s (its stats: %s charged, then %s settled)", i, d.charged[i], d.stats[i], settledSum)
		check(d.charged[i].Cmp(sum) == 0, "r%d's ledger charged %s for %s served", i, d.charged[i], sum)
		check(d.stats[i].Cmp(sum) == 0, "r%d's stats count %s charged for %s served", i, d.stats[i], sum)
		check(settledSum.Cmp(sum) == 0, "r%d's stats count %s settled for %s served", i, settledSum, sum)
	}
	d.say("  channel settled on chain at     %s", settled)
	d.say("  receiver's tokens on chain      +%s", gain)
	d.say("  sender's tokens on chain        -%s", loss)
	d.say("  502/503 answers retried         %d", d.retried.Load())
	d.say("  requests failed                 %d", d.failed.Load())
	check(d.failed.Load() == 0, "%d requests failed", d.failed.Load())
	check(signed.Cmp(sum) == 0, "the client signed for %s but was served %s: a proof was lost", signed, sum)
	check(settled != nil && settled.Cmp(sum) == 0, "the channel settled at %s for %s served", settled, sum)
	check(gain.Cmp(sum) == 0, "the receiver gained %s for %s served", gain, sum)
	check(loss.Cmp(sum) == 0, "the sender lost %s for %s served", loss, sum)
	if len(problems) > 0 {
		return fmt.Errorf("tally check failed: %s", strings.Join(problems, "; "))
	}
	d.say("tally OK: served = charged on every replica = settled on chain = the receiver's gain;")
	d.say("nothing lost, nothing charged twice (%s).", took.Round(100*time.Millisecond))
	return nil
}

// retryTransport sends a 502 or 503 answer's request again, unchanged (the same proof and
// Idempotency-Key), as Envoy's retry policy or a careful client does: the server either
// stored the payment (the retry is served uncharged) or did not (the retry pays).
type retryTransport struct {
	base    http.RoundTripper
	retried *atomic.Int64
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	delay := 50 * time.Millisecond
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := t.base.RoundTrip(req.Clone(req.Context()))
		if err != nil || (resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable) ||
			time.Now().After(deadline) {
			return resp, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.retried.Add(1)
		if err := pause(req.Context(), delay); err != nil {
			return nil, err
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

func tokenBalances(ctx context.Context, c *devchain.Chain, who ...common.Address) ([2]*big.Int, error) {
	var b [2]*big.Int
	for i, addr := range who {
		v, err := contracts.TokenBalance(ctx, c.Client(), c.Deployment().Token, addr)
		if err != nil {
			return b, err
		}
		b[i] = v
	}
	return b, nil
}
