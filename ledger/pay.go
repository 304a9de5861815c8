package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"time"

	"github.com/uraiden/uraiden/rdn"
)

// Outcome is the ledger's decision on a payment.
type Outcome uint8

const (
	// Accepted: the payment is durable; serve the request.
	Accepted Outcome = iota + 1
	// NoChannel: the ledger does not know the channel, or it no longer takes payments.
	NoChannel
	// Unconfirmed: the channel's creation is not confirmed yet.
	Unconfirmed
	// Replayed: the proof is the stored one, already used.
	Replayed
	// InvalidAmount: the balance was already used, or does not cover the price.
	InvalidAmount
	// ExceedsDeposit: the balance is above the confirmed deposit.
	ExceedsDeposit
	// Retried: the proof was already used, by an earlier attempt of this same request
	// (docs/protocol.md §8); serve it again, nothing charged. The count of retries served is
	// durable.
	Retried
)

func (o Outcome) String() string {
	return [...]string{"", "accepted", "no-channel", "unconfirmed", "replayed", "invalid-amount", "exceeds-deposit", "retried"}[o]
}

// Payment is a verified balance proof offered for one request: the caller has checked that
// Signature recovers to ID.Sender for this receiver and contract.
type Payment struct {
	ID        rdn.ChannelID
	Balance   *big.Int
	Signature rdn.Signature
	// Scheme is the scheme Signature was verified in.
	Scheme rdn.Scheme
	Price  *big.Int

	// RetryKey, when not zero, names the request so that its retries are served with this
	// payment for RetryWindow after Seen, when the request was seen (docs/protocol.md §8).
	// The time is the caller's, so that tests need no clock in the ledger.
	RetryKey    RetryKey
	Seen        time.Time
	RetryWindow time.Duration
}

// PayResult is the decision and the channel as it stands after it, for the response
// headers: what a client needs to resynchronize.
type PayResult struct {
	Outcome Outcome
	// Balance and Signature are the highest accepted proof, in Scheme; Charged what was
	// charged.
	Balance   *big.Int
	Signature rdn.Signature
	Scheme    rdn.Scheme
	Charged   *big.Int
	// Deposit is the confirmed deposit.
	Deposit *big.Int
	// Known is false when the channel does not exist at all.
	Known bool
}

// Pay applies the payment rule and, when the payment is accepted, returns only after it is
// on disk. While the disk is nearly full (Options.MinFreeBytes) it decides nothing and
// returns ErrLowSpace.
//
// The rule: each balance value of a channel buys at most one request, and the sum of the
// prices charged never exceeds the highest balance signed. So proofs may arrive in any
// order and several may be in flight at once (balance+price, balance+2·price, … all served),
// an increment above the price is credit later proofs spend, and a captured proof buys
// nothing twice.
func (l *Ledger) Pay(ctx context.Context, p Payment) (PayResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := l.pay(ctx, p)
		if !errors.Is(err, errConflict) {
			return res, err
		}
		// Another replica changed the channel since this one last saw it: the payment was
		// not stored, and is decided again on the record as it now stands.
		if attempt == maxAttempts {
			return PayResult{}, fmt.Errorf("ledger: pay on %s: %w", p.ID, err)
		}
		if err := ctx.Err(); err != nil {
			return PayResult{}, fmt.Errorf("ledger: pay on %s: %w", p.ID, err)
		}
		if attempt >= 4 {
			// Replicas that keep writing one channel at once: let the others finish.
			time.Sleep(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond))))
		}
	}
}

// maxAttempts bounds how often a payment is decided again because other replicas kept
// changing its channel first; then it is refused (503), never guessed. Most attempts cost
// nothing: a write decided on a record the watch has since replaced is dropped before it
// is sent.
const maxAttempts = 64

func (l *Ledger) pay(ctx context.Context, p Payment) (PayResult, error) {
	// A failed or closed ledger decides nothing: its memory may be ahead of its disk. Low
	// space refuses too, before anything is decided.
	if err := l.Err(); err != nil {
		return PayResult{}, err
	}
	e, err := l.lockEntry(p.ID)
	if err != nil {
		return PayResult{}, err
	}
	// Again under the channel's lock: the watcher may have asked for a resync since, then
	// written this channel from a state it does not trust; its write took this lock after
	// the request.
	if l.needsResync.Load() {
		l.unlockEntry(p.ID, e)
		return PayResult{}, ErrResyncing
	}
	res, w := l.decide(e, p)
	if w != nil {
		if err = l.enqueue(w); err == nil {
			e.last = w
		}
	}
	l.unlockEntry(p.ID, e)
	if w == nil || err != nil {
		return res, err
	}
	// Once queued the payment will be charged, so its answer must wait for the commit even if
	// the caller gave up: an error now would charge a client that was never served. The
	// commit takes one fsync. A write that failed answers no outcome: the payment may not
	// be served.
	if err := wait(context.WithoutCancel(ctx), w); err != nil {
		return PayResult{}, err
	}
	return res, nil
}

// decide runs under the channel's lock; it returns a write when the payment is accepted.
func (l *Ledger) decide(e *entry, p Payment) (PayResult, *write) {
	c := e.ch
	if c == nil {
		return PayResult{Outcome: NoChannel}, nil
	}
	confirmed := l.confirmed.Load()
	res := PayResult{Known: true, Deposit: c.ConfirmedDeposit(confirmed)}
	snapshot := func(o Outcome) PayResult {
		res.Outcome = o
		res.Balance = new(big.Int).Set(c.Balance)
		res.Signature, res.Scheme = c.Signature, c.Scheme
		res.Charged = new(big.Int).Set(c.Charged)
		return res
	}
	switch {
	case c.State != StateOpen:
		return snapshot(NoChannel), nil
	case !c.Confirmed(confirmed):
		return snapshot(Unconfirmed), nil
	case c.used(p.Balance) || c.stored(p):
		return refuseUsed(e, p, snapshot)
	}
	covered := c.Balance
	if p.Balance.Cmp(covered) > 0 {
		covered = p.Balance
	}
	if new(big.Int).Add(c.Charged, p.Price).Cmp(covered) > 0 {
		return snapshot(InvalidAmount), nil
	}
	if p.Balance.Cmp(res.Deposit) > 0 {
		return snapshot(ExceedsDeposit), nil
	}

	// Changed in place: the write below is enqueued before the lock is released, and enqueue
	// fails only when the ledger refuses every later operation anyway (closed or failed).
	var delta Stats
	if c.hasTopUpsBelow(confirmed) {
		before := c.clone()
		c.foldTopUps(confirmed)
		c.accept(p.Balance, p.Signature, p.Scheme, p.Price)
		c.rememberRetry(p)
		delta = statsDelta(before, c)
	} else {
		// Nothing to fold: the payment changes only the balance and the charged sum, so
		// the delta is known without cloning the channel (statsDelta would give the same).
		delta = paymentDelta(c, p)
		c.accept(p.Balance, p.Signature, p.Scheme, p.Price)
		c.rememberRetry(p)
	}
	return snapshot(Accepted), &write{
		sets:  []kv{channelKV(e, c)},
		delta: delta,
	}
}

// refuseUsed answers a proof whose balance was already used: a retry of the request that
// used it is served again, once more counted (docs/protocol.md §8); otherwise a replay of the
// stored proof, or of another used value, is refused.
func refuseUsed(e *entry, p Payment, snapshot func(Outcome) PayResult) (PayResult, *write) {
	c := e.ch
	if r := c.retryOf(p); r != nil {
		// The count is written, and the answer waits for it like a payment's, so that no
		// replica serves a payment more often than maxRetriesServed allows.
		r.Served++
		return snapshot(Retried), &write{sets: []kv{channelKV(e, c)}}
	}
	if c.stored(p) {
		return snapshot(Replayed), nil
	}
	return snapshot(InvalidAmount), nil
}

// stored reports whether p is the channel's stored proof, exactly.
func (c *Channel) stored(p Payment) bool {
	return p.Balance.Cmp(c.Balance) == 0 && p.Signature == c.Signature
}

// hasTopUpsBelow reports whether foldTopUps(confirmedHeight) would fold any top-up.
func (c *Channel) hasTopUpsBelow(confirmedHeight uint64) bool {
	for _, t := range c.TopUps {
		if t.Block <= confirmedHeight {
			return true
		}
	}
	return false
}

// paymentDelta is statsDelta of accepting p on the open channel c when no top-up is folded:
// the balance rises to p.Balance if above it, and the price is charged. The other sums are
// nil (zero to Stats.add): this runs for every payment.
func paymentDelta(c *Channel, p Payment) Stats {
	d := Stats{ChargedSum: new(big.Int).Set(p.Price)}
	if p.Balance.Cmp(c.Balance) > 0 {
		d.BalanceSum = new(big.Int).Sub(p.Balance, c.Balance)
	}
	return d
}
