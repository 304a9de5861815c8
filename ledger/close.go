package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/uraiden/uraiden/rdn"
)

// Errors of CloseCooperatively.
var (
	ErrUnknownChannel = errors.New("ledger: no such channel")
	ErrSettled        = errors.New("ledger: the channel is settled")
)

// BalanceMismatchError refuses a cooperative close at another balance than the last one
// accepted: the receiver closes only at what it was paid.
type BalanceMismatchError struct {
	Asked, Balance *big.Int
}

func (e *BalanceMismatchError) Error() string {
	return fmt.Sprintf("ledger: close at balance %s asked, the last accepted balance is %s", e.Asked, e.Balance)
}

// CloseSigner signs the receiver's closing message for a channel at a balance, in a scheme.
type CloseSigner func(id rdn.ChannelID, balance *big.Int, scheme rdn.Scheme) (rdn.Signature, error)

// CloseCooperatively agrees to close a channel at balance, which must be the last balance
// accepted: it signs the receiver's closing message, and from then on the channel takes no
// more payments (StateClosing, with the signature kept). It returns once that is on disk, so
// no signature leaves while a restart could reopen the channel to payments above it.
//
// The signature is in scheme, the one the sender will close with (the scheme of its own
// balance proof for that balance). Asking again at the same balance in the same scheme
// returns the same signature; in the other scheme, a new one, which is kept instead: both
// close at the same balance, so either is as good to the receiver. A channel whose sender
// already requested a close on chain can still be closed this way (the contract allows it
// during the challenge period); a settled one cannot.
func (l *Ledger) CloseCooperatively(ctx context.Context, id rdn.ChannelID, balance *big.Int, scheme rdn.Scheme, sign CloseSigner) (rdn.Signature, error) {
	for attempt := 1; ; attempt++ {
		sig, err := l.closeCooperatively(ctx, id, balance, scheme, sign)
		if !errors.Is(err, errConflict) || attempt == maxAttempts {
			return sig, err
		}
	}
}

func (l *Ledger) closeCooperatively(ctx context.Context, id rdn.ChannelID, balance *big.Int, scheme rdn.Scheme, sign CloseSigner) (rdn.Signature, error) {
	e, err := l.lockEntry(id)
	if err != nil {
		return rdn.Signature{}, err
	}
	sig, w, err := closeChannel(e, balance, scheme, sign)
	if err == nil {
		err = l.enqueue(w.write)
	}
	if err == nil && w.sets != nil {
		e.ch, e.last = w.after, w.write
	}
	l.unlockEntry(id, e)
	if err != nil {
		return rdn.Signature{}, err
	}
	if err := wait(ctx, w.write); err != nil {
		return rdn.Signature{}, err
	}
	return sig, nil
}

// closeWrite is the write of a close and the channel after it.
type closeWrite struct {
	*write
	after *Channel
}

// closeChannel decides under the channel's lock. Asked again, it returns an empty write:
// waiting for it still waits for the first close's write, queued before it.
func closeChannel(e *entry, balance *big.Int, scheme rdn.Scheme, sign CloseSigner) (rdn.Signature, closeWrite, error) {
	c := e.ch
	switch {
	case c == nil:
		return rdn.Signature{}, closeWrite{}, ErrUnknownChannel
	case c.State == StateSettled:
		return rdn.Signature{}, closeWrite{}, ErrSettled
	case balance.Cmp(c.Balance) != 0:
		return rdn.Signature{}, closeWrite{}, &BalanceMismatchError{Asked: new(big.Int).Set(balance), Balance: new(big.Int).Set(c.Balance)}
	case !scheme.Valid():
		return rdn.Signature{}, closeWrite{}, fmt.Errorf("ledger: close of %s: %w", c.ID, rdn.ErrScheme)
	case c.CloseSigned() && c.ClosingScheme == scheme:
		return c.ClosingSignature, closeWrite{write: &write{delta: zeroStats()}}, nil
	}
	sig, err := sign(c.ID, c.Balance, scheme)
	if err != nil {
		return rdn.Signature{}, closeWrite{}, fmt.Errorf("ledger: sign the close of %s: %w", c.ID, err)
	}
	after := c.clone()
	after.State = StateClosing
	after.ClosingSignature, after.ClosingScheme = sig, scheme
	return sig, closeWrite{
		write: &write{sets: []kv{channelKV(e, after)}, delta: statsDelta(c, after)},
		after: after,
	}, nil
}
