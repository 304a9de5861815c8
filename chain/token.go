package chain

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/uraiden/uraiden/contracts"
)

// TokenBalance reads owner's balance of an ERC20 token (balanceOf) at the latest block.
func TokenBalance(ctx context.Context, ec *ethclient.Client, token, owner common.Address) (*big.Int, error) {
	t := contracts.NewUraidenTestToken()
	bal, err := bind.Call(t.Instance(ec, token), &bind.CallOpts{Context: ctx}, t.PackBalanceOf(owner), t.UnpackBalanceOf)
	if err != nil {
		return nil, fmt.Errorf("token %s: balanceOf(%s): %w", token, owner, err)
	}
	return bal, nil
}
