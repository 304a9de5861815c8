package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/internal/testkit/tlstest"
)

// listeners are a running server's three TLS listeners.
type listeners struct {
	grpc, httpAuthz, admin string
}

func tlsListeners(srv *server.Server) listeners {
	return listeners{grpc: srv.Addr(), httpAuthz: srv.HTTPAuthzAddr(), admin: srv.Admin.Addr()}
}

// quote asks for a priced path over gRPC with the client's TLS settings (nil: plaintext)
// and returns the decision's status, or the error.
func (l listeners) quote(t *testing.T, clientTLS *tls.Config) (int, error) {
	t.Helper()
	creds := insecure.NewCredentials()
	if clientTLS != nil {
		creds = credentials.NewTLS(clientTLS)
	}
	conn, err := grpc.NewClient(l.grpc, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/echofix/foo", Host: "localhost",
			Headers: map[string]string{":method": "GET", ":path": "/echofix/foo", ":authority": "localhost"},
		}},
	}})
	if err != nil {
		return 0, err
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), nil
}

// get asks an HTTP listener with the client's TLS settings (nil: plaintext http://).
func get(t *testing.T, addr, path string, clientTLS *tls.Config) (int, error) {
	t.Helper()
	url := "http://" + addr + path
	tr := &http.Transport{}
	if clientTLS != nil {
		url, tr.TLSClientConfig = "https://"+addr+path, clientTLS
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	return resp.StatusCode, nil
}

// expect asserts that a client with these TLS settings is served on every listener (a
// real Check over gRPC, an HTTPS check and an HTTPS GET of the admin server), or refused
// on every one.
func (l listeners) expect(t *testing.T, name string, clientTLS *tls.Config, served bool) {
	t.Helper()
	code, err := l.quote(t, clientTLS)
	switch {
	case served && (err != nil || code != 402):
		t.Errorf("%s: gRPC Check: %d, %v; want the 402 quote", name, code, err)
	case !served && status.Code(err) != codes.Unavailable:
		t.Errorf("%s: gRPC Check: %d, %v; want refused (Unavailable)", name, code, err)
	}
	for _, c := range []struct{ listener, addr, path string }{
		{"HTTP authz", l.httpAuthz, "/envoy/echofix/foo"},
		{"admin", l.admin, "/healthz"},
	} {
		code, err := get(t, c.addr, c.path, clientTLS)
		switch {
		case served && err != nil:
			t.Errorf("%s: %s: %v", name, c.listener, err)
		case !served && err == nil:
			t.Errorf("%s: %s answered %d", name, c.listener, code)
		}
	}
}

// plaintextRefused: a plaintext gRPC client fails, and a plaintext HTTP request gets
// net/http's 400 for an HTTP request to an HTTPS server, never an answer of the handler.
func (l listeners) plaintextRefused(t *testing.T) {
	t.Helper()
	if code, err := l.quote(t, nil); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext gRPC Check: %d, %v; want refused (Unavailable)", code, err)
	}
	for _, addr := range []string{l.httpAuthz, l.admin} {
		if code, err := get(t, addr, "/healthz", nil); err == nil && code != 400 {
			t.Errorf("plaintext HTTP to %s: %d, want 400", addr, code)
		}
	}
}

// presenting is a client that trusts ca and presents cert whatever CAs the server names
// (with Certificates, crypto/tls would send none that the server's CAs did not sign).
func presenting(ca *tlstest.CA, cert tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &cert, nil
	}}
}

// The gRPC, HTTP authorization and admin listeners serve TLS with their certificate, and
// with a client CA they serve only clients holding a certificate it signed.
func TestTLSAndMutualTLS(t *testing.T) {
	c := servertest.DevChain(t, 1)
	dir := t.TempDir()
	serverCA, clientCA, otherCA := tlstest.NewCA(t, "server CA"), tlstest.NewCA(t, "client CA"), tlstest.NewCA(t, "other CA")
	certFile, keyFile := serverCA.Server("uraiden").Write(t, dir, "server")
	clientCAFile := clientCA.WriteCA(t, dir, "client-ca")
	good, rogue := clientCA.Client("envoy").TLS(t), otherCA.Client("envoy").TLS(t)
	start := func(t *testing.T, files config.TLS) listeners {
		cfg := servertest.Config(t, "../../prices.yaml")
		cfg.Authz.HTTPListen, cfg.Authz.TLS, cfg.Admin.TLS = "127.0.0.1:0", files, files
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return tlsListeners(servertest.Start(t, cfg, c))
	}

	t.Run("TLS", func(t *testing.T) {
		l := start(t, config.TLS{CertFile: certFile, KeyFile: keyFile})
		l.expect(t, "the server's CA", &tls.Config{RootCAs: serverCA.Pool()}, true)
		l.expect(t, "another CA", &tls.Config{RootCAs: otherCA.Pool()}, false)
		l.plaintextRefused(t)
	})
	t.Run("mTLS", func(t *testing.T) {
		l := start(t, config.TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clientCAFile})
		l.expect(t, "a client certificate of the client CA", presenting(serverCA, good), true)
		l.expect(t, "no client certificate", &tls.Config{RootCAs: serverCA.Pool()}, false)
		l.expect(t, "a client certificate of another CA", presenting(serverCA, rogue), false)
		l.plaintextRefused(t)
	})
}

// A CheckRequest over authz.max_request_bytes is refused with RESOURCE_EXHAUSTED over a
// real connection, and HTTP checks with headers over it are answered 431; one carrying
// Envoy's default maximum of headers (60 KiB) is decided.
func TestRequestSizeLimits(t *testing.T) {
	cfg := servertest.Config(t, "../../prices.yaml")
	cfg.Authz.HTTPListen, cfg.Authz.MaxRequestBytes = "127.0.0.1:0", config.MinMaxRequestBytes
	srv := servertest.Start(t, cfg, servertest.DevChain(t, 1))
	client := servertest.AuthzClient(t, srv)
	check := func(padding int) (*authv3.CheckResponse, error) {
		return client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/echofix/foo", Host: "localhost",
				Headers: map[string]string{":path": "/echofix/foo", "x-padding": strings.Repeat("p", padding)},
			}},
		}})
	}
	if resp, err := check(60<<10 - 200); err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 402 {
		t.Errorf("a CheckRequest of Envoy's largest default size: %v, %v", resp, err)
	}
	if _, err := check(2 * config.MinMaxRequestBytes); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a CheckRequest twice the limit: %v, want ResourceExhausted", err)
	}
	// The server still serves after refusing.
	if _, err := check(0); err != nil {
		t.Errorf("after the refusal: %v", err)
	}
	req, _ := http.NewRequest("GET", "http://"+srv.HTTPAuthzAddr()+"/envoy/echofix/foo", nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 2*config.MinMaxRequestBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("HTTP check with headers twice the limit: %d, want 431", resp.StatusCode)
	}
}
