package jsclient_test

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/internal/dev/devtools"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
)

// senders is how many funded dev accounts the node tests pay from, each test its own.
const senders = 12

// TestNode runs the library's node tests (`node --test`, one file after another) against
// uraiden with its gateway on the dev chain, which serves JSON-RPC on a loopback port for
// them. The dev chain mines a block every 250 ms and the server counts a deposit after 2
// of them, so payments usually meet RDN-Insufficient-Confirmations after an opening or a
// top-up (the tests assert the balances, not that they did).
// The tests get the endpoints and the senders' keys in URAIDEN_JS_* variables.
func TestNode(t *testing.T) {
	node := servertest.Program(t, "apt-get install nodejs", "node")
	// viem, from the repository's pinned packages, which the library imports.
	if _, err := devtools.Path("viem"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, err := devchain.Start(ctx, devchain.Config{Accounts: senders + 1, Listen: "127.0.0.1:0", BlockPeriod: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// In base units: /echofix/ costs 5, /echodyn/ one per character.
	cfg := servertest.Config(t, "../../authz/testdata/prices.yaml")
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.DevChain.Confirmations = 2
	srv := servertest.Start(t, cfg, c)

	var keys []string
	for _, a := range c.Accounts()[1:] {
		keys = append(keys, "0x"+hex.EncodeToString(crypto.FromECDSA(a.Key)))
	}
	files, err := filepath.Glob("test/*.test.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("no node tests in test/: %v", err)
	}
	// One file at a time: they share the receiver, whose token balance they check.
	cmd := exec.CommandContext(t.Context(), node, append([]string{"--test", "--test-concurrency=1", "--test-timeout=120000", "--test-reporter=spec"}, files...)...)
	cmd.Env = append(os.Environ(),
		"URAIDEN_JS_GATEWAY="+srv.Gateway.URL(),
		"URAIDEN_JS_RPC="+c.HTTPEndpoint(),
		"URAIDEN_JS_CONTRACT="+c.Deployment().Channels.Hex(),
		"URAIDEN_JS_TOKEN="+c.Deployment().Token.Hex(),
		"URAIDEN_JS_RECEIVER="+c.Accounts()[0].Address.Hex(),
		"URAIDEN_JS_KEYS="+strings.Join(keys, ","),
		"NO_COLOR=1",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test %s:\n%s", strings.Join(files, " "), out)
	if err != nil {
		t.Fatalf("node --test: %v", err)
	}
}

// TestTypes checks the library's JSDoc types with the pinned TypeScript (tsconfig.json:
// strict, src/ only): what its users' editors and compilers will hold it to.
func TestTypes(t *testing.T) {
	node := servertest.Program(t, "apt-get install nodejs", "node")
	tsc, err := devtools.Tsc()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, tsc, "-p", ".").CombinedOutput(); err != nil {
		t.Fatalf("tsc -p clients/js: %v\n%s", err, out)
	}
}
