package authz

import (
	"context"
	"errors"
	"log/slog"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/uraiden/uraiden/authz/paywall"
	"github.com/uraiden/uraiden/pricing"
)

// Service implements envoy.service.auth.v3.Authorization.
type Service struct {
	authv3.UnimplementedAuthorizationServer
	cfg       Config
	log       *slog.Logger
	suspended *suspensionLog
}

// NewService returns the authorization service.
func NewService(cfg Config, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GatewayPath == "" {
		cfg.GatewayPath = "/api/1"
	}
	cfg.hex = newAddressHex(&cfg)
	cfg.fixed = newFixedHeaders(&cfg)
	cfg.schemes = newOffer(&cfg)
	return &Service{cfg: cfg, log: logger, suspended: newSuspensionLog(logger)}
}

// Check decides one request. Errors are answered as denials, never as gRPC errors: a gRPC
// error makes Envoy apply its own failure mode, which may be configured to allow.
func (s *Service) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return s.cfg.checkResponse(s.check(ctx, req)), nil
}

// check decides one request as Check does, telling Observe and the logs.
func (s *Service) check(ctx context.Context, req *authv3.CheckRequest) *Decision {
	start, epoch := time.Now(), s.suspended.epoch.Load()
	d := s.Decide(ctx, req)
	took := time.Since(start)
	if s.cfg.Observe != nil {
		s.cfg.Observe(d, took)
	}
	s.suspended.observe(ctx, d, epoch)
	// Checked first: the attributes would be built (and allocated) even for a disabled level.
	if level := logLevel(d); s.log.Enabled(ctx, level) {
		s.log.LogAttrs(ctx, level, "check",
			slog.Int("status", d.Status),
			slog.String("flag", d.Flag),
			slog.String("message", d.Message),
			slog.String("rule", d.Rule),
			slog.String("request_id", req.GetAttributes().GetRequest().GetHttp().GetId()),
			slog.Duration("took", took),
		)
	}
	return d
}

// Decide returns the decision on a request without building the response.
func (s *Service) Decide(ctx context.Context, req *authv3.CheckRequest) *Decision {
	r, err := fromCheckRequest(req)
	if pathErr := (*pricing.PathError)(nil); errors.As(err, &pathErr) {
		return &Decision{Status: 400, Message: err.Error()}
	} else if err != nil {
		return &Decision{Status: 409, Message: err.Error()}
	}
	d := s.cfg.decide(ctx, r)
	if d.Allowed() {
		d.cookie, d.stripCookie = withoutPaymentCookies(r.headers["cookie"])
	}
	if (d.Status == 402 || d.Status == 409) && paywall.PrefersHTML(r.headers["accept"]) {
		d.browser = &browser{https: r.headers[":scheme"] == "https" || r.headers["x-forwarded-proto"] == "https"}
	}
	return d
}

func logLevel(d *Decision) slog.Level {
	switch {
	case d.suspended:
		return slog.LevelDebug // suspensionLog reports them
	case d.Status >= 500:
		return slog.LevelWarn
	default:
		return slog.LevelDebug
	}
}
