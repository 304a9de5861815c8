package chain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	Client   WatcherBackend
	Contract common.Address
	Receiver common.Address
	// ChallengePeriod of the contract, to know when a requested close may settle.
	ChallengePeriod uint32
	// Confirmations is how many blocks must follow a block before its deposits count.
	Confirmations uint64
	// StartBlock is the first block to read events from (the contract's deployment).
	StartBlock uint64
	// PollInterval between looks at the chain.
	PollInterval time.Duration
	// MaxLag is how long without a successful look at the chain before payments stop.
	MaxLag time.Duration
	// MinReceiverBalance is the receiver's ETH (wei) below which it could not pay for a
	// dispute transaction, and payments stop.
	MinReceiverBalance *big.Int
	// MaxRange caps the blocks asked for in one eth_getLogs (DefaultMaxRange when zero):
	// hosted RPC providers refuse wider queries.
	MaxRange uint64
	// MaxHeadAge, when positive, is how old the node's head block may be before the node
	// counts as stuck or syncing, and payments stop. Zero disables the check (dev chains
	// mine only on demand).
	MaxHeadAge time.Duration
	// ReorgDepth is how many recent block hashes are kept to follow a reorganization; it must
	// exceed Confirmations. A deeper reorganization triggers a full resync.
	ReorgDepth uint64
	// OnEvents, if set, is called with the events of every update once they are durable: the
	// watchtower reacts to close requests and settlements there.
	OnEvents func(ctx context.Context, events []ledger.Event)
	Logger   *slog.Logger
}

// DefaultMaxRange is how many blocks the watcher and the watchtower ask for in one
// eth_getLogs unless configured otherwise.
const DefaultMaxRange = 2000

// Watcher follows the channel contract's events for our receiver and feeds them to the
// ledger in (block, log index) order, with the sync cursor, in one durable write per range.
type Watcher struct {
	cfg    WatcherConfig
	ledger *ledger.Ledger
	abi    *contracts.RaidenMicroTransferChannels
	topics []common.Hash

	lastOK    atomic.Int64 // unix nanoseconds of the last poll that reached the head
	problem   atomic.Pointer[error]
	resyncing atomic.Bool
	resyncs   atomic.Uint64
	balance   atomic.Pointer[big.Int] // the receiver's ETH (wei) as last read
	pollMu    sync.Mutex              // one poll at a time: two would apply the same blocks twice
}

// NewWatcher returns a watcher; Run starts it.
func NewWatcher(cfg WatcherConfig, l *ledger.Ledger) *Watcher {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = 30 * time.Second
	}
	if cfg.MaxRange == 0 {
		cfg.MaxRange = DefaultMaxRange
	}
	if cfg.ReorgDepth <= cfg.Confirmations {
		cfg.ReorgDepth = cfg.Confirmations + 64
	}
	if cfg.MinReceiverBalance == nil {
		cfg.MinReceiverBalance = new(big.Int)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	abi := contracts.NewRaidenMicroTransferChannels()
	events := abi.GetABI().Events
	w := &Watcher{cfg: cfg, ledger: l, abi: abi}
	for _, name := range []string{"ChannelCreated", "ChannelToppedUp", "ChannelCloseRequested", "ChannelSettled", "ChannelWithdraw"} {
		w.topics = append(w.topics, events[name].ID)
	}
	return w
}

// Run follows the chain until ctx ends: it looks at the chain on every new head when the
// node can push them (WebSocket, IPC), and on every poll interval in any case. Errors are
// logged and retried; Healthy reports them.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	heads, unsubscribe := w.subscribeHeads(ctx)
	defer func() { unsubscribe() }()
	for {
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("chain poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if heads == nil {
				heads, unsubscribe = w.subscribeHeads(ctx)
			}
		case _, ok := <-heads:
			if !ok {
				heads = nil
			}
		}
	}
}

// subscribeHeads asks the node to push new heads; over HTTP it cannot, and a nil channel
// leaves Run to its poll interval.
func (w *Watcher) subscribeHeads(ctx context.Context) (<-chan *types.Header, func()) {
	ch := make(chan *types.Header, 16)
	sub, err := w.cfg.Client.SubscribeNewHead(ctx, ch)
	if err != nil {
		return nil, func() {}
	}
	out := make(chan *types.Header, 1)
	go func() {
		defer close(out)
		for {
			select {
			case h := <-ch:
				select {
				case out <- h:
				default: // a poll is due anyway
				}
			case <-sub.Err():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, sub.Unsubscribe
}

// Healthy returns nil while the chain backend can protect the receiver: the last look at
// the chain reached its head recently and the receiver can pay for a dispute.
func (w *Watcher) Healthy() error {
	if w.resyncing.Load() {
		return errors.New("reading every channel from the contract again (resync)")
	}
	var problem error
	if p := w.problem.Load(); p != nil {
		problem = *p
		if errors.Is(problem, ErrReceiverBalance) {
			return problem
		}
	}
	last := w.lastOK.Load()
	if last == 0 {
		return errors.Join(errors.New("not synchronized with the chain yet"), problem)
	}
	// A failed look at the chain is forgiven for MaxLag: a node's hiccup should not turn
	// paying clients away.
	if age := time.Since(time.Unix(0, last)); age > w.cfg.MaxLag {
		err := fmt.Errorf("chain backend: no successful look at the chain for %s", age.Round(time.Second))
		return errors.Join(err, problem)
	}
	return nil
}

// LastSynced is when a poll last reached the chain's head; zero before the first.
func (w *Watcher) LastSynced() time.Time {
	if n := w.lastOK.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// ReceiverBalance is the receiver's ETH in wei as the last poll read it, and the minimum
// below which payments stop (WatcherConfig.MinReceiverBalance); nil before the first read.
// Callers must not modify either.
func (w *Watcher) ReceiverBalance() (balance, minimum *big.Int) {
	return w.balance.Load(), w.cfg.MinReceiverBalance
}

// Resyncs counts the full resynchronizations: after reorganizations too deep to roll back,
// and when the ledger needed one (ledger.NeedsResync).
func (w *Watcher) Resyncs() uint64 { return w.resyncs.Load() }

// ErrReceiverBalance means the receiver's ETH cannot pay for a dispute.
var ErrReceiverBalance = errors.New("receiver's ETH balance is too low to send a dispute")

// Poll reads the chain up to its head once.
func (w *Watcher) Poll(ctx context.Context) error {
	w.pollMu.Lock()
	defer w.pollMu.Unlock()
	err := w.poll(ctx)
	if err != nil {
		w.problem.Store(&err)
		return err
	}
	w.problem.Store(nil)
	w.lastOK.Store(time.Now().UnixNano())
	return nil
}

func (w *Watcher) poll(ctx context.Context) error {
	header, err := w.cfg.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	head := header.Number.Uint64()
	if age := time.Since(time.Unix(int64(header.Time), 0)); w.cfg.MaxHeadAge > 0 && age > w.cfg.MaxHeadAge {
		return fmt.Errorf("the node's head block %d is %s old: it is syncing or stuck", head, age.Round(time.Second))
	}
	if w.ledger.NeedsResync() {
		w.cfg.Logger.Error("the ledger's last chain update was cut short, or a resync was asked for: payments stopped, reading every channel from the contract again")
		if err := w.resync(ctx, head); err != nil {
			return err
		}
	}
	if err := w.followReorg(ctx, head); err != nil {
		return err
	}
	confirmed := uint64(0)
	if head >= w.cfg.Confirmations {
		confirmed = head - w.cfg.Confirmations
	}
	sync := w.ledger.Sync()
	from := max(sync.Cursor+1, w.cfg.StartBlock)
	if from > head && confirmed > sync.Confirmed {
		sync.Confirmed = confirmed
		if err := w.ledger.Apply(ctx, ledger.Update{Sync: sync}); err != nil {
			return err
		}
	}
	for from <= head {
		to := min(head, from+w.cfg.MaxRange-1)
		if err := w.applyRange(ctx, from, to, head, min(confirmed, to)); err != nil {
			return err
		}
		from = to + 1
	}
	return w.checkReceiverBalance(ctx)
}

func (w *Watcher) checkReceiverBalance(ctx context.Context) error {
	bal, err := w.cfg.Client.BalanceAt(ctx, w.cfg.Receiver, nil)
	if err != nil {
		return fmt.Errorf("receiver balance: %w", err)
	}
	w.balance.Store(bal)
	if bal.Cmp(w.cfg.MinReceiverBalance) < 0 {
		return fmt.Errorf("%w: %s wei, need %s", ErrReceiverBalance, bal, w.cfg.MinReceiverBalance)
	}
	return nil
}

// followReorg checks that the last block followed is still on the chain; if not, it finds the
// fork point among the recent hashes and rolls the ledger back to it, or resyncs when the
// reorganization is deeper than the hashes kept.
func (w *Watcher) followReorg(ctx context.Context, head uint64) error {
	sync := w.ledger.Sync()
	if len(sync.Recent) == 0 {
		return nil
	}
	last := sync.Recent[len(sync.Recent)-1]
	if ok, err := w.onChain(ctx, last, head); err != nil || ok {
		return err
	}
	fork := -1
	for i := len(sync.Recent) - 2; i >= 0; i-- {
		ok, err := w.onChain(ctx, sync.Recent[i], head)
		if err != nil {
			return err
		}
		if ok {
			fork = i
			break
		}
	}
	if fork < 0 {
		w.cfg.Logger.Error("chain reorganization deeper than the blocks kept: payments stopped, resynchronizing from the contract",
			"kept", len(sync.Recent), "old_cursor", sync.Cursor, "head", head)
		return w.resync(ctx, head)
	}
	at := sync.Recent[fork]
	rolled := ledger.SyncState{Cursor: at.Number, CursorHash: at.Hash, Confirmed: min(sync.Confirmed, at.Number), Recent: sync.Recent[:fork+1]}
	orphaned, err := w.ledger.Rollback(ctx, at.Number, rolled)
	if err != nil {
		return fmt.Errorf("roll back to block %d: %w", at.Number, err)
	}
	w.cfg.Logger.Warn("chain reorganization: rolled back to the fork point", "fork_block", at.Number,
		"depth", last.Number-at.Number, "old_head", last.Hash)
	for _, id := range orphaned {
		w.cfg.Logger.Error("a paid channel's creation was reorganized away; its payments are lost unless it reappears",
			"channel", id)
	}
	return nil
}

// onChain reports whether a block we followed is still the chain's block at its height.
func (w *Watcher) onChain(ctx context.Context, b ledger.BlockRef, head uint64) (bool, error) {
	if b.Number > head {
		return false, nil
	}
	h, err := w.cfg.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(b.Number))
	if errors.Is(err, ethereum.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("header %d: %w", b.Number, err)
	}
	return h.Hash().Hex() == b.Hash, nil
}

func (w *Watcher) applyRange(ctx context.Context, from, to, head, confirmed uint64) error {
	logs, err := w.cfg.Client.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from),
		ToBlock:   new(big.Int).SetUint64(to),
		Addresses: []common.Address{w.cfg.Contract},
		// Topic 2 of every channel event is the receiver.
		Topics: [][]common.Hash{w.topics, nil, {common.BytesToHash(w.cfg.Receiver.Bytes())}},
	})
	if err != nil {
		return fmt.Errorf("logs %d-%d: %w", from, to, err)
	}
	slices.SortFunc(logs, func(a, b types.Log) int {
		if c := cmp.Compare(a.BlockNumber, b.BlockNumber); c != 0 {
			return c
		}
		return cmp.Compare(a.Index, b.Index)
	})
	events, err := w.decode(ctx, logs)
	if err != nil {
		return err
	}
	sync, err := w.advance(ctx, w.ledger.Sync(), from, to, head)
	if err != nil {
		return err
	}
	sync.Confirmed = confirmed
	var forget uint64
	if to > w.cfg.ReorgDepth {
		forget = to - w.cfg.ReorgDepth
	}
	if err := w.ledger.Apply(ctx, ledger.Update{Events: events, Sync: sync, ForgetBelow: forget}); err != nil {
		return err
	}
	if w.cfg.OnEvents != nil && len(events) > 0 {
		w.cfg.OnEvents(ctx, events)
	}
	return nil
}

// advance moves the cursor to `to` and records the hashes of the blocks within ReorgDepth of
// the head.
func (w *Watcher) advance(ctx context.Context, sync ledger.SyncState, from, to, head uint64) (ledger.SyncState, error) {
	keepFrom := uint64(0)
	if head+1 > w.cfg.ReorgDepth {
		keepFrom = head + 1 - w.cfg.ReorgDepth
	}
	recent := slices.Clone(sync.Recent)
	for b := max(from, keepFrom); b <= to; b++ {
		h, err := w.cfg.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(b))
		if err != nil {
			return sync, fmt.Errorf("header %d: %w", b, err)
		}
		recent = append(recent, ledger.BlockRef{Number: b, Hash: h.Hash().Hex()})
	}
	if len(recent) == 0 || recent[len(recent)-1].Number != to {
		h, err := w.cfg.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(to))
		if err != nil {
			return sync, fmt.Errorf("header %d: %w", to, err)
		}
		recent = append(recent, ledger.BlockRef{Number: to, Hash: h.Hash().Hex()})
	}
	i := 0
	for i < len(recent)-1 && recent[i].Number < keepFrom {
		i++
	}
	recent = recent[i:]
	last := recent[len(recent)-1]
	return ledger.SyncState{Cursor: to, CursorHash: last.Hash, Confirmed: sync.Confirmed, Recent: recent}, nil
}

func (w *Watcher) decode(ctx context.Context, logs []types.Log) ([]ledger.Event, error) {
	var events []ledger.Event
	known := map[rdn.ChannelID]bool{}
	for i := range logs {
		l := &logs[i]
		if l.Removed {
			continue
		}
		ev, err := w.decodeLog(l)
		if err != nil {
			return nil, fmt.Errorf("decode log %d/%d: %w", l.BlockNumber, l.Index, err)
		}
		if ev.Kind == ledger.Created {
			known[ev.Channel] = true
		}
		if !known[ev.Channel] {
			ok, err := w.ledger.Known(ev.Channel)
			if err != nil {
				return nil, err
			}
			if !ok {
				// Opened before StartBlock: learn it from the contract as it was just before.
				seed, err := w.seed(ctx, ev.Channel, l.BlockNumber-1)
				if err != nil {
					return nil, err
				}
				if seed == nil {
					w.cfg.Logger.Warn("event for a channel the contract does not know; ignored", "event", ev.Kind, "channel", ev.Channel, "block", l.BlockNumber)
					continue
				}
				events = append(events, seed...)
			}
			known[ev.Channel] = true
		}
		events = append(events, ev)
	}
	return events, nil
}

// channelInfo asks the contract for a channel at a block (nil: the latest); ok is false when
// the contract has no such channel there.
func (w *Watcher) channelInfo(ctx context.Context, id rdn.ChannelID, block *big.Int) (info contracts.GetChannelInfoOutput, ok bool, err error) {
	return channelInfo(ctx, w.cfg.Client, w.cfg.Contract, w.cfg.Receiver, id, block)
}

// channelInfo asks the contract at a block (nil: the latest) about a channel of receiver; ok
// is false when the contract has no such channel there (getChannelInfo reverts).
func channelInfo(ctx context.Context, ec bind.ContractCaller, contract, receiver common.Address, id rdn.ChannelID, block *big.Int) (info contracts.GetChannelInfoOutput, ok bool, err error) {
	abi := contracts.NewRaidenMicroTransferChannels()
	// Calls only: the bound contract needs no transactor nor filterer.
	info, err = bind.Call(bind.NewBoundContract(contract, abi.GetABI(), ec, nil, nil), &bind.CallOpts{Context: ctx, BlockNumber: block},
		abi.PackGetChannelInfo(id.Sender, receiver, id.OpenBlock), abi.UnpackGetChannelInfo)
	if err != nil {
		if strings.Contains(err.Error(), "execution reverted") {
			return info, false, nil
		}
		return info, false, fmt.Errorf("getChannelInfo %s: %w", id, err)
	}
	return info, true, nil
}

// seed makes up the events that bring a channel opened before StartBlock into the ledger,
// from the contract's state at a block.
func (w *Watcher) seed(ctx context.Context, id rdn.ChannelID, block uint64) ([]ledger.Event, error) {
	info, ok, err := w.channelInfo(ctx, id, new(big.Int).SetUint64(block))
	if err != nil {
		// A node that prunes old state cannot answer for the past. The present will do for
		// now, though the events after that block would then count twice: so payments stop
		// until the next poll has read every channel from the contract again.
		w.cfg.Logger.Warn("getChannelInfo at a past block failed; using the latest state, and resynchronizing",
			"channel", id, "block", block, "err", err)
		if info, ok, err = w.channelInfo(ctx, id, nil); err != nil {
			return nil, err
		}
		if err := w.ledger.RequestResync(); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, nil
	}
	events := []ledger.Event{{Kind: ledger.Created, Channel: id, Block: uint64(id.OpenBlock), Amount: info.Arg1, Seeded: true}}
	if info.Arg4.Sign() > 0 {
		events = append(events, ledger.Event{Kind: ledger.Withdrawn, Channel: id, Block: block, Amount: info.Arg4, Seeded: true})
	}
	if info.Arg2 > 0 {
		events = append(events, ledger.Event{Kind: ledger.CloseRequested, Channel: id, Block: block, Amount: info.Arg3, SettleBlock: uint64(info.Arg2), Seeded: true})
	}
	w.cfg.Logger.Info("learned a channel opened before the start block", "channel", id, "deposit", info.Arg1)
	return events, nil
}

// resync rebuilds what the ledger knows from the contract's state at head, after a
// reorganization deeper than the hashes kept or when the ledger needs it. Payments stop
// while it runs.
func (w *Watcher) resync(ctx context.Context, head uint64) error {
	w.resyncing.Store(true)
	defer w.resyncing.Store(false)
	ids, err := w.resyncChannels(ctx, head)
	if err != nil {
		return err
	}
	sync, err := w.advance(ctx, ledger.SyncState{}, head, head, head)
	if err != nil {
		return err
	}
	if head >= w.cfg.Confirmations {
		sync.Confirmed = head - w.cfg.Confirmations
	}
	states := make([]ledger.ChainChannel, 0, len(ids))
	unknownPast, firstErr := 0, error(nil)
	for _, id := range ids {
		s, pastErr, err := w.chainChannel(ctx, id, head, sync.Confirmed)
		if err != nil {
			return err
		}
		if pastErr != nil {
			unknownPast++
			firstErr = cmp.Or(firstErr, pastErr)
		}
		states = append(states, s)
	}
	if unknownPast > 0 {
		w.cfg.Logger.Warn("the node could not say some deposits at the confirmed height: they count once the resync's head is confirmed",
			"channels", unknownPast, "confirmed_height", sync.Confirmed, "err", firstErr)
	}
	if err := w.ledger.Resync(ctx, states, sync); err != nil {
		return err
	}
	w.resyncs.Add(1)
	w.cfg.Logger.Warn("resynchronized with the chain", "channels", len(states), "head", head)
	return nil
}

// resyncChannels lists the channels a resync reads: the ledger's open and closing ones and
// every other channel created for the receiver from StartBlock to head (settled ones too: a
// reorganization may have taken their settlement away).
func (w *Watcher) resyncChannels(ctx context.Context, head uint64) ([]rdn.ChannelID, error) {
	ids, err := w.ledger.ChannelIDs(func(c *ledger.Channel) bool {
		return c.State == ledger.StateOpen || c.State == ledger.StateClosing
	})
	if err != nil {
		return nil, err
	}
	seen := map[rdn.ChannelID]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	for from := w.cfg.StartBlock; from <= head; from += w.cfg.MaxRange {
		logs, err := w.cfg.Client.FilterLogs(ctx, ethereum.FilterQuery{
			FromBlock: new(big.Int).SetUint64(from), ToBlock: new(big.Int).SetUint64(min(head, from+w.cfg.MaxRange-1)),
			Addresses: []common.Address{w.cfg.Contract},
			Topics:    [][]common.Hash{{w.topics[0]}, nil, {common.BytesToHash(w.cfg.Receiver.Bytes())}},
		})
		if err != nil {
			return nil, fmt.Errorf("resync logs: %w", err)
		}
		for _, l := range logs {
			id := rdn.ChannelID{Sender: common.BytesToAddress(l.Topics[1].Bytes()), OpenBlock: uint32(l.BlockNumber)}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// chainChannel reads a channel at head, with its deposit at the confirmed height when it
// existed then. pastErr is why the node could not answer for that height (a pruned node, a
// timeout): the whole deposit then waits for confirmations, which costs the sender a few
// blocks and never lets it spend a deposit that may vanish.
func (w *Watcher) chainChannel(ctx context.Context, id rdn.ChannelID, head, confirmed uint64) (_ ledger.ChainChannel, pastErr, err error) {
	info, ok, err := w.channelInfo(ctx, id, new(big.Int).SetUint64(head))
	if err != nil {
		return ledger.ChainChannel{}, nil, err
	}
	s := ledger.ChainChannel{ID: id, Exists: ok, Deposit: info.Arg1, SettleBlock: uint64(info.Arg2), ClosingBalance: info.Arg3, Withdrawn: info.Arg4}
	if !ok || uint64(id.OpenBlock) > confirmed {
		return s, nil, nil
	}
	past, existed, err := w.channelInfo(ctx, id, new(big.Int).SetUint64(confirmed))
	switch {
	case ctx.Err() != nil:
		return s, nil, ctx.Err()
	case err != nil:
		return s, err, nil
	case existed:
		s.ConfirmedDeposit = past.Arg1
	}
	return s, nil, nil
}

func (w *Watcher) decodeLog(l *types.Log) (ledger.Event, error) {
	ev := ledger.Event{Block: l.BlockNumber}
	if len(l.Topics) == 0 {
		// Only a faulty node answers eth_getLogs for our topics with an anonymous log; it
		// must not crash the watcher (found by FuzzDecodeLog).
		return ev, errors.New("log without topics")
	}
	if l.BlockNumber > math.MaxUint32 {
		// The contract keeps block numbers in uint32; a larger one is a faulty node, and
		// would overflow the settle block below.
		return ev, fmt.Errorf("block number %d does not fit uint32", l.BlockNumber)
	}
	switch l.Topics[0] {
	case w.topics[0]:
		e, err := w.abi.UnpackChannelCreatedEvent(l)
		if err != nil {
			return ev, err
		}
		// ChannelCreated has no block field: the channel's open block is the log's.
		ev.Kind, ev.Channel, ev.Amount = ledger.Created, rdn.ChannelID{Sender: e.SenderAddress, OpenBlock: uint32(l.BlockNumber)}, e.Deposit
	case w.topics[1]:
		e, err := w.abi.UnpackChannelToppedUpEvent(l)
		if err != nil {
			return ev, err
		}
		ev.Kind, ev.Channel, ev.Amount = ledger.ToppedUp, rdn.ChannelID{Sender: e.SenderAddress, OpenBlock: e.OpenBlockNumber}, e.AddedDeposit
	case w.topics[2]:
		e, err := w.abi.UnpackChannelCloseRequestedEvent(l)
		if err != nil {
			return ev, err
		}
		ev.Kind, ev.Channel, ev.Amount = ledger.CloseRequested, rdn.ChannelID{Sender: e.SenderAddress, OpenBlock: e.OpenBlockNumber}, e.Balance
		ev.SettleBlock = l.BlockNumber + uint64(w.cfg.ChallengePeriod)
	case w.topics[3]:
		e, err := w.abi.UnpackChannelSettledEvent(l)
		if err != nil {
			return ev, err
		}
		ev.Kind, ev.Channel, ev.Amount = ledger.Settled, rdn.ChannelID{Sender: e.SenderAddress, OpenBlock: e.OpenBlockNumber}, e.Balance
	case w.topics[4]:
		e, err := w.abi.UnpackChannelWithdrawEvent(l)
		if err != nil {
			return ev, err
		}
		ev.Kind, ev.Channel, ev.Amount = ledger.Withdrawn, rdn.ChannelID{Sender: e.SenderAddress, OpenBlock: e.OpenBlockNumber}, e.WithdrawnBalance
	default:
		return ev, fmt.Errorf("unexpected topic %s", l.Topics[0])
	}
	if ev.Amount == nil {
		// The generated bindings skip unpacking an empty data field and leave the amount
		// nil, which the ledger would dereference (found by FuzzDecodeLog).
		return ev, fmt.Errorf("%v log without data", ev.Kind)
	}
	return ev, nil
}
