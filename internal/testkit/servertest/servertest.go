// Package servertest starts uraiden on the embedded dev chain for the tests of other
// packages: the chain, a configuration on loopback ports, the server and a gRPC client of
// its Check, each cleaned up with the test.
package servertest

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/server"
)

// DevChain starts a dev chain with funded accounts and no RPC port.
func DevChain(t testing.TB, accounts int) *devchain.Chain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := devchain.Start(ctx, devchain.Config{Accounts: accounts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Config is the default configuration with the gRPC and admin servers on free loopback
// ports, no dev chain RPC port, a fresh ledger directory, the given price table and fast
// chain polling.
func Config(t testing.TB, prices string) config.Config {
	cfg := config.Default()
	cfg.Authz.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DevChain.Listen = ""
	cfg.Ledger.Dir = t.TempDir()
	cfg.Pricing.File = prices
	cfg.Chain.PollInterval = 50 * time.Millisecond
	return cfg
}

// Start runs the server on c, logging warnings and errors only.
func Start(t testing.TB, cfg config.Config, c *devchain.Chain) *server.Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.StartWith(context.Background(), cfg, logger, server.Options{DevChain: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// AuthzClient connects to the server's Check over gRPC.
func AuthzClient(t testing.TB, srv *server.Server) authv3.AuthorizationClient {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// Program finds a third-party program a test drives (Chromium, Caddy, grpcurl): the first
// candidate, a name on PATH or a path, that exists. Without one the test is skipped, except
// under CI, where .ci/run installs them all and a skip would hide a failure.
func Program(t testing.TB, install string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("none of %v is installed (%s)", candidates, install)
	}
	t.Skipf("none of %v is installed (%s)", candidates, install)
	return ""
}

// SyncBuffer collects what a running server or command writes (logs, output) from many
// goroutines, for the test to read.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a loopback host:port nobody listens on now, for a server a test starts
// as another process (which cannot be handed a listener).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
