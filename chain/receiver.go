package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	Client ReceiverBackend
	// Account signs and pays for the transactions.
	Account
	Logger *slog.Logger
}

// Receiver sends the receiver's own transactions on its channels: cooperative closes, which
// settle a channel at the sender's latest balance proof, and withdrawals, which take the
// earned tokens out of an open channel. A batch goes out with consecutive nonces and
// EIP-1559 fees under a cap, then every receipt is awaited and read for the tokens received
// and the gas paid. Unlike the watchtower it keeps no state: a batch is sent once, by an
// operator who sees the outcome.
type Receiver struct {
	cfg     ReceiverConfig
	abi     *contracts.RaidenMicroTransferChannels
	address common.Address
	signer  types.Signer
}

// Claim is a balance proof the receiver holds on a channel: what it can take on chain.
type Claim struct {
	Channel rdn.ChannelID
	// Balance and BalanceSignature are the sender's proof.
	Balance          *big.Int
	BalanceSignature rdn.Signature
	// ClosingSignature is the receiver's closing signature for Balance, for CooperativeClose
	// only. The caller gets it through ledger.CloseCooperatively, so that the ledger refuses
	// payments above Balance before the signature leaves the process.
	ClosingSignature rdn.Signature
	// Scheme is BalanceSignature's scheme (the ledger's Channel.Scheme); it picks the
	// contract function, and ClosingSignature must be in it too: the typed functions check
	// both signatures as typed, the legacy ones both as legacy.
	Scheme rdn.Scheme
}

// Result is the outcome of one claim's transaction.
type Result struct {
	Claim Claim
	// Function is the contract function called (cooperativeClose or cooperativeCloseTyped,
	// withdraw or withdrawTyped: the claim's scheme picks it); empty when nothing was packed.
	Function string
	// Tx is the transaction sent, zero when none was.
	Tx    common.Hash
	Block uint64
	// Tokens is what the receiver got, in token base units: ChannelSettled's
	// _receiver_tokens, or ChannelWithdraw's _withdrawn_balance.
	Tokens *big.Int
	// GasUsed and Fee (GasUsed × effective gas price, in wei) are what the mined transaction
	// cost, reverted or not.
	GasUsed uint64
	Fee     *big.Int
	// Err says why the claim brought nothing; nil on success.
	Err error
}

// Errors of a Result.
var (
	// ErrReverted: the transaction reverted on chain, or would have (gas estimation failed
	// with a revert, and nothing was sent).
	ErrReverted = errors.New("transaction reverted")
	// ErrFeeAboveCap: the base fee is above the fee cap, so no transaction would be mined.
	ErrFeeAboveCap = errors.New("the base fee is above the fee cap")
)

// NewReceiver returns a Receiver.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	cfg.Account = cfg.Account.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Receiver{
		cfg: cfg, abi: contracts.NewRaidenMicroTransferChannels(),
		address: cfg.address(), signer: cfg.signer(),
	}
}

// Address is the receiver's account.
func (r *Receiver) Address() common.Address { return r.address }

// SignClose signs the receiver's closing message for a channel at a balance in a scheme; it
// is a ledger.CloseSigner.
func (r *Receiver) SignClose(id rdn.ChannelID, balance *big.Int, scheme rdn.Scheme) (rdn.Signature, error) {
	return rdn.Closing{Sender: id.Sender, OpenBlock: id.OpenBlock, Balance: balance, Contract: r.cfg.Contract,
		Scheme: scheme, ChainID: r.cfg.ChainID.Uint64()}.Sign(r.cfg.Key.Reveal())
}

// ChannelInfo reads a channel's current state from the contract; Exists is false for a
// channel it does not hold (never created, or settled).
func (r *Receiver) ChannelInfo(ctx context.Context, id rdn.ChannelID) (ledger.ChainChannel, error) {
	info, ok, err := channelInfo(ctx, r.cfg.Client, r.cfg.Contract, r.address, id, nil)
	if err != nil || !ok {
		return ledger.ChainChannel{ID: id}, err
	}
	return ledger.ChainChannel{ID: id, Exists: true, Deposit: info.Arg1, SettleBlock: uint64(info.Arg2),
		ClosingBalance: info.Arg3, Withdrawn: info.Arg4}, nil
}

// CooperativeClose sends cooperativeClose for every claim (each needs its ClosingSignature),
// cooperativeCloseTyped for a typed one, and waits for the receipts; Tokens is what each
// settlement paid the receiver.
func (r *Receiver) CooperativeClose(ctx context.Context, claims []Claim) []Result {
	return r.submit(ctx, claims, operation{
		pack: func(c Claim) (string, []byte, error) {
			if c.ClosingSignature == (rdn.Signature{}) {
				return "", nil, errors.New("no closing signature")
			}
			return packCooperativeClose(r.abi, c.Scheme, r.address, c.Channel.OpenBlock, c.Balance, c.BalanceSignature, c.ClosingSignature)
		},
		tokens: func(l *types.Log, id rdn.ChannelID) (*big.Int, bool) {
			ev, err := r.abi.UnpackChannelSettledEvent(l)
			if err != nil || ev.SenderAddress != id.Sender || ev.OpenBlockNumber != id.OpenBlock || ev.ReceiverAddress != r.address {
				return nil, false
			}
			return ev.ReceiverTokens, true
		},
	})
}

// Withdraw sends withdraw for every claim (withdrawTyped for a typed one) and waits for the
// receipts; Tokens is what each withdrawal paid out (the proof's balance less what was
// withdrawn before).
func (r *Receiver) Withdraw(ctx context.Context, claims []Claim) []Result {
	return r.submit(ctx, claims, operation{
		pack: func(c Claim) (string, []byte, error) {
			switch c.Scheme {
			case rdn.SchemeLegacy:
				return "withdraw", r.abi.PackWithdraw(c.Channel.OpenBlock, c.Balance, c.BalanceSignature[:]), nil
			case rdn.SchemeTyped:
				return "withdrawTyped", r.abi.PackWithdrawTyped(c.Channel.OpenBlock, c.Balance, c.BalanceSignature[:]), nil
			}
			return "", nil, fmt.Errorf("withdraw: %w, got %s", rdn.ErrScheme, c.Scheme)
		},
		tokens: func(l *types.Log, id rdn.ChannelID) (*big.Int, bool) {
			ev, err := r.abi.UnpackChannelWithdrawEvent(l)
			if err != nil || ev.SenderAddress != id.Sender || ev.OpenBlockNumber != id.OpenBlock || ev.ReceiverAddress != r.address {
				return nil, false
			}
			return ev.WithdrawnBalance, true
		},
	})
}

// packCooperativeClose is the call data of a cooperative close in a scheme, and the name of
// the function it calls: the watchtower's disputes and the receiver's batches send the same.
func packCooperativeClose(channels *contracts.RaidenMicroTransferChannels, scheme rdn.Scheme, receiver common.Address,
	openBlock uint32, balance *big.Int, balanceSig, closingSig rdn.Signature) (string, []byte, error) {
	switch scheme {
	case rdn.SchemeLegacy:
		return "cooperativeClose", channels.PackCooperativeClose(receiver, openBlock, balance, balanceSig[:], closingSig[:]), nil
	case rdn.SchemeTyped:
		return "cooperativeCloseTyped", channels.PackCooperativeCloseTyped(receiver, openBlock, balance, balanceSig[:], closingSig[:]), nil
	}
	return "", nil, fmt.Errorf("cooperative close: %w, got %s", rdn.ErrScheme, scheme)
}

// operation is what differs between the receiver's transactions: the call data (and the
// function it calls, which the claim's scheme picks), and the event of the receipt that says
// what the receiver got.
type operation struct {
	pack   func(Claim) (function string, data []byte, err error)
	tokens func(l *types.Log, id rdn.ChannelID) (*big.Int, bool)
}

// submit sends every claim's transaction, then waits for every receipt. Sending them all
// first lets a batch be mined in a block or two instead of one block per channel.
func (r *Receiver) submit(ctx context.Context, claims []Claim, op operation) []Result {
	results := make([]Result, len(claims))
	for i, c := range claims {
		results[i] = Result{Claim: c, Tokens: new(big.Int), Fee: new(big.Int)}
	}
	if len(claims) == 0 {
		return results
	}
	b, err := r.newBatch(ctx, op)
	if err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	var sent []int
	for i := range results {
		if err := b.send(ctx, &results[i]); err != nil {
			results[i].Err = err
			continue
		}
		sent = append(sent, i)
	}
	for _, i := range sent {
		results[i].Err = b.await(ctx, &results[i])
	}
	return results
}

// batch is one submit's transactions: their fees and the next nonce.
type batch struct {
	*Receiver
	op          operation
	tip, feeCap *big.Int
	nonce       uint64
}

func (r *Receiver) newBatch(ctx context.Context, op operation) (*batch, error) {
	tip, feeCap, err := r.fees(ctx)
	if err != nil {
		return nil, err
	}
	nonce, err := r.cfg.Client.PendingNonceAt(ctx, r.address)
	if err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return &batch{Receiver: r, op: op, tip: tip, feeCap: feeCap, nonce: nonce}, nil
}

// fees returns a batch's EIP-1559 fees: twice the base fee plus the suggested tip, under the
// cap.
func (r *Receiver) fees(ctx context.Context) (tip, feeCap *big.Int, err error) {
	head, err := r.cfg.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("head: %w", err)
	}
	if baseFee(head).Cmp(r.cfg.MaxFeeCap) > 0 {
		return nil, nil, fmt.Errorf("%w: base fee %s wei, cap %s wei per gas; wait for lower fees or raise the cap",
			ErrFeeAboveCap, baseFee(head), r.cfg.MaxFeeCap)
	}
	tip, feeCap, err = suggestFees(ctx, r.cfg.Client, head)
	if err != nil {
		return nil, nil, err
	}
	if feeCap.Cmp(r.cfg.MaxFeeCap) > 0 {
		feeCap = new(big.Int).Set(r.cfg.MaxFeeCap)
	}
	if tip.Cmp(feeCap) > 0 {
		tip = new(big.Int).Set(feeCap)
	}
	return tip, feeCap, nil
}

// send signs and broadcasts one claim's transaction with the batch's next nonce. A claim
// that would revert is not sent: its gas would be wasted.
func (b *batch) send(ctx context.Context, res *Result) error {
	function, data, err := b.op.pack(res.Claim)
	if err != nil {
		return err
	}
	res.Function = function
	gas, err := b.cfg.Client.EstimateGas(ctx, ethereum.CallMsg{From: b.address, To: &b.cfg.Contract, Data: data})
	if err != nil {
		if strings.Contains(err.Error(), "execution reverted") {
			return fmt.Errorf("%w: not sent, it would revert: %v", ErrReverted, err)
		}
		return fmt.Errorf("estimate %s gas: %w", res.Function, err)
	}
	tx, err := types.SignNewTx(b.cfg.Key.Reveal(), b.signer, &types.DynamicFeeTx{
		ChainID: b.cfg.ChainID, Nonce: b.nonce, To: &b.cfg.Contract, Gas: gas + gas/4,
		GasTipCap: b.tip, GasFeeCap: b.feeCap, Data: data,
	})
	if err != nil {
		return err
	}
	if err := b.cfg.Client.SendTransaction(ctx, tx); err != nil {
		// The node's count is the truth after a failed broadcast, whether the transaction
		// reached its pool or not; without it, keep the nonce for the next claim.
		if n, nerr := b.cfg.Client.PendingNonceAt(ctx, b.address); nerr == nil {
			b.nonce = n
		}
		return fmt.Errorf("send %s: %w", res.Function, err)
	}
	res.Tx = tx.Hash()
	b.cfg.Logger.Info(res.Function+" sent", "channel", res.Claim.Channel, "balance", res.Claim.Balance, "tx", tx.Hash(),
		"nonce", b.nonce, "fee_cap_wei", b.feeCap, "tip_wei", b.tip)
	b.nonce++
	return nil
}

// await waits for a sent transaction's receipt and reads what it cost and what it paid.
func (b *batch) await(ctx context.Context, res *Result) error {
	receipt, err := contracts.WaitMined(ctx, b.cfg.Client, res.Tx)
	if err != nil {
		return fmt.Errorf("not mined yet (it may still be): %w", err)
	}
	res.Block, res.GasUsed = receipt.BlockNumber.Uint64(), receipt.GasUsed
	price, err := b.effectiveGasPrice(ctx, receipt)
	if err != nil {
		return err
	}
	res.Fee = new(big.Int).Mul(price, new(big.Int).SetUint64(receipt.GasUsed))
	if receipt.Status != types.ReceiptStatusSuccessful {
		b.cfg.Logger.Error(res.Function+" reverted", "channel", res.Claim.Channel, "tx", res.Tx, "block", res.Block)
		return fmt.Errorf("%w in block %d", ErrReverted, res.Block)
	}
	for _, l := range receipt.Logs {
		if l.Address != b.cfg.Contract {
			continue
		}
		if tokens, ok := b.op.tokens(l, res.Claim.Channel); ok {
			res.Tokens = tokens
			b.cfg.Logger.Info(res.Function+" mined", "channel", res.Claim.Channel, "tokens", tokens, "tx", res.Tx,
				"block", res.Block, "gas_used", res.GasUsed)
			return nil
		}
	}
	return fmt.Errorf("%s mined in block %d without its event for %s", res.Function, res.Block, res.Claim.Channel)
}

// effectiveGasPrice is the receipt's, or, from a node that leaves it out, what EIP-1559
// charged the batch's fees in that block: the base fee plus the tip, at most the fee cap.
func (b *batch) effectiveGasPrice(ctx context.Context, receipt *types.Receipt) (*big.Int, error) {
	if receipt.EffectiveGasPrice != nil {
		return receipt.EffectiveGasPrice, nil
	}
	head, err := b.cfg.Client.HeaderByNumber(ctx, receipt.BlockNumber)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", receipt.BlockNumber, err)
	}
	price := new(big.Int).Add(baseFee(head), b.tip)
	if price.Cmp(b.feeCap) > 0 {
		price.Set(b.feeCap)
	}
	return price, nil
}
