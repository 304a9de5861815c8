// Package microraiden holds µRaiden's own channel contract, RaidenMicroTransferChannels of
// the 0.2.0 release, verbatim in src/ (where it comes from: src/README.md), and its artifact
// in build/, compiled as that release was (solc 0.4.17, optimizer off). Tests deploy it to
// show that uraiden serves existing µRaiden deployments, whose contract has none of the
// typed-proof functions. Only tests import this package.
//
// Rebuild the artifact with `go generate ./contracts/...`; a test fails when the committed one
// differs from a fresh build, or when a source differs from the release's.
package microraiden

//go:generate go run ../gen microraiden

import (
	"context"
	"crypto/ecdsa"
	_ "embed"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/uraiden/uraiden/contracts"
)

//go:embed build/RaidenMicroTransferChannels.json
var artifactJSON []byte

// Artifact is the committed artifact of µRaiden 0.2.0's RaidenMicroTransferChannels.
func Artifact() (*contracts.Artifact, error) {
	var a contracts.Artifact
	if err := json.Unmarshal(artifactJSON, &a); err != nil {
		return nil, fmt.Errorf("microraiden: artifact: %w", err)
	}
	return &a, nil
}

// ABI is the original contract's ABI, parsed.
func ABI() (abi.ABI, error) {
	a, err := Artifact()
	if err != nil {
		return abi.ABI{}, err
	}
	return abi.JSON(strings.NewReader(string(a.ABI)))
}

// Deployment is an original contract on a chain.
type Deployment struct {
	Address common.Address
	Block   uint64
}

// Deploy deploys µRaiden 0.2.0's contract from key for token, with a challenge period (the
// contract insists on at least 500 blocks) and trusted contracts, and checks that the code on
// chain is the artifact's. The constructor is packed with the original's ABI rather than
// uraiden's bindings, so that a difference between the two shows here, not as a wrong
// deployment.
func Deploy(ctx context.Context, ec *ethclient.Client, key *ecdsa.PrivateKey, token common.Address, challengePeriod uint32, trusted ...common.Address) (Deployment, error) {
	art, err := Artifact()
	if err != nil {
		return Deployment{}, err
	}
	parsed, err := ABI()
	if err != nil {
		return Deployment{}, err
	}
	if trusted == nil {
		trusted = []common.Address{}
	}
	ctor, err := parsed.Pack("", token, challengePeriod, trusted)
	if err != nil {
		return Deployment{}, fmt.Errorf("microraiden: constructor: %w", err)
	}
	chainID, err := ec.ChainID(ctx)
	if err != nil {
		return Deployment{}, fmt.Errorf("microraiden: chain id: %w", err)
	}
	opts := bind.NewKeyedTransactor(key, chainID)
	opts.Context = ctx
	addr, tx, err := bind.DeployContract(opts, art.Bytecode, ec, ctor)
	if err != nil {
		return Deployment{}, fmt.Errorf("microraiden: deploy: %w", err)
	}
	receipt, err := contracts.WaitMined(ctx, ec, tx.Hash())
	if err != nil {
		return Deployment{}, err
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		return Deployment{}, fmt.Errorf("microraiden: deployment %s reverted", tx.Hash())
	}
	code, err := ec.CodeAt(ctx, addr, receipt.BlockNumber)
	if err != nil {
		return Deployment{}, fmt.Errorf("microraiden: read deployed code: %w", err)
	}
	if !art.MatchesRuntime(code) {
		return Deployment{}, fmt.Errorf("microraiden: code at %s is not µRaiden 0.2.0's runtime code", addr)
	}
	return Deployment{Address: addr, Block: receipt.BlockNumber.Uint64()}, nil
}

// OpenChannel opens a channel from key's account to receiver with deposit tokens as µRaiden
// 0.2.0's senders did without ERC223: approve, then createChannel, both packed with the
// original ABI. It returns the channel's open block. The original refuses deposits above
// its channel_deposit_bugbounty_limit, 100 tokens of 18 decimals.
func OpenChannel(ctx context.Context, ec *ethclient.Client, key *ecdsa.PrivateKey, d Deployment, token, receiver common.Address, deposit *big.Int) (uint32, error) {
	parsed, err := ABI()
	if err != nil {
		return 0, err
	}
	create, err := parsed.Pack("createChannel", receiver, deposit)
	if err != nil {
		return 0, fmt.Errorf("microraiden: createChannel: %w", err)
	}
	approve := contracts.NewUraidenTestToken().PackApprove(d.Address, deposit)
	var receipt *types.Receipt
	for _, call := range []struct {
		to   common.Address
		data []byte
	}{{token, approve}, {d.Address, create}} {
		if receipt, err = Transact(ctx, ec, key, call.to, call.data); err != nil {
			return 0, err
		}
	}
	return uint32(receipt.BlockNumber.Uint64()), nil
}

// Transact sends a call from key's account, waits for it to be mined and fails when it
// reverted.
func Transact(ctx context.Context, ec *ethclient.Client, key *ecdsa.PrivateKey, to common.Address, data []byte) (*types.Receipt, error) {
	chainID, err := ec.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("microraiden: chain id: %w", err)
	}
	opts := bind.NewKeyedTransactor(key, chainID)
	opts.Context = ctx
	tx, err := bind.NewBoundContract(to, abi.ABI{}, ec, ec, ec).RawTransact(opts, data)
	if err != nil {
		return nil, fmt.Errorf("microraiden: call %s: %w", to, err)
	}
	receipt, err := contracts.WaitMined(ctx, ec, tx.Hash())
	if err != nil {
		return nil, err
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		return nil, fmt.Errorf("microraiden: call %s: transaction %s reverted", to, tx.Hash())
	}
	return receipt, nil
}
