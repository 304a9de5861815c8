package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// WatchtowerConfig configures a Watchtower.
type WatchtowerConfig struct {
	Client WatchtowerBackend
	// Account signs the closing messages and pays for the disputes; its MaxFeeCap caps what
	// a dispute may pay per gas.
	Account
	// BumpAfter is how many blocks a transaction may wait before it is sent again with
	// higher fees.
	BumpAfter uint64
	// DeadlineMargin: a dispute must be mined this many blocks before the settle block; from
	// there on its fee goes straight to the cap.
	DeadlineMargin uint64
	// Interval between looks at the disputes in flight.
	Interval time.Duration
	// ChallengePeriod of the contract, in blocks: a close request was made that many blocks
	// before its settle block, and the settlement that ended a dispute is looked for from
	// there. Zero looks from the channel's open block.
	ChallengePeriod uint32
	// MaxRange caps the blocks asked for in one eth_getLogs, as the watcher's does
	// (DefaultMaxRange when zero).
	MaxRange uint64
	// OnTransaction, if set, is told of every transaction event: "sent", "bumped", "mined",
	// "reverted", "waiting-funds".
	OnTransaction func(result string)
	Logger        *slog.Logger
}

// Watchtower protects the receiver's earnings: when a sender asks to close a channel below
// the highest balance it signed, the watchtower submits cooperativeClose (cooperativeCloseTyped
// for a typed proof) with that balance proof and the receiver's closing signature, at once, and owns the transaction until it is
// mined: nonce, EIP-1559 fees under a cap, fee bumps, a deadline before the settle block. Its
// state is in the ledger, so a restart resumes every dispute.
type Watchtower struct {
	cfg      WatchtowerConfig
	ledger   *ledger.Ledger
	abi      *contracts.RaidenMicroTransferChannels
	receiver common.Address
	signer   types.Signer

	mu        sync.Mutex // one dispute step at a time: they share the nonce sequence
	nextNonce *uint64
	unfunded  map[rdn.ChannelID]bool
}

// ErrDisputeUnfunded means a dispute waits for the receiver to be sent ETH for gas.
var ErrDisputeUnfunded = errors.New("a dispute is waiting: the receiver's ETH cannot pay its gas")

// NewWatchtower returns a watchtower; call Resume at start, then Run.
func NewWatchtower(cfg WatchtowerConfig, l *ledger.Ledger) *Watchtower {
	if cfg.BumpAfter == 0 {
		cfg.BumpAfter = 3
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.MaxRange == 0 {
		cfg.MaxRange = DefaultMaxRange
	}
	cfg.Account = cfg.Account.withDefaults()
	if cfg.OnTransaction == nil {
		cfg.OnTransaction = func(string) {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watchtower{
		cfg: cfg, ledger: l, abi: contracts.NewRaidenMicroTransferChannels(),
		receiver: cfg.address(),
		signer:   cfg.signer(),
		unfunded: map[rdn.ChannelID]bool{},
	}
}

// Healthy returns an error while a dispute cannot be paid for: the server must then take no
// more payments.
func (t *Watchtower) Healthy() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.unfunded {
		return fmt.Errorf("%w (channel %s)", ErrDisputeUnfunded, id)
	}
	return nil
}

// OnEvents is the watcher's hook: a close request below our balance opens a dispute; a
// settlement ends one.
func (t *Watchtower) OnEvents(ctx context.Context, events []ledger.Event) {
	for _, ev := range events {
		var err error
		switch ev.Kind {
		case ledger.CloseRequested:
			err = t.consider(ctx, ev.Channel)
		case ledger.Settled:
			err = t.settled(ctx, ev)
		}
		if err != nil {
			t.cfg.Logger.Error("watchtower", "channel", ev.Channel, "event", ev.Kind, "err", err)
		}
	}
}

// Resume picks up every dispute in flight, and opens the disputes a crash may have missed:
// closing channels whose close request is below our balance.
func (t *Watchtower) Resume(ctx context.Context) error {
	ids, err := ResumeCandidates(t.ledger)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := t.consider(ctx, id); err != nil {
			return err
		}
	}
	return t.Tick(ctx)
}

// ResumeCandidates are the channels a dispute may have to be opened for at start: closing,
// with a close request below the balance we hold. Finding them reads every channel record.
func ResumeCandidates(l *ledger.Ledger) ([]rdn.ChannelID, error) {
	return l.ChannelIDsIn([]ledger.State{ledger.StateClosing}, disputable)
}

// disputable reports whether a channel needs a dispute: the sender asked on chain to close
// it below the balance we hold. A channel the receiver agreed to close cooperatively (through
// the admin API) is closing too, but without a close request on chain there is nothing to
// answer: its zero CloseBalance is no request at zero. Once its sender does request a close
// below our balance, it is disputed like any other. The state test is redundant for
// ResumeCandidates, which lists closing channels only, but not for consider, which reads one
// channel whatever its state.
func disputable(c *ledger.Channel) bool {
	return c.State == ledger.StateClosing && c.CloseRequested() && c.Balance.Cmp(c.CloseBalance) > 0
}

// Run advances the disputes in flight until ctx ends.
func (t *Watchtower) Run(ctx context.Context) {
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := t.Tick(ctx); err != nil && ctx.Err() == nil {
				t.cfg.Logger.Warn("watchtower", "err", err)
			}
		}
	}
}

// Tick looks once at every active dispute: receipts, fee bumps, funds.
func (t *Watchtower) Tick(ctx context.Context) error {
	disputes, err := t.ledger.Disputes()
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range disputes {
		if d.Active() {
			errs = append(errs, t.advance(ctx, d.Channel))
		}
	}
	return errors.Join(errs...)
}

// consider opens a dispute for a closing channel whose close request is below our balance.
func (t *Watchtower) consider(ctx context.Context, id rdn.ChannelID) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := t.ledger.Channel(id)
	if err != nil || c == nil || !disputable(c) {
		return err
	}
	existing, err := t.dispute(id)
	if err != nil || existing != nil {
		return err
	}
	margin := min(t.cfg.DeadlineMargin, c.SettleBlock)
	d := ledger.Dispute{
		Channel: id, Balance: c.Balance.String(), CloseAt: c.CloseBalance.String(),
		SettleBlock: c.SettleBlock, Deadline: c.SettleBlock - margin, Status: ledger.DisputeSent,
	}
	t.cfg.Logger.Warn("close request below our balance: disputing", "channel", id,
		"asked", c.CloseBalance, "ours", c.Balance, "settle_block", c.SettleBlock)
	// Recorded before anything can fail, so that Tick retries it.
	if err := t.ledger.SaveDispute(ctx, d); err != nil {
		return err
	}
	return t.send(ctx, &d, c, nil)
}

func (t *Watchtower) dispute(id rdn.ChannelID) (*ledger.Dispute, error) {
	all, err := t.ledger.Disputes()
	if err != nil {
		return nil, err
	}
	for _, d := range all {
		if d.Channel == id {
			return &d, nil
		}
	}
	return nil, nil
}

// advance moves one dispute on: mined, bumped, or sent once funded. The dispute is read
// again under the lock: the copy Tick listed may predate a transaction consider just sent.
func (t *Watchtower) advance(ctx context.Context, id rdn.ChannelID) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	current, err := t.dispute(id)
	if err != nil || current == nil || !current.Active() {
		return err
	}
	d := *current
	c, err := t.ledger.Channel(d.Channel)
	if err != nil {
		return err
	}
	if d.Status == ledger.DisputeWaitingFunds || len(d.Txs) == 0 {
		return t.send(ctx, &d, c, nil)
	}
	if r, err := t.minedReceipt(ctx, &d); err != nil || r != nil {
		if err != nil {
			return err
		}
		return t.mined(ctx, &d, r)
	}
	head, err := t.cfg.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	last := d.Txs[len(d.Txs)-1]
	if head.Number.Uint64() < last.SentBlock+t.cfg.BumpAfter && head.Number.Uint64() < d.Deadline {
		return nil
	}
	if *d.Nonce < t.confirmedNonce(ctx) {
		// Our nonce was used by another transaction of the receiver's: start again with a new one.
		t.cfg.Logger.Warn("dispute nonce used by another transaction; sending with a new nonce", "channel", d.Channel, "nonce", *d.Nonce)
		d.Nonce = nil
		return t.send(ctx, &d, c, nil)
	}
	return t.send(ctx, &d, c, &last)
}

func (t *Watchtower) confirmedNonce(ctx context.Context) uint64 {
	n, err := t.cfg.Client.NonceAt(ctx, t.receiver, nil)
	if err != nil {
		return 0
	}
	return n
}

// send broadcasts the dispute; with prev it is a fee bump of the same nonce. The proof is the
// ledger's, sent through the function of its scheme with a closing signature signed in that
// scheme (the typed functions check both signatures as typed). Every broadcast of a dispute,
// a fee bump included, builds the same call: a closing channel takes no payment, so its
// proof and scheme do not change, and signing is deterministic (RFC 6979).
func (t *Watchtower) send(ctx context.Context, d *ledger.Dispute, c *ledger.Channel, prev *ledger.DisputeTx) error {
	balance, _ := new(big.Int).SetString(d.Balance, 10)
	closing, err := rdn.Closing{Sender: d.Channel.Sender, OpenBlock: d.Channel.OpenBlock, Balance: balance, Contract: t.cfg.Contract,
		Scheme: c.Scheme, ChainID: t.cfg.ChainID.Uint64()}.Sign(t.cfg.Key.Reveal())
	if err != nil {
		return fmt.Errorf("closing signature (%s) for the dispute: %w", c.Scheme, err)
	}
	function, data, err := packCooperativeClose(t.abi, c.Scheme, t.receiver, d.Channel.OpenBlock, balance, c.Signature, closing)
	if err != nil {
		return err
	}
	head, err := t.cfg.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	gas, err := t.cfg.Client.EstimateGas(ctx, ethereum.CallMsg{From: t.receiver, To: &t.cfg.Contract, Data: data})
	if err != nil {
		if strings.Contains(err.Error(), "execution reverted") {
			// Most often the channel is gone because a transaction of ours settled it since
			// we last looked: the chain says how the dispute ended.
			return t.ended(ctx, d, fmt.Sprintf("the dispute would revert: %v", err))
		}
		return fmt.Errorf("estimate dispute gas: %w", err)
	}
	gas += gas / 4
	tip, feeCap, err := t.fees(ctx, head, prev, head.Number.Uint64() >= d.Deadline)
	if err != nil {
		return err
	}
	funds, err := t.cfg.Client.BalanceAt(ctx, t.receiver, nil)
	if err != nil {
		return fmt.Errorf("receiver balance: %w", err)
	}
	if need := new(big.Int).Mul(feeCap, new(big.Int).SetUint64(gas)); funds.Cmp(need) < 0 {
		if d.Status != ledger.DisputeWaitingFunds {
			t.cfg.Logger.Error("the receiver cannot pay for a dispute: send it ETH; payments are suspended until then",
				"channel", d.Channel, "receiver", t.receiver, "have_wei", funds, "need_wei", need, "deadline_block", d.Deadline)
			t.cfg.OnTransaction("waiting-funds")
		}
		t.unfunded[d.Channel] = true
		d.Status = ledger.DisputeWaitingFunds
		return t.ledger.SaveDispute(ctx, *d)
	}
	delete(t.unfunded, d.Channel)
	if d.Nonce == nil {
		n, err := t.takeNonce(ctx)
		if err != nil {
			return err
		}
		d.Nonce = &n
	}
	tx, err := types.SignNewTx(t.cfg.Key.Reveal(), t.signer, &types.DynamicFeeTx{
		ChainID: t.cfg.ChainID, Nonce: *d.Nonce, To: &t.cfg.Contract, Gas: gas,
		GasTipCap: tip, GasFeeCap: feeCap, Data: data,
	})
	if err != nil {
		return err
	}
	// Saved before it is broadcast: after a crash, the receipt of a transaction that went out
	// is still looked for.
	d.Status = ledger.DisputeSent
	d.Txs = append(d.Txs, ledger.DisputeTx{Hash: tx.Hash().Hex(), GasFeeCap: feeCap.String(), GasTipCap: tip.String(),
		Gas: gas, SentAt: time.Now().UTC(), SentBlock: head.Number.Uint64()})
	if err := t.ledger.SaveDispute(ctx, *d); err != nil {
		return err
	}
	if err := t.cfg.Client.SendTransaction(ctx, tx); err != nil && !strings.Contains(err.Error(), "already known") {
		return fmt.Errorf("send dispute %s: %w", tx.Hash(), err)
	}
	result := "sent"
	if prev != nil {
		result = "bumped"
	}
	t.cfg.OnTransaction(result)
	t.cfg.Logger.Warn("dispute transaction "+result, "channel", d.Channel, "function", function, "tx", tx.Hash(), "nonce", *d.Nonce,
		"fee_cap_wei", feeCap, "tip_wei", tip, "deadline_block", d.Deadline)
	return nil
}

// fees returns EIP-1559 fees: twice the base fee plus the suggested tip, at least 12.5% above
// a previous broadcast (what nodes require to replace it), at the cap past the deadline.
func (t *Watchtower) fees(ctx context.Context, head *types.Header, prev *ledger.DisputeTx, late bool) (tip, feeCap *big.Int, err error) {
	tip, feeCap, err = suggestFees(ctx, t.cfg.Client, head)
	if err != nil {
		return nil, nil, err
	}
	if prev != nil {
		prevTip, _ := new(big.Int).SetString(prev.GasTipCap, 10)
		prevCap, _ := new(big.Int).SetString(prev.GasFeeCap, 10)
		tip = bigMax(tip, bump(prevTip))
		feeCap = bigMax(feeCap, bump(prevCap))
	}
	if late {
		feeCap = new(big.Int).Set(t.cfg.MaxFeeCap)
		tip = bigMax(tip, new(big.Int).Div(feeCap, big.NewInt(2)))
	}
	if feeCap.Cmp(t.cfg.MaxFeeCap) > 0 {
		feeCap = new(big.Int).Set(t.cfg.MaxFeeCap)
	}
	if tip.Cmp(feeCap) > 0 {
		tip = new(big.Int).Set(feeCap)
	}
	return tip, feeCap, nil
}

// suggestFees returns EIP-1559 fees for a transaction that should be mined soon: the node's
// suggested tip, and a fee cap of twice the base fee plus the tip, which keeps the
// transaction minable through six blocks of maximal base-fee rises.
func suggestFees(ctx context.Context, ec ethereum.GasPricer1559, head *types.Header) (tip, feeCap *big.Int, err error) {
	tip, err = ec.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("gas tip: %w", err)
	}
	feeCap = new(big.Int).Add(new(big.Int).Mul(baseFee(head), big.NewInt(2)), tip)
	return tip, feeCap, nil
}

// baseFee is the block's base fee, zero before London.
func baseFee(head *types.Header) *big.Int {
	if head.BaseFee == nil {
		return new(big.Int)
	}
	return head.BaseFee
}

func bump(x *big.Int) *big.Int {
	return new(big.Int).Add(x, new(big.Int).Add(new(big.Int).Div(x, big.NewInt(8)), big.NewInt(1)))
}

func bigMax(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

func (t *Watchtower) takeNonce(ctx context.Context) (uint64, error) {
	pending, err := t.cfg.Client.PendingNonceAt(ctx, t.receiver)
	if err != nil {
		return 0, fmt.Errorf("nonce: %w", err)
	}
	if t.nextNonce == nil || pending > *t.nextNonce {
		t.nextNonce = &pending
	}
	n := *t.nextNonce
	*t.nextNonce = n + 1
	return n, nil
}

// mined ends a dispute with the receipt of its cooperativeClose, which settles the channel at
// the dispute's balance when it succeeds.
func (t *Watchtower) mined(ctx context.Context, d *ledger.Dispute, r *types.Receipt) error {
	delete(t.unfunded, d.Channel)
	d.MinedTx, d.GasUsed = r.TxHash.Hex(), r.GasUsed
	if r.Status == types.ReceiptStatusSuccessful {
		d.Status = ledger.DisputeDone
		t.cfg.OnTransaction("mined")
		t.cfg.Logger.Warn("dispute mined: the channel settled at our balance", "channel", d.Channel, "balance", d.Balance, "tx", r.TxHash, "block", r.BlockNumber)
	} else {
		d.Status, d.Reason = ledger.DisputeFailed, "the dispute transaction reverted"
		t.cfg.OnTransaction("reverted")
		t.cfg.Logger.Error("dispute transaction reverted", "channel", d.Channel, "tx", r.TxHash)
	}
	return t.ledger.SaveDispute(ctx, *d)
}

func (t *Watchtower) fail(ctx context.Context, d *ledger.Dispute, reason string) error {
	delete(t.unfunded, d.Channel)
	d.Status, d.Reason = ledger.DisputeFailed, reason
	t.cfg.Logger.Error("dispute failed", "channel", d.Channel, "reason", reason)
	return t.ledger.SaveDispute(ctx, *d)
}

// settled ends the dispute of a channel that settled, by our transaction or another.
func (t *Watchtower) settled(ctx context.Context, ev ledger.Event) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, err := t.dispute(ev.Channel)
	if err != nil || d == nil || !d.Active() {
		return err
	}
	delete(t.unfunded, ev.Channel)
	// Our transaction, most likely: its receipt is the outcome, and is counted as mined.
	if r, err := t.minedReceipt(ctx, d); err != nil || r != nil {
		if err != nil {
			return err
		}
		return t.mined(ctx, d, r)
	}
	if below(ev.Amount, d) {
		return t.fail(ctx, d, fmt.Sprintf("the channel settled at %s, below our balance %s, without our dispute", ev.Amount, d.Balance))
	}
	d.Status = ledger.DisputeDone
	t.cfg.Logger.Warn("the channel settled without our dispute, at or above our balance", "channel", d.Channel, "settled", ev.Amount, "balance", d.Balance)
	return t.ledger.SaveDispute(ctx, *d)
}

// below reports whether a channel settled below the balance its dispute asks for.
func below(settled *big.Int, d *ledger.Dispute) bool {
	ours, ok := new(big.Int).SetString(d.Balance, 10)
	return !ok || settled.Cmp(ours) < 0
}

// minedReceipt returns the receipt of whichever of the dispute's transactions was mined, or
// nil if none is.
func (t *Watchtower) minedReceipt(ctx context.Context, d *ledger.Dispute) (*types.Receipt, error) {
	for _, tx := range d.Txs {
		r, err := t.cfg.Client.TransactionReceipt(ctx, common.HexToHash(tx.Hash))
		if errors.Is(err, ethereum.NotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receipt %s: %w", tx.Hash, err)
		}
		return r, nil
	}
	return nil, nil
}

// ended settles a dispute whose transaction can no longer go out (it would revert) from what
// the chain holds: one of its transactions mined, or the settlement of the channel. Only the
// settled balance says whether the receiver got its due: below the dispute's balance the
// dispute failed, whoever sent the settlement (a cooperativeClose the operator sent from the
// receiver's account with an older closing signature too). At our balance, a settlement sent
// from the receiver's account is a transaction of ours the record does not name (sent again
// under a new nonce, or by the operator) and counts as mined; any other one at or above our
// balance ends the dispute without a transaction of ours. A channel that is still there fails
// the dispute.
func (t *Watchtower) ended(ctx context.Context, d *ledger.Dispute, reason string) error {
	if r, err := t.minedReceipt(ctx, d); err != nil || r != nil {
		if err != nil {
			return err
		}
		return t.mined(ctx, d, r)
	}
	settlement, err := t.settlement(ctx, d)
	if err != nil {
		return err
	}
	if settlement == nil {
		return t.fail(ctx, d, reason)
	}
	ev, err := t.abi.UnpackChannelSettledEvent(settlement)
	if err != nil {
		return fmt.Errorf("settlement %s: %w", settlement.TxHash, err)
	}
	tx, _, err := t.cfg.Client.TransactionByHash(ctx, settlement.TxHash)
	if err != nil {
		return fmt.Errorf("settlement transaction %s: %w", settlement.TxHash, err)
	}
	from, err := types.Sender(t.signer, tx)
	byReceiver := err == nil && from == t.receiver
	if below(ev.Balance, d) {
		by := "another account"
		if byReceiver {
			by = "the receiver's account: a cooperative close with an older closing signature"
		}
		return t.fail(ctx, d, fmt.Sprintf("the channel settled at %s, below our balance %s, by transaction %s from %s",
			ev.Balance, d.Balance, settlement.TxHash, by))
	}
	if byReceiver && ev.Balance.String() == d.Balance {
		r, err := t.cfg.Client.TransactionReceipt(ctx, settlement.TxHash)
		if err != nil {
			return fmt.Errorf("receipt of the settlement %s: %w", settlement.TxHash, err)
		}
		return t.mined(ctx, d, r)
	}
	delete(t.unfunded, d.Channel)
	d.Status, d.MinedTx, d.GasUsed = ledger.DisputeDone, "", 0
	t.cfg.Logger.Warn("the channel settled without our dispute, at or above our balance", "channel", d.Channel,
		"settled", ev.Balance, "balance", d.Balance, "tx", settlement.TxHash)
	return t.ledger.SaveDispute(ctx, *d)
}

// settlement returns the ChannelSettled log of a disputed channel, or nil if it has not
// settled. It looks from the close request's block (a dispute answers one, and the channel
// settles after it) to the head, in queries of at most MaxRange blocks: hosted providers
// refuse wider ones, and an old channel's whole life would not fit.
func (t *Watchtower) settlement(ctx context.Context, d *ledger.Dispute) (*types.Log, error) {
	id := d.Channel
	from := uint64(id.OpenBlock)
	if period := uint64(t.cfg.ChallengePeriod); period > 0 && d.SettleBlock > period {
		from = max(from, d.SettleBlock-period)
	}
	header, err := t.cfg.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	head := header.Number.Uint64()
	for ; from <= head; from += t.cfg.MaxRange {
		logs, err := t.cfg.Client.FilterLogs(ctx, ethereum.FilterQuery{
			FromBlock: new(big.Int).SetUint64(from),
			ToBlock:   new(big.Int).SetUint64(min(head, from+t.cfg.MaxRange-1)),
			Addresses: []common.Address{t.cfg.Contract},
			Topics: [][]common.Hash{
				{t.abi.GetABI().Events["ChannelSettled"].ID},
				{common.BytesToHash(id.Sender.Bytes())},
				{common.BytesToHash(t.receiver.Bytes())},
				{common.BigToHash(new(big.Int).SetUint64(uint64(id.OpenBlock)))},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("settlement of %s, blocks %d-%d: %w", id, from, min(head, from+t.cfg.MaxRange-1), err)
		}
		if len(logs) > 0 {
			return &logs[0], nil
		}
	}
	return nil, nil
}
