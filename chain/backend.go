package chain

import (
	"crypto/ecdsa"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/uraiden/uraiden/keys"
)

// The node interfaces of the package's long-running parts. Each is composed from
// go-ethereum's own interfaces and names only what its part calls, so that an
// *ethclient.Client, go-ethereum's simulated client (ethclient/simulated.Client) or a test's
// fake can serve it.

// WatcherBackend is what a Watcher asks of a node.
type WatcherBackend interface {
	// HeaderByNumber for the head, confirmations and reorganizations; SubscribeNewHead to
	// look at the chain on every new block.
	ethereum.ChainReader
	// FilterLogs for the contract's events.
	ethereum.LogFilterer
	// BalanceAt for the receiver's ETH; CodeAt with CallContract for getChannelInfo.
	ethereum.ChainStateReader
	ethereum.ContractCaller
}

// WatchtowerBackend is what a Watchtower asks of a node.
type WatchtowerBackend interface {
	// HeaderByNumber, EstimateGas, SuggestGasTipCap, PendingNonceAt and SendTransaction to
	// send a dispute and bump its fees.
	bind.ContractTransactor
	// NonceAt and BalanceAt: whether a dispute's nonce was used, whether the receiver can pay.
	ethereum.ChainStateReader
	// TransactionReceipt and TransactionByHash: how a dispute, or a settlement, ended.
	ethereum.TransactionReader
	// FilterLogs for a channel's settlement.
	ethereum.LogFilterer
}

// ReceiverBackend is what a Receiver asks of a node.
type ReceiverBackend interface {
	// CallContract and CodeAt for getChannelInfo.
	bind.ContractCaller
	// HeaderByNumber, SuggestGasTipCap, PendingNonceAt, EstimateGas and SendTransaction to
	// send a batch.
	bind.ContractTransactor
	// TransactionReceipt, to wait for a batch to be mined (WaitMined).
	bind.DeployBackend
}

var (
	_ WatcherBackend    = (*ethclient.Client)(nil)
	_ WatchtowerBackend = (*ethclient.Client)(nil)
	_ ReceiverBackend   = (*ethclient.Client)(nil)
)

// Account is the receiver's account on the channel contract, as the parts that send its
// transactions (Receiver, Watchtower) hold it.
type Account struct {
	ChainID  *big.Int
	Contract common.Address
	// Key is the receiver's: it signs closing messages and the transactions, and pays the gas.
	// It never prints.
	Key keys.Secret[*ecdsa.PrivateKey]
	// MaxFeeCap caps what a transaction may pay per gas, in wei: 500 gwei when nil.
	MaxFeeCap *big.Int
}

// withDefaults returns a with its defaults filled in.
func (a Account) withDefaults() Account {
	if a.MaxFeeCap == nil {
		a.MaxFeeCap = new(big.Int).Mul(big.NewInt(500), big.NewInt(params.GWei))
	}
	return a
}

// address is the account's address.
func (a Account) address() common.Address { return crypto.PubkeyToAddress(a.Key.Reveal().PublicKey) }

// signer signs the account's transactions on its chain.
func (a Account) signer() types.Signer { return types.LatestSignerForChainID(a.ChainID) }
