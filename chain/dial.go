package chain

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/uraiden/uraiden/contracts"
)

// Expect is what a node must serve for uraiden to use it.
type Expect struct {
	// ChainID, when non-zero, must equal the node's chain id.
	ChainID uint64
	// Contract is the address of the channel contract.
	Contract common.Address
}

// Client is a connection to an Ethereum node serving a verified channel contract.
type Client struct {
	*ethclient.Client
	ChainID  *big.Int
	Contract contracts.Contract
}

// Dial connects to a node by URL (http://, https://, ws://, wss:// or an IPC socket path) and
// verifies its chain id and the channel contract.
func Dial(ctx context.Context, url string, want Expect) (*Client, error) {
	ec, id, err := Connect(ctx, url, want.ChainID)
	if err != nil {
		return nil, err
	}
	contract, err := contracts.VerifyContract(ctx, ec, want.Contract)
	if err != nil {
		ec.Close()
		return nil, fmt.Errorf("node %s: %w", url, err)
	}
	return &Client{Client: ec, ChainID: id, Contract: contract}, nil
}

// Connect dials a node and, when wantChainID is not zero, checks its chain id.
func Connect(ctx context.Context, url string, wantChainID uint64) (*ethclient.Client, *big.Int, error) {
	ec, err := ethclient.DialContext(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", url, err)
	}
	id, err := ec.ChainID(ctx)
	if err != nil {
		ec.Close()
		return nil, nil, fmt.Errorf("node %s: chain id: %w", url, err)
	}
	if wantChainID != 0 && (!id.IsUint64() || id.Uint64() != wantChainID) {
		ec.Close()
		return nil, nil, fmt.Errorf("node %s: chain id is %s, configured %d", url, id, wantChainID)
	}
	return ec, id, nil
}
