package server

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/metrics"
	"github.com/uraiden/uraiden/internal/tlsconf"
	"github.com/uraiden/uraiden/keys"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// chainViewTTL is how long the admin server reuses the chain head and the receiver's token
// balance it read: /stats and metrics scrapes then cost the node at most one call per ttl.
const chainViewTTL = 3 * time.Second

// newMetrics creates the metrics before the parts that feed them; they read the ledger
// and the chain only at scrape time, once those exist.
func (s *Server) newMetrics() {
	s.chainView = admin.NewChainView(
		func(ctx context.Context) (uint64, error) { return s.Client.BlockNumber(ctx) },
		func(ctx context.Context) (*big.Int, error) {
			return contracts.TokenBalance(ctx, s.Client, s.Contract.Token, s.ReceiverAddress())
		},
		chainViewTTL)
	s.Metrics = metrics.New(metrics.Sources{
		Stats: func() ledger.Stats { return s.Ledger.Stats() },
		Sync:  func() ledger.SyncState { return s.Ledger.Sync() },
		Head:  s.chainView.Head,
		// The parts below exist once StartWith has built them; a scrape comes after.
		LedgerErr:       func() error { return s.Ledger.Err() },
		ChainErr:        func() error { return s.chainHealth().Healthy() },
		ChainSide:       s.RunsChainSide,
		ReceiverBalance: func() (*big.Int, *big.Int) { return s.Watcher.ReceiverBalance() },
		Disputes:        func() ([]ledger.Dispute, error) { return s.Ledger.Disputes() },
	})
}

// ready is readiness: the ledger takes writes and the chain side follows the chain closely
// enough to protect the receiver. It is the health Check asks before a payment: on a replica
// that does not run the chain side its own watcher never runs, and judging by it would keep
// every such replica unready (and out of Envoy's rotation) for good.
func (s *Server) ready() error {
	if err := s.Ledger.Err(); err != nil {
		return err
	}
	return s.chainHealth().Healthy()
}

// startAdmin serves the admin HTTP server, unless admin.listen is empty, and keeps the gRPC
// health status in step with readiness.
func (s *Server) startAdmin(ctx context.Context) error {
	s.goRun(func() { s.followReadiness(ctx) })
	cfg := s.cfg.Admin
	if cfg.Listen == "" {
		return nil
	}
	token, err := cfg.OperatorToken()
	if err != nil {
		return err
	}
	if token == "" {
		s.log.Warn("no admin token configured: the operator endpoints of the admin API are refused")
	}
	for _, w := range s.cfg.Warnings() {
		s.log.Warn(w)
	}
	tlsCfg, err := tlsconf.Server(cfg.TLS.Files(), s.log)
	if err != nil {
		return fmt.Errorf("admin.tls: %w", err)
	}
	s.Admin, err = admin.New(admin.Config{
		Listen: cfg.Listen, Prefix: s.cfg.APIPrefix(), OperatorToken: token, PProf: cfg.PProf,
		TLS:      tlsCfg,
		Receiver: s.ReceiverAddress(), Contract: s.Contract.Address, TokenAddress: s.Contract.Token,
		ChainID: s.chainID(), LegacyClose: cfg.LegacyClose, ProofSchemes: s.ProofSchemes,
		Ledger: s.Ledger, SignClosing: closingSigner(s.Receiver), Chain: s.chainView, Ready: s.ready,
		Discovery: &admin.Discovery{
			Prices: s.Prices.Current, GatewayPath: s.cfg.Authz.GatewayPath, TokenSymbol: s.tokenSymbol,
			Confirmations: s.confirmations, ChallengePeriod: s.Contract.ChallengePeriod,
		},
		Metrics: s.Metrics.Handler(), Logger: s.log,
	})
	if err != nil {
		return err
	}
	if err := s.Admin.Start(); err != nil {
		return err
	}
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s.Admin.Close(ctx)
	})
	return nil
}

func closingSigner(key keys.Secret[*ecdsa.PrivateKey]) func(rdn.Closing) (rdn.Signature, error) {
	return func(c rdn.Closing) (rdn.Signature, error) {
		sig, err := c.Sign(key.Reveal())
		if err != nil {
			return sig, fmt.Errorf("closing signature: %w", err)
		}
		return sig, nil
	}
}

// followReadiness sets the gRPC health status from readiness now and every poll interval,
// so that Envoy's health checks of the ext_authz cluster see what /readyz says.
func (s *Server) followReadiness(ctx context.Context) {
	t := time.NewTicker(s.cfg.Chain.PollInterval)
	defer t.Stop()
	for {
		s.updateHealth()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) updateHealth() {
	status := healthpb.HealthCheckResponse_SERVING
	if err := s.ready(); err != nil {
		status = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.health.SetServingStatus("", status)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, status)
}
