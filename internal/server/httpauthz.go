package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// serveHTTPAuthz serves the authorization decisions over plain HTTP on authz.http_listen,
// for Envoy's http_service and forward-auth proxies, unless it is empty.
func (s *Server) serveHTTPAuthz() error {
	if s.cfg.Authz.HTTPListen == "" {
		return nil
	}
	l, err := net.Listen("tcp", s.cfg.Authz.HTTPListen)
	if err != nil {
		return fmt.Errorf("authz http listen: %w", err)
	}
	s.httpAuthz = l
	// The decision reads headers only, and the headers are bounded as a gRPC CheckRequest
	// is (431 above); a body is never read, and one sent slowly is given up with the request.
	srv := &http.Server{Handler: s.Authz.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: s.cfg.Authz.MaxRequestBytes, TLSConfig: s.authzTLS,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.httpServer = srv
	s.goRun(func() {
		serve := srv.Serve
		if s.authzTLS != nil {
			serve = func(l net.Listener) error { return srv.ServeTLS(l, "", "") }
		}
		if err := serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP authz server stopped", "err", err)
		}
	})
	s.log.Info("serving HTTP authorization (Envoy http_service, forward auth)", "listen", l.Addr().String(), "tls", tlsMode(s.authzTLS))
	return nil
}

// stopHTTPAuthz lets the HTTP checks in flight finish, as Close does for gRPC; it must run
// before Close waits for the serving goroutines.
func (s *Server) stopHTTPAuthz() {
	if s.httpServer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.httpServer.Shutdown(ctx); err != nil {
		_ = s.httpServer.Close()
	}
}

// HTTPAuthzAddr is the HTTP authorization listener's address, "" when none is served.
func (s *Server) HTTPAuthzAddr() string {
	if s.httpAuthz == nil {
		return ""
	}
	return s.httpAuthz.Addr().String()
}
