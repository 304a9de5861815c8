package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// channelKey is the channel's Badger key: "ch/" ‖ sender ‖ uint32 open block.
func channelKey(id rdn.ChannelID) []byte {
	k := make([]byte, 0, len(prefixChannel)+20+4)
	k = append(k, prefixChannel...)
	k = append(k, id.Sender.Bytes()...)
	return binary.BigEndian.AppendUint32(k, id.OpenBlock)
}

// channelIDFromKey is the inverse of channelKey.
func channelIDFromKey(k []byte) (rdn.ChannelID, error) {
	if len(k) != len(prefixChannel)+20+4 {
		return rdn.ChannelID{}, fmt.Errorf("%w: key %x", errCorrupt, k)
	}
	k = k[len(prefixChannel):]
	return rdn.ChannelID{Sender: common.BytesToAddress(k[:20]), OpenBlock: binary.BigEndian.Uint32(k[20:])}, nil
}

// State is where a channel is in its life.
type State uint8

const (
	// StateOpen channels take payments once confirmed.
	StateOpen State = iota + 1
	// StateClosing channels take no more payments: the sender requested an uncooperative
	// close on chain, or the receiver signed a cooperative close.
	StateClosing
	// StateSettled channels are closed on chain; they are kept as history.
	StateSettled
	// StateOrphaned channels had payments, then a reorganization deeper than the
	// confirmations removed their creation from the chain: kept as evidence, never paid.
	StateOrphaned
)

func (s State) String() string {
	switch s {
	case StateOpen:
		return "open"
	case StateClosing:
		return "closing"
	case StateSettled:
		return "settled"
	case StateOrphaned:
		return "orphaned"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// TopUp is a deposit added on chain, counted once its block is confirmed.
type TopUp struct {
	Block  uint64
	Amount *big.Int
}

// maxAccepted bounds the balances remembered above the watermark (see Channel.Accepted).
// It is the number of proofs a sender can have in flight, with credit, on one channel.
const maxAccepted = 1024

// Channel is the receiver's view of one payment channel.
type Channel struct {
	ID    rdn.ChannelID
	State State
	// Deposit is the deposit at creation plus the top-ups already folded in; TopUps are the
	// later ones, counted when confirmed.
	Deposit *big.Int
	TopUps  []TopUp

	// Balance is the highest balance the sender signed and we accepted, and Signature its
	// proof: what the receiver can claim on chain.
	Balance   *big.Int
	Signature rdn.Signature
	// Scheme is the scheme Signature is in: the contract function that takes it
	// (withdraw or withdrawTyped, cooperativeClose or cooperativeCloseTyped) depends on it.
	Scheme rdn.Scheme
	// Charged is the sum of the prices of the requests served. Charged <= Balance always;
	// the difference is credit that later fresh proofs may spend.
	Charged *big.Int
	// Watermark and Accepted say which balance values were already used: every value at or
	// below Watermark, and the values in Accepted (all above it). Each value buys one request.
	Watermark *big.Int
	Accepted  []*big.Int

	// CloseBalance is the balance the sender asked to close at (uncooperative close), and
	// SettleBlock when it may settle; zero without a close request. SettleBlock is what says
	// that a request was made (see CloseRequested): a request at balance zero is common.
	CloseBalance *big.Int
	SettleBlock  uint64
	// Withdrawn is what the receiver took out on chain; Settled what the settlement paid.
	Withdrawn *big.Int

	// ClosingSignature is the receiver's closing signature for Balance, once it agreed to a
	// cooperative close (see CloseCooperatively); zero otherwise.
	ClosingSignature rdn.Signature
	// ClosingScheme is the scheme ClosingSignature is in, the one the sender asked for.
	ClosingScheme rdn.Scheme

	// Retries are the latest accepted payments whose request carried a retry key, oldest
	// first: a retry of one of them is served again uncharged (docs/protocol.md §8). Kept in
	// the channel's record so that they are durable with the payment, in one write.
	Retries []Retry
}

// RetryKey tells a retry of a request from a replay of its proof on another request: a hash
// of the request's Idempotency-Key or x-request-id and its route (authz computes it). Zero
// means the request has none.
//
// 16 bytes, not fewer, although they are most of an entry: the sender chooses every input of
// the hash (Idempotency-Key, route) and the key binds neither the channel nor the balance, so
// one colliding pair of requests, found once offline by the birthday bound (2^32 hashes for 8
// bytes, 2^48 for 12), would let every later payment on the cheap route be retried on the
// dear one. At 16 bytes that search is 2^64.
type RetryKey [16]byte

// Retry is an accepted payment that its request's retries may be served with.
type Retry struct {
	// Balance is the payment's balance, big-endian, held by value: a *big.Int per entry
	// cost two pointers to chase for each of the maxRetries entries that every payment
	// encodes and every retry scans, and more for the GC to mark, most of what remembering
	// retries cost a payment in memory. A balance is at most 256 bits (the contract's uint256).
	Balance [32]byte
	Key     RetryKey
	// At is when the payment's request was seen, to the millisecond.
	At time.Time
	// Served counts the retries served: each is written before it is answered, so that a
	// payment buys at most 1 + maxRetriesServed requests, whichever replica serves them.
	Served uint8
}

// retryBalance is b as Retry.Balance holds it; ok is false when it does not fit, which no
// accepted balance does (it is at most the deposit, a uint256).
func retryBalance(b *big.Int) (out [32]byte, ok bool) {
	if b.Sign() < 0 || b.BitLen() > 256 {
		return out, false
	}
	b.FillBytes(out[:])
	return out, true
}

// BalanceInt is r.Balance as a number.
func (r *Retry) BalanceInt() *big.Int { return new(big.Int).SetBytes(r.Balance[:]) }

const (
	// maxRetries bounds Channel.Retries: a sender seldom has more requests in flight, and
	// each entry costs some 45 bytes on every write of the channel.
	maxRetries = 8
	// maxRetriesServed is how many retries one payment buys. Envoy retries a Check once by
	// default (GrpcService.retry_policy), a client a few times; more would be a free request.
	maxRetriesServed = 3
)

// CloseSigned reports whether the receiver signed a cooperative close of the channel.
func (c *Channel) CloseSigned() bool { return c.ClosingSignature != rdn.Signature{} }

// CloseRequested reports whether the sender asked on chain to close the channel
// (uncooperative close), whatever the balance it asked for: a settle block is set by the
// request and by nothing else (a close the receiver signed sets none, as the contract settles
// a cooperative close at once).
func (c *Channel) CloseRequested() bool { return c.SettleBlock != 0 }

func newChannel(id rdn.ChannelID, deposit *big.Int) *Channel {
	return &Channel{
		ID: id, State: StateOpen, Deposit: new(big.Int).Set(deposit),
		Balance: new(big.Int), Charged: new(big.Int), Watermark: new(big.Int),
		CloseBalance: new(big.Int), Withdrawn: new(big.Int),
	}
}

// Confirmed reports whether the channel's creation is confirmed at the given height.
func (c *Channel) Confirmed(confirmedHeight uint64) bool {
	return uint64(c.ID.OpenBlock) <= confirmedHeight
}

// ConfirmedDeposit is the deposit counting only top-ups confirmed at the given height.
func (c *Channel) ConfirmedDeposit(confirmedHeight uint64) *big.Int {
	d := new(big.Int).Set(c.Deposit)
	for _, t := range c.TopUps {
		if t.Block <= confirmedHeight {
			d.Add(d, t.Amount)
		}
	}
	return d
}

// TotalDeposit counts every top-up seen, confirmed or not.
func (c *Channel) TotalDeposit() *big.Int { return c.ConfirmedDeposit(^uint64(0)) }

// foldTopUps moves confirmed top-ups into Deposit, keeping the record small.
func (c *Channel) foldTopUps(confirmedHeight uint64) {
	kept := c.TopUps[:0]
	for _, t := range c.TopUps {
		if t.Block <= confirmedHeight {
			c.Deposit.Add(c.Deposit, t.Amount)
		} else {
			kept = append(kept, t)
		}
	}
	c.TopUps = kept
}

// retryOf returns the remembered payment that p retries, or nil: the same balance and retry
// key, seen within p's window of it, with retries left. Checked only for a balance already
// used, so a fresh proof is never taken for a retry.
func (c *Channel) retryOf(p Payment) *Retry {
	if p.RetryKey == (RetryKey{}) || p.RetryWindow <= 0 {
		return nil
	}
	balance, ok := retryBalance(p.Balance)
	if !ok {
		return nil
	}
	for i := range c.Retries {
		r := &c.Retries[i]
		if r.Key == p.RetryKey && r.Balance == balance {
			if withinWindow(p, r.At) && r.Served < maxRetriesServed {
				return r
			}
			return nil
		}
	}
	return nil
}

// withinWindow reports whether at lies within p's retry window of p's time, either way: the
// two may come from the clocks of different replicas.
func withinWindow(p Payment, at time.Time) bool {
	d := p.Seen.Sub(at)
	return d <= p.RetryWindow && -d <= p.RetryWindow
}

// rememberRetry keeps an accepted payment for its request's retries, and forgets those out of
// the window, so that records shrink back once retries stop (and the older encodings are
// written again). A window of 0 forgets them all.
func (c *Channel) rememberRetry(p Payment) {
	if p.RetryWindow <= 0 {
		c.Retries = nil
		return
	}
	c.Retries = slices.DeleteFunc(c.Retries, func(r Retry) bool { return !withinWindow(p, r.At) })
	if p.RetryKey == (RetryKey{}) {
		return
	}
	balance, ok := retryBalance(p.Balance)
	if !ok {
		return // never for an accepted balance; such a payment is then not retried
	}
	c.Retries = append(c.Retries, Retry{Balance: balance, Key: p.RetryKey, At: p.Seen.Truncate(time.Millisecond)})
	if n := len(c.Retries) - maxRetries; n > 0 {
		c.Retries = slices.Delete(c.Retries, 0, n)
	}
}

// used reports whether a balance value was already accepted.
func (c *Channel) used(balance *big.Int) bool {
	if balance.Cmp(c.Watermark) <= 0 {
		return true
	}
	_, found := slices.BinarySearchFunc(c.Accepted, balance, (*big.Int).Cmp)
	return found
}

// accept records a payment the caller has validated: balance is fresh and covers the price.
func (c *Channel) accept(balance *big.Int, sig rdn.Signature, scheme rdn.Scheme, price *big.Int) {
	c.Charged.Add(c.Charged, price)
	if balance.Cmp(c.Balance) > 0 {
		c.Balance.Set(balance)
		c.Signature, c.Scheme = sig, scheme
	}
	if c.Charged.Cmp(c.Balance) == 0 {
		// No credit left: no value at or below the balance can buy anything any more.
		c.Watermark.Set(c.Balance)
		c.Accepted = c.Accepted[:0]
		return
	}
	i, _ := slices.BinarySearchFunc(c.Accepted, balance, (*big.Int).Cmp)
	c.Accepted = slices.Insert(c.Accepted, i, new(big.Int).Set(balance))
	if len(c.Accepted) > maxAccepted {
		// Forget the oldest values: they now count as used, which refuses at worst a very
		// late proof of a sender with more than maxAccepted proofs in flight.
		c.Watermark.Set(c.Accepted[0])
		c.Accepted = slices.Delete(c.Accepted, 0, 1)
	}
}

func (c *Channel) clone() *Channel {
	cp := *c
	cp.Deposit = new(big.Int).Set(c.Deposit)
	cp.TopUps = make([]TopUp, len(c.TopUps))
	for i, t := range c.TopUps {
		cp.TopUps[i] = TopUp{Block: t.Block, Amount: new(big.Int).Set(t.Amount)}
	}
	cp.Balance = new(big.Int).Set(c.Balance)
	cp.Charged = new(big.Int).Set(c.Charged)
	cp.Watermark = new(big.Int).Set(c.Watermark)
	cp.Accepted = make([]*big.Int, len(c.Accepted))
	for i, a := range c.Accepted {
		cp.Accepted[i] = new(big.Int).Set(a)
	}
	cp.CloseBalance = new(big.Int).Set(c.CloseBalance)
	cp.Withdrawn = new(big.Int).Set(c.Withdrawn)
	cp.Retries = slices.Clone(c.Retries)
	return &cp
}

// Encoding: a version byte, then fixed fields and length-prefixed big integers. Hand-written
// because it is on the hot path of every payment and must stay readable by later versions.
// Version 2 appends the closing signature; a record without one is still written as
// version 1, which older binaries read. Version 3 appends the retries to version 2 (closing
// signature included, zero when none); a record without retries is written as before.
// Version 4 appends the schemes of the balance proof and of the closing signature to
// version 3: a record whose signatures are all legacy is written as before, so a ledger
// with no typed proof stays readable by binaries that know no scheme, and every record they
// wrote reads as legacy.
const (
	encodingVersion        = 1
	encodingVersionClosing = 2
	encodingVersionRetries = 3
	encodingVersionSchemes = 4
)

// encodingVersionOf is the oldest version that holds all of c.
func (c *Channel) encodingVersionOf() byte {
	switch {
	case c.Scheme != rdn.SchemeLegacy || c.ClosingScheme != rdn.SchemeLegacy:
		return encodingVersionSchemes
	case len(c.Retries) > 0:
		return encodingVersionRetries
	case c.CloseSigned():
		return encodingVersionClosing
	}
	return encodingVersion
}

func (c *Channel) marshal() []byte {
	b := make([]byte, 0, 162+len(c.Accepted)*10+rdn.SignatureLength+len(c.Retries)*48)
	version := c.encodingVersionOf()
	b = append(b, version, byte(c.State))
	b = appendBig(b, c.Deposit)
	b = binary.AppendUvarint(b, uint64(len(c.TopUps)))
	for _, t := range c.TopUps {
		b = binary.AppendUvarint(b, t.Block)
		b = appendBig(b, t.Amount)
	}
	b = appendBig(b, c.Balance)
	b = append(b, c.Signature[:]...)
	b = appendBig(b, c.Charged)
	b = appendBig(b, c.Watermark)
	b = binary.AppendUvarint(b, uint64(len(c.Accepted)))
	for _, a := range c.Accepted {
		b = appendBig(b, a)
	}
	b = appendBig(b, c.CloseBalance)
	b = binary.AppendUvarint(b, c.SettleBlock)
	b = appendBig(b, c.Withdrawn)
	if version >= encodingVersionClosing {
		b = append(b, c.ClosingSignature[:]...)
	}
	if version >= encodingVersionRetries {
		b = appendRetries(b, c.Retries)
	}
	if version >= encodingVersionSchemes {
		b = append(b, byte(c.Scheme), byte(c.ClosingScheme))
	}
	return b
}

func appendRetries(b []byte, retries []Retry) []byte {
	b = binary.AppendUvarint(b, uint64(len(retries)))
	for _, r := range retries {
		// As appendBig writes it: the length, then the bytes without leading zeros.
		v := r.Balance[:]
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
		b = append(b, r.Key[:]...)
		b = binary.AppendUvarint(b, uint64(r.At.UnixMilli()))
		b = append(b, r.Served)
	}
	return b
}

func (r *reader) retries() []Retry {
	n := r.uvarint()
	if n > maxRetries {
		r.err = errCorrupt
		return nil
	}
	var out []Retry
	for ; n > 0 && r.err == nil; n-- {
		var e Retry
		if n := r.uvarint(); n > uint64(len(e.Balance)) {
			r.err = errCorrupt
		} else {
			copy(e.Balance[len(e.Balance)-int(n):], r.bytes(int(n)))
		}
		copy(e.Key[:], r.bytes(len(e.Key)))
		ms := r.uvarint()
		if ms > math.MaxInt64 {
			r.err = errCorrupt
		}
		e.At = time.UnixMilli(int64(ms))
		e.Served = r.byte()
		out = append(out, e)
	}
	return out
}

var errCorrupt = errors.New("ledger: corrupt channel record")

func unmarshalChannel(id rdn.ChannelID, data []byte) (*Channel, error) {
	r := reader{b: data}
	version := r.byte()
	if version < encodingVersion || version > encodingVersionSchemes {
		return nil, fmt.Errorf("ledger: channel %s: unknown encoding version %d", id, version)
	}
	c := &Channel{ID: id, State: State(r.byte()), Deposit: r.big()}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		c.TopUps = append(c.TopUps, TopUp{Block: r.uvarint(), Amount: r.big()})
	}
	c.Balance = r.big()
	copy(c.Signature[:], r.bytes(rdn.SignatureLength))
	c.Charged = r.big()
	c.Watermark = r.big()
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		c.Accepted = append(c.Accepted, r.big())
	}
	c.CloseBalance = r.big()
	c.SettleBlock = r.uvarint()
	c.Withdrawn = r.big()
	if version >= encodingVersionClosing {
		copy(c.ClosingSignature[:], r.bytes(rdn.SignatureLength))
	}
	if version >= encodingVersionRetries {
		c.Retries = r.retries()
	}
	if version >= encodingVersionSchemes {
		c.Scheme, c.ClosingScheme = rdn.Scheme(r.byte()), rdn.Scheme(r.byte())
		if !c.Scheme.Valid() || !c.ClosingScheme.Valid() {
			r.err = errCorrupt
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, fmt.Errorf("%w %s", errCorrupt, id)
	}
	return c, nil
}

func appendBig(b []byte, x *big.Int) []byte {
	n := (x.BitLen() + 7) / 8
	b = binary.AppendUvarint(b, uint64(n))
	start := len(b)
	b = append(b, make([]byte, n)...)
	x.FillBytes(b[start:])
	return b
}

// reader decodes what marshal wrote; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errCorrupt
		return make([]byte, n)
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte() byte { return r.bytes(1)[0] }

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) big() *big.Int {
	n := r.uvarint()
	if n > 32 {
		r.err = errCorrupt
		return new(big.Int)
	}
	return new(big.Int).SetBytes(r.bytes(int(n)))
}
