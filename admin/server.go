package admin

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/authz/paywall"
	"github.com/uraiden/uraiden/discovery"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// Ledger is the part of *ledger.Ledger the admin server uses.
type Ledger interface {
	Stats() ledger.Stats
	Sync() ledger.SyncState
	ConfirmedHeight() uint64
	Channel(id rdn.ChannelID) (*ledger.Channel, error)
	Channels(q ledger.Query) (ledger.Page, error)
	CloseCooperatively(ctx context.Context, id rdn.ChannelID, balance *big.Int, scheme rdn.Scheme, sign ledger.CloseSigner) (rdn.Signature, error)
}

// Config is what a Server needs.
type Config struct {
	// Listen is the host:port to serve on.
	Listen string
	// Prefix is where the /api/1 API is mounted: the RDN-Gateway-Path clients are given, so
	// that Envoy forwards it unchanged.
	Prefix string
	// OperatorToken is the bearer token of the operator endpoints; empty refuses them all.
	OperatorToken string
	// PProf serves net/http/pprof under /debug/pprof/ (operator only).
	PProf bool
	// TLS, when set, serves HTTPS; asking for client certificates, only to clients with one.
	TLS *tls.Config

	Receiver     common.Address
	Contract     common.Address
	TokenAddress common.Address // the channel contract's token
	// ChainID is the chain the contract is on, which a close request names.
	ChainID uint64
	// LegacyClose accepts a cooperative close authorized by the balance proof alone, as
	// µRaiden 0.2.0's clients ask for it. Anyone holding the sender's latest proof (a 402
	// hands it to whoever replays an older one) can then close the channel.
	LegacyClose bool
	// ProofSchemes are the proof schemes offered, preferred first (chain.ProofSchemes reads
	// them from the contract); empty is legacy only. A cooperative close asked in a scheme
	// not offered is refused.
	ProofSchemes []rdn.Scheme
	// Now is the clock close requests expire by; nil is time.Now.
	Now func() time.Time

	Ledger Ledger
	// SignClosing signs the receiver's closing message.
	SignClosing func(rdn.Closing) (rdn.Signature, error)
	// Chain is the cached view of the chain head and the receiver's token balance.
	Chain *ChainView
	// Ready returns nil when the service can take payments (ledger writable, chain synced).
	Ready func() error
	// Discovery, when set, serves the discovery document at <Prefix>/prices and
	// /.well-known/uraiden (docs/discovery.md); nil serves none.
	Discovery *Discovery
	// Metrics serves /metrics; nil serves none.
	Metrics http.Handler
	Logger  *slog.Logger
}

// Server is a running admin server.
type Server struct {
	cfg       Config
	log       *slog.Logger
	tokenHash []byte // sha256 of the token; nil without one
	http      *http.Server
	listener  net.Listener

	// discovery is the discovery document last rendered, with the table it states.
	discovery atomic.Pointer[renderedDiscovery]
	// openAPIYAML and openAPIJSON are the OpenAPI document, schema the discovery
	// document's JSON Schema, as served.
	openAPIYAML, openAPIJSON, schema *cached
}

// New checks the configuration and builds the server; Start serves it.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Prefix = strings.TrimRight(cfg.Prefix, "/")
	if err := CheckPrefix(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	if cfg.Ledger == nil || cfg.SignClosing == nil || cfg.Chain == nil || cfg.Ready == nil {
		return nil, errors.New("admin: Ledger, SignClosing, Chain and Ready are required")
	}
	if cfg.Discovery != nil {
		if cfg.Discovery.Prices == nil {
			return nil, errors.New("admin: Discovery needs Prices")
		}
		d := *cfg.Discovery
		if d.GatewayPath == "" {
			d.GatewayPath = cfg.Prefix
		}
		cfg.Discovery = &d
	}
	for _, scheme := range cfg.ProofSchemes {
		if !scheme.Valid() {
			return nil, fmt.Errorf("admin: ProofSchemes: %w, got %s", rdn.ErrScheme, scheme)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, schema: newCached("application/schema+json", discovery.Schema)}
	var err error
	if s.openAPIYAML, s.openAPIJSON, err = openAPIDocuments(cfg.Prefix); err != nil {
		return nil, err
	}
	if cfg.OperatorToken != "" {
		h := sha256.Sum256([]byte(cfg.OperatorToken))
		s.tokenHash = h[:]
	}
	s.http = &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         cfg.TLS,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // pprof's profile runs 30s by default
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// maxHeaderBytes bounds a request's headers (431 above). The API's requests carry a bearer
// token and a few standard headers; net/http's default of 1 MiB is room only for abuse.
const maxHeaderBytes = 64 << 10

// CheckPrefix reports whether p can mount the API: a path of letters, digits and - _ . /
// starting with / (a trailing / is ignored), other than the root and the probe paths.
func CheckPrefix(p string) error {
	p = strings.TrimRight(p, "/")
	if !strings.HasPrefix(p, "/") || strings.Trim(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") != "" {
		return fmt.Errorf("the API path must start with / and hold only letters, digits and - _ . /, got %q", p)
	}
	for _, reserved := range []string{"/healthz", "/readyz", "/metrics", "/debug", "/.well-known"} {
		if p == reserved || strings.HasPrefix(p, reserved+"/") {
			return fmt.Errorf("the API path %q collides with %s", p, reserved)
		}
	}
	return nil
}

// Handler routes every endpoint.
func (s *Server) Handler() http.Handler { return s.routes().mux }

// router is a mux that remembers what it routes: each pattern with its methods (nil for a
// handler that takes any), which TestOpenAPI holds against openapi.yaml.
type router struct {
	mux    *http.ServeMux
	routes map[string][]string
}

// by routes a pattern by method, answering 405 in JSON for the other methods.
func (rt *router) by(pattern string, handlers map[string]http.HandlerFunc) {
	rt.routes[pattern] = slices.Sorted(maps.Keys(handlers))
	rt.mux.HandleFunc(pattern, methods(handlers))
}

// any routes a pattern whatever the method.
func (rt *router) any(pattern string, h http.HandlerFunc) {
	rt.routes[pattern] = nil
	rt.mux.HandleFunc(pattern, h)
}

func (s *Server) routes() *router {
	p := s.cfg.Prefix
	rt := &router{mux: http.NewServeMux(), routes: map[string][]string{}}
	rt.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
	})
	rt.by("/healthz", map[string]http.HandlerFunc{"GET": s.healthz})
	rt.by("/readyz", map[string]http.HandlerFunc{"GET": s.readyz})
	rt.by(p+"/stats", map[string]http.HandlerFunc{"GET": s.operatorOnly(s.stats)})
	rt.by(p+"/channels", map[string]http.HandlerFunc{"GET": s.operatorOnly(s.listChannels)})
	rt.by(p+"/channels/{sender}", map[string]http.HandlerFunc{"GET": s.operatorOnly(s.listChannels)})
	rt.by(p+"/channels/{sender}/{open_block}", map[string]http.HandlerFunc{
		"GET":    s.getChannel,
		"DELETE": s.closeChannel,
	})
	cachedDoc := func(c *cached) map[string]http.HandlerFunc {
		serve := func(w http.ResponseWriter, r *http.Request) { serveCached(w, r, c) }
		return map[string]http.HandlerFunc{"GET": serve, "HEAD": serve}
	}
	rt.by(p+"/openapi.yaml", cachedDoc(s.openAPIYAML))
	rt.by(p+"/openapi.json", cachedDoc(s.openAPIJSON))
	rt.by(p+discovery.SchemaPath, cachedDoc(s.schema))
	if s.cfg.Discovery != nil {
		doc := map[string]http.HandlerFunc{"GET": s.serveDiscovery, "HEAD": s.serveDiscovery}
		rt.by(p+discovery.PricesPath, doc)
		rt.by(discovery.WellKnownPath, doc)
	}
	assets := paywall.Assets(p)
	rt.by(p+paywall.AssetDir+"/", map[string]http.HandlerFunc{"GET": assets.ServeHTTP, "HEAD": assets.ServeHTTP})
	if s.cfg.Metrics != nil {
		rt.any("/metrics", s.operatorOnly(s.cfg.Metrics.ServeHTTP))
	}
	if s.cfg.PProf {
		rt.any("/debug/pprof/", s.operatorOnly(pprof.Index))
		rt.any("/debug/pprof/cmdline", s.operatorOnly(pprof.Cmdline))
		rt.any("/debug/pprof/profile", s.operatorOnly(pprof.Profile))
		rt.any("/debug/pprof/symbol", s.operatorOnly(pprof.Symbol))
		rt.any("/debug/pprof/trace", s.operatorOnly(pprof.Trace))
	}
	return rt
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	s.listener = l
	go func() {
		serve := s.http.Serve
		if s.cfg.TLS != nil {
			serve = func(l net.Listener) error { return s.http.ServeTLS(l, "", "") }
		}
		if err := serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "err", err)
		}
	}()
	s.log.Info("serving the admin API", "http", l.Addr().String(), "api", s.cfg.Prefix,
		"operator_token", s.tokenHash != nil, "pprof", s.cfg.PProf, "tls", s.cfg.TLS != nil,
		"client_certificates", s.cfg.TLS != nil && s.cfg.TLS.ClientAuth != tls.NoClientCert)
	return nil
}

// Addr is the listener's address.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Close stops serving, letting requests in flight finish until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
		return fmt.Errorf("admin shutdown: %w", err)
	}
	return nil
}
