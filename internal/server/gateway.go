package server

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/gateway"
)

// startGateway serves the local HTTP gateway when gateway.listen asks for one; "auto" does
// when serve started its own dev chain.
func (s *Server) startGateway(ownDevChain bool) error {
	listen := s.cfg.Gateway.Listen
	if listen == config.GatewayAuto {
		if !ownDevChain {
			return nil
		}
		listen = config.DefaultGatewayListen
	}
	if listen == "" {
		return nil
	}
	cfg := gateway.Config{Listen: listen, Authz: s.Authz, APIPrefix: s.cfg.APIPrefix(), Logger: s.log}
	if s.cfg.Gateway.Upstream != "" {
		u, err := url.Parse(s.cfg.Gateway.Upstream)
		if err != nil {
			return fmt.Errorf("gateway.upstream: %w", err)
		}
		cfg.Upstream = u
	}
	if s.Admin != nil {
		cfg.Admin = s.Admin.Handler()
	}
	g, err := gateway.Start(cfg)
	if err != nil {
		return err
	}
	s.Gateway = g
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return g.Close(ctx)
	})
	return nil
}
