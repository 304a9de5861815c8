package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// checker answers with a fixed response and records what it was asked.
type checker struct {
	resp *authv3.CheckResponse
	got  *authv3.CheckRequest
}

func (c *checker) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	c.got = req
	return c.resp, nil
}

func set(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
}

func serve(t *testing.T, resp *authv3.CheckResponse) (*checker, *Gateway) {
	t.Helper()
	c := &checker{resp: resp}
	g, err := Start(Config{Listen: "127.0.0.1:0", Authz: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	return c, g
}

// An allowed request reaches the demo upstream with the service's headers (and without the
// ones it removes), and its response carries the headers to add; the CheckRequest is what
// Envoy sends.
func TestAllowed(t *testing.T) {
	c, g := serve(t, &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		Headers:              []*corev3.HeaderValueOption{set("x-rdn-price", "5")},
		HeadersToRemove:      []string{"x-rdn-sender"},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{set("RDN-Price", "5")},
	}}})
	req, _ := http.NewRequest(http.MethodGet, g.URL()+"/echofix/foo?x=1", nil)
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	req.Header.Set("X-Rdn-Sender", "forged")
	req.AddCookie(&http.Cookie{Name: "RDN-Open-Block", Value: "7"})
	req.AddCookie(&http.Cookie{Name: "other", Value: "1"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "foo" || resp.Header.Get("RDN-Price") != "5" {
		t.Errorf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
	h := c.got.GetAttributes().GetRequest().GetHttp()
	want := map[string]string{":method": "GET", ":path": "/echofix/foo?x=1", ":authority": g.Addr(), ":scheme": "http",
		"x-multi": "a,b", "cookie": "RDN-Open-Block=7; other=1"}
	for k, v := range want {
		if h.GetHeaders()[k] != v {
			t.Errorf("header %s = %q, want %q", k, h.GetHeaders()[k], v)
		}
	}
	if h.GetPath() != "/echofix/foo?x=1" || h.GetMethod() != "GET" {
		t.Errorf("path %q method %q", h.GetPath(), h.GetMethod())
	}
}

// A denial is answered with its status, headers and body; the upstream is not called.
func TestDenied(t *testing.T) {
	_, g := serve(t, &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode_PaymentRequired},
		Headers: []*corev3.HeaderValueOption{set("RDN-Price", "5")},
		Body:    `{"error":"payment required"}`,
	}}})
	resp, err := http.Get(g.URL() + "/echofix/foo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 402 || resp.Header.Get("RDN-Price") != "5" || !strings.Contains(string(body), "payment required") {
		t.Errorf("%d %v %q", resp.StatusCode, resp.Header, body)
	}
}

// Headers over Envoy's default limit are refused (431) before the authorization service is
// asked; headers under it pass.
func TestHeaderLimit(t *testing.T) {
	c, g := serve(t, &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode_PaymentRequired},
	}}})
	for size, want := range map[int]int{MaxHeaderBytes / 2: 402, 2 * MaxHeaderBytes: 431} {
		c.got = nil
		req, _ := http.NewRequest(http.MethodGet, g.URL()+"/echofix/foo", nil)
		req.Header.Set("RDN-Balance", strings.Repeat("9", size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (want == 431) != (c.got == nil) {
			t.Errorf("a %d-byte header: %d (checked: %v), want %d", size, resp.StatusCode, c.got != nil, want)
		}
	}
}

// A client that stops sending its body is cut off after the idle timeout instead of holding
// the connection; one that keeps sending, however slowly in all, is not.
func TestStalledBodyIsCutOff(t *testing.T) {
	c := &checker{resp: &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d bytes", len(body))
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	const idle = 1500 * time.Millisecond
	g, err := Start(Config{Listen: "127.0.0.1:0", Authz: c, Upstream: target, ReadIdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	send := func(length, parts int, pause time.Duration) (string, error) {
		conn, err := net.Dial("tcp", g.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", length)
		for range parts {
			time.Sleep(pause)
			if _, err := io.WriteString(conn, "x"); err != nil {
				break
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		answer, err := io.ReadAll(conn)
		return string(answer), err
	}
	// Eight parts a fifth of the idle timeout apart: longer than the timeout in all, and a
	// second of slack in every pause for a busy machine.
	if answer, err := send(8, 8, idle/5); err != nil || !strings.Contains(answer, "200 OK") {
		t.Errorf("a body that keeps moving: %v %q", err, answer)
	}
	// A byte announced, never sent: the server gives up and closes.
	start := time.Now()
	answer, err := send(1, 0, 0)
	if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after %v", time.Since(start).Round(time.Millisecond))
	}
	if strings.Contains(answer, "200 OK") {
		t.Errorf("a stalled body reached the upstream whole: %q", answer)
	}
}
