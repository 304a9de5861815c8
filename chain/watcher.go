package chain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/ledger"
)

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	Client   *ethclient.Client
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
	// MaxRange caps the blocks asked for in one eth_getLogs.
	MaxRange uint64
	Logger   *slog.Logger
}

// Watcher follows the channel contract's events for our receiver and feeds them to the
// ledger in (block, log index) order, with the sync cursor, in one durable write per range.
type Watcher struct {
	cfg    WatcherConfig
	ledger *ledger.Ledger
	abi    *contracts.RaidenMicroTransferChannels
	topics []common.Hash

	lastOK   atomic.Int64 // unix nanoseconds of the last poll that reached the head
	problem  atomic.Pointer[error]
	lastHead atomic.Uint64
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
		cfg.MaxRange = 2000
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

// Run polls until ctx ends. Errors are logged and retried; Healthy reports them.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("chain poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Healthy returns nil while the chain backend can protect the receiver: the last look at
// the chain reached its head recently and the receiver can pay for a dispute.
func (w *Watcher) Healthy() error {
	if p := w.problem.Load(); p != nil {
		if errors.Is(*p, ErrReceiverBalance) {
			return *p
		}
		return fmt.Errorf("chain backend: %w", *p)
	}
	last := w.lastOK.Load()
	if last == 0 {
		return errors.New("not synchronized with the chain yet")
	}
	if age := time.Since(time.Unix(0, last)); age > w.cfg.MaxLag {
		return fmt.Errorf("chain backend: no successful poll for %s", age.Round(time.Second))
	}
	return nil
}

// ErrReceiverBalance means the receiver's ETH cannot pay for a dispute.
var ErrReceiverBalance = errors.New("receiver's ETH balance is too low to send a dispute")

// Poll reads the chain up to its head once.
func (w *Watcher) Poll(ctx context.Context) error {
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
	head, err := w.cfg.Client.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	w.lastHead.Store(head)
	confirmed := uint64(0)
	if head >= w.cfg.Confirmations {
		confirmed = head - w.cfg.Confirmations
	}
	sync := w.ledger.Sync()
	from := max(sync.Cursor+1, w.cfg.StartBlock)
	if from > head {
		if confirmed > sync.Confirmed {
			sync.Confirmed = confirmed
			if err := w.ledger.Apply(ctx, ledger.Update{Sync: sync}); err != nil {
				return err
			}
		}
	}
	for from <= head {
		to := min(head, from+w.cfg.MaxRange-1)
		if err := w.applyRange(ctx, from, to, min(confirmed, to)); err != nil {
			return err
		}
		from = to + 1
	}
	bal, err := w.cfg.Client.BalanceAt(ctx, w.cfg.Receiver, nil)
	if err != nil {
		return fmt.Errorf("receiver balance: %w", err)
	}
	if bal.Cmp(w.cfg.MinReceiverBalance) < 0 {
		return fmt.Errorf("%w: %s wei, need %s", ErrReceiverBalance, bal, w.cfg.MinReceiverBalance)
	}
	return nil
}

func (w *Watcher) applyRange(ctx context.Context, from, to, confirmed uint64) error {
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
	header, err := w.cfg.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(to))
	if err != nil {
		return fmt.Errorf("header %d: %w", to, err)
	}
	events, err := w.decode(logs)
	if err != nil {
		return err
	}
	return w.ledger.Apply(ctx, ledger.Update{
		Events: events,
		Sync:   ledger.SyncState{Cursor: to, CursorHash: header.Hash().Hex(), Confirmed: confirmed},
	})
}

func (w *Watcher) decode(logs []types.Log) ([]ledger.Event, error) {
	var events []ledger.Event
	created := map[ledger.ChannelID]bool{}
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
			created[ev.Channel] = true
		} else if !created[ev.Channel] {
			known, err := w.ledger.Known(ev.Channel)
			if err != nil {
				return nil, err
			}
			if !known {
				// Opened before StartBlock: no payment was ever accepted on it here.
				w.cfg.Logger.Warn("event for a channel opened before the start block; ignored",
					"event", ev.Kind, "channel", ev.Channel, "block", l.BlockNumber)
				continue
			}
		}
		events = append(events, ev)
	}
	return events, nil
}

func (w *Watcher) decodeLog(l *types.Log) (ledger.Event, error) {
	ev := ledger.Event{Block: l.BlockNumber}
	switch l.Topics[0] {
	case w.topics[0]:
		e, err := w.abi.UnpackChannelCreatedEvent(l)
		if err != nil {
			return ev, err
		}
		// ChannelCreated has no block field: the channel's open block is the log's.
		ev.Kind, ev.Channel, ev.Amount = ledger.Created, ledger.ChannelID{Sender: e.SenderAddress, OpenBlock: uint32(l.BlockNumber)}, e.Deposit
	case w.topics[1]:
		e, err := w.abi.UnpackChannelToppedUpEvent(l)
		if err != nil {
			return ev, err
		}
		ev.Kind, ev.Channel, ev.Amount = ledger.ToppedUp, ledger.ChannelID{Sender: e.SenderAddress, OpenBlock: e.OpenBlockNumber}, e.AddedDeposit
	case w.topics[2]:
		e, err := w.abi.UnpackChannelCloseRequestedEvent(l)
		if err != nil {
			return ev, err
		}
		ev.Kind, ev.Channel, ev.Amount = ledger.CloseRequested, ledger.ChannelID{Sender: e.SenderAddress, OpenBlock: e.OpenBlockNumber}, e.Balance
		ev.SettleBlock = l.BlockNumber + uint64(w.cfg.ChallengePeriod)
	case w.topics[3]:
		e, err := w.abi.UnpackChannelSettledEvent(l)
		if err != nil {
			return ev, err
		}
		ev.Kind, ev.Channel, ev.Amount = ledger.Settled, ledger.ChannelID{Sender: e.SenderAddress, OpenBlock: e.OpenBlockNumber}, e.Balance
	case w.topics[4]:
		e, err := w.abi.UnpackChannelWithdrawEvent(l)
		if err != nil {
			return ev, err
		}
		ev.Kind, ev.Channel, ev.Amount = ledger.Withdrawn, ledger.ChannelID{Sender: e.SenderAddress, OpenBlock: e.OpenBlockNumber}, e.WithdrawnBalance
	default:
		return ev, fmt.Errorf("unexpected topic %s", l.Topics[0])
	}
	return ev, nil
}
