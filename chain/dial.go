package chain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
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

// Contract describes a verified channel contract.
type Contract struct {
	Address         common.Address
	Token           common.Address
	ChallengePeriod uint32
	// Ours is true when the runtime code is exactly this build of RaidenMicroTransferChannels;
	// false means another µRaiden-compatible contract (µRaiden's own, for instance).
	Ours bool
}

// Client is a connection to an Ethereum node serving a verified channel contract.
type Client struct {
	*ethclient.Client
	ChainID  *big.Int
	Contract Contract
}

// ErrNoContract is returned when the configured address holds no µRaiden-compatible contract.
var ErrNoContract = errors.New("no µRaiden channel contract at the configured address")

// Dial connects to a node by URL (http://, https://, ws://, wss:// or an IPC socket path) and
// verifies its chain id and the channel contract.
func Dial(ctx context.Context, url string, want Expect) (*Client, error) {
	ec, id, err := Connect(ctx, url, want.ChainID)
	if err != nil {
		return nil, err
	}
	contract, err := VerifyContract(ctx, ec, want.Contract)
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

// VerifyContract checks that addr holds a contract with the µRaiden 0.2.0 interface: every
// function selector is dispatched in its code, and token() names a contract.
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
	channels := contracts.NewRaidenMicroTransferChannels()
	var missing []string
	for _, m := range channels.GetABI().Methods {
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
		Ours:            contracts.ChannelsArtifact.MatchesRuntime(code),
	}, nil
}
