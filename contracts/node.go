package contracts

// What the sender and the receiver read from a node about the contracts: whether an address
// holds a µRaiden channel contract, token balances, and the receipts of their transactions.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
)

// TokenBalance reads owner's balance of an ERC20 token (balanceOf) at the latest block.
func TokenBalance(ctx context.Context, ec *ethclient.Client, token, owner common.Address) (*big.Int, error) {
	t := NewUraidenTestToken()
	bal, err := bind.Call(t.Instance(ec, token), &bind.CallOpts{Context: ctx}, t.PackBalanceOf(owner), t.UnpackBalanceOf)
	if err != nil {
		return nil, fmt.Errorf("token %s: balanceOf(%s): %w", token, owner, err)
	}
	return bal, nil
}

// Contract describes a verified channel contract.
type Contract struct {
	Address         common.Address
	Token           common.Address
	ChallengePeriod uint32
	// Ours is true when the runtime code is exactly this build of RaidenMicroTransferChannels;
	// false means another µRaiden-compatible contract (µRaiden's own, for instance).
	Ours bool
}

// ErrNoContract is returned when the configured address holds no µRaiden-compatible contract.
var ErrNoContract = errors.New("no µRaiden channel contract at the configured address")

// VerifyContract checks that addr holds a contract with the µRaiden 0.2.0 interface: every
// function selector is dispatched in its code, and token() names a contract. The typed-proof
// functions (TypedMethods) are not required: µRaiden's own contract has none of them.
func VerifyContract(ctx context.Context, ec *ethclient.Client, addr common.Address) (Contract, error) {
	if addr == (common.Address{}) {
		return Contract{}, fmt.Errorf("%w: no contract address configured", ErrNoContract)
	}
	code, err := ec.CodeAt(ctx, addr, nil)
	if err != nil {
		return Contract{}, fmt.Errorf("read code at %s: %w", addr, err)
	}
	if len(code) == 0 {
		return Contract{}, fmt.Errorf("%w: %s has no code", ErrNoContract, addr)
	}
	channels := NewRaidenMicroTransferChannels()
	var missing []string
	for name, m := range channels.GetABI().Methods {
		if slices.Contains(TypedMethods, name) {
			continue
		}
		// Solidity's dispatcher compares the selector with PUSH4 <selector>.
		if !bytes.Contains(code, append([]byte{0x63}, m.ID...)) {
			missing = append(missing, m.Sig)
		}
	}
	if len(missing) > 0 {
		return Contract{}, fmt.Errorf("%w: %s lacks %s", ErrNoContract, addr, strings.Join(missing, ", "))
	}
	bound := channels.Instance(ec, addr)
	opts := &bind.CallOpts{Context: ctx}
	token, err := bind.Call(bound, opts, channels.PackToken(), channels.UnpackToken)
	if err != nil {
		return Contract{}, fmt.Errorf("%w: %s: token(): %v", ErrNoContract, addr, err)
	}
	period, err := bind.Call(bound, opts, channels.PackChallengePeriod(), channels.UnpackChallengePeriod)
	if err != nil {
		return Contract{}, fmt.Errorf("%w: %s: challenge_period(): %v", ErrNoContract, addr, err)
	}
	tokenCode, err := ec.CodeAt(ctx, token, nil)
	if err != nil {
		return Contract{}, fmt.Errorf("read code of token %s: %w", token, err)
	}
	if len(tokenCode) == 0 {
		return Contract{}, fmt.Errorf("%w: its token %s has no code", ErrNoContract, token)
	}
	return Contract{
		Address:         addr,
		Token:           token,
		ChallengePeriod: period,
		Ours:            ChannelsArtifact.MatchesRuntime(code),
	}, nil
}

// WaitMined polls for a transaction's receipt until it is mined or ctx ends. It starts fast,
// for dev chains that mine on demand, and backs off to once a second. Errors other than "not
// found" are retried too: nodes answer transient ones ("transaction indexing is in progress").
func WaitMined(ctx context.Context, ec bind.DeployBackend, hash common.Hash) (*types.Receipt, error) {
	delay := 20 * time.Millisecond
	for {
		receipt, err := ec.TransactionReceipt(ctx, hash)
		if err == nil {
			return receipt, nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(err, ethereum.NotFound) {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("wait for %s: %w", hash, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}
