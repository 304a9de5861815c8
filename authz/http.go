package authz

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Paths of nginx's two requests (docs/serving.md, envoy/nginx/): auth_request only passes
// 2xx, 401 and 403, and drops the answer's body, so a denial takes two steps. The auth
// subrequest to NginxAuthPath is answered as a forward-auth request, but a denial is a 401
// whose NginxDenialHeader carries the decision (encodeDenial); nginx's error_page 401 then
// proxies the request to NginxDenialPath with that header (auth_request_set, then
// proxy_set_header), where the denial (status, RDN-* headers, cookies, body) is rendered from
// it for nginx to pass on. The second step never decides, so it never charges: the request
// is decided once, and any replica of uraiden can render the denial.
const (
	NginxAuthPath   = "/nginx/auth"
	NginxDenialPath = "/nginx/denial"
	// NginxDenialHeader carries a denial from NginxAuthPath's answer to NginxDenialPath.
	NginxDenialHeader = "X-Uraiden-Denial"
)

// EnvoyHTTPPrefix is the path_prefix to give Envoy's ext_authz http_service: Envoy sends
// the original method, headers and host, with this prefix before the original path.
const EnvoyHTTPPrefix = "/envoy"

// Headers a forward-auth proxy (Caddy forward_auth, Traefik forwardAuth, nginx auth_request
// with proxy_set_header) sets to describe the original request.
const (
	forwardedMethod = "X-Forwarded-Method"
	forwardedURI    = "X-Forwarded-Uri"
	forwardedHost   = "X-Forwarded-Host"
	forwardedProto  = "X-Forwarded-Proto"
)

// HTTPHandler serves the same decisions as Check over plain HTTP, for Envoy's http_service
// and for forward-auth proxies. A request under EnvoyHTTPPrefix is Envoy's: the original
// path follows the prefix. Any other is a forward-auth request describing the original in
// X-Forwarded-Method, -Uri and -Host. Either way the answer is 200 with the headers for the
// upstream (x-rdn-*) and for the client (RDN-*), or the denial's status, RDN-* headers and
// JSON body, for the proxy to pass on; nginx's two paths differ in this (NginxAuthPath).
func (s *Service) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == NginxDenialPath {
			d, err := decodeDenial(r.Header.Get(NginxDenialHeader))
			if err != nil {
				// Never decided here (deciding again could charge a request that became payable
				// since, for an answer nginx does not proxy): without its denial, an error.
				writeJSONError(w, http.StatusInternalServerError, fmt.Sprintf("nginx's configuration does not pass the denial: "+
					"%s %s (set by auth_request_set $uraiden_denial $upstream_http_x_uraiden_denial; "+
					"send it with proxy_set_header %s $uraiden_denial;)", NginxDenialHeader, err, NginxDenialHeader))
				return
			}
			writeDenied(w, s.cfg.deniedResponse(d).GetDeniedResponse())
			return
		}
		var d *Decision
		orig, err := originalRequest(r)
		if err != nil {
			if r.URL.Path != NginxAuthPath {
				writeJSONError(w, http.StatusBadRequest, err.Error())
				return
			}
			// The proxy is misconfigured: deny, never allow what cannot be priced.
			d = &Decision{Status: http.StatusBadRequest, Message: err.Error()}
		} else {
			d = s.check(r.Context(), EnvoyCheckRequest(orig))
		}
		if !d.Allowed() {
			if r.URL.Path == NginxAuthPath {
				// nginx's auth_request fails any other status with a 500 and drops the body:
				// its error_page sends the request on to NginxDenialPath with this header.
				w.Header().Set(NginxDenialHeader, encodeDenial(d))
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			writeDenied(w, s.cfg.deniedResponse(d).GetDeniedResponse())
			return
		}
		ok := s.cfg.okResponse(d).GetOkResponse()
		writeUpstreamHeaders(w.Header(), ok, orig.Header.Values("Cookie"))
		writeHeaders(w.Header(), ok.GetResponseHeadersToAdd())
		w.WriteHeader(http.StatusOK)
	})
}

// originalRequest rebuilds the request the proxy is asking about: r's headers (the RDN-*
// proof among them) with the original method, target and host.
func originalRequest(r *http.Request) (*http.Request, error) {
	orig := r.Clone(r.Context())
	// Envoy's http_service keeps the method and :authority and prefixes the path. The path
	// is taken as sent (r.URL's is decoded): it is priced in its canonical form, like a
	// CheckRequest's, and a forward-auth proxy's X-Forwarded-Uri.
	if rest, ok := strings.CutPrefix(requestTarget(r), EnvoyHTTPPrefix); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
		if rest == "" || rest[0] != '/' {
			rest = "/" + rest
		}
		return withTarget(orig, r.Method, rest, r.Host)
	}
	uri := r.Header.Get(forwardedURI)
	if uri == "" {
		return nil, &malformedError{header: forwardedURI, reason: "missing: send the original request in X-Forwarded-Method, -Uri and -Host, or use the path prefix " + EnvoyHTTPPrefix}
	}
	method, host := r.Header.Get(forwardedMethod), r.Header.Get(forwardedHost)
	if method == "" {
		method = http.MethodGet
	}
	if host == "" {
		host = r.Host
	}
	for _, h := range []string{forwardedMethod, forwardedURI, forwardedHost, forwardedProto} {
		orig.Header.Del(h)
	}
	return withTarget(orig, method, uri, host)
}

func withTarget(r *http.Request, method, target, host string) (*http.Request, error) {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, &malformedError{header: forwardedURI, reason: "not a request target: " + err.Error()}
	}
	r.Method, r.URL, r.RequestURI, r.Host = strings.ToUpper(method), u, target, host
	return r, nil
}

// EnvoyHeadersToRemove is the header of an http_service answer listing, comma-separated,
// the request headers Envoy removes before the upstream sees them (after setting those the
// answer gives, as for a gRPC answer's headers_to_remove).
const EnvoyHeadersToRemove = "x-envoy-auth-headers-to-remove"

// writeUpstreamHeaders answers what the proxy must do to the request before the upstream
// gets it. A proxy can only copy headers from this answer (Envoy's allowed_upstream_headers,
// Caddy's copy_headers), or, Envoy alone, remove those named in EnvoyHeadersToRemove:
//
//   - the x-rdn-* headers, answered empty on a free request so that a copy overwrites what a
//     client forged (Caddy 2.6 even copies its unresolved placeholder when one is absent);
//   - EnvoyHeadersToRemove: the RDN-* proof headers (and the x-rdn-* of a free request, and
//     cookie when the paywall's cookies were all there was);
//   - Cookie: the request's cookie line without the RDN-* cookies, on every allowed answer
//     (empty without cookies), for a proxy that copies it, as Caddy must for want of a way to
//     remove a header.
//
// A proxy configured to copy none of this passes the proof on: docs/serving.md shows the Envoy
// and Caddy configurations that do not.
func writeUpstreamHeaders(h http.Header, ok *authv3.OkHttpResponse, cookies []string) {
	remove := ok.GetHeadersToRemove()
	for _, name := range remove {
		if strings.HasPrefix(name, "x-rdn-") {
			h.Set(name, "")
		}
	}
	cookie, rewritten := strings.Join(cookies, "; "), false
	for _, o := range ok.GetHeaders() {
		if strings.EqualFold(o.GetHeader().GetKey(), "cookie") {
			cookie, rewritten = o.GetHeader().GetValue(), true
		}
	}
	if removesCookie := slices.Contains(remove, "cookie"); removesCookie {
		cookie = ""
	} else if cookie == "" && !rewritten {
		remove = append(slices.Clip(remove), "cookie") // an empty copy, then removed by Envoy
	}
	writeHeaders(h, ok.GetHeaders())
	h.Set("Cookie", cookie)
	h.Set(EnvoyHeadersToRemove, strings.Join(remove, ", "))
}

// writeDenied answers a denial: its status, headers and body.
func writeDenied(w http.ResponseWriter, denied *authv3.DeniedHttpResponse) {
	writeHeaders(w.Header(), denied.GetHeaders())
	w.WriteHeader(int(denied.GetStatus().GetCode()))
	_, _ = w.Write([]byte(denied.GetBody()))
}

// writeHeaders applies the response's headers; only the paywall's Set-Cookie headers append.
func writeHeaders(h http.Header, opts []*corev3.HeaderValueOption) {
	for _, o := range opts {
		if o.GetAppendAction() == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			h.Add(o.GetHeader().GetKey(), o.GetHeader().GetValue())
		} else {
			h.Set(o.GetHeader().GetKey(), o.GetHeader().GetValue())
		}
	}
}

func writeJSONError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": message})
}
