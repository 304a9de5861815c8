package authz_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// harness is a dev chain with channels, and a uraiden server on it reached over real gRPC.
type harness struct {
	t      *testing.T
	chain  *devchain.Chain
	cfg    config.Config
	srv    *server.Server
	client authv3.AuthorizationClient

	// Channels opened by dev accounts 1 (confirmed) and 2 (opened last, not yet confirmed).
	payer, fresh channelKey
	stranger     *ecdsa.PrivateKey
	// scheme is what sign and proofHeaders sign in.
	scheme rdn.Scheme
}

type channelKey struct {
	key       *ecdsa.PrivateKey
	sender    common.Address
	openBlock uint32
}

const confirmations = 3

// newHarness starts a dev chain (no RPC port), opens the test channels with deposits of
// 1000, and starts the server.
func newHarness(t *testing.T) *harness {
	t.Helper()
	c := servertest.DevChain(t, 4)
	h := &harness{t: t, chain: c, stranger: c.Accounts()[3].Key}
	h.cfg = servertest.Config(t, "testdata/prices.yaml")
	h.cfg.DevChain.Confirmations = confirmations

	h.payer = h.openChannel(c.Accounts()[1].Key, 1000)
	h.mine(confirmations)
	h.fresh = h.openChannel(c.Accounts()[2].Key, 1000)
	h.start()
	return h
}

func (h *harness) start() {
	h.t.Helper()
	h.srv = servertest.Start(h.t, h.cfg, h.chain)
	h.client = servertest.AuthzClient(h.t, h.srv)
}

// restart stops the server and starts a new one on the same chain and ledger directory.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.srv.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.start()
}

// openChannel opens a channel to the receiver (dev account 0) through ERC223.
func (h *harness) openChannel(key *ecdsa.PrivateKey, deposit int64) channelKey {
	h.t.Helper()
	d := h.chain.Deployment()
	sender := crypto.PubkeyToAddress(key.PublicKey)
	data := append(sender.Bytes(), h.receiver().Bytes()...)
	r := h.transact(key, d.Token, contracts.NewUraidenTestToken().PackTransfer0(d.Channels, big.NewInt(deposit), data))
	return channelKey{key: key, sender: sender, openBlock: uint32(r)}
}

// transact sends a transaction, waits for it and returns its block.
func (h *harness) transact(key *ecdsa.PrivateKey, to common.Address, data []byte) uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := bind.NewKeyedTransactor(key, big.NewInt(devchain.ChainID))
	opts.Context = ctx
	// Raw calldata: the ABI of the bound contract plays no part.
	tx, err := bind.Transact(contracts.NewUraidenTestToken().Instance(h.chain.Client(), to), opts, data)
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := contracts.WaitMined(ctx, h.chain.Client(), tx.Hash())
	if err != nil || r.Status != 1 {
		h.t.Fatalf("transaction failed: %v", err)
	}
	return r.BlockNumber.Uint64()
}

func (h *harness) receiver() common.Address { return h.chain.Accounts()[0].Address }

// mine seals empty blocks.
func (h *harness) mine(n int) {
	for range n {
		h.chain.Commit()
	}
}

// sync makes the server's watcher catch up with the chain now.
func (h *harness) sync() {
	h.t.Helper()
	if err := h.srv.Watcher.Poll(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) sign(key *ecdsa.PrivateKey, openBlock uint32, balance int64) string {
	return h.signIn(h.scheme, devchain.ChainID, key, openBlock, balance)
}

func (h *harness) signIn(scheme rdn.Scheme, chainID uint64, key *ecdsa.PrivateKey, openBlock uint32, balance int64) string {
	sig, err := rdn.Balance{Receiver: h.receiver(), OpenBlock: openBlock, Balance: big.NewInt(balance), Contract: h.chain.Deployment().Channels,
		Scheme: scheme, ChainID: chainID}.Sign(key)
	if err != nil {
		h.t.Fatal(err)
	}
	return sig.Hex()
}

func (h *harness) check(req *authv3.CheckRequest) *authv3.CheckResponse {
	h.t.Helper()
	resp, err := h.client.Check(context.Background(), req)
	if err != nil {
		h.t.Fatalf("Check: %v", err)
	}
	return resp
}

func (h *harness) channel(c channelKey) *ledger.Channel {
	h.t.Helper()
	ch, err := h.srv.Ledger.Channel(rdn.ChannelID{Sender: c.sender, OpenBlock: c.openBlock})
	if err != nil || ch == nil {
		h.t.Fatalf("channel %s/%d: %v", c.sender, c.openBlock, err)
	}
	return ch
}

// requestIDs numbers the x-request-id of envoyRequest.
var requestIDs atomic.Uint64

// envoyRequest builds a CheckRequest as Envoy does for a plain HTTP/1.1 request, with an
// x-request-id of its own as Envoy gives every request (headers may set another): two calls
// are two requests, one request sent twice is a retry (docs/protocol.md §8).
func envoyRequest(method, path string, headers map[string]string) *authv3.CheckRequest {
	all := map[string]string{
		":authority": "localhost:10000", ":method": method, ":path": path, ":scheme": "http",
		"accept": "*/*", "user-agent": "uraiden-test", "x-forwarded-proto": "http",
		"x-request-id": fmt.Sprintf("7c1f9d3e-1111-4b5b-9c1e-%012x", requestIDs.Add(1)),
	}
	for k, v := range headers {
		all[strings.ToLower(k)] = v
	}
	raw, _ := json.Marshal(map[string]any{"attributes": map[string]any{
		"request": map[string]any{"http": map[string]any{
			"id": "1", "method": method, "path": path, "host": "localhost:10000", "scheme": "http",
			"protocol": "HTTP/1.1", "headers": all,
		}},
	}})
	var req authv3.CheckRequest
	if err := protojson.Unmarshal(raw, &req); err != nil {
		panic(err)
	}
	return &req
}

// proofHeaders are the headers µRaiden's Python client sends, and RDN-Proof-Scheme for a
// typed proof.
func (h *harness) proofHeaders(c channelKey, balance int64) map[string]string {
	if h.scheme != rdn.SchemeLegacy {
		headers := h.legacyProofHeaders(c, balance)
		headers[rdn.HeaderProofScheme] = h.scheme.String()
		return headers
	}
	return h.legacyProofHeaders(c, balance)
}

func (h *harness) legacyProofHeaders(c channelKey, balance int64) map[string]string {
	return map[string]string{
		"RDN-Contract-Address":  h.chain.Deployment().Channels.Hex(),
		"RDN-Receiver-Address":  h.receiver().Hex(),
		"RDN-Sender-Address":    c.sender.Hex(),
		"RDN-Open-Block":        fmt.Sprint(c.openBlock),
		"RDN-Balance":           fmt.Sprint(balance),
		"RDN-Balance-Signature": h.sign(c.key, c.openBlock, balance),
	}
}

// responseHeaders flattens a response's headers (denied headers, or the OK response's
// response_headers_to_add) with lower-cased keys.
func responseHeaders(resp *authv3.CheckResponse) map[string]string {
	var opts []*corev3.HeaderValueOption
	if d := resp.GetDeniedResponse(); d != nil {
		opts = d.GetHeaders()
	} else {
		opts = resp.GetOkResponse().GetResponseHeadersToAdd()
	}
	out := map[string]string{}
	for _, o := range opts {
		out[strings.ToLower(o.GetHeader().GetKey())] = o.GetHeader().GetValue()
	}
	return out
}

func upstreamHeaders(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for _, o := range resp.GetOkResponse().GetHeaders() {
		out[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return out
}

func httpStatus(resp *authv3.CheckResponse) int {
	if resp.GetStatus().GetCode() == 0 {
		return 200
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}

// fixture is one request of testdata/checks/*.json: a CheckRequest as Envoy builds it
// (a text/template, for the values only a live chain knows) and what must come back.
type fixture struct {
	Name    string          `json:"name"`
	Request json.RawMessage `json:"request"`
	// Before: "mine" (enough blocks to confirm everything, then sync), "close" (the payer
	// requests an uncooperative close, then sync).
	Before string `json:"before"`
	Want   struct {
		Status       int               `json:"status"`
		Headers      map[string]string `json:"headers"`
		Absent       []string          `json:"absent"`
		Upstream     map[string]string `json:"upstream"`
		BodyContains []string          `json:"body_contains"`
		Metadata     map[string]string `json:"metadata"`
		// RemovedUpstream must be in the OK response's headers_to_remove; Upstream's keys
		// must not be (Envoy removes after it sets).
		RemovedUpstream []string `json:"removed_upstream"`
	} `json:"want"`
}

func (h *harness) templateData() map[string]any {
	d := h.chain.Deployment()
	return map[string]any{
		"Receiver": h.receiver().Hex(), "Contract": d.Channels.Hex(), "Token": d.Token.Hex(),
		"Payer": h.payer.sender.Hex(), "PayerBlock": h.payer.openBlock,
		"Fresh": h.fresh.sender.Hex(), "FreshBlock": h.fresh.openBlock,
	}
}

func (h *harness) funcs() template.FuncMap {
	return template.FuncMap{
		// sign signs a balance of the payer's channel with the payer's key.
		"sign": func(balance int64) string { return h.sign(h.payer.key, h.payer.openBlock, balance) },
		// signFresh signs for the unconfirmed channel.
		"signFresh": func(balance int64) string { return h.sign(h.fresh.key, h.fresh.openBlock, balance) },
		// b64 encodes a header_map raw_value (bytes are base64 in protojson).
		"b64": func(v any) string { return base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(v))) },
		// v37 is the payer's signature with v = 37, which the contract refuses.
		"v37": func(balance int64) string {
			sig := common.FromHex(h.sign(h.payer.key, h.payer.openBlock, balance))
			sig[64] = 37
			return hexutil.Encode(sig)
		},
		// highS is the malleable twin (r, n-s) of the payer's signature.
		"highS": func(balance int64) string {
			sig := common.FromHex(h.sign(h.payer.key, h.payer.openBlock, balance))
			s := new(big.Int).SetBytes(sig[32:64])
			new(big.Int).Sub(crypto.S256().Params().N, s).FillBytes(sig[32:64])
			sig[64] = 27 + 28 - sig[64]
			return hexutil.Encode(sig)
		},
		// signStranger signs the payer's channel with someone else's key.
		"signStranger": func(balance int64) string { return h.sign(h.stranger, h.payer.openBlock, balance) },
		// signFreshTyped signs a typed proof of the fresh channel; signTypedOn for another chain.
		"signFreshTyped": func(balance int64) string {
			return h.signIn(rdn.SchemeTyped, devchain.ChainID, h.fresh.key, h.fresh.openBlock, balance)
		},
		"signTypedOn": func(chainID uint64, balance int64) string {
			return h.signIn(rdn.SchemeTyped, chainID, h.fresh.key, h.fresh.openBlock, balance)
		},
	}
}

func (h *harness) render(f *fixture) *authv3.CheckRequest {
	h.t.Helper()
	tmpl, err := template.New(f.Name).Funcs(h.funcs()).Parse(string(f.Request))
	if err != nil {
		h.t.Fatalf("%s: %v", f.Name, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, h.templateData()); err != nil {
		h.t.Fatalf("%s: %v", f.Name, err)
	}
	var req authv3.CheckRequest
	if err := protojson.Unmarshal(buf.Bytes(), &req); err != nil {
		h.t.Fatalf("%s: not a CheckRequest: %v", f.Name, err)
	}
	return &req
}

func loadFixtures(t *testing.T) []fixture {
	files, err := filepath.Glob("testdata/checks/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var all []fixture
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var steps []fixture
		if err := json.Unmarshal(data, &steps); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range steps {
			steps[i].Name = filepath.Base(f) + ": " + steps[i].Name
		}
		all = append(all, steps...)
	}
	return all
}
