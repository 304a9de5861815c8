// Package etcdconn owns turning the configuration into a connected etcd client: the
// endpoints, TLS and mTLS from PEM files, the username with the password from its file,
// and a check at start that the cluster answers within the dial timeout, so that a wrong
// address, certificate or password stops `uraiden serve` with the reason instead of turning
// every payment into a 503.
package etcdconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/tlsconf"
)

// Connect connects to the cluster c names and returns once a linearizable read under
// c.Prefix succeeded, bounded by c.DialTimeout and ctx: the read needs a quorum, and, with
// auth enabled, the user's permission to read the prefix. The configuration must be
// validated (config.Config.Validate). The caller closes the client.
func Connect(ctx context.Context, c config.Etcd, logger *slog.Logger) (*clientv3.Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	endpoints := strings.Join(c.Endpoints, ",")
	cfg := clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.DialTimeout,
		// The client's own log repeats, once per retry, the errors its calls return; those
		// reach the ledger and Connect, which report them with their context.
		Logger: zap.NewNop(),
	}
	if c.HTTPS() {
		tlsConfig, err := tlsconf.Client(c.TLS.Files())
		if err != nil {
			return nil, fmt.Errorf("ledger.etcd.tls: %w", err)
		}
		cfg.TLS = tlsConfig
		if c.TLS.ServerName != "" {
			// gRPC verifies each member against its endpoint's host, ignoring the
			// configuration's ServerName; this option comes after the client's own
			// credentials, so it replaces them.
			cfg.DialOptions = append(cfg.DialOptions, grpc.WithTransportCredentials(
				serverName{credentials.NewTLS(tlsConfig), c.TLS.ServerName}))
		}
	}
	if c.Username != "" {
		password, err := c.Password()
		if err != nil {
			return nil, err
		}
		cfg.Username, cfg.Password = c.Username, password
	}
	// With a username, New authenticates (bounded by DialTimeout) and fails on a wrong
	// password; without one it only sets the connection up, and the read below finds out
	// whether anything answers.
	client, err := clientv3.New(cfg)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("etcd %s: no member answered the authentication within ledger.etcd.dial_timeout (%s)%s: %w",
				endpoints, c.DialTimeout, probe(ctx, c.Endpoints, cfg.TLS), err)
		}
		return nil, fmt.Errorf("etcd %s: connect: %w", endpoints, err)
	}
	readCtx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	if _, err := client.Get(readCtx, c.Prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1)); err != nil {
		client.Close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("etcd %s: no quorum answered within ledger.etcd.dial_timeout (%s)%s: %w",
				endpoints, c.DialTimeout, probe(ctx, c.Endpoints, cfg.TLS), err)
		}
		return nil, fmt.Errorf("etcd %s: reading under %s: %w", endpoints, c.Prefix, err)
	}
	logger.Info("connected to etcd", "endpoints", c.Endpoints, "prefix", c.Prefix, "tls", cfg.TLS != nil,
		"client_certificate", cfg.TLS != nil && len(cfg.TLS.Certificates) > 0, "username", c.Username)
	return client, nil
}

// probeTimeout bounds probe, which runs after the dial timeout has passed.
const probeTimeout = time.Second

// probe says why no member answered, as far as a TCP connection and a TLS handshake to
// each endpoint tell: gRPC waits for a connection until the deadline and then reports only
// the deadline, whether the members are down or refuse the handshake. It returns "" when
// every member accepts both (then the members are up without a quorum, or slow).
func probe(ctx context.Context, endpoints []string, tlsConfig *tls.Config) string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	reasons := make([]string, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() {
			u, err := url.Parse(ep)
			if err != nil {
				return
			}
			if err := handshake(ctx, u, tlsConfig); err != nil {
				reasons[i] = u.Host + ": " + err.Error()
			}
		})
	}
	wg.Wait()
	var out []string
	for _, r := range reasons {
		if r != "" {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return " (the members accept connections: no quorum, or too slow)"
	}
	return " (" + strings.Join(out, "; ") + ")"
}

// handshake connects to u and, with tlsConfig, completes a TLS handshake as the client
// would.
func handshake(ctx context.Context, u *url.URL, tlsConfig *tls.Config) error {
	conn, err := new(net.Dialer).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	if tlsConfig == nil {
		return nil
	}
	cfg := tlsConfig.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	// With TLS 1.3 the member judges the client's certificate after the client's side of
	// the handshake is done: a refusal arrives as an alert on the first read. A member that
	// accepted it sends its HTTP/2 settings, or waits for the client; both are fine.
	tc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := tc.Read(make([]byte, 1)); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		return err
	}
	return nil
}

// serverName is TLS that verifies every member's certificate against one name.
type serverName struct {
	credentials.TransportCredentials
	name string
}

func (s serverName) ClientHandshake(ctx context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return s.TransportCredentials.ClientHandshake(ctx, s.name, conn)
}

func (s serverName) Clone() credentials.TransportCredentials {
	return serverName{s.TransportCredentials.Clone(), s.name}
}
