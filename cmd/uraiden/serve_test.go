package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/ledger"
)

// grpcurl finds the grpcurl binary (.ci/run installs it with go install).
func grpcurl(t *testing.T) string {
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	return servertest.Program(t, "go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4",
		"grpcurl", filepath.Join(strings.TrimSpace(string(gopath)), "bin", "grpcurl"))
}

// checkAdmin asks the admin server of a running serve for its probes and statistics.
func checkAdmin(t *testing.T, base, token string) {
	t.Helper()
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("admin %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get("/readyz", ""); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, _ := get("/api/1/stats", ""); code != 401 {
		t.Errorf("/api/1/stats without the token: %d", code)
	}
	code, body := get("/api/1/stats", token)
	if code != 200 || !strings.Contains(body, `"open_channels":0`) || !strings.Contains(body, `"manager_abi":[`) {
		t.Errorf("/api/1/stats: %d %.300s", code, body)
	}
}

// `uraiden serve` on the embedded dev chain, as the README runs it, answers grpcurl's Check of
// a priced path with a 402 carrying the RDN headers; then the ledger is backed up and
// restored.
func TestServeWithGrpcurlThenBackup(t *testing.T) {
	bin := grpcurl(t)
	t.Chdir(repoRoot)
	addr := freeAddr(t)
	dataDir := t.TempDir()
	adminAddr := freeAddr(t)
	t.Setenv("URAIDEN_DEVCHAIN_LISTEN", freeAddr(t))
	t.Setenv("URAIDEN_ADMIN_TOKEN", "serve-test-token-0123")
	ctx, cancel := context.WithCancel(context.Background())
	var out servertest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- execute(ctx, &out, "serve", "--listen", addr, "--admin-listen", adminAddr, "--ledger-dir", dataDir)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve exited with %v", err)
			}
		}
	}
	defer stop()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd := exec.Command(bin, "-plaintext", "-d", "@", addr, "envoy.service.auth.v3.Authorization/Check")
	cmd.Stdin = strings.NewReader(`{"attributes":{"request":{"http":{"method":"GET","path":"/echofix/foo","host":"localhost:10000",
		"headers":{":method":"GET",":path":"/echofix/foo",":authority":"localhost:10000"}}}}}`)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("grpcurl: %v\n%s", err, got)
	}
	for _, want := range []string{`"code": "PaymentRequired"`, `"key": "RDN-Price"`, `"value": "5000000000000000"`, `"key": "RDN-Receiver-Address"`, `"key": "RDN-Contract-Address"`, `"key": "RDN-Token-Address"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("grpcurl output lacks %s:\n%s", want, got)
		}
	}
	health, err := exec.Command(bin, "-plaintext", addr, "grpc.health.v1.Health/Check").CombinedOutput()
	if err != nil || !strings.Contains(string(health), "SERVING") {
		t.Errorf("health: %v %s", err, health)
	}
	checkAdmin(t, "http://"+adminAddr, "serve-test-token-0123")
	stop()

	backup := filepath.Join(t.TempDir(), "ledger.bak")
	ledgerDir := filepath.Join(dataDir, "devchain")
	t.Setenv("URAIDEN_LEDGER_DIR", ledgerDir)
	if o, err := run(t.Context(), "backup", "--out", backup); err != nil || !strings.Contains(o, "chain 1337") {
		t.Fatalf("backup: %v\n%s", err, o)
	}
	restored := t.TempDir()
	t.Setenv("URAIDEN_LEDGER_DIR", restored)
	if o, err := run(t.Context(), "restore", "--in", backup); err != nil {
		t.Fatalf("restore: %v\n%s", err, o)
	}
	if o, err := run(t.Context(), "restore", "--in", backup); err == nil || !strings.Contains(err.Error(), "already holds a ledger") {
		t.Errorf("second restore: %v\n%s", err, o)
	}
	if o, err := run(t.Context(), "backup", "--out", filepath.Join(t.TempDir(), "again.bak")); err != nil || !strings.Contains(o, "chain 1337") {
		t.Errorf("backup of the restored ledger: %v\n%s", err, o)
	}
	if o, err := run(t.Context(), "resync"); err != nil || !strings.Contains(o, "from the contract again") {
		t.Fatalf("resync: %v\n%s", err, o)
	}
	l, err := ledger.OpenExisting(restored, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.NeedsResync() || !errors.Is(l.Err(), ledger.ErrResyncing) {
		t.Errorf("after uraiden resync: needs resync %v, err %v", l.NeedsResync(), l.Err())
	}
}
