package chain

import (
	"context"
	"fmt"
	"math/big"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// The receiver's batch policy: which of the ledger's channels a cooperative close or a
// withdrawal should go out for, and what each would bring in. PlanClose and PlanWithdraw
// only read; SignCloses records the closes in the ledger; the Receiver sends the claims.

// ChannelInfoReader reads a channel's current state from the contract; a Receiver is one.
type ChannelInfoReader interface {
	ChannelInfo(ctx context.Context, id rdn.ChannelID) (ledger.ChainChannel, error)
}

var _ ChannelInfoReader = (*Receiver)(nil)

// Candidate is a channel a batch will act on, and the tokens it expects to bring in.
type Candidate struct {
	Channel  *ledger.Channel
	Expected *big.Int
}

// Claim is the candidate's balance proof, in its scheme, as Withdraw takes it;
// CooperativeClose needs the closing signature too (SignCloses), signed in the same scheme.
func (c Candidate) Claim() Claim {
	return Claim{Channel: c.Channel.ID, Balance: c.Channel.Balance, BalanceSignature: c.Channel.Signature, Scheme: c.Channel.Scheme}
}

// Skipped is a channel a plan leaves alone, and why.
type Skipped struct {
	Channel rdn.ChannelID
	Why     string
}

// Plan is what a batch found to do.
type Plan struct {
	Todo []Candidate
	Skip []Skipped
}

func (p *Plan) skipf(id rdn.ChannelID, format string, args ...any) {
	p.Skip = append(p.Skip, Skipped{id, fmt.Sprintf(format, args...)})
}

// PlanClose picks the channels to close cooperatively: open or closing, with a payment, on
// chain, and without a dispute in flight (the watchtower owns that transaction). Each is
// expected to bring in its balance less what was withdrawn (the contract settles at least at
// what was withdrawn).
func PlanClose(ctx context.Context, l *ledger.Ledger, reader ChannelInfoReader) (Plan, error) {
	var p Plan
	chs, err := ledgerChannels(l, ledger.StateOpen, ledger.StateClosing)
	if err != nil {
		return p, err
	}
	disputed, err := activeDisputes(l)
	if err != nil {
		return p, err
	}
	for _, c := range chs {
		if c.Balance.Sign() == 0 {
			p.skipf(c.ID, "no payment (balance 0)")
			continue
		}
		if disputed[c.ID] {
			p.skipf(c.ID, "the watchtower's dispute is in flight; 'uraiden serve' completes it")
			continue
		}
		info, ok, err := p.onChain(ctx, reader, c.ID)
		if err != nil {
			return p, err
		}
		if !ok {
			continue
		}
		// The contract settles at least at what was withdrawn, and pays the rest.
		settled := bigMax(c.Balance, info.Withdrawn)
		p.Todo = append(p.Todo, Candidate{Channel: c, Expected: new(big.Int).Sub(settled, info.Withdrawn)})
	}
	return p, nil
}

// PlanWithdraw picks the open channels whose unwithdrawn balance is at least minimum (the
// --min of 'uraiden withdraw'), each expected to bring in that unwithdrawn balance. What was
// withdrawn is read from the contract: the ledger learns it only when the server's watcher
// runs, and a second withdrawal of the same balance would revert.
func PlanWithdraw(ctx context.Context, l *ledger.Ledger, reader ChannelInfoReader, minimum *big.Int) (Plan, error) {
	var p Plan
	chs, err := ledgerChannels(l, ledger.StateOpen)
	if err != nil {
		return p, err
	}
	for _, c := range chs {
		if c.Balance.Cmp(minimum) < 0 {
			p.skipf(c.ID, "balance %s below --min %s", c.Balance, minimum)
			continue
		}
		info, ok, err := p.onChain(ctx, reader, c.ID)
		if err != nil {
			return p, err
		}
		if !ok {
			continue
		}
		switch unwithdrawn := new(big.Int).Sub(c.Balance, info.Withdrawn); {
		case info.SettleBlock != 0:
			p.skipf(c.ID, "the sender asked to close it (settle block %d): no withdrawal from a closing channel", info.SettleBlock)
		case unwithdrawn.Cmp(minimum) < 0:
			p.skipf(c.ID, "unwithdrawn %s below --min %s", unwithdrawn, minimum)
		default:
			p.Todo = append(p.Todo, Candidate{Channel: c, Expected: unwithdrawn})
		}
	}
	return p, nil
}

// SignCloses records each close in the ledger, which signs it: from then on the channel
// takes no payment above the balance, before the signature leaves the process. A channel
// the ledger refuses to close comes back as a failed result.
func (r *Receiver) SignCloses(ctx context.Context, l *ledger.Ledger, todo []Candidate) ([]Claim, []Result) {
	var claims []Claim
	var failed []Result
	for _, c := range todo {
		claim := c.Claim()
		sig, err := l.CloseCooperatively(ctx, c.Channel.ID, c.Channel.Balance, claim.Scheme, r.SignClose)
		if err != nil {
			failed = append(failed, Result{Claim: claim, Tokens: new(big.Int), Fee: new(big.Int), Err: err})
			continue
		}
		claim.ClosingSignature = sig
		claims = append(claims, claim)
	}
	return claims, failed
}

// onChain reads a channel from the contract; ok is false for a channel no longer there,
// which the plan skips.
func (p *Plan) onChain(ctx context.Context, reader ChannelInfoReader, id rdn.ChannelID) (info ledger.ChainChannel, ok bool, err error) {
	if info, err = reader.ChannelInfo(ctx, id); err != nil {
		return info, false, err
	}
	if !info.Exists {
		p.skipf(id, "not on chain: settled already (the server records it when it runs)")
		return info, false, nil
	}
	return info, true, nil
}

// ledgerChannels lists the ledger's channels in the given states.
func ledgerChannels(l *ledger.Ledger, states ...ledger.State) ([]*ledger.Channel, error) {
	var all []*ledger.Channel
	q := ledger.Query{States: states, Limit: 1000}
	for {
		page, err := l.Channels(q)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Channels...)
		if page.Next == nil {
			return all, nil
		}
		q.After = page.Next
	}
}

// activeDisputes are the channels whose dispute the watchtower still owns.
func activeDisputes(l *ledger.Ledger) (map[rdn.ChannelID]bool, error) {
	all, err := l.Disputes()
	if err != nil {
		return nil, err
	}
	active := map[rdn.ChannelID]bool{}
	for _, d := range all {
		if d.Active() {
			active[d.Channel] = true
		}
	}
	return active, nil
}
