package chain_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/dev/devtools"
)

func deployOnAnvil(t *testing.T, node *devtools.AnvilNode, p chain.DeployParams) chain.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ec, err := ethclient.DialContext(ctx, node.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	key, _ := crypto.HexToECDSA(devtools.AnvilKey)
	d, err := chain.Deploy(ctx, ec, key, p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var testToken = chain.TokenParams{Name: "Test", Symbol: "TST", Decimals: 18, Supply: big.NewInt(1e18)}

// Against a real node (anvil): deploy, then dial over HTTP, WebSocket and IPC.
func TestDeployAndDialAnvil(t *testing.T) {
	node := devtools.StartAnvil(t)
	d := deployOnAnvil(t, node, chain.DeployParams{ChallengePeriod: 600, NewToken: testToken})
	if !d.TokenDeployed || d.ChainID != devtools.AnvilChainID || d.ChannelsBlock == 0 {
		t.Errorf("deployment: %+v", d)
	}
	for _, url := range []string{node.HTTP, node.WS, node.IPC} {
		c, err := chain.Dial(t.Context(), url, chain.Expect{ChainID: devtools.AnvilChainID, Contract: d.Channels})
		if err != nil {
			t.Errorf("Dial %s: %v", url, err)
			continue
		}
		if c.Contract.Token != d.Token || c.Contract.ChallengePeriod != 600 || !c.Contract.Ours {
			t.Errorf("%s: contract %+v", url, c.Contract)
		}
		c.Close()
	}

	// A second channel contract on the existing token.
	d2 := deployOnAnvil(t, node, chain.DeployParams{ChallengePeriod: 500, Token: d.Token})
	if d2.TokenDeployed || d2.Token != d.Token || d2.Channels == d.Channels {
		t.Errorf("deployment on an existing token: %+v", d2)
	}
}

func TestDialRefusesWrongChainOrContract(t *testing.T) {
	node := devtools.StartAnvil(t)
	d := deployOnAnvil(t, node, chain.DeployParams{ChallengePeriod: 500, NewToken: testToken})
	for _, tc := range []struct {
		name   string
		want   chain.Expect
		errIs  error
		errHas string
	}{
		{"wrong chain id", chain.Expect{ChainID: 1, Contract: d.Channels}, nil, "chain id is 31337, configured 1"},
		{"no address", chain.Expect{ChainID: devtools.AnvilChainID}, contracts.ErrNoContract, "no contract address configured"},
		{"an account", chain.Expect{Contract: common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")}, contracts.ErrNoContract, "has no code"},
		{"the token", chain.Expect{Contract: d.Token}, contracts.ErrNoContract, "lacks"},
	} {
		_, err := chain.Dial(t.Context(), node.HTTP, tc.want)
		if err == nil || (tc.errIs != nil && !errors.Is(err, tc.errIs)) || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.errHas)
		}
	}
	if _, err := chain.Dial(t.Context(), "http://127.0.0.1:1", chain.Expect{Contract: d.Channels}); err == nil {
		t.Error("dialing a closed port succeeded")
	}
}

func TestDeployRefusesBadParams(t *testing.T) {
	node := devtools.StartAnvil(t)
	ec, err := ethclient.Dial(node.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	key, _ := crypto.HexToECDSA(devtools.AnvilKey)
	for name, p := range map[string]chain.DeployParams{
		"short challenge period": {ChallengePeriod: contracts.MinChallengePeriod - 1, NewToken: testToken},
		"token without code":     {ChallengePeriod: 500, Token: common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")},
		"token without name":     {ChallengePeriod: 500, NewToken: chain.TokenParams{Symbol: "X", Supply: big.NewInt(1)}},
	} {
		if _, err := chain.Deploy(t.Context(), ec, key, p); err == nil {
			t.Errorf("%s: deployed", name)
		}
	}
}
