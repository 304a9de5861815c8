// Package client is the sender's side of µRaiden: it opens, tops up, lists and closes
// payment channels on a node, keeps the balances it signed in a local store, and pays for
// HTTP requests through an http.RoundTripper (Transport) that answers a 402 with a balance
// proof.
//
// The chain is the authority on channels and the server on the last balance it accepted:
// the local store only saves round trips, and a client that lost it rebuilds its channels
// from the contract's events and resynchronizes its balances from the server's 402s.
package client

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/uraiden/uraiden/contracts"
)

// Config configures a Client.
type Config struct {
	// Node is a connected node; when nil, RPCURL is dialed (and closed by Close).
	Node   *ethclient.Client
	RPCURL string
	// Key is the sender's private key.
	Key *ecdsa.PrivateKey
	// Contract is the channel contract the client trusts: payment requests naming another
	// are refused.
	Contract common.Address
	// StorePath is the JSON file of channels and signed balances; empty keeps them in memory.
	StorePath string
	// FromBlock is where the channel listing starts reading events (the contract's
	// deployment block saves work on long chains).
	FromBlock uint64
	// ProofScheme is the scheme balance proofs and closes are signed in: "" or auto (typed
	// whenever the server offers it), eip712 or legacy.
	ProofScheme ProofScheme
	Logger      *slog.Logger
}

// Client is a sender's connection to a node and a channel contract. It is safe for
// concurrent use.
type Client struct {
	ec       *ethclient.Client
	ownsNode bool
	chainID  *big.Int
	key      *ecdsa.PrivateKey
	sender   common.Address
	contract contracts.Contract
	from     uint64
	scheme   ProofScheme
	log      *slog.Logger

	channelsABI *contracts.RaidenMicroTransferChannels
	tokenABI    *contracts.UraidenTestToken

	// txMu serializes transactions: each takes the next nonce and waits for its receipt.
	txMu sync.Mutex
	// mu guards store and every Channel in it.
	mu    sync.Mutex
	store *Store
}

// New connects to the node, verifies the contract and loads the store.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Key == nil {
		return nil, errors.New("client: no sender key")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProofScheme == "" {
		cfg.ProofScheme = ProofSchemeAuto
	}
	if _, err := ParseProofScheme(string(cfg.ProofScheme)); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{ec: cfg.Node, key: cfg.Key, sender: crypto.PubkeyToAddress(cfg.Key.PublicKey), from: cfg.FromBlock, scheme: cfg.ProofScheme,
		log: cfg.Logger, channelsABI: contracts.NewRaidenMicroTransferChannels(), tokenABI: contracts.NewUraidenTestToken()}
	if c.ec == nil {
		ec, err := ethclient.DialContext(ctx, cfg.RPCURL)
		if err != nil {
			return nil, fmt.Errorf("client: dial %s: %w", cfg.RPCURL, err)
		}
		c.ec, c.ownsNode = ec, true
	}
	if err := c.init(ctx, cfg); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) init(ctx context.Context, cfg Config) error {
	var err error
	if c.chainID, err = c.ec.ChainID(ctx); err != nil {
		return fmt.Errorf("client: chain id: %w", err)
	}
	if !c.chainID.IsUint64() || c.chainID.Sign() == 0 {
		// Typed proofs and close requests bind the chain id as a uint64.
		return fmt.Errorf("client: chain id %s out of range", c.chainID)
	}
	if c.contract, err = contracts.VerifyContract(ctx, c.ec, cfg.Contract); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if c.store, err = OpenStore(cfg.StorePath, c.sender, cfg.Contract); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// Close closes the node connection if New dialed it.
func (c *Client) Close() {
	if c.ownsNode && c.ec != nil {
		c.ec.Close()
	}
}

// Sender is the address that signs balances and owns the channels.
func (c *Client) Sender() common.Address { return c.sender }

// Contract is the verified channel contract.
func (c *Client) Contract() contracts.Contract { return c.contract }

// Node is the node connection.
func (c *Client) Node() *ethclient.Client { return c.ec }

// TokenBalance is the sender's token balance.
func (c *Client) TokenBalance(ctx context.Context) (*big.Int, error) {
	return contracts.TokenBalance(ctx, c.ec, c.contract.Token, c.sender)
}

// transact sends one transaction to `to` and waits for its successful receipt. gas 0 means
// estimate.
func (c *Client) transact(ctx context.Context, what string, to common.Address, data []byte, gas uint64) (*types.Receipt, error) {
	c.txMu.Lock()
	defer c.txMu.Unlock()
	opts := bind.NewKeyedTransactor(c.key, c.chainID)
	opts.Context, opts.GasLimit = ctx, gas
	tx, err := bind.Transact(bind.NewBoundContract(to, c.channelsABI.GetABI(), c.ec, c.ec, c.ec), opts, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	r, err := contracts.WaitMined(ctx, c.ec, tx.Hash())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return nil, fmt.Errorf("%s: transaction %s reverted", what, tx.Hash())
	}
	c.log.Debug("transaction mined", "what", what, "tx", tx.Hash(), "block", r.BlockNumber, "gas", r.GasUsed)
	return r, nil
}
