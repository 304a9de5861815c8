package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/rdn"
)

// nginxSite is the shipped configuration, run here as it is but for its addresses.
const nginxSite = "../../envoy/nginx/uraiden.conf"

// The addresses nginxSite is written for, replaced by the test's.
const (
	nginxListen   = "127.0.0.1:8080"
	nginxAuthz    = "127.0.0.1:9003"
	nginxUpstream = "127.0.0.1:3000"
)

// nginxMain runs the site with everything nginx writes inside its prefix directory, and
// every warning in the error log, which the test reads.
const nginxMain = `%s
pid nginx.pid;
error_log error.log info;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path temp/body;
	proxy_temp_path temp/proxy;
	fastcgi_temp_path temp/fastcgi;
	uwsgi_temp_path temp/uwsgi;
	scgi_temp_path temp/scgi;
	include site.conf;
}
`

// Every header of the protocol a client could send is removed by name before the upstream
// (nginx has no pattern for it): one added to rdn must be added to the site too.
func TestNginxSiteRemovesEveryProofHeader(t *testing.T) {
	site, err := os.ReadFile(nginxSite)
	if err != nil {
		t.Fatal(err)
	}
	names := append([]string{rdn.HeaderBalance, rdn.HeaderOpenBlock, rdn.HeaderPayment, rdn.HeaderProofSchemes}, rdn.Cookies...)
	for _, name := range names {
		if !regexp.MustCompile(`(?m)^\s*proxy_set_header\s+` + regexp.QuoteMeta(name) + `\s+"";`).Match(site) {
			t.Errorf("%s does not remove %s (proxy_set_header %s \"\";)", nginxSite, name, name)
		}
	}
}

// nginx's auth_request to uraiden's HTTP authorization sells the demo upstream's requests:
// the 402 quote and its JSON body reach the client through nginx (which passes only 2xx,
// 401 and 403 from the auth subrequest), the client library opens a channel on the dev
// chain and pays; the upstream learns who paid, and gets neither the proof nor a forged
// x-rdn-sender.
func TestNginxAuthRequest(t *testing.T) {
	nginx := servertest.Program(t, "apt-get install nginx-light", "nginx", "/usr/sbin/nginx")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chain, srv := startOnDevChain(t, ctx)
	upstream := &recordingUpstream{}
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	base, errorLog := startNginx(t, nginx, srv.HTTPAuthzAddr(), up.Listener.Addr().String())

	// Unpaid: the 402 quote, its RDN-* headers and JSON body, as uraiden answers it.
	resp, err := http.Get(base + "/echofix/foo")
	if err != nil {
		t.Fatal(err)
	}
	var quote struct {
		Price           string   `json:"price"`
		ContractAddress string   `json:"contract_address"`
		ProofSchemes    []string `json:"proof_schemes"`
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &quote); err != nil {
		t.Fatalf("unpaid: body %q: %v", body, err)
	}
	contract := chain.Deployment().Channels.Hex()
	h := resp.Header
	if resp.StatusCode != 402 || h.Get(rdn.HeaderPrice) != echofixPrice || h.Get(rdn.HeaderContractAddress) != contract ||
		h.Get(rdn.HeaderProofSchemes) == "" || h.Get(rdn.HeaderReceiverAddress) == "" || h.Get(rdn.HeaderGatewayPath) != "/api/1" ||
		h.Get("Content-Type") != "application/json" || h.Get("WWW-Authenticate") != "" {
		t.Fatalf("unpaid: %d %v", resp.StatusCode, h)
	}
	if quote.Price != echofixPrice || quote.ContractAddress != contract || len(quote.ProofSchemes) == 0 {
		t.Errorf("unpaid: body %s", body)
	}

	// A denial the client made up is not the one nginx sends on: the request's own is.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/echofix/foo", nil)
	req.Header.Set("X-Uraiden-Denial", "eyJzIjo0MDksIm0iOiJmb3JnZWQifQ") // {"s":409,"m":"forged"}
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 402 || resp.Header.Get(rdn.HeaderPrice) != echofixPrice {
		t.Errorf("a forged denial: %d %v, want the 402 quote", resp.StatusCode, resp.Header)
	}

	// A browser gets the paywall page, with the quote in its cookies.
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/echofix/foo", nil)
	req.Header.Set("Accept", "text/html")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 402 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		len(resp.Header.Values("Set-Cookie")) != len(rdn.Cookies) {
		t.Errorf("browser: %d %v, want the paywall page and its %d cookies", resp.StatusCode, resp.Header, len(rdn.Cookies))
	}

	// nginx forwards the path as written; uraiden prices what it resolves to.
	if resp, err := http.Get(base + "/x/..//echofix/foo"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 402 || resp.Header.Get(rdn.HeaderPrice) != echofixPrice {
		t.Errorf("a dot segment: %d %v, want the 402 quote of 5", resp.StatusCode, resp.Header)
	}

	// A denial other than a 402 comes through with its status and body too.
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/echofix/foo", nil)
	req.Header.Set(rdn.HeaderBalance, "many")
	req.Header.Set(rdn.HeaderSenderAddress, contract)
	req.Header.Set(rdn.HeaderOpenBlock, "1")
	req.Header.Set(rdn.HeaderBalanceSignature, "0x"+strings.Repeat("ab", 65))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 409 || !strings.Contains(string(body), rdn.HeaderBalance) {
		t.Errorf("malformed proof: %d %q, want 409 naming %s", resp.StatusCode, body, rdn.HeaderBalance)
	}

	payer := chain.Accounts()[1]
	c, err := client.New(ctx, client.Config{Node: chain.Client(), Key: payer.Key, Contract: chain.Deployment().Channels})
	if err != nil {
		t.Fatal(err)
	}
	paying := &http.Client{Transport: c.Transport(client.TransportConfig{})}
	var lastBalance *big.Int
	for _, call := range []struct{ method, param, body string }{{"GET", "foo", ""}, {"GET", "bar", ""}, {"POST", "baz", "a paid upload"}} {
		req, _ := http.NewRequestWithContext(ctx, call.method, base+"/echofix/"+call.param, strings.NewReader(call.body))
		req.Header.Set("X-Rdn-Sender", "forged")
		req.Header.Set("Cookie", "theme=dark")
		resp, err := paying.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		what := call.method + " " + call.param
		if resp.StatusCode != 200 || string(body) != call.param {
			t.Fatalf("paid %s: %d %q", what, resp.StatusCode, body)
		}
		// The client's RDN-* headers of a paid answer, as Envoy adds them: the balance grows
		// by the price on each.
		balance, _ := new(big.Int).SetString(resp.Header.Get(rdn.HeaderSenderBalance), 10)
		if balance != nil && lastBalance != nil && new(big.Int).Sub(balance, lastBalance).String() != echofixPrice {
			t.Errorf("paid %s: balance %s after %s", what, balance, lastBalance)
		}
		lastBalance = balance
		if h := resp.Header; h.Get(rdn.HeaderPrice) != echofixPrice || balance == nil ||
			h.Get(rdn.HeaderContractAddress) != contract || h.Get(rdn.HeaderGatewayPath) != "/api/1" ||
			!strings.EqualFold(h.Get(rdn.HeaderSenderAddress), crypto.PubkeyToAddress(payer.Key.PublicKey).Hex()) {
			t.Errorf("paid %s: the client got the RDN-* headers %v", what, h)
		}
		got := upstream.lastHeaders()
		if sender, want := got.Get("X-Rdn-Sender"), crypto.PubkeyToAddress(payer.Key.PublicKey).Hex(); sender != want ||
			got.Get("X-Rdn-Price") != echofixPrice || got.Get("X-Rdn-Open-Block") == "" || len(got.Values("X-Rdn-Sender")) != 1 {
			t.Errorf("paid %s: upstream saw x-rdn-* %q %q %q, want %s paying 5", what,
				got.Values("X-Rdn-Sender"), got.Get("X-Rdn-Price"), got.Get("X-Rdn-Open-Block"), want)
		}
		if b := upstream.lastBody(); b != call.body {
			t.Errorf("paid %s: upstream got the body %q, want %q", what, b, call.body)
		}
		upstream.noProof(t, "paid "+what, "theme=dark")
	}

	// Free requests: the paywall's cookies and a proof header stay here, other cookies go on;
	// with only the paywall's cookies, no cookie line at all.
	for _, cookie := range []string{"theme=dark", ""} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		line := "RDN-Sender-Address=0x8Bf640A099fE945DA46F354d3B49c48a125F48B6; RDN-Open-Block=7; RDN-Sender-Balance=5"
		if cookie != "" {
			line += "; " + cookie
		}
		req.Header.Set("Cookie", line)
		req.Header.Set(rdn.HeaderProofScheme, "legacy")
		req.Header.Set("X-Rdn-Sender", "forged")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("free with a proof: %v %v", resp, err)
		} else if resp.Body.Close(); resp.Header.Get(rdn.HeaderPrice) != "" || resp.Header.Get(rdn.HeaderSenderBalance) != "" {
			t.Errorf("free: the client got RDN-* headers %v", resp.Header)
		}
		upstream.noProof(t, "free with the cookies "+line, cookie)
		if got := upstream.lastHeaders().Values("X-Rdn-Sender"); len(got) != 0 {
			t.Errorf("free request: upstream saw x-rdn-sender %q", got)
		}
	}

	checkNginxLog(t, errorLog)
}

// checkNginxLog fails the test for anything nginx logged at warn or above: an auth
// subrequest it could not use, a header it refused, a misread directive.
func checkNginxLog(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	warning := regexp.MustCompile(`\[(warn|error|crit|alert|emerg)\]`)
	for _, line := range strings.Split(string(data), "\n") {
		if warning.MatchString(line) {
			t.Errorf("nginx logged: %s", line)
		}
	}
}

// startNginx runs nginx on a loopback port with nginxSite and waits until it answers; it
// returns the base URL and the error log.
func startNginx(t *testing.T, nginx, authz, upstream string) (base, errorLog string) {
	t.Helper()
	onFreePort(t, func() (err error) {
		base, errorLog, err = runNginx(t, nginx, authz, upstream)
		return err
	})
	return base, errorLog
}

func runNginx(t *testing.T, nginx, authz, upstream string) (string, string, error) {
	t.Helper()
	listen := servertest.FreeAddr(t)
	site, err := os.ReadFile(nginxSite)
	if err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{nginxListen: listen, nginxAuthz: authz, nginxUpstream: upstream} {
		if !strings.Contains(string(site), from) {
			t.Fatalf("%s no longer has %s for the test to replace", nginxSite, from)
		}
		site = []byte(strings.ReplaceAll(string(site), from, to))
	}
	// As root, nginx would run its workers as nobody, who cannot enter the test's directory.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"site.conf": site, "nginx.conf": fmt.Appendf(nil, nginxMain, user)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "temp"), 0o700); err != nil {
		t.Fatal(err)
	}
	errorLog := filepath.Join(dir, "error.log")
	// -e: the log of startup, before the configuration's error_log is read.
	cmd := exec.Command(nginx, "-p", dir, "-c", "nginx.conf", "-e", errorLog, "-g", "daemon off;")
	out := &servertest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	logs := func() string {
		data, _ := os.ReadFile(errorLog)
		return out.String() + string(data)
	}
	t.Cleanup(func() {
		// QUIT: a graceful stop, which ends the workers too.
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("nginx:\n%s", logs())
		}
	})
	base := "http://" + listen
	if err := waitProxy("nginx", base, exited, logs); err != nil {
		return "", "", err
	}
	return base, errorLog, nil
}

// echofixPrice is /echofix/'s price in prices.yaml, 0.005 token, in base units.
const echofixPrice = "5000000000000000"
