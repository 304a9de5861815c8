package authz

import (
	"net"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// EnvoyCheckRequest builds the CheckRequest Envoy sends for r: lower-cased header names with
// repeated values joined by commas, cookies in one "cookie" header, the pseudo-headers, and
// the path with its query, as the client sent them (r.RequestURI, for a server's request).
func EnvoyCheckRequest(r *http.Request) *authv3.CheckRequest {
	headers := make(map[string]string, len(r.Header)+4)
	for name, values := range r.Header {
		key := strings.ToLower(name)
		if key == "cookie" {
			headers[key] = strings.Join(values, "; ")
			continue
		}
		headers[key] = strings.Join(values, ",")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := requestTarget(r)
	headers[":method"], headers[":path"], headers[":authority"], headers[":scheme"] = r.Method, path, r.Host, scheme
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: socketAddress(r.RemoteAddr)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: r.Method, Path: path, Host: r.Host, Scheme: scheme, Protocol: r.Proto, Headers: headers,
		}},
	}}
}

// requestTarget is r's path and query as the client sent them, as Envoy passes them on:
// r.URL would have decoded and re-encoded them (%2F in a path with a '"' becomes '/').
func requestTarget(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

func socketAddress(hostport string) *corev3.Address {
	host, _, _ := net.SplitHostPort(hostport)
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: host}}}
}
