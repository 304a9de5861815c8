package admin_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/rdn"
)

const (
	testToken     = "operator-token-0123456789"
	confirmations = 3
	price         = 5
)

// harness is a dev chain and a uraiden server on it, with its admin server on a free port.
type harness struct {
	t      *testing.T
	chain  *devchain.Chain
	cfg    config.Config
	srv    *server.Server
	authz  authv3.AuthorizationClient
	base   string // http://host:port of the admin server
	tokens *contracts.UraidenTestToken
	mgr    *contracts.RaidenMicroTransferChannels
}

// channel is a channel opened by a dev account.
type channel struct {
	key       *ecdsa.PrivateKey
	sender    common.Address
	openBlock uint32
}

func newHarness(t *testing.T, edit func(*config.Config)) *harness {
	t.Helper()
	c := servertest.DevChain(t, 5)
	cfg := servertest.Config(t, "testdata/prices.yaml")
	cfg.Admin.Token = testToken
	cfg.DevChain.Confirmations = confirmations
	if edit != nil {
		edit(&cfg)
	}
	h := &harness{t: t, chain: c, cfg: cfg, tokens: contracts.NewUraidenTestToken(), mgr: contracts.NewRaidenMicroTransferChannels()}
	return h
}

func (h *harness) start() {
	h.t.Helper()
	h.srv = servertest.Start(h.t, h.cfg, h.chain)
	h.authz = servertest.AuthzClient(h.t, h.srv)
	h.base = "http://" + h.srv.Admin.Addr()
}

func (h *harness) receiver() common.Address        { return h.chain.Accounts()[0].Address }
func (h *harness) account(i int) *ecdsa.PrivateKey { return h.chain.Accounts()[i].Key }

// transact sends a transaction from key, waits for it and returns its block.
func (h *harness) transact(key *ecdsa.PrivateKey, to common.Address, data []byte) uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := bind.NewKeyedTransactor(key, big.NewInt(devchain.ChainID))
	opts.Context = ctx
	tx, err := bind.Transact(h.tokens.Instance(h.chain.Client(), to), opts, data)
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := contracts.WaitMined(ctx, h.chain.Client(), tx.Hash())
	if err != nil || r.Status != 1 {
		h.t.Fatalf("transaction failed: %v (status %v)", err, r)
	}
	return r.BlockNumber.Uint64()
}

// open opens a channel through ERC223: token.transfer(contract, deposit, sender ‖ receiver).
func (h *harness) open(key *ecdsa.PrivateKey, deposit int64) channel {
	h.t.Helper()
	d := h.chain.Deployment()
	sender := crypto.PubkeyToAddress(key.PublicKey)
	data := append(sender.Bytes(), h.receiver().Bytes()...)
	block := h.transact(key, d.Token, h.tokens.PackTransfer0(d.Channels, big.NewInt(deposit), data))
	return channel{key: key, sender: sender, openBlock: uint32(block)}
}

// topUp adds to a channel's deposit through ERC223 (44 bytes of data).
func (h *harness) topUp(c channel, amount int64) uint64 {
	h.t.Helper()
	d := h.chain.Deployment()
	data := append(append(c.sender.Bytes(), h.receiver().Bytes()...), byte(c.openBlock>>24), byte(c.openBlock>>16), byte(c.openBlock>>8), byte(c.openBlock))
	return h.transact(c.key, d.Token, h.tokens.PackTransfer0(d.Channels, big.NewInt(amount), data))
}

func (h *harness) mine(n int) {
	for range n {
		h.chain.Commit()
	}
}

// sync waits for the server's watcher to apply the chain up to its head. It waits rather
// than calling Poll: a Poll concurrent with the watcher's own would read a range twice.
func (h *harness) sync() {
	h.t.Helper()
	head := h.head()
	deadline := time.Now().Add(10 * time.Second)
	for h.srv.Ledger.Sync().Cursor < head {
		if time.Now().After(deadline) {
			h.t.Fatalf("the watcher did not reach block %d: %+v, %v", head, h.srv.Ledger.Sync(), h.srv.Watcher.Healthy())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) head() uint64 {
	h.t.Helper()
	n, err := h.chain.Client().BlockNumber(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *harness) tokenBalance(a common.Address) *big.Int {
	h.t.Helper()
	b, err := contracts.TokenBalance(context.Background(), h.chain.Client(), h.chain.Deployment().Token, a)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// sign signs a balance proof of c with key.
func (h *harness) sign(key *ecdsa.PrivateKey, c channel, balance int64) string {
	h.t.Helper()
	sig, err := rdn.Balance{Receiver: h.receiver(), OpenBlock: c.openBlock, Balance: big.NewInt(balance), Contract: h.chain.Deployment().Channels}.Sign(key)
	if err != nil {
		h.t.Fatal(err)
	}
	return sig.Hex()
}

// pay sends a priced request with a proof of balance over gRPC, as Envoy would, and returns
// the HTTP status of the decision.
func (h *harness) pay(c channel, balance int64) int {
	h.t.Helper()
	resp := h.checkProof(c, balance, h.sign(c.key, c, balance))
	if resp.GetOkResponse() != nil {
		return 200
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}

// checkProof sends a priced request with a balance proof over gRPC, as Envoy would.
func (h *harness) checkProof(c channel, balance int64, sig string) *authv3.CheckResponse {
	h.t.Helper()
	headers := map[string]string{
		":method": "GET", ":path": "/paid/x", ":authority": "localhost",
		"rdn-contract-address":  h.chain.Deployment().Channels.Hex(),
		"rdn-receiver-address":  h.receiver().Hex(),
		"rdn-sender-address":    c.sender.Hex(),
		"rdn-open-block":        fmt.Sprint(c.openBlock),
		"rdn-balance":           fmt.Sprint(balance),
		"rdn-balance-signature": sig,
	}
	resp, err := h.authz.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/paid/x", Host: "localhost", Headers: headers,
		}},
	}})
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// response is an answer of the admin server.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}

// errorText returns the error field of a JSON error body.
func (r response) errorText(t *testing.T) string {
	t.Helper()
	var e admin.ErrorBody
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("status %d without an error field: %s", r.status, r.body)
	}
	return e.Error
}

// do sends a request to the admin server; token "" sends no Authorization header.
func (h *harness) do(method, path, token, body string) response {
	h.t.Helper()
	return do(h.t, method, h.base+path, token, body)
}

func do(t *testing.T, method, url, token, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// channelPath is <prefix>/channels/<sender>/<open_block>.
func channelPath(c channel) string {
	return fmt.Sprintf("/api/1/channels/%s/%d", c.sender.Hex(), c.openBlock)
}
