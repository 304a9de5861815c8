package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/dev/devtools"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/rdn"
)

// The Ethereum node stops under paid load and comes back: payments get 502 (never 402) while
// it is away and are taken again once it returns; every 200 is charged, nothing else is.
func TestNodeStopsAndReturnsUnderLoad(t *testing.T) {
	node := devtools.StartAnvil(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ec, err := ethclient.DialContext(ctx, node.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	receiver, _ := crypto.HexToECDSA(devtools.AnvilKey)
	d, err := chain.Deploy(ctx, ec, receiver, chain.DeployParams{ChallengePeriod: 500,
		NewToken: chain.TokenParams{Name: "T", Symbol: "T", Decimals: 18, Supply: big.NewInt(1e18)}})
	if err != nil {
		t.Fatal(err)
	}
	// The receiver opens a channel to itself: the simplest funded sender on anvil.
	sender := receiver
	senderAddr := crypto.PubkeyToAddress(sender.PublicKey)
	opts := bind.NewKeyedTransactor(sender, big.NewInt(devtools.AnvilChainID))
	tx, err := bind.Transact(contracts.NewUraidenTestToken().Instance(ec, d.Token), opts,
		contracts.NewUraidenTestToken().PackTransfer0(d.Channels, big.NewInt(1e12), append(senderAddr.Bytes(), senderAddr.Bytes()...)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := contracts.WaitMined(ctx, ec, tx.Hash())
	if err != nil || r.Status != 1 {
		t.Fatalf("open channel: %v", err)
	}
	openBlock := uint32(r.BlockNumber.Uint64())

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "receiver.key")
	if err := os.WriteFile(keyFile, []byte(devtools.AnvilKey), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Authz.Listen, cfg.Admin.Listen = "127.0.0.1:0", ""
	// In base units (/echofix/ costs 5): the example's prices in tokens would outrun this
	// test token's supply.
	cfg.Pricing.File = "../../authz/testdata/prices.yaml"
	cfg.Ledger.Dir = filepath.Join(dir, "ledger")
	cfg.Receiver.KeyFile = keyFile
	cfg.Chain.RPCURL, cfg.Chain.ChainID, cfg.Chain.ContractAddress = node.HTTP, devtools.AnvilChainID, d.Channels.Hex()
	cfg.Chain.StartBlock, cfg.Chain.Confirmations = d.ChannelsBlock, 0
	cfg.Chain.PollInterval, cfg.Chain.MaxLag, cfg.Chain.MaxHeadAge = 100*time.Millisecond, 700*time.Millisecond, 0
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := server.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)

	check := func(balance int64) int {
		sig, _ := rdn.Balance{Receiver: senderAddr, OpenBlock: openBlock, Balance: big.NewInt(balance), Contract: d.Channels}.Sign(sender)
		raw := fmt.Sprintf(`{"attributes":{"request":{"http":{"method":"GET","path":"/echofix/x","host":"h","headers":{
			":method":"GET",":path":"/echofix/x",":authority":"h","rdn-sender-address":%q,"rdn-open-block":"%d",
			"rdn-balance":"%d","rdn-balance-signature":%q}}}}}`, senderAddr.Hex(), openBlock, balance, hexutil.Encode(sig[:]))
		var req authv3.CheckRequest
		if err := protojson.Unmarshal([]byte(raw), &req); err != nil {
			t.Fatal(err)
		}
		resp, err := client.Check(context.Background(), &req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus().GetCode() == 0 {
			return 200
		}
		return int(resp.GetDeniedResponse().GetStatus().GetCode())
	}

	var mu sync.Mutex
	counts := map[int]int{}
	var balance int64
	phase := "before"
	seen := map[string]map[int]int{"before": {}, "down": {}, "after": {}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			status := check(balance + 5)
			mu.Lock()
			if status == 200 {
				balance += 5 // only an accepted proof moves the client on
			}
			counts[status]++
			seen[phase][status]++
			mu.Unlock()
		}
	}()
	waitFor := func(p string, status int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			mu.Lock()
			n := seen[p][status]
			mu.Unlock()
			if n > 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no %d in phase %s within %s: %v", status, p, within, seen)
	}
	waitFor("before", 200, 5*time.Second)

	node.Stop()
	mu.Lock()
	phase = "down"
	mu.Unlock()
	waitFor("down", 502, 10*time.Second)

	node.Start()
	mu.Lock()
	phase = "after"
	mu.Unlock()
	waitFor("after", 200, 15*time.Second)
	close(stop)
	<-done

	mu.Lock()
	defer mu.Unlock()
	if counts[402] != 0 {
		t.Errorf("%d payments answered 402: %v", counts[402], seen)
	}
	ch, err := srv.Ledger.Channel(rdn.ChannelID{Sender: senderAddr, OpenBlock: openBlock})
	if err != nil || ch == nil {
		t.Fatal(err)
	}
	if ch.Charged.Int64() != int64(counts[200])*5 || ch.Balance.Int64() != balance {
		t.Errorf("charged %s, balance %s; %d requests served at 5 (client balance %d)", ch.Charged, ch.Balance, counts[200], balance)
	}
	t.Logf("statuses: %v", seen)
}
