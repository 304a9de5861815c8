package client_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/contracts/microraiden"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// harness is a dev chain, a real server with its admin API and gateway on loopback ports.
type harness struct {
	t     *testing.T
	chain *devchain.Chain
	srv   *server.Server
	// contract is the channel contract the server uses: the dev chain's unless set.
	contract common.Address
}

func start(t *testing.T) *harness {
	t.Helper()
	c := servertest.DevChain(t, 4)
	// In base units (/echofix/ costs 5, /echodyn/ one per character), which keep the
	// expected deposits, balances and caps small; the shipped table prices in tokens.
	cfg := servertest.Config(t, "../authz/testdata/prices.yaml")
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Admin.Token = "client-test-token-0123"
	return &harness{t: t, chain: c, srv: servertest.Start(t, cfg, c), contract: c.Deployment().Channels}
}

func (h *harness) receiver() common.Address { return h.chain.Accounts()[0].Address }

// client returns a client of dev account i with a store at storePath ("" in memory).
func (h *harness) client(i int, storePath string) *client.Client {
	h.t.Helper()
	return h.clientWith(i, client.Config{StorePath: storePath})
}

// clientWith returns a client of dev account i configured by cfg on the harness's chain and contract.
func (h *harness) clientWith(i int, cfg client.Config) *client.Client {
	h.t.Helper()
	cfg.Node, cfg.Key, cfg.Contract = h.chain.Client(), h.chain.Accounts()[i].Key, h.contract
	c, err := client.New(h.t.Context(), cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// get fetches path through the gateway with rt and returns the status and body.
func (h *harness) get(rt http.RoundTripper, path string) (int, string, error) {
	resp, err := (&http.Client{Transport: rt}).Get(h.srv.Gateway.URL() + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// ledgerChannel is the server's view of a channel.
func (h *harness) ledgerChannel(sender *ecdsa.PrivateKey, openBlock uint32) *ledger.Channel {
	h.t.Helper()
	ch, err := h.srv.Ledger.Channel(rdn.ChannelID{Sender: crypto.PubkeyToAddress(sender.PublicKey), OpenBlock: openBlock})
	if err != nil || ch == nil {
		h.t.Fatalf("ledger channel %d: %v", openBlock, err)
	}
	return ch
}

func (h *harness) tokens(a common.Address) *big.Int {
	h.t.Helper()
	b, err := contracts.TokenBalance(h.t.Context(), h.chain.Client(), h.chain.Deployment().Token, a)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// onlyChannel returns the client's single channel, failing if there is not exactly one.
func onlyChannel(t *testing.T, c *client.Client) client.Channel {
	t.Helper()
	chs, err := c.Channels(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 1 {
		t.Fatalf("%d channels, want 1: %+v", len(chs), chs)
	}
	return chs[0]
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startLegacyOnly starts a server in front of µRaiden 0.2.0's own contract, which has no
// eip712Domain(): the server offers legacy proofs only. The server reaches the dev chain over
// JSON-RPC, as it reaches any node other than its embedded one.
func startLegacyOnly(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, err := devchain.Start(ctx, devchain.Config{Accounts: 4, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	orig, err := microraiden.Deploy(ctx, c.Client(), c.Accounts()[0].Key, c.Deployment().Token, contracts.MinChallengePeriod)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "receiver.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(crypto.FromECDSA(c.Accounts()[0].Key))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := servertest.Config(t, "../authz/testdata/prices.yaml")
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Admin.Token = "client-test-token-0123"
	cfg.Chain.RPCURL, cfg.Chain.ChainID, cfg.Chain.ContractAddress = c.HTTPEndpoint(), devchain.ChainID, orig.Address.Hex()
	cfg.Chain.StartBlock = orig.Block
	// The dev chain mines only when transactions arrive: confirmations and the head's age
	// would never be met while the test waits.
	cfg.Chain.Confirmations, cfg.Chain.MaxHeadAge = 0, 0
	cfg.Receiver.KeyFile = keyFile
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.StartWith(t.Context(), cfg, logger, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if !slices.Equal(srv.ProofSchemes, []rdn.Scheme{rdn.SchemeLegacy}) {
		t.Fatalf("the server offers %v in front of µRaiden 0.2.0's contract, want legacy only", srv.ProofSchemes)
	}
	return &harness{t: t, chain: c, srv: srv, contract: orig.Address}
}
