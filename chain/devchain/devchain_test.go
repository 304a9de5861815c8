package devchain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/contracts"
)

func startChain(t *testing.T, cfg devchain.Config) *devchain.Chain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := devchain.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// rpcCall posts a raw JSON-RPC request, as curl would.
func rpcCall(t *testing.T, url, method string, params ...any) json.RawMessage {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Result json.RawMessage           `json:"result"`
		Error  *struct{ Message string } `json:"error"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Error != nil {
		t.Fatalf("%s: %s (%v)", method, raw, err)
	}
	return out.Result
}

func TestDevChainServesJSONRPCWithContracts(t *testing.T) {
	c := startChain(t, devchain.Config{Listen: "127.0.0.1:0", Accounts: 3})
	url := c.HTTPEndpoint()
	if got := string(rpcCall(t, url, "eth_chainId")); got != `"0x539"` {
		t.Errorf("eth_chainId = %s, want 0x539 (1337)", got)
	}
	d := c.Deployment()
	for _, addr := range []common.Address{d.Token, d.Channels} {
		var code string
		json.Unmarshal(rpcCall(t, url, "eth_getCode", addr.Hex(), "latest"), &code)
		if len(code) < 100 {
			t.Errorf("eth_getCode(%s) = %q, want contract code", addr, code)
		}
	}

	// Over HTTP and WebSocket, the chain passes the same checks as any real node.
	for _, endpoint := range []string{url, c.WSEndpoint()} {
		client, err := chain.Dial(t.Context(), endpoint, chain.Expect{ChainID: devchain.ChainID, Contract: d.Channels})
		if err != nil {
			t.Fatalf("Dial %s: %v", endpoint, err)
		}
		if !client.Contract.Ours || client.Contract.Token != d.Token || client.Contract.ChallengePeriod != contracts.MinChallengePeriod {
			t.Errorf("contract seen over %s: %+v", endpoint, client.Contract)
		}
		client.Close()
	}

	token := contracts.NewUraidenTestToken()
	for _, a := range c.Accounts() {
		bal, err := bind.Call(token.Instance(c.Client(), d.Token), nil, token.PackBalanceOf(a.Address), token.UnpackBalanceOf)
		if err != nil || bal.Cmp(devchain.AccountTokens) != 0 {
			t.Errorf("token balance of %s = %v (%v), want %s", a.Address, bal, err, devchain.AccountTokens)
		}
	}
}

func TestDevChainMinesOnDemand(t *testing.T) {
	c := startChain(t, devchain.Config{Accounts: 2})
	ctx := t.Context()
	before, _ := c.Client().BlockNumber(ctx)
	from, to := c.Accounts()[0], c.Accounts()[1]
	nonce, _ := c.Client().PendingNonceAt(ctx, from.Address)
	tx, err := types.SignNewTx(from.Key, types.LatestSignerForChainID(big.NewInt(devchain.ChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(devchain.ChainID), Nonce: nonce, To: &to.Address, Gas: 21000,
		GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(100 * params.GWei), Value: big.NewInt(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Client().SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := contracts.WaitMined(waitCtx, c.Client(), tx.Hash())
	if err != nil {
		t.Fatalf("transaction not mined without a Commit: %v", err)
	}
	if r.BlockNumber.Uint64() <= before {
		t.Errorf("mined in block %d, head was %d", r.BlockNumber, before)
	}
}

func TestDevChainMinesOnPeriod(t *testing.T) {
	c := startChain(t, devchain.Config{BlockPeriod: 50 * time.Millisecond})
	start, _ := c.Client().BlockNumber(t.Context())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := c.Client().BlockNumber(t.Context()); n >= start+3 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("no empty blocks mined on the period")
}

func TestDevKeysAreStable(t *testing.T) {
	// Printed at start and used by other processes: they must not change between runs.
	a, b := devchain.DevKey(0), devchain.DevKey(0)
	if a.D.Cmp(b.D) != 0 || devchain.DevKey(1).D.Cmp(a.D) == 0 {
		t.Error("dev keys are not deterministic and distinct")
	}
}

// A burst of transactions from many accounts is all mined, and Close returns promptly after.
func TestDevChainMinesBurstsAndCloses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := devchain.Start(ctx, devchain.Config{Accounts: 40})
	if err != nil {
		t.Fatal(err)
	}
	signer := types.LatestSignerForChainID(big.NewInt(devchain.ChainID))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var hashes []common.Hash
	for _, a := range c.Accounts() {
		wg.Go(func() {
			nonce, err := c.Client().PendingNonceAt(ctx, a.Address)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 25 {
				tx, _ := types.SignNewTx(a.Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(devchain.ChainID),
					Nonce: nonce + uint64(i), To: &a.Address, Gas: 21000, GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(100 * params.GWei)})
				if err := c.Client().SendTransaction(ctx, tx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				hashes = append(hashes, tx.Hash())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, h := range hashes {
		if _, err := contracts.WaitMined(ctx, c.Client(), h); err != nil {
			t.Fatalf("not all of %d transactions mined: %v", len(hashes), err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
