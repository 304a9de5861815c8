package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/gateway"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
)

// caddyfile puts Caddy in front of the demo upstream, asking uraiden's HTTP authorization
// about every request. The route block keeps the order: strip what a client may forge,
// authorize (copying the paid request's x-rdn-* headers, and the cookie line without the
// paywall's RDN-* cookies), strip the proof's RDN-* headers, proxy.
const caddyfile = `{
	admin off
	auto_https off
}
http://127.0.0.1:%[1]s {
	bind 127.0.0.1
	route {
		request_header -X-Rdn-Sender
		request_header -X-Rdn-Open-Block
		request_header -X-Rdn-Price
		forward_auth %[2]s {
			uri /forward-auth
			copy_headers X-Rdn-Sender X-Rdn-Open-Block X-Rdn-Price Cookie
		}
		request_header -Rdn-*
		reverse_proxy %[3]s
	}
}
`

// caddyPath finds Caddy (CI installs Debian's).
func caddyPath(t *testing.T) string {
	return servertest.Program(t, "apt-get install caddy", "caddy")
}

// recordingUpstream is the demo upstream, remembering the headers and body of each request.
type recordingUpstream struct {
	mu      sync.Mutex
	headers []http.Header
	bodies  []string
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.headers = append(u.headers, r.Header.Clone())
	u.bodies = append(u.bodies, string(body))
	u.mu.Unlock()
	gateway.DemoUpstream().ServeHTTP(w, r)
}

func (u *recordingUpstream) lastBody() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bodies[len(u.bodies)-1]
}

// last is the x-rdn-sender of the last request.
func (u *recordingUpstream) last() string { return u.lastHeaders().Get("X-Rdn-Sender") }

func (u *recordingUpstream) lastHeaders() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.headers[len(u.headers)-1]
}

// noProof fails the test for an RDN-* header or cookie the upstream got, or other cookies
// than want.
func (u *recordingUpstream) noProof(t *testing.T, what, wantCookie string) {
	t.Helper()
	h := u.lastHeaders()
	for name, values := range h {
		if strings.HasPrefix(strings.ToLower(name), "rdn-") {
			t.Errorf("%s: the upstream got %s: %q", what, name, values)
		}
	}
	if cookie := strings.Join(h.Values("Cookie"), "; "); cookie != wantCookie {
		t.Errorf("%s: the upstream got the cookies %q, want %q", what, cookie, wantCookie)
	}
}

// Caddy's forward_auth to uraiden's HTTP authorization sells the demo upstream's requests:
// the client library gets a 402 quote through Caddy, opens a channel on the dev chain and
// pays; the upstream answers and learns who paid; a forged x-rdn-sender never reaches it.
func TestCaddyForwardAuth(t *testing.T) {
	caddy := caddyPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chain, srv := startOnDevChain(t, ctx)
	upstream := &recordingUpstream{}
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)

	base := startCaddy(t, caddy, srv.HTTPAuthzAddr(), up.Listener.Addr().String())

	// Unpaid: the 402 quote passes through Caddy with its headers.
	resp, err := http.Get(base + "/echofix/foo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 402 || resp.Header.Get("RDN-Price") != echofixPrice ||
		resp.Header.Get("RDN-Contract-Address") != chain.Deployment().Channels.Hex() {
		t.Fatalf("unpaid: %d %v", resp.StatusCode, resp.Header)
	}

	payer := chain.Accounts()[1]
	c, err := client.New(ctx, client.Config{Node: chain.Client(), Key: payer.Key, Contract: chain.Deployment().Channels})
	if err != nil {
		t.Fatal(err)
	}
	for _, param := range []string{"foo", "bar"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/echofix/"+param, nil)
		req.Header.Set("X-Rdn-Sender", "forged")
		req.Header.Set("Cookie", "theme=dark")
		resp, err := (&http.Client{Transport: c.Transport(client.TransportConfig{})}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != param {
			t.Fatalf("paid %s: %d %q", param, resp.StatusCode, body)
		}
		if got, want := upstream.last(), crypto.PubkeyToAddress(payer.Key.PublicKey).Hex(); got != want {
			t.Errorf("paid %s: upstream saw x-rdn-sender %q, want %s", param, got, want)
		}
		upstream.noProof(t, "paid "+param, "theme=dark")
	}

	// A free request with the paywall's cookies: the other cookies only.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	req.Header.Set("Cookie", "RDN-Sender-Address=0x8Bf640A099fE945DA46F354d3B49c48a125F48B6; theme=dark; RDN-Open-Block=7; "+
		"RDN-Sender-Balance=5; RDN-Balance-Signature=0x"+strings.Repeat("ab", 65))
	req.Header.Set("RDN-Balance-Signature", "0x"+strings.Repeat("cd", 65))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("free with a proof: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	upstream.noProof(t, "free with a proof", "theme=dark")

	// A free request reaches the upstream without the client's forged header.
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	req.Header.Set("X-Rdn-Sender", "forged")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("free: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if got := upstream.last(); got != "" {
		t.Errorf("free request: upstream saw x-rdn-sender %q", got)
	}
}

// startOnDevChain serves uraiden on a new dev chain with the gRPC and HTTP authorization
// on loopback ports, no admin server and no gateway.
func startOnDevChain(t *testing.T, ctx context.Context) (*devchain.Chain, *server.Server) {
	t.Helper()
	chain, err := devchain.Start(ctx, devchain.Config{Accounts: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	cfg := config.Default()
	cfg.Authz.Listen, cfg.Authz.HTTPListen, cfg.Admin.Listen, cfg.Gateway.Listen = "127.0.0.1:0", "127.0.0.1:0", "", ""
	cfg.DevChain.Listen = ""
	cfg.Ledger.Dir = t.TempDir()
	cfg.Pricing.File = "../../prices.yaml"
	cfg.Chain.PollInterval = 50 * time.Millisecond
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.StartWith(ctx, cfg, logger, server.Options{DevChain: chain})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return chain, srv
}

// startCaddy runs Caddy on a loopback port and waits until it answers.
func startCaddy(t *testing.T, caddy, authz, upstream string) (base string) {
	t.Helper()
	onFreePort(t, func() (err error) {
		base, err = runCaddy(t, caddy, authz, upstream)
		return err
	})
	return base
}

// onFreePort runs start, which has a proxy of its own bind a port chosen with FreeAddr, up
// to three times: another test may take the port between choosing it and the bind, and the
// proxy then exits saying so.
func onFreePort(t *testing.T, start func() error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := start()
		if err == nil {
			return
		}
		if !strings.Contains(strings.ToLower(err.Error()), "address already in use") || attempt == 3 {
			t.Fatal(err)
		}
	}
}

func runCaddy(t *testing.T, caddy, authz, upstream string) (string, error) {
	t.Helper()
	_, port, _ := net.SplitHostPort(servertest.FreeAddr(t))
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, fmt.Appendf(nil, caddyfile, port, authz, upstream), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddy, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logs, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			out, _ := os.ReadFile(logs.Name())
			t.Logf("caddy:\n%s", out)
		}
	})
	base := "http://127.0.0.1:" + port
	out := func() string { b, _ := os.ReadFile(logs.Name()); return string(b) }
	// Only Caddy answers, through the demo upstream, "ok" here; whatever else took the port
	// would not.
	if err := waitProxy("caddy", base, exited, out); err != nil {
		return "", err
	}
	return base, nil
}

// waitProxy waits until the proxy at base answers "ok" on /healthz (through uraiden and the
// test upstream), or fails with its output once it exits or after 15 s.
func waitProxy(name, base string, exited chan error, output func() string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == "ok" {
				return nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("%s exited: %v\n%s", name, err, output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer on %s: %v", name, base, err)
		}
	}
}
