// Package devchain runs an Ethereum development chain inside the process: go-ethereum's
// node, Ethereum service and simulated beacon (the parts of its simulated backend), on
// today's mainnet rules, with a fixed set of funded development accounts and the token and
// channel contracts deployed. It mines a block as soon as a transaction arrives (and, if
// configured, on a fixed period) and serves JSON-RPC over HTTP and WebSocket on one loopback
// port, so that other processes (the CLI, a wallet, curl) can use it.
//
// The accounts' keys are derived from public strings: a dev chain holds nothing of value.
package devchain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/contracts"
)

// ChainID is the dev chain's chain id (go-ethereum's developer-mode id).
const ChainID = 1337

// Config configures a dev chain.
type Config struct {
	// Listen is the host:port of the JSON-RPC server (HTTP and WebSocket); empty serves none.
	Listen string
	// BlockPeriod, when positive, also mines a block on this period, so that confirmations
	// advance without traffic. Zero mines only when transactions arrive.
	BlockPeriod time.Duration
	// Accounts is how many funded development accounts to create (at least 1).
	Accounts int
	// ChallengePeriod of the channel contract, in blocks.
	ChallengePeriod uint32
	// LogRangeLimit, when positive, is the most blocks one eth_getLogs may span, as hosted
	// RPC providers cap it; a query to "latest" counts as unbounded and is refused. Zero:
	// no cap.
	LogRangeLimit uint64
	Logger        *slog.Logger
}

// Account is a funded development account.
type Account struct {
	Key     *ecdsa.PrivateKey
	Address common.Address
}

// The dev chain's token.
const (
	TokenSymbol   = "RDNDEV"
	TokenDecimals = 18
)

// Funding of every dev account.
var (
	AccountEther  = new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))
	AccountTokens = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether))
)

// Chain is a running dev chain.
type Chain struct {
	cfg        Config
	stack      *node.Node
	beacon     *catalyst.SimulatedBeacon
	client     *ethclient.Client
	accounts   []Account
	deployment chain.Deployment

	mineMu    sync.Mutex
	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// DevKey returns the key of dev account i, derived from a public string.
func DevKey(i int) *ecdsa.PrivateKey {
	key, err := crypto.ToECDSA(crypto.Keccak256([]byte("uraiden devchain account " + strconv.Itoa(i))))
	if err != nil {
		panic(err) // a keccak output out of the curve's range is not going to happen
	}
	return key
}

// Start builds the chain, starts mining and the RPC server, and deploys the contracts with
// account 0, which also receives the whole token supply before it is shared out.
func Start(ctx context.Context, cfg Config) (*Chain, error) {
	if cfg.Accounts < 1 {
		cfg.Accounts = 1
	}
	if cfg.ChallengePeriod == 0 {
		cfg.ChallengePeriod = contracts.MinChallengePeriod
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Chain{cfg: cfg, stop: make(chan struct{})}
	alloc := core.SystemContractAllocs()
	for i := range cfg.Accounts {
		key := DevKey(i)
		a := Account{Key: key, Address: crypto.PubkeyToAddress(key.PublicKey)}
		c.accounts = append(c.accounts, a)
		alloc[a.Address] = types.Account{Balance: new(big.Int).Set(AccountEther)}
	}
	if err := c.startNode(alloc); err != nil {
		return nil, err
	}
	if err := c.deploy(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Chain) startNode(alloc types.GenesisAlloc) error {
	nodeConf := node.DefaultConfig
	nodeConf.DataDir = ""
	nodeConf.P2P = p2p.Config{NoDiscovery: true, MaxPeers: 0, ListenAddr: ""}
	nodeConf.HTTPHost, nodeConf.WSHost = "", ""
	if c.cfg.Listen != "" {
		host, portText, err := net.SplitHostPort(c.cfg.Listen)
		if err != nil {
			return fmt.Errorf("devchain: listen address %q: %w", c.cfg.Listen, err)
		}
		port, err := strconv.Atoi(portText)
		if err != nil {
			return fmt.Errorf("devchain: listen port %q: %w", portText, err)
		}
		modules := []string{"eth", "net", "web3"}
		nodeConf.HTTPHost, nodeConf.HTTPPort, nodeConf.HTTPModules = host, port, modules
		nodeConf.WSHost, nodeConf.WSPort, nodeConf.WSModules = host, port, modules
		nodeConf.HTTPVirtualHosts = []string{"*"}
		nodeConf.HTTPCors = []string{"*"} // browser wallets and pages on other local ports
		nodeConf.WSOrigins = []string{"*"}
	}
	stack, err := node.New(&nodeConf)
	if err != nil {
		return fmt.Errorf("devchain: node: %w", err)
	}

	// Today's mainnet rules: go-ethereum's developer config also enables unreleased forks.
	config := *params.AllDevChainProtocolChanges
	config.BogotaTime = nil
	ethConf := ethconfig.Defaults
	ethConf.Genesis = &core.Genesis{Config: &config, GasLimit: ethconfig.Defaults.Miner.GasCeil, Alloc: maps.Clone(alloc)}
	ethConf.SyncMode = ethconfig.FullSync
	ethConf.TxPool.NoLocals = true
	backend, err := eth.New(stack, &ethConf)
	if err != nil {
		stack.Close()
		return fmt.Errorf("devchain: ethereum service: %w", err)
	}
	var filterConf filters.Config
	if c.cfg.LogRangeLimit > 0 {
		// go-ethereum caps to - from, and cannot cap a query at one block.
		filterConf.RangeLimit = max(c.cfg.LogRangeLimit-1, 1)
	}
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(filters.NewFilterSystem(backend.APIBackend, filterConf))}})
	if err := stack.Start(); err != nil {
		stack.Close()
		return fmt.Errorf("devchain: start node on %s: %w", c.cfg.Listen, err)
	}
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, backend)
	if err != nil {
		stack.Close()
		return fmt.Errorf("devchain: beacon: %w", err)
	}
	if err := beacon.Fork(backend.BlockChain().GetCanonicalHash(0)); err != nil {
		stack.Close()
		return fmt.Errorf("devchain: beacon: %w", err)
	}
	c.stack, c.beacon = stack, beacon
	c.client = ethclient.NewClient(stack.Attach())

	// The pool blocks while delivering an event, and Commit waits for the pool: so events are
	// drained by a goroutine that never commits, and it wakes the miner through a 1-slot
	// channel.
	txs := make(chan core.NewTxsEvent, 64)
	wake := make(chan struct{}, 1)
	sub := backend.TxPool().SubscribeTransactions(txs, false)
	c.done.Add(2)
	go func() {
		defer c.done.Done()
		defer sub.Unsubscribe()
		for {
			select {
			case <-c.stop:
				return
			case err := <-sub.Err():
				if err != nil {
					c.cfg.Logger.Error("devchain: transaction subscription ended; mining only on the period", "err", err)
				}
				return
			case <-txs:
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
	}()
	go c.mine(wake)
	return nil
}

// mine seals a block whenever transactions arrive, and on the configured period.
func (c *Chain) mine(wake <-chan struct{}) {
	defer c.done.Done()
	var tick <-chan time.Time
	if c.cfg.BlockPeriod > 0 {
		t := time.NewTicker(c.cfg.BlockPeriod)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-c.stop:
			return
		case <-wake:
			// Let a burst of transactions land in one block.
			time.Sleep(5 * time.Millisecond)
			c.Commit()
		case <-tick:
			c.Commit()
		}
	}
}

// Commit seals a block with the pending transactions, at once. After Close it does nothing.
func (c *Chain) Commit() common.Hash {
	c.mineMu.Lock()
	defer c.mineMu.Unlock()
	select {
	case <-c.stop:
		return common.Hash{}
	default:
	}
	return c.beacon.Commit()
}

func (c *Chain) deploy(ctx context.Context) error {
	owner := c.accounts[0]
	supply := new(big.Int).Mul(AccountTokens, big.NewInt(int64(len(c.accounts))))
	d, err := chain.Deploy(ctx, c.client, owner.Key, chain.DeployParams{
		ChallengePeriod: c.cfg.ChallengePeriod,
		NewToken:        chain.TokenParams{Name: "uraiden dev token", Symbol: TokenSymbol, Decimals: TokenDecimals, Supply: supply},
	})
	if err != nil {
		return fmt.Errorf("devchain: %w", err)
	}
	c.deployment = d
	return c.fundTokens(ctx)
}

// fundTokens gives every other account its share of the supply.
func (c *Chain) fundTokens(ctx context.Context) error {
	owner := c.accounts[0]
	token := contracts.NewUraidenTestToken()
	signer := types.LatestSignerForChainID(big.NewInt(ChainID))
	nonce, err := c.client.PendingNonceAt(ctx, owner.Address)
	if err != nil {
		return fmt.Errorf("devchain: nonce: %w", err)
	}
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("devchain: head: %w", err)
	}
	var sent []common.Hash
	for i, a := range c.accounts[1:] {
		tx, err := types.SignNewTx(owner.Key, signer, &types.DynamicFeeTx{
			ChainID: big.NewInt(ChainID), Nonce: nonce + uint64(i), To: &c.deployment.Token, Gas: 100_000,
			GasTipCap: big.NewInt(params.GWei), GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), big.NewInt(params.GWei)),
			Data: token.PackTransfer(a.Address, AccountTokens),
		})
		if err != nil {
			return err
		}
		if err := c.client.SendTransaction(ctx, tx); err != nil {
			return fmt.Errorf("devchain: fund %s: %w", a.Address, err)
		}
		sent = append(sent, tx.Hash())
	}
	for _, hash := range sent {
		r, err := contracts.WaitMined(ctx, c.client, hash)
		if err != nil {
			return fmt.Errorf("devchain: fund accounts: %w", err)
		}
		if r.Status != types.ReceiptStatusSuccessful {
			return fmt.Errorf("devchain: funding transfer %s reverted", hash)
		}
	}
	return nil
}

// Client returns an in-process client of the chain.
func (c *Chain) Client() *ethclient.Client { return c.client }

// Accounts returns the funded development accounts; account 0 deployed the contracts.
func (c *Chain) Accounts() []Account { return c.accounts }

// Deployment returns the addresses of the deployed token and channel contract.
func (c *Chain) Deployment() chain.Deployment { return c.deployment }

// HTTPEndpoint returns the URL of the JSON-RPC server, or "" when none is served.
func (c *Chain) HTTPEndpoint() string { return c.stack.HTTPEndpoint() }

// WSEndpoint returns the WebSocket URL of the JSON-RPC server, or "" when none is served.
func (c *Chain) WSEndpoint() string { return c.stack.WSEndpoint() }

// Close stops mining and the node. It may be called more than once.
func (c *Chain) Close() error {
	c.closeOnce.Do(func() {
		c.mineMu.Lock()
		close(c.stop)
		c.mineMu.Unlock()
		c.done.Wait()
		if c.client != nil {
			c.client.Close()
		}
		c.closeErr = errors.Join(c.beacon.Stop(), c.stack.Close())
	})
	return c.closeErr
}
