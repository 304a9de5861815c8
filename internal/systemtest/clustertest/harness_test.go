package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/internal/dev/etcdcluster"
	"github.com/uraiden/uraiden/internal/testkit/proctest"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// price is what one request on proctest.PaidPath costs; etcdPrefix roots the ledger's keys.
const (
	price      = 1
	etcdPrefix = "/uraiden/"
)

// cluster is an etcd cluster and a dev chain with channels to the receiver, which the
// replicas a test starts share.
type cluster struct {
	t    *testing.T
	etcd *etcdcluster.Cluster
	env  *proctest.Env
	cli  *clientv3.Client // the test's own client of etcd
}

func startCluster(t *testing.T, channels int) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ec, err := etcdcluster.Start(ctx, etcdcluster.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ec.Close)
	cli, err := ec.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &cluster{t: t, etcd: ec, env: proctest.StartEnv(t, channels, devchain.Config{}), cli: cli}
}

// replica is one `uraiden serve` of the shared ledger: its directory, loopback ports, and
// its latest run.
type replica struct {
	i         int
	dir       string
	config    string
	grpcAddr  string
	adminAddr string
	proc      *proctest.Proc
	client    authv3.AuthorizationClient
	down      atomic.Bool // killed: the load sends it nothing more
	oks       atomic.Int64
}

// replicaOptions change a replica's configuration.
type replicaOptions struct {
	endpoints      []string      // etcd's client URLs; empty: the cluster's
	requestTimeout time.Duration // ledger.etcd.request_timeout; zero: the default
}

// startReplica writes a replica's configuration and starts it; it is not ready yet.
func (c *cluster) startReplica(i int, o replicaOptions) *replica {
	t := c.t
	t.Helper()
	dir := t.TempDir()
	r := &replica{i: i, dir: dir, config: filepath.Join(dir, "config.yaml"),
		grpcAddr: servertest.FreeAddr(t), adminAddr: servertest.FreeAddr(t)}
	if len(o.endpoints) == 0 {
		o.endpoints = c.etcd.Endpoints()
	}
	var timeout string
	if o.requestTimeout > 0 {
		timeout = ", request_timeout: " + o.requestTimeout.String()
	}
	quoted := make([]string, len(o.endpoints))
	for j, ep := range o.endpoints {
		quoted[j] = strconv.Quote(ep)
	}
	keyFile, prices := filepath.Join(dir, "receiver.key"), filepath.Join(dir, "prices.yaml")
	writeFile(t, keyFile, hexutil.Encode(crypto.FromECDSA(c.env.Receiver))+"\n", 0o600)
	writeFile(t, prices, proctest.PriceTable(price), 0o644)
	ledgerYAML := fmt.Sprintf("{backend: etcd, etcd: {endpoints: [%s], prefix: %q%s}}", strings.Join(quoted, ", "), etcdPrefix, timeout)
	writeFile(t, r.config, c.env.ServeConfig(r.grpcAddr, r.adminAddr, prices, keyFile, ledgerYAML, c.env.Contract()), 0o600)
	r.proc = proctest.Start(t, dir, r.config, filepath.Join(dir, "serve.log"))
	r.client = proctest.AuthzClient(t, r.grpcAddr)
	return r
}

// startReplicas starts n replicas with the same options and waits until all are ready.
func (c *cluster) startReplicas(n int, o replicaOptions) []*replica {
	c.t.Helper()
	rs := make([]*replica, n)
	for i := range rs {
		rs[i] = c.startReplica(i, o)
	}
	for _, r := range rs {
		r.mustReady(c.t)
	}
	return rs
}

func (r *replica) mustReady(t *testing.T) {
	t.Helper()
	if err := r.proc.Ready(r.adminAddr, 60*time.Second); err != nil {
		t.Fatalf("replica %d: %v", r.i, err)
	}
}

// kill marks the replica down, so that the load sends it nothing more, and SIGKILLs it.
func (r *replica) kill() {
	r.down.Store(true)
	r.proc.Kill()
}

// logs is the end of every replica's output, for failure messages.
func logs(rs []*replica) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "--- replica %d (pid %d):\n%s\n", r.i, r.proc.Pid(), proctest.Tail(r.proc.Output(), 15))
	}
	return b.String()
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// ledgerPrefix is where the replicas keep the ledger in etcd.
func (c *cluster) ledgerPrefix() string { return ledger.EtcdPrefix(etcdPrefix, c.env.Identity()) }

// chainSide returns the replica that holds the chain side's election, or nil when none of
// rs does: internal/server/chainside.go campaigns with "<hostname> pid <pid>" under the
// ledger's prefix ‖ "chain-side", and the leader is the candidate created first.
func (c *cluster) chainSide(ctx context.Context, rs []*replica) (*replica, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.ledgerPrefix()+"chain-side/", clientv3.WithFirstCreate()...)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	value := string(resp.Kvs[0].Value)
	_, pidText, ok := strings.Cut(value, " pid ")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil {
		return nil, fmt.Errorf("chain side's election value %q: want \"<hostname> pid <pid>\"", value)
	}
	for _, r := range rs {
		if r.proc.Pid() == pid {
			return r, nil
		}
	}
	return nil, nil
}

// waitChainSide waits until one of the live replicas of rs holds the chain side.
func (c *cluster) waitChainSide(rs []*replica) *replica {
	t := c.t
	t.Helper()
	var found *replica
	proctest.WaitFor(t, "a replica to run the chain side", 60*time.Second, func() bool {
		r, err := c.chainSide(t.Context(), rs)
		if err != nil {
			t.Logf("chain side: %v", err)
		}
		found = r
		return r != nil && !r.down.Load()
	})
	return found
}

// readLedger opens the replicas' ledger from the test process, to read it back.
func (c *cluster) readLedger() *ledger.Ledger {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l, err := ledger.OpenEtcd(ctx, ledger.EtcdOptions{Client: c.cli, Prefix: etcdPrefix, Identity: c.env.Identity()})
	if err != nil {
		t.Fatalf("open the etcd ledger: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// verifyLedger reads every channel back from etcd and checks it against the payments
// answered OK: none lost, only balances that were sent.
func (c *cluster) verifyLedger(rs []*replica) {
	t := c.t
	t.Helper()
	l := c.readLedger()
	lost := 0
	for _, ch := range c.env.Channels {
		stored, err := l.Channel(ch.ID)
		if err != nil {
			t.Errorf("read %s back: %v", ch.ID, err)
			continue
		}
		n, problems := ch.Verify(stored, price)
		lost += n
		for _, p := range problems {
			t.Error(p)
		}
	}
	if lost > 0 {
		t.Errorf("%d payments answered OK are not in etcd\n%s", lost, logs(rs))
	}
}

// relay forwards TCP connections from a loopback port to target until it is cut: then it
// closes every connection it carries and closes new ones at once, as a partition between a
// replica and the cluster would (without the hang of dropped packets, which only delays the
// same outcome).
type relay struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// startRelay relays to the host of the client URL target and returns the relay's URL.
func startRelay(t *testing.T, target string) (*relay, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	go r.serve()
	t.Cleanup(func() {
		ln.Close()
		r.setCut(true)
	})
	return r, u.Scheme + "://" + ln.Addr().String()
}

func (r *relay) serve() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.carry(in)
	}
}

func (r *relay) carry(in net.Conn) {
	if !r.track(in) {
		in.Close()
		return
	}
	out, err := net.Dial("tcp", r.target)
	if err != nil || !r.track(out) {
		in.Close()
		if out != nil {
			out.Close()
		}
		return
	}
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	wg.Go(func() { pipe(out, in) })
	wg.Go(func() { pipe(in, out) })
	wg.Wait()
	r.mu.Lock()
	delete(r.conns, in)
	delete(r.conns, out)
	r.mu.Unlock()
}

// track records a connection, or reports false while the relay is cut.
func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

// setCut cuts the relay (closing what it carries) or heals it.
func (r *relay) setCut(cut bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = cut
	if cut {
		for c := range r.conns {
			c.Close()
		}
		clear(r.conns)
	}
}

// errNoReplica: every replica is down.
var errNoReplica = errors.New("no replica is up")

// mustPay pays price on ch through r and records the OK. The same proof is sent again
// while it is refused without being spent: RDN-Insufficient-Confirmations until the chain
// side has seen the channel opened, and 502 while a replica that has just taken the chain
// side over catches up with the chain.
func (c *cluster) mustPay(r *replica, ch *proctest.Channel) {
	t := c.t
	t.Helper()
	b, sig := ch.Take(c.env, price)
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, hdr, err := c.env.Check(t.Context(), r.client, ch, b, &sig)
		if err == nil && status == http.StatusOK {
			ch.Paid(b)
			return
		}
		unconfirmed := status == http.StatusPaymentRequired && strings.Contains(hdr["body"], rdn.FlagInsufficientConfirm)
		if err != nil || !unconfirmed && status != http.StatusBadGateway || time.Now().After(deadline) {
			t.Fatalf("payment of balance %d through replica %d: %d %s %v", b, r.i, status, hdr["body"], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get fetches a path of the replica's admin server; the status is 0 when it does not answer.
func (r *replica) get(path string) (int, string) { return proctest.Get(r.adminAddr, path) }
