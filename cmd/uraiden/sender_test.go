package main

import (
	"context"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/uraiden/uraiden/internal/testkit/servertest"
)

// `uraiden get` pays for /echofix/foo through the gateway of a running `uraiden serve` and
// prints foo; `uraiden channel list` then shows the channel it opened, and `channel close`
// closes it cooperatively.
func TestGetAndChannelCommands(t *testing.T) {
	t.Chdir(repoRoot)
	rpcAddr, gatewayAddr := freeAddr(t), freeAddr(t)
	t.Setenv("URAIDEN_DEVCHAIN_LISTEN", rpcAddr)
	ctx, cancel := context.WithCancel(context.Background())
	var out servertest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- execute(ctx, &out, "serve", "--listen", freeAddr(t), "--admin-listen", freeAddr(t),
			"--ledger-dir", t.TempDir(), "--gateway", gatewayAddr)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve exited with %v", err)
		}
	}()
	waitListening(t, gatewayAddr)
	contract := regexp.MustCompile(`channel contract:\s+(0x[0-9a-fA-F]{40})`).FindStringSubmatch(out.String())
	if contract == nil {
		t.Fatalf("no contract printed:\n%s", out.String())
	}

	store := filepath.Join(t.TempDir(), "channels.json")
	sender := []string{"--dev-account", "1", "--rpc", "http://" + rpcAddr, "--store", store}
	got, err := run(t.Context(), append([]string{"get", "http://" + gatewayAddr + "/echofix/foo"}, sender...)...)
	if err != nil || got != "foo" {
		t.Fatalf("get: %v, printed %q", err, got)
	}
	got, err = run(t.Context(), append([]string{"get", "-i", "--max-price", "4", "http://" + gatewayAddr + "/echofix/foo"}, sender...)...)
	if err == nil || !strings.Contains(err.Error(), "more than the maximum price 4") {
		t.Errorf("get --max-price 4 of a 5 request: %v %q", err, got)
	}

	list, err := run(t.Context(), append([]string{"channel", "list", "--contract", contract[1]}, sender...)...)
	m := regexp.MustCompile(`(0x[0-9a-fA-F]{40})\s+(\d+)\s+open\s+50\s+5\n`).FindStringSubmatch(list)
	if err != nil || m == nil {
		t.Fatalf("channel list: %v\n%s", err, list)
	}
	closed, err := run(t.Context(), append([]string{"channel", "close", m[1], m[2], "--contract", contract[1]}, sender...)...)
	if err != nil || !strings.Contains(closed, "closed") {
		t.Fatalf("channel close: %v\n%s", err, closed)
	}
}

// `uraiden demo` runs the whole cycle and its balance check holds.
func TestDemoCommand(t *testing.T) {
	t.Chdir(repoRoot)
	out, err := run(t.Context(), "demo")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"balance check OK", `"open_channels":1`, "closed channel", "paid in parallel"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^paid.* -> "`).FindAllString(out, -1)); n != 20 {
		t.Errorf("%d requests paid, want 20", n)
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
