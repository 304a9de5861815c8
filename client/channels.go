package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// OpenOptions say how to fund a channel.
type OpenOptions struct {
	// ERC20 uses approve + createChannel (two transactions) instead of the token's ERC223
	// transfer with data (one), for tokens without ERC223.
	ERC20 bool
}

// Open creates a channel to receiver with deposit and waits for it to be mined.
func (c *Client) Open(ctx context.Context, receiver common.Address, deposit *big.Int, o OpenOptions) (Channel, error) {
	if deposit == nil || deposit.Sign() <= 0 {
		return Channel{}, errors.New("open: the deposit must be positive")
	}
	data := append(c.sender.Bytes(), receiver.Bytes()...)
	receipt, err := c.fund(ctx, "open channel", deposit, data, func() []byte {
		return c.channelsABI.PackCreateChannel(receiver, deposit)
	}, o)
	if err != nil {
		return Channel{}, err
	}
	ch := &Channel{Receiver: receiver, OpenBlock: uint32(receipt.BlockNumber.Uint64()), Deposit: new(big.Int).Set(deposit),
		Balance: new(big.Int), State: StateOpen}
	c.log.Info("channel opened", "receiver", receiver, "open_block", ch.OpenBlock, "deposit", deposit)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.store.Channels[ch.Key()] = ch
	return ch.clone(), c.store.Save()
}

// TopUp adds amount to an open channel's deposit.
func (c *Client) TopUp(ctx context.Context, receiver common.Address, openBlock uint32, amount *big.Int, o OpenOptions) (Channel, error) {
	if amount == nil || amount.Sign() <= 0 {
		return Channel{}, errors.New("top up: the amount must be positive")
	}
	data := binary.BigEndian.AppendUint32(append(c.sender.Bytes(), receiver.Bytes()...), openBlock)
	if _, err := c.fund(ctx, "top up", amount, data, func() []byte {
		return c.channelsABI.PackTopUp(receiver, openBlock, amount)
	}, o); err != nil {
		return Channel{}, err
	}
	c.log.Info("channel topped up", "receiver", receiver, "open_block", openBlock, "added", amount)
	return c.Refresh(ctx, receiver, openBlock)
}

// fund sends tokens to the contract: ERC223 transfer with data, or approve then call.
func (c *Client) fund(ctx context.Context, what string, amount *big.Int, data []byte, call func() []byte, o OpenOptions) (*types.Receipt, error) {
	if !o.ERC20 {
		return c.transact(ctx, what, c.contract.Token, c.tokenABI.PackTransfer0(c.contract.Address, amount, data), 0)
	}
	if _, err := c.transact(ctx, what+": approve", c.contract.Token, c.tokenABI.PackApprove(c.contract.Address, amount), 0); err != nil {
		return nil, err
	}
	return c.transact(ctx, what, c.contract.Address, call(), 0)
}

// ChainInfo is a channel as the contract holds it.
type ChainInfo struct {
	Exists         bool
	Deposit        *big.Int
	SettleBlock    uint32
	ClosingBalance *big.Int
	Withdrawn      *big.Int
}

// Info reads a channel from the contract. A channel that does not exist (never created,
// settled or closed cooperatively) has Exists false.
func (c *Client) Info(ctx context.Context, receiver common.Address, openBlock uint32) (ChainInfo, error) {
	// The creation event may be seen before the state at the latest block: read the latest.
	out, err := bind.Call(c.channelsABI.Instance(c.ec, c.contract.Address), &bind.CallOpts{Context: ctx},
		c.channelsABI.PackGetChannelInfo(c.sender, receiver, openBlock), c.channelsABI.UnpackGetChannelInfo)
	if err != nil {
		if isRevert(err) {
			return ChainInfo{}, nil
		}
		return ChainInfo{}, fmt.Errorf("getChannelInfo: %w", err)
	}
	return ChainInfo{Exists: true, Deposit: out.Arg1, SettleBlock: out.Arg2, ClosingBalance: out.Arg3, Withdrawn: out.Arg4}, nil
}

// isRevert tells a reverted call (the contract's answer) from a failure to ask.
func isRevert(err error) bool {
	var de interface{ ErrorData() any }
	return errors.As(err, &de) || containsAny(err.Error(), "revert", "execution reverted")
}

// Refresh updates one stored channel from the contract (adding it if the store lacks it)
// and returns it.
func (c *Client) Refresh(ctx context.Context, receiver common.Address, openBlock uint32) (Channel, error) {
	info, err := c.Info(ctx, receiver, openBlock)
	if err != nil {
		return Channel{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.stored(receiver, openBlock)
	applyInfo(ch, info)
	return ch.clone(), c.store.Save()
}

// stored returns the store's channel, adding an empty one. Called with c.mu held.
func (c *Client) stored(receiver common.Address, openBlock uint32) *Channel {
	probe := &Channel{Receiver: receiver, OpenBlock: openBlock}
	if ch, ok := c.store.Channels[probe.Key()]; ok {
		return ch
	}
	probe.Deposit, probe.Balance, probe.State = new(big.Int), new(big.Int), StateOpen
	c.store.Channels[probe.Key()] = probe
	return probe
}

func applyInfo(ch *Channel, info ChainInfo) {
	switch {
	case !info.Exists:
		ch.State = StateClosed
	case info.SettleBlock != 0:
		ch.State, ch.SettleBlock = StateClosing, info.SettleBlock
		ch.Deposit.Set(info.Deposit)
	default:
		ch.State = StateOpen
		ch.Deposit.Set(info.Deposit)
	}
}

// Channels rebuilds the sender's channels from the chain (every ChannelCreated with the
// sender as topic 1, to receiver when it is not nil), reads their current deposit and state
// with getChannelInfo, merges them into the store, and returns every stored channel. The
// balances come from the store; a channel the store did not know starts at 0 and is
// resynchronized by the server's first 402 (RDN-Invalid-Amount).
func (c *Client) Channels(ctx context.Context, receiver *common.Address) ([]Channel, error) {
	created := c.channelsABI.GetABI().Events["ChannelCreated"].ID
	topics := [][]common.Hash{{created}, {common.BytesToHash(c.sender.Bytes())}}
	if receiver != nil {
		topics = append(topics, []common.Hash{common.BytesToHash(receiver.Bytes())})
	}
	logs, err := c.ec.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(c.from), Addresses: []common.Address{c.contract.Address}, Topics: topics,
	})
	if err != nil {
		return nil, fmt.Errorf("read ChannelCreated events: %w", err)
	}
	for _, l := range logs {
		if l.Removed || len(l.Topics) < 3 {
			continue
		}
		if _, err := c.Refresh(ctx, common.BytesToAddress(l.Topics[2].Bytes()), uint32(l.BlockNumber)); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Channel
	for _, ch := range c.store.sorted() {
		if receiver == nil || ch.Receiver == *receiver {
			out = append(out, ch.clone())
		}
	}
	return out, nil
}

// Channel returns the stored channel, if any.
func (c *Client) Channel(receiver common.Address, openBlock uint32) (Channel, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.store.Channels[(&Channel{Receiver: receiver, OpenBlock: openBlock}).Key()]
	if !ok {
		return Channel{}, false
	}
	return ch.clone(), true
}
