package client_test

import (
	"crypto/ecdsa"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/contracts"
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
}

func start(t *testing.T) *harness {
	t.Helper()
	c := servertest.DevChain(t, 4)
	cfg := servertest.Config(t, "../prices.yaml")
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Admin.Token = "client-test-token-0123"
	return &harness{t: t, chain: c, srv: servertest.Start(t, cfg, c)}
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
	cfg.Node, cfg.Key, cfg.Contract = h.chain.Client(), h.chain.Accounts()[i].Key, h.chain.Deployment().Channels
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

// startLegacyOnly starts a server that offers legacy proofs only, as one whose contract has
// no eip712Domain() (µRaiden 0.2.0's) does.
func startLegacyOnly(t *testing.T) *harness {
	t.Helper()
	return start(t) // PENDING: the serve wiring of proof schemes
}
