// Package gateway is a local HTTP front that does for uraiden what Envoy does in
// production: it turns each request into the CheckRequest Envoy's ext_authz filter would
// send, asks the authorization service in-process, and applies the CheckResponse as Envoy
// would (a denial is answered as is; an allowed request goes upstream with the service's
// headers, and its response gets the payment headers). It lets a developer pay for requests
// with no Envoy installed, and it is the front the client tests and `uraiden demo` use.
// Like the shipped envoy.yaml, it resolves a path's dot segments, repeated slashes and
// escaped unreserved characters before it asks.
//
// Like the Envoy route docs/serving.md recommends, it forwards only the admin server's public
// documents and the parts of the channel API paying clients need (AdminRoutes) to the admin
// server, without authorization; like the authorization service, the admin server is asked
// in-process, so that the gateway needs none of its TLS settings.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/pricing"
)

// Checker is the authorization service; *authz.Service is one.
type Checker interface {
	Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error)
}

// Config configures a gateway.
type Config struct {
	// Listen is the gateway's host:port.
	Listen string
	Authz  Checker
	// Upstream receives allowed requests; nil serves the built-in demo upstream.
	Upstream *url.URL
	// Admin is the admin server's handler and APIPrefix where it mounts /api/1; with Admin
	// nil no request reaches it.
	Admin     http.Handler
	APIPrefix string
	Logger    *slog.Logger
	// ReadIdleTimeout is how long a request's body may pause (0: DefaultReadIdleTimeout),
	// so that a client that stops sending cannot hold a connection forever. It bounds each
	// wait, not the whole body: a paid upload is charged before its body is read (as
	// behind Envoy), so it must not be cut while it still moves.
	ReadIdleTimeout time.Duration
}

// DefaultReadIdleTimeout is the longest pause in a request's body.
const DefaultReadIdleTimeout = 30 * time.Second

// Gateway is a running gateway.
type Gateway struct {
	cfg      Config
	listener net.Listener
	srv      *http.Server
	demo     *http.Server // the demo upstream, when no upstream is configured
	upstream *httputil.ReverseProxy
	admin    http.Handler
	adminRe  *regexp.Regexp
}

// MaxHeaderBytes bounds a request's headers as Envoy's default max_request_headers_kb (60)
// does; larger ones are answered 431 without reaching the authorization service.
const MaxHeaderBytes = 60 << 10

// Start listens and serves.
func Start(cfg Config) (*Gateway, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg}
	if cfg.Upstream == nil {
		u, err := g.startDemo()
		if err != nil {
			return nil, err
		}
		cfg.Upstream = u
	}
	g.upstream = proxy(cfg.Upstream, cfg.Logger)
	if cfg.Admin != nil {
		g.admin = cfg.Admin
		g.adminRe = AdminRoutes(cfg.APIPrefix)
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		g.Close(context.Background())
		return nil, fmt.Errorf("gateway listen: %w", err)
	}
	g.listener = l
	if g.cfg.ReadIdleTimeout <= 0 {
		g.cfg.ReadIdleTimeout = DefaultReadIdleTimeout
	}
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: MaxHeaderBytes}
	go func() {
		if err := g.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("gateway stopped", "err", err)
		}
	}()
	cfg.Logger.Info("gateway serving (development front; use Envoy in production)", "listen", l.Addr().String(), "upstream", cfg.Upstream)
	return g, nil
}

func (g *Gateway) startDemo() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo upstream listen: %w", err)
	}
	g.demo = &http.Server{Handler: DemoUpstream(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = g.demo.Serve(l) }()
	return &url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

func proxy(target *url.URL, logger *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // as Envoy keeps :authority
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("gateway: upstream failed", "url", r.URL, "err", err)
			http.Error(w, "upstream unavailable", http.StatusBadGateway)
		},
	}
}

// AdminRoutes matches the paths a front proxy sends to the admin server without
// authorization, as envoy/envoy.yaml's route does: below the API prefix a channel's public
// view and the cooperative close (channels/<sender>/<open_block>), the browser paywall's
// script and style (paywall/<asset>), the discovery document (prices) and its schema, and
// the OpenAPI document; and the discovery document at /.well-known/uraiden. The operator
// endpoints (stats, the listings, metrics) stay out of reach.
func AdminRoutes(apiPrefix string) *regexp.Regexp {
	return regexp.MustCompile("^(?:" + regexp.QuoteMeta(strings.TrimRight(apiPrefix, "/")) +
		`/(?:channels/[^/]+/[^/]+|paywall/[^/]+|prices|prices\.schema\.json|openapi\.(?:json|yaml))|/\.well-known/uraiden)$`)
}

// Addr is the gateway's listen address.
func (g *Gateway) Addr() string { return g.listener.Addr().String() }

// URL is the gateway's base URL.
func (g *Gateway) URL() string { return "http://" + g.Addr() }

// Close stops the gateway and the demo upstream.
func (g *Gateway) Close(ctx context.Context) error {
	var errs []error
	if g.srv != nil {
		errs = append(errs, g.srv.Shutdown(ctx))
	}
	if g.demo != nil {
		errs = append(errs, g.demo.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// ServeHTTP authorizes and forwards one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Whatever reads the body next (the admin server, the proxy, the server draining it
	// after a denial) waits at most the idle timeout for each part of it.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(g.cfg.ReadIdleTimeout))
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &idleBody{ReadCloser: r.Body, rc: rc, idle: g.cfg.ReadIdleTimeout}
	}
	if g.admin != nil && g.adminRe.MatchString(r.URL.Path) {
		g.admin.ServeHTTP(w, r)
		return
	}
	normalizePath(r)
	resp, err := g.cfg.Authz.Check(r.Context(), authz.EnvoyCheckRequest(r))
	if err != nil {
		// Envoy's failure_mode_allow: false.
		g.cfg.Logger.Warn("gateway: authorization failed", "err", err)
		http.Error(w, "authorization failed", http.StatusForbidden)
		return
	}
	if denied := resp.GetDeniedResponse(); denied != nil || resp.GetStatus().GetCode() != 0 {
		writeDenied(w, denied)
		return
	}
	ok := resp.GetOkResponse()
	out := r.Clone(r.Context())
	applyHeaders(out.Header, ok.GetHeaders())
	for _, name := range ok.GetHeadersToRemove() {
		out.Header.Del(name)
	}
	if add := ok.GetResponseHeadersToAdd(); len(add) > 0 {
		w = &headerWriter{ResponseWriter: w, add: add}
	}
	g.upstream.ServeHTTP(w, out)
}

func writeDenied(w http.ResponseWriter, d *authv3.DeniedHttpResponse) {
	applyHeaders(w.Header(), d.GetHeaders())
	status := int(d.GetStatus().GetCode())
	if status == 0 {
		status = http.StatusForbidden // Envoy's default for a denial without a status
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(d.GetBody()))
}

// applyHeaders applies header options with Envoy's append actions.
func applyHeaders(h http.Header, opts []*corev3.HeaderValueOption) {
	for _, o := range opts {
		key, value := o.GetHeader().GetKey(), o.GetHeader().GetValue()
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			h.Add(key, value)
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if h.Get(key) == "" {
				h.Set(key, value)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if h.Get(key) != "" {
				h.Set(key, value)
			}
		default:
			h.Set(key, value)
		}
	}
}

// headerWriter adds the allowed request's response headers when the upstream answers.
type headerWriter struct {
	http.ResponseWriter
	add     []*corev3.HeaderValueOption
	written bool
}

func (w *headerWriter) WriteHeader(status int) {
	if !w.written {
		w.written = true
		applyHeaders(w.Header(), w.add)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *headerWriter) Write(p []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *headerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// idleBody moves the connection's read deadline on before each read of the body.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	return b.ReadCloser.Read(p)
}

// normalizePath does what the shipped envoy.yaml's normalize_path and merge_slashes do
// before ext_authz: a path that resolves one way only (dot segments, repeated slashes,
// escaped unreserved characters) is asked about and forwarded resolved, so that the upstream
// serves what was paid for instead of, say, redirecting to it and being paid again. A path
// servers read in several ways goes as it came: the authorization service prices each
// reading, and refuses it when they differ.
func normalizePath(r *http.Request) {
	raw := r.URL.EscapedPath()
	clean, others, err := pricing.CanonicalPath(raw)
	if err != nil || len(others) > 0 || clean == raw {
		return
	}
	u, err := url.Parse(clean)
	if err != nil {
		return
	}
	r.URL.Path, r.URL.RawPath = u.Path, u.RawPath
	r.RequestURI = r.URL.RequestURI()
}
