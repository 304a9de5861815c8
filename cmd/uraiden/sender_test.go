package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/uraiden/uraiden/internal/testkit/servertest"
)

// `uraiden get` pays for /echofix/foo through the gateway of a running `uraiden serve` and
// prints foo, once in the scheme auto picks and once in legacy (--proof-scheme legacy);
// `uraiden channel list` then shows the channel it opened, and `channel close
// --proof-scheme eip712` closes it cooperatively in the typed scheme, signing the legacy
// balance again in it.
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
	// serve prints the dev chain once every server listens: maybe just after the gateway does.
	contract := waitPrinted(t, &out, contractPrinted)

	// What is for sale, read through the gateway from the discovery document (prices.yaml).
	prices, err := run(t.Context(), "prices", "http://"+gatewayAddr)
	for _, want := range []string{"chain 1337, receiver 0x", "token RDNDEV 0x", "(18 decimals); proofs eip712, legacy",
		"echofix      any      any   /echofix/(?P<param>[^/]+)/?  0.005 RDNDEV (5000000000000000 base units)\n",
		"echodyn      any      any   /echodyn/(?P<param>[^/]+)/?  computed per request\n",
		"free-health  any      any   /healthz                     free\n",
		"(default)                   (no rule matches)            free\n"} {
		if err != nil || !strings.Contains(prices, want) {
			t.Fatalf("prices: %v; want %q in\n%s", err, want, prices)
		}
	}
	if js, err := run(t.Context(), "prices", "--json", "http://"+gatewayAddr+"/api/1/prices"); err != nil || !strings.Contains(js, `"tokens": "0.005"`) {
		t.Errorf("prices --json: %v\n%s", err, js)
	}

	store := filepath.Join(t.TempDir(), "channels.json")
	sender := []string{"--dev-account", "1", "--rpc", "http://" + rpcAddr, "--store", store}
	got, err := run(t.Context(), append([]string{"get", "http://" + gatewayAddr + "/echofix/foo"}, sender...)...)
	if err != nil || got != "foo" {
		t.Fatalf("get: %v, printed %q", err, got)
	}
	// /echofix/ costs 0.005 token (prices.yaml): 5000000000000000 base units.
	got, err = run(t.Context(), append([]string{"get", "-i", "--max-price", "4999999999999999", "http://" + gatewayAddr + "/echofix/foo"}, sender...)...)
	if err == nil || !strings.Contains(err.Error(), "more than the maximum price 4999999999999999") {
		t.Errorf("get --max-price 4999999999999999 of a 5000000000000000 request: %v %q", err, got)
	}
	got, err = run(t.Context(), append([]string{"get", "--proof-scheme", "legacy", "http://" + gatewayAddr + "/echofix/bar"}, sender...)...)
	if err != nil || got != "bar" {
		t.Fatalf("get --proof-scheme legacy: %v, printed %q", err, got)
	}
	if data, err := os.ReadFile(store); err != nil || strings.Contains(string(data), "proof_scheme") {
		t.Errorf("the store after a legacy payment names a scheme (%v):\n%s", err, data)
	}

	list, err := run(t.Context(), append([]string{"channel", "list", "--contract", contract[1]}, sender...)...)
	m := regexp.MustCompile(`(0x[0-9a-fA-F]{40})\s+(\d+)\s+open\s+50000000000000000\s+10000000000000000\n`).FindStringSubmatch(list)
	if err != nil || m == nil {
		t.Fatalf("channel list: %v\n%s", err, list)
	}
	closed, err := run(t.Context(), append([]string{"channel", "close", m[1], m[2], "--contract", contract[1], "--proof-scheme", "eip712"}, sender...)...)
	if err != nil || !strings.Contains(closed, "closed") {
		t.Fatalf("channel close: %v\n%s", err, closed)
	}
}

// `uraiden demo` runs the whole cycle and its balance check holds.
// The demo runs from an empty folder: the dev chain prices with the built-in example table
// (the repository's config.yaml is still passed; TestGoInstall runs it with none at all).
func TestDemoCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	out, err := run(t.Context(), "demo")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	checkDemoStory(t, out)
}

// checkDemoStory checks the demo's story: 20 requests paid at the example table's prices in
// tokens, the ledger's line, the close and the balance check.
func checkDemoStory(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{"balance check OK", "the server's ledger: 1 open channel(s) from 1 sender(s), 0.1 RDNDEV deposited, 0.1 RDNDEV signed over to the receiver, 0.1 RDNDEV charged",
		"(price 0.005 RDNDEV)", "(price 0.007 RDNDEV)", "paid for 20 requests: 0.1 RDNDEV", "closed channel", "paid in parallel",
		"paid with eip712 balance proofs: the server offers eip712 for this chain and contract"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^paid.* -> "`).FindAllString(out, -1)); n != 20 {
		t.Errorf("%d requests paid, want 20", n)
	}
}

// --proof-scheme takes auto, eip712 or legacy exactly, is refused before anything is sent
// or started, and exists only on the commands that sign proofs.
func TestProofSchemeFlag(t *testing.T) {
	t.Chdir(repoRoot)
	contract := "0x5FbDB2315678afecb367f032d93F642f64180aa3"
	noNode := []string{"--dev-account", "1", "--rpc", "http://127.0.0.1:1", "--store", filepath.Join(t.TempDir(), "s.json")}
	for _, args := range [][]string{
		append([]string{"get", "--contract", contract, "--proof-scheme", "EIP712", "http://127.0.0.1:1/x"}, noNode...),
		append([]string{"get", "--proof-scheme", "typed", "http://127.0.0.1:1/x"}, noNode...),
		append([]string{"channel", "close", contract, "5", "--contract", contract, "--proof-scheme", ""}, noNode...),
		{"demo", "--proof-scheme", "eip-712"},
	} {
		out, err := run(t.Context(), args...)
		if err == nil || !strings.Contains(err.Error(), `--proof-scheme: proof scheme must be "auto", "eip712" or "legacy"`) {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	if _, err := run(t.Context(), append([]string{"channel", "list", "--contract", contract, "--proof-scheme", "eip712"}, noNode...)...); err == nil || !strings.Contains(err.Error(), "unknown flag") {
		t.Errorf("channel list --proof-scheme: %v", err)
	}
	help, err := run(t.Context(), "get", "--help")
	if err != nil || !strings.Contains(help, "--proof-scheme string") || !strings.Contains(help, "eip712 (fail if not offered)") {
		t.Errorf("get --help: %v\n%s", err, help)
	}
}

// contractPrinted is the channel contract's line in the dev chain's banner (printDevChain).
var contractPrinted = regexp.MustCompile(`channel contract:\s+(0x[0-9a-fA-F]{40})`)

// waitPrinted waits until out holds a match of re, and returns its submatches.
func waitPrinted(t *testing.T, out fmt.Stringer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing printed matches %s:\n%s", re, out.String())
		}
		time.Sleep(20 * time.Millisecond)
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
