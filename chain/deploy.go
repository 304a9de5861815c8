package chain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/uraiden/uraiden/contracts"
)

// TokenParams describes a new test token (UraidenTestToken) to deploy.
type TokenParams struct {
	Name     string
	Symbol   string
	Decimals uint8
	// Supply is minted to the deployer, in base units.
	Supply *big.Int
}

// DeployParams says what to deploy.
type DeployParams struct {
	ChallengePeriod uint32
	// Token is an existing ERC20 token; when zero, a new test token is deployed from NewToken.
	Token    common.Address
	NewToken TokenParams
	// TrustedContracts may open and top up channels on behalf of senders.
	TrustedContracts []common.Address
}

// Deployment is the result of Deploy.
type Deployment struct {
	ChainID       uint64
	Token         common.Address
	TokenDeployed bool
	Channels      common.Address
	ChannelsBlock uint64
	Deployer      common.Address
}

// Deploy deploys the channel contract (and a test token unless one is given), waits for the
// receipts and checks that the code on chain is the code that was sent.
func Deploy(ctx context.Context, ec *ethclient.Client, key *ecdsa.PrivateKey, p DeployParams) (Deployment, error) {
	if p.ChallengePeriod < contracts.MinChallengePeriod {
		return Deployment{}, fmt.Errorf("challenge period must be at least %d blocks, got %d", contracts.MinChallengePeriod, p.ChallengePeriod)
	}
	chainID, err := ec.ChainID(ctx)
	if err != nil {
		return Deployment{}, fmt.Errorf("chain id: %w", err)
	}
	opts := bind.NewKeyedTransactor(key, chainID)
	opts.Context = ctx
	d := Deployment{ChainID: chainID.Uint64(), Token: p.Token, Deployer: opts.From}

	if d.Token == (common.Address{}) {
		t := p.NewToken
		if t.Name == "" || t.Symbol == "" || t.Supply == nil || t.Supply.Sign() < 0 {
			return Deployment{}, errors.New("a new token needs a name, a symbol and a non-negative supply")
		}
		ctor := contracts.NewUraidenTestToken().PackConstructor(t.Supply, t.Name, t.Decimals, t.Symbol)
		addr, _, err := deployAndVerify(ctx, ec, opts, contracts.TokenArtifact, ctor)
		if err != nil {
			return Deployment{}, fmt.Errorf("deploy token: %w", err)
		}
		d.Token, d.TokenDeployed = addr, true
	} else if code, err := ec.CodeAt(ctx, d.Token, nil); err != nil || len(code) == 0 {
		return Deployment{}, fmt.Errorf("token %s has no code (%v)", d.Token, err)
	}

	ctor := contracts.NewRaidenMicroTransferChannels().PackConstructor(d.Token, p.ChallengePeriod, p.TrustedContracts)
	addr, receipt, err := deployAndVerify(ctx, ec, opts, contracts.ChannelsArtifact, ctor)
	if err != nil {
		return Deployment{}, fmt.Errorf("deploy channel contract: %w", err)
	}
	d.Channels, d.ChannelsBlock = addr, receipt.BlockNumber.Uint64()
	return d, nil
}

func deployAndVerify(ctx context.Context, ec *ethclient.Client, opts *bind.TransactOpts, art *contracts.Artifact, ctor []byte) (common.Address, *types.Receipt, error) {
	addr, tx, err := bind.DeployContract(opts, art.Bytecode, ec, ctor)
	if err != nil {
		return common.Address{}, nil, err
	}
	receipt, err := contracts.WaitMined(ctx, ec, tx.Hash())
	if err != nil {
		return common.Address{}, nil, err
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		return common.Address{}, nil, fmt.Errorf("transaction %s reverted", tx.Hash())
	}
	code, err := ec.CodeAt(ctx, addr, receipt.BlockNumber)
	if err != nil {
		return common.Address{}, nil, fmt.Errorf("read deployed code: %w", err)
	}
	if !art.MatchesRuntime(code) {
		return common.Address{}, nil, fmt.Errorf("code at %s is not %s's runtime code", addr, art.ContractName)
	}
	return addr, receipt, nil
}
