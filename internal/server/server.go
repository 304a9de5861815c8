// Package server assembles `uraiden serve`: the chain (a node, or the embedded dev chain),
// the metrics, the ledger, the price table, the chain watcher and the watchtower, the ext_authz
// gRPC server, its HTTP twin (authz.http_listen), the admin HTTP server and the local gateway
// (gateway.listen), started in that order and stopped in reverse.
package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/uraiden/uraiden"
	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/checkcodec"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/etcdconn"
	"github.com/uraiden/uraiden/internal/gateway"
	"github.com/uraiden/uraiden/internal/metrics"
	"github.com/uraiden/uraiden/internal/tlsconf"
	"github.com/uraiden/uraiden/keys"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Server is a running uraiden service.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	DevChain *devchain.Chain // nil with a configured node
	Client   *ethclient.Client
	Contract contracts.Contract
	// ProofSchemes are the schemes offered, as the contract supports them (chain.ProofSchemes).
	ProofSchemes []rdn.Scheme
	// Receiver is the receiver's key, which never prints.
	Receiver keys.Secret[*ecdsa.PrivateKey]
	Ledger   *ledger.Ledger
	Prices   *pricing.Watcher
	Watcher  *chain.Watcher
	Tower    *chain.Watchtower
	Authz    *authz.Service
	Metrics  *metrics.Metrics
	Admin    *admin.Server    // nil when admin.listen is empty
	Gateway  *gateway.Gateway // nil when no gateway is served

	grpc     *grpc.Server
	listener net.Listener
	// authzTLS secures both authorization listeners; nil serves plain TCP.
	authzTLS *tls.Config
	// httpAuthz is authz.http_listen's listener, nil when it is empty.
	httpAuthz  net.Listener
	httpServer *http.Server
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closers    []func() error

	chainView *admin.ChainView
	health    *health.Server

	// etcd is the replicated ledger's client, nil on Badger; the chain side runs only on
	// the replica its election chose (see runChainSide).
	etcd *clientv3.Client
	// leading is set while this replica runs the chain side.
	leading atomic.Bool
	// leadSince is when this replica last took the chain side (unix nanoseconds).
	leadSince atomic.Int64
	follower  *followerHealth
	// freshDevChain is set when this process started a new dev chain.
	freshDevChain bool
	// confirmations are the blocks a deposit waits (chain.confirmations, or the dev
	// chain's), and tokenSymbol the token's symbol() ("" without one), for the discovery
	// document.
	confirmations uint64
	tokenSymbol   string
}

// Options are what a caller may provide instead of the configuration.
type Options struct {
	// DevChain, when set, is a running dev chain to use (and not close) instead of starting
	// one; its ledger is kept across starts, so a test can restart the service on it.
	DevChain *devchain.Chain
}

// Start brings the service up and returns once it serves.
func Start(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Server, error) {
	return StartWith(ctx, cfg, logger, Options{})
}

// StartWith is Start with options.
func StartWith(ctx context.Context, cfg config.Config, logger *slog.Logger, opts Options) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: logger, DevChain: opts.DevChain}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel

	confirmations, startBlock, ledgerDir, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.confirmations = confirmations
	receiver := s.ReceiverAddress()
	s.newMetrics()
	s.Ledger, err = s.openLedger(ctx, ledgerDir, ledger.Identity{
		ChainID:  s.chainID(),
		Contract: s.Contract.Address,
		Receiver: receiver,
	})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Ledger.Close)

	prices := pricing.WatcherOptions{Logger: logger}
	if prices.Token, err = s.token(ctx); err != nil {
		return nil, err
	}
	if s.tokenSymbol, err = s.symbol(ctx); err != nil {
		return nil, err
	}
	if s.DevChain != nil && cfg.Pricing.File == config.Default().Pricing.File {
		// The dev chain's tokens are worth nothing: a binary run outside the repository
		// prices with the example table rather than refusing to start. Against a real chain
		// a missing table stays an error.
		prices.Builtin = uraiden.ExamplePrices
	}
	s.Prices, err = pricing.NewWatcher(cfg.Pricing.File, prices)
	if errors.Is(err, pricing.ErrNoDecimals) {
		return nil, fmt.Errorf("price table: %w\n(prices in tokens need the token's decimals, and token %s has no ERC20 decimals(): write them in base units)", err, s.Contract.Token)
	}
	if err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	s.goRun(func() { _ = s.Prices.Run(runCtx) })

	chainID, err := s.Client.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("chain id: %w", err)
	}
	if s.ProofSchemes, err = chain.ProofSchemes(ctx, s.Client, s.Contract.Address, s.chainID()); err != nil {
		return nil, fmt.Errorf("proof schemes: %w", err)
	}
	// fmt names each scheme; slog would print a []rdn.Scheme as bytes.
	s.log.Info("proof schemes offered", "schemes", fmt.Sprint(s.ProofSchemes))
	maxFee, _ := cfg.Chain.MaxFeeWei()
	s.Tower = chain.NewWatchtower(chain.WatchtowerConfig{
		Client:         s.Client,
		Account:        chain.Account{ChainID: chainID, Contract: s.Contract.Address, Key: s.Receiver, MaxFeeCap: maxFee},
		DeadlineMargin: uint64(s.Contract.ChallengePeriod / 4), ChallengePeriod: s.Contract.ChallengePeriod,
		Interval: cfg.Chain.PollInterval, OnTransaction: s.Metrics.WatchtowerTransaction, Logger: logger,
	}, s.Ledger)
	minWei, _ := cfg.Chain.MinReceiverWei()
	maxHeadAge := cfg.Chain.MaxHeadAge
	if s.DevChain != nil {
		maxHeadAge = 0
	}
	s.Watcher = chain.NewWatcher(chain.WatcherConfig{
		Client: s.Client, Contract: s.Contract.Address, Receiver: receiver,
		ChallengePeriod: s.Contract.ChallengePeriod, Confirmations: confirmations, StartBlock: startBlock,
		PollInterval: cfg.Chain.PollInterval, MaxLag: cfg.Chain.MaxLag, MaxHeadAge: maxHeadAge, MinReceiverBalance: minWei,
		OnEvents: s.Tower.OnEvents, Logger: logger,
	}, s.Ledger)
	if s.etcd == nil {
		s.startChainSide(ctx, runCtx)
	} else {
		s.follower = newFollowerHealth(s.Client, s.Ledger, cfg.Chain.MaxLag)
		s.goRun(func() { s.follower.run(runCtx, cfg.Chain.PollInterval) })
		s.goRun(func() { s.runChainSide(runCtx) })
	}

	s.Authz = authz.NewService(authz.Config{
		Receiver: receiver, Contract: s.Contract.Address, Token: s.Contract.Token,
		ChainID: s.chainID(), GatewayPath: cfg.Authz.GatewayPath,
		Prices:  func() authz.Pricer { return s.Prices.Current() },
		Ledger:  s.Ledger,
		Chain:   s.chainHealth(),
		Observe: s.Metrics.ObserveCheck,
		// The ledger applies it: authz only passes it with each payment.
		RetryWindow:  cfg.Authz.RetryWindow,
		ProofSchemes: s.ProofSchemes,
	}, logger)
	if err := s.serveGRPC(); err != nil {
		return nil, err
	}
	if err := s.serveHTTPAuthz(); err != nil {
		return nil, err
	}
	if err := s.startAdmin(runCtx); err != nil {
		return nil, err
	}
	if err := s.startGateway(opts.DevChain == nil && cfg.Chain.RPCURL == ""); err != nil {
		return nil, err
	}
	return s, nil
}

// token reads the decimals of the channel's token, which convert the prices the table
// writes in tokens, once: a token's decimals never change, and reloads must convert as the
// first table did. nil when the token answers no decimals().
func (s *Server) token(ctx context.Context) (*pricing.Token, error) {
	d, ok, err := chain.TokenDecimals(ctx, s.Client, s.Contract.Token)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.log.Warn("the token has no decimals(): prices in tokens are refused", "token", s.Contract.Token)
		return nil, nil
	}
	s.log.Info("token decimals read", "token", s.Contract.Token, "decimals", d)
	return &pricing.Token{Decimals: d}, nil
}

// symbol reads the token's symbol() once, for the discovery document; "" when the token has
// none (it is optional in ERC20) or answers no usable one.
func (s *Server) symbol(ctx context.Context) (string, error) {
	symbol, ok, err := chain.TokenSymbol(ctx, s.Client, s.Contract.Token)
	if err != nil {
		return "", err
	}
	if !ok {
		s.log.Warn("the token answers no usable symbol(): the discovery document names none", "token", s.Contract.Token)
		return "", nil
	}
	s.log.Info("token symbol read", "token", s.Contract.Token, "symbol", symbol)
	return symbol, nil
}

// openLedger opens ledger.backend's ledger: Badger in dir, or the one on etcd, whose client
// it closes after the ledger.
func (s *Server) openLedger(ctx context.Context, dir string, id ledger.Identity) (*ledger.Ledger, error) {
	cfg := s.cfg
	if cfg.Ledger.Backend != config.BackendEtcd {
		return ledger.Open(ledger.Options{
			Dir:          dir,
			MinFreeBytes: cfg.Ledger.MinFreeMB << 20,
			Logger:       s.log,
			Identity:     id,
			OnCommit:     s.Metrics.ObserveCommit,
		})
	}
	client, err := etcdconn.Connect(ctx, cfg.Ledger.Etcd, s.log)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	s.closers = append(s.closers, client.Close)
	if s.freshDevChain {
		// A new dev chain deploys its contract at the address the last one used: its old
		// records would match it. The prefix names the dev chain's id and contract only.
		prefix := ledger.EtcdPrefix(cfg.Ledger.Etcd.Prefix, id)
		if _, err := client.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
			return nil, fmt.Errorf("reset the dev chain's ledger %s: %w", prefix, err)
		}
	}
	l, err := ledger.OpenEtcd(ctx, ledger.EtcdOptions{
		Client:   client,
		Prefix:   cfg.Ledger.Etcd.Prefix,
		Identity: id,
		Timeout:  cfg.Ledger.Etcd.RequestTimeout,
		Logger:   s.log,
		OnCommit: s.Metrics.ObserveCommit,
	})
	if err != nil {
		return nil, err
	}
	s.etcd = client
	return l, nil
}

// connect reaches the chain: the configured node, or a new embedded dev chain.
func (s *Server) connect(ctx context.Context) (confirmations, startBlock uint64, ledgerDir string, err error) {
	cfg := s.cfg
	if s.DevChain != nil {
		return s.useDevChain(ctx, false)
	}
	if cfg.Chain.RPCURL == "" {
		return s.startDevChain(ctx)
	}
	key, err := keys.Load(cfg.Receiver.KeyFile, cfg.Receiver.PasswordFile)
	if err != nil {
		return 0, 0, "", fmt.Errorf("receiver key: %w", err)
	}
	s.Receiver = keys.NewSecret(key)
	c, err := chain.Dial(ctx, cfg.Chain.RPCURL, chain.Expect{ChainID: cfg.Chain.ChainID, Contract: cfg.Chain.Contract()})
	if err != nil {
		return 0, 0, "", err
	}
	s.Client, s.Contract = c.Client, c.Contract
	s.closers = append(s.closers, func() error { c.Close(); return nil })
	s.log.Info("connected to the chain", "rpc", cfg.Chain.RPCURL, "chain_id", c.ChainID, "contract", c.Contract.Address, "token", c.Contract.Token)
	return cfg.Chain.Confirmations, cfg.Chain.StartBlock, cfg.Ledger.Dir, nil
}

func (s *Server) startDevChain(ctx context.Context) (uint64, uint64, string, error) {
	dc := s.cfg.DevChain
	c, err := devchain.Start(ctx, devchain.Config{
		Listen: dc.Listen, BlockPeriod: dc.BlockPeriod, Accounts: dc.Accounts,
		ChallengePeriod: dc.ChallengePeriod, Logger: s.log,
	})
	if err != nil {
		return 0, 0, "", fmt.Errorf("start dev chain: %w", err)
	}
	s.DevChain = c
	s.closers = append(s.closers, c.Close)
	return s.useDevChain(ctx, true)
}

func (s *Server) useDevChain(ctx context.Context, fresh bool) (uint64, uint64, string, error) {
	c, dc := s.DevChain, s.cfg.DevChain
	d := c.Deployment()
	s.Client = c.Client()
	s.Receiver = keys.NewSecret(c.Accounts()[0].Key)
	contract, err := contracts.VerifyContract(ctx, s.Client, d.Channels)
	if err != nil {
		return 0, 0, "", err
	}
	s.Contract = contract
	// A new dev chain needs a new ledger.
	dir := filepath.Join(s.cfg.Ledger.Dir, "devchain")
	s.freshDevChain = fresh
	if fresh {
		if err := os.RemoveAll(dir); err != nil {
			return 0, 0, "", fmt.Errorf("reset the dev chain's ledger %s: %w", dir, err)
		}
	}
	s.log.Info("embedded dev chain running (development only)", "rpc", c.HTTPEndpoint(),
		"chain_id", devchain.ChainID, "contract", d.Channels, "token", d.Token, "ledger", dir)
	return dc.Confirmations, d.ChannelsBlock, dir, nil
}

func (s *Server) chainID() uint64 {
	if s.DevChain != nil {
		return devchain.ChainID
	}
	return s.cfg.Chain.ChainID
}

// ReceiverAddress is the address of the receiver's key.
func (s *Server) ReceiverAddress() common.Address {
	return crypto.PubkeyToAddress(s.Receiver.Reveal().PublicKey)
}

func (s *Server) serveGRPC() error {
	var err error
	if s.authzTLS, err = tlsconf.Server(s.cfg.Authz.TLS.Files(), s.log); err != nil {
		return fmt.Errorf("authz.tls: %w", err)
	}
	l, err := net.Listen("tcp", s.cfg.Authz.Listen)
	if err != nil {
		return fmt.Errorf("authz listen: %w", err)
	}
	s.listener = l
	// A CheckRequest over the limit is refused with RESOURCE_EXHAUSTED before it is decoded;
	// Envoy (failure_mode_allow: false) then denies the request.
	// checkcodec decodes only what uraiden reads of a CheckRequest; other services (health,
	// reflection) go through the proto codec.
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(s.cfg.Authz.MaxRequestBytes),
		checkcodec.ServerOption(), checkcodec.StreamWorkers()}
	if s.authzTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.authzTLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(s.grpc, s.Authz)
	s.health = health.NewServer()
	s.updateHealth()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.goRun(func() {
		if err := s.grpc.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("gRPC server stopped", "err", err)
		}
	})
	s.log.Info("serving Envoy ext_authz", "grpc", l.Addr().String(), "service", authv3.Authorization_ServiceDesc.ServiceName,
		"prices", s.cfg.Pricing.File, "receiver", s.ReceiverAddress(), "tls", tlsMode(s.authzTLS),
		"vtproto_marshal", checkcodec.VTMarshal)
	return nil
}

// tlsMode describes a listener's security for the logs.
func tlsMode(c *tls.Config) string {
	switch {
	case c == nil:
		return "off"
	case c.ClientAuth != tls.NoClientCert:
		return "mtls"
	default:
		return "tls"
	}
}

// Addr is the gRPC listener's address.
func (s *Server) Addr() string { return s.listener.Addr().String() }

func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Close stops serving (letting Check calls in flight finish, for up to 10 seconds), stops
// the watchers, and closes the ledger and the chain.
func (s *Server) Close() error {
	if s.grpc != nil {
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.grpc.Stop()
		}
	}
	s.stopHTTPAuthz()
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}
