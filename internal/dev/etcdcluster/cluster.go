// Package etcdcluster runs a real multi-member etcd cluster inside this process, each member
// with its own data directory and loopback ports: for `uraiden demo --replicas`, the
// benchmark's etcd ledger and the tests of the replicated ledger. Members can be stopped and
// started again one at a time, to take the leader or the quorum away.
package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Options configure Start.
type Options struct {
	// Members is how many members the cluster has (default 3).
	Members int
	// Dir holds one data directory per member.
	Dir string
	// Logger receives the members' logs; nil discards them (members log errors as they are
	// closed, which tests need not see).
	Logger *zap.Logger
	// MaxTxnOps is the members' limit of operations in one transaction (etcd's default, 128,
	// when zero).
	MaxTxnOps uint
	// ClientTLS, when set, serves the client URLs over https with it: CertFile and KeyFile
	// are the members' certificate (for 127.0.0.1), TrustedCAFile and ClientCertAuth ask
	// clients for a certificate (mTLS). Client presents ClientCertFile and ClientKeyFile
	// (CertFile and KeyFile when they are empty). Peers talk plain http on loopback.
	ClientTLS *transport.TLSInfo
}

// Cluster is a running cluster.
type Cluster struct {
	opts    Options
	members []*member
}

type member struct {
	name       string
	dir        string
	peerURL    url.URL
	clientURL  url.URL
	mu         sync.Mutex
	etcd       *embed.Etcd // nil while stopped
	initialMap string
}

// Start starts every member and waits until the cluster has a leader. Ports are picked
// free and bound a moment later by the members; when another process took one in between,
// the cluster is started again on new ports, in new directories.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	for attempt := 1; ; attempt++ {
		o := opts
		if attempt > 1 {
			o.Dir = filepath.Join(opts.Dir, fmt.Sprintf("attempt%d", attempt))
		}
		c, err := start(ctx, o)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return c, err
		}
	}
}

func start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Members <= 0 {
		opts.Members = 3
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Cluster{opts: opts}
	ports, err := freePorts(2 * opts.Members)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if opts.ClientTLS != nil {
		scheme = "https"
	}
	var initial []string
	for i := range opts.Members {
		m := &member{
			name:      fmt.Sprintf("m%d", i),
			dir:       filepath.Join(opts.Dir, fmt.Sprintf("m%d", i)),
			peerURL:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])},
			clientURL: url.URL{Scheme: scheme, Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])},
		}
		initial = append(initial, m.name+"="+m.peerURL.String())
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.initialMap = strings.Join(initial, ",")
	}
	// Members start together: each waits for a quorum of peers before it is ready.
	errs := make(chan error, len(c.members))
	for i := range c.members {
		go func() { errs <- c.start(i) }()
	}
	for range c.members {
		err = errors.Join(err, <-errs)
	}
	if err == nil {
		err = c.waitReady(ctx)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// freePorts asks the kernel for n free loopback ports. They are released before the members
// bind them; on a machine that runs tests in parallel another process could take one in
// between, which makes Start fail rather than misbehave.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdcluster: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) start(i int) error {
	m := c.members[i]
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.ListenMetricsUrls = nil
	cfg.InitialCluster = m.initialMap
	cfg.InitialClusterToken = "uraiden-dev"
	cfg.ClusterState = embed.ClusterStateFlagNew // ignored once the member has data
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(c.opts.Logger)
	if c.opts.MaxTxnOps > 0 {
		cfg.MaxTxnOps = c.opts.MaxTxnOps
	}
	if c.opts.ClientTLS != nil {
		cfg.ClientTLSInfo = *c.opts.ClientTLS
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcdcluster: start member %s: %w", m.name, err)
	}
	m.mu.Lock()
	m.etcd = e
	m.mu.Unlock()
	return nil
}

// waitReady waits until every running member has joined and a leader is elected.
func (c *Cluster) waitReady(ctx context.Context) error {
	for _, m := range c.members {
		m.mu.Lock()
		e := m.etcd
		m.mu.Unlock()
		if e == nil {
			continue
		}
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			return fmt.Errorf("etcdcluster: member %s: %w", m.name, err)
		case <-ctx.Done():
			return fmt.Errorf("etcdcluster: waiting for member %s: %w", m.name, ctx.Err())
		}
	}
	for {
		if c.Leader() >= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdcluster: waiting for a leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Endpoints are the members' client URLs, stopped members included: a client fails over
// between them.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.clientURL.String()
	}
	return out
}

// Members is how many members the cluster has, running or stopped.
func (c *Cluster) Members() int { return len(c.members) }

// Client returns a client of the whole cluster, with Options.ClientTLS's client side when
// it is set.
func (c *Cluster) Client() (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	}
	if c.opts.ClientTLS != nil {
		tlsConfig, err := c.opts.ClientTLS.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcdcluster: client TLS: %w", err)
		}
		cfg.TLS = tlsConfig
	}
	return clientv3.New(cfg)
}

// Leader returns the index of the member that is the leader, or -1 when no running member
// is.
func (c *Cluster) Leader() int {
	for i, m := range c.members {
		m.mu.Lock()
		e := m.etcd
		m.mu.Unlock()
		if e != nil && e.Server.Leader() == e.Server.MemberID() {
			return i
		}
	}
	return -1
}

// Stop closes member i, as a crash of its process would: its data stays.
func (c *Cluster) Stop(i int) {
	m := c.members[i]
	m.mu.Lock()
	e := m.etcd
	m.etcd = nil
	m.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Restart starts a stopped member again on its data and waits until it is ready.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if err := c.start(i); err != nil {
		return err
	}
	return c.waitReady(ctx)
}

// Close stops every member.
func (c *Cluster) Close() {
	for i := range c.members {
		c.Stop(i)
	}
}
