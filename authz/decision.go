package authz

import (
	"context"
	"fmt"
	"math/big"
	"runtime"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

// Decision is what the service decided about one request.
type Decision struct {
	Status  int    // HTTP status: 200 allows, anything else denies
	Flag    string // the RDN-* failure flag of a 402, if any
	Message string // why, for the response body and the logs
	Price   *big.Int
	Rule    string
	// Channel is set once the request named a channel the ledger knows.
	Channel *ChannelState
	// quote marks the 402 for a request that carried no proof.
	quote bool
	// retried marks a 200 served with the payment of an earlier attempt of the same request
	// (docs/protocol.md §8): nothing was charged for it.
	retried bool
	// browser is set when a 402 or 409 goes to a browser: it gets the HTML paywall.
	browser *browser
	// suspended marks a refusal because payments are suspended as a whole (the ledger or the
	// chain backend is unusable), not because of this request: logged as a state, not a line
	// each (see suspensionLog).
	suspended bool
	// stripCookie is set on an allowed request whose cookies include RDN-* ones: the
	// upstream gets cookie instead (the others), or no cookie header when it is empty.
	stripCookie bool
	cookie      string
}

// browser is what the paywall's response needs to know about the request.
type browser struct {
	https bool // the cookies must be Secure
}

// ChannelState is what the response tells a client about its channel.
type ChannelState struct {
	Sender    common.Address
	OpenBlock uint32
	// Balance and Signature are the server's last accepted proof: after this payment on a
	// 200, the one to resynchronize with on a 402.
	Balance   *big.Int
	Signature rdn.Signature
	Scheme    rdn.Scheme // Signature's
	// Paid is the balance this request paid with (200 only).
	Paid *big.Int
}

// Allowed reports whether the request may proceed.
func (d *Decision) Allowed() bool { return d.Status == 200 }

// Outcome names the kind of decision, for metrics and logs: free, paid, retried (a retry
// served with an earlier attempt's payment), quote (a 402 for a request without a proof),
// refused (a 402 for a proof not accepted), malformed (409, or 400 for a path that cannot be
// priced unambiguously or a bad Idempotency-Key) or error (5xx).
func (d *Decision) Outcome() string {
	switch {
	case d.Status == 200 && d.retried:
		return "retried"
	case d.Status == 200 && d.Channel != nil && d.Channel.Paid != nil:
		return "paid"
	case d.Status == 200:
		return "free"
	case d.Status == 402 && d.quote:
		return "quote"
	case d.Status == 402:
		return "refused"
	case d.Status == 409 || d.Status == 400:
		return "malformed"
	default:
		return "error"
	}
}

// Pricer prices requests; *pricing.Table is one.
type Pricer interface {
	Quote(r *pricing.Request) (pricing.Quote, error)
}

// ChainHealth reports whether the chain backend can protect the receiver right now.
type ChainHealth interface {
	// Healthy returns nil, or why payments must not be taken (node down, receiver's ETH too
	// low to send a dispute).
	Healthy() error
}

// Ledger is the part of *ledger.Ledger the decisions use.
type Ledger interface {
	Channel(id rdn.ChannelID) (*ledger.Channel, error)
	ConfirmedHeight() uint64
	Pay(ctx context.Context, p ledger.Payment) (ledger.PayResult, error)
	// Err is why the ledger cannot take payments now, or nil.
	Err() error
}

// Config is what a Service needs.
type Config struct {
	Receiver    common.Address
	Contract    common.Address
	Token       common.Address
	ChainID     uint64 // shown by the browser paywall, whose wallet must be on this chain
	GatewayPath string // where the /api/1 channel management API is reachable
	// Prices returns the current price table (it may be reloaded at any time).
	Prices func() Pricer
	Ledger Ledger
	Chain  ChainHealth
	// Observe, when set, is told every decision and how long it took: the hook for
	// metrics, which keeps this package free of a metrics library.
	Observe func(d *Decision, took time.Duration)
	// RetryWindow is how long after a payment a retry of its request is served with it,
	// uncharged (docs/protocol.md §8); 0 serves none.
	RetryWindow time.Duration
	// ProofSchemes are the proof schemes taken, the preferred first; empty means legacy
	// only. Offer the typed scheme only when the contract has its functions (chain.ProofSchemes):
	// a typed proof is worthless to the receiver otherwise.
	ProofSchemes []rdn.Scheme

	hex     *addressHex   // set by NewService
	fixed   *fixedHeaders // set by NewService
	schemes *offer        // set by NewService
}

// decide applies µRaiden's checks in order.
func (c *Config) decide(ctx context.Context, req httpRequest) *Decision {
	prices := c.Prices()
	quote, err := prices.Quote(&req.pricing)
	if err != nil {
		return &Decision{Status: 500, Message: fmt.Sprintf("pricing: %v", err)}
	}
	if d := checkOtherPaths(prices, req, quote); d != nil {
		return d
	}
	if quote.Price.Sign() == 0 {
		return &Decision{Status: 200, Price: quote.Price, Rule: quote.Rule}
	}
	d := &Decision{Price: quote.Price, Rule: quote.Rule}
	if err := c.Ledger.Err(); err != nil {
		d.suspended = true
		return d.deny(503, "", fmt.Sprintf("payments suspended: %v", err))
	}
	if err := c.Chain.Healthy(); err != nil {
		d.suspended = true
		return d.deny(502, "", fmt.Sprintf("payments suspended: %v", err))
	}
	pay, err := readPayment(req.headers)
	if err != nil {
		// A *malformedError naming the header, as every error of readPayment is (FuzzReadPayment).
		return d.deny(409, "", err.Error())
	}
	key, err := retryKey(req)
	if err != nil {
		return d.deny(400, "", err.Error())
	}
	if pay == nil {
		d.quote = true
		return d.deny(402, "", "payment required")
	}
	return c.decidePayment(ctx, d, pay, key)
}

// checkOtherPaths refuses (400) a request whose path some servers resolve to another one
// at another price: which the upstream serves cannot be told from here. Paths without such
// readings (almost all) cost nothing here.
func checkOtherPaths(prices Pricer, req httpRequest, quote pricing.Quote) *Decision {
	for _, other := range req.otherPaths {
		r := req.pricing
		r.Path = other
		q, err := prices.Quote(&r)
		if err != nil {
			return &Decision{Status: 500, Message: fmt.Sprintf("pricing: %v", err)}
		}
		if q.Price.Cmp(quote.Price) != 0 {
			return &Decision{Status: 400, Message: fmt.Sprintf(
				"the path is %s (price %s) to some servers and %s (price %s) to others: refused, write it one way",
				req.pricing.Path, quote.Price, other, q.Price)}
		}
	}
	return nil
}

func (c *Config) decidePayment(ctx context.Context, d *Decision, pay *paymentHeaders, key ledger.RetryKey) *Decision {
	id := rdn.ChannelID{Sender: pay.Sender, OpenBlock: pay.OpenBlock}
	// Recovery needs no ledger, and until it succeeds the request has proven nothing: the
	// channel's state (its last proof above all) is shown only to its sender.
	offer := c.offer()
	if !offer.takes(pay.Scheme) {
		return d.deny(409, "", fmt.Sprintf("%s: %s is not offered: this server's contract takes %s proofs only",
			rdn.HeaderProofScheme, pay.Scheme, offer.header))
	}
	hash, err := offer.proofHash(pay, c.Receiver, c.Contract)
	if err != nil {
		return c.refuseUnverified(d, id)
	}
	recoverSlots <- struct{}{}
	signer, err := rdn.Recover(hash, pay.Signature[:])
	<-recoverSlots
	if err != nil || signer != pay.Sender {
		return c.refuseUnverified(d, id)
	}
	// Verified: Pay checks the channel's existence, state and confirmation under its lock,
	// in the order refuseUnverified does, and answers with its state.
	res, err := c.Ledger.Pay(ctx, ledger.Payment{ID: id, Balance: pay.Balance, Signature: pay.Signature, Scheme: pay.Scheme,
		Price: d.Price, RetryKey: key, Seen: time.Now(), RetryWindow: c.RetryWindow})
	if err != nil {
		return d.deny(503, "", fmt.Sprintf("the payment could not be stored: %v", err))
	}
	if res.Known {
		d.Channel = &ChannelState{Sender: id.Sender, OpenBlock: id.OpenBlock, Balance: res.Balance, Signature: res.Signature, Scheme: res.Scheme}
	}
	switch res.Outcome {
	case ledger.Accepted, ledger.Retried:
		if d.Channel == nil {
			// The ledger stores what it accepts, so it knows the channel: anything else is a
			// broken ledger, and no OK goes out without the stored state.
			return d.deny(503, "", "the ledger accepted a payment on a channel it did not report")
		}
		d.Status = 200
		d.Channel.Paid = pay.Balance
		if res.Outcome == ledger.Retried {
			d.retried, d.Message = true, "a retry of a paid request: served again, not charged"
		}
		return d
	case ledger.Replayed:
		return d.deny(402, "", "this balance proof was already used; sign the next balance")
	case ledger.InvalidAmount:
		return d.deny(402, rdn.FlagInvalidAmount, fmt.Sprintf("this balance was already used, or the balances signed do not cover what was charged plus the price (%s); resynchronize with RDN-Sender-Balance", d.Price))
	case ledger.ExceedsDeposit:
		return d.deny(402, rdn.FlagInsufficientDeposit, fmt.Sprintf("the balance is above the channel's confirmed deposit (%s); top up", res.Deposit))
	case ledger.Unconfirmed:
		return d.deny(402, rdn.FlagInsufficientConfirm, "the channel is not confirmed yet; retry later")
	default:
		return d.deny(402, rdn.FlagNonexistingChannel, "no open channel "+id.String())
	}
}

// refuseUnverified answers a proof that does not recover to its sender: the channel's
// existence and confirmation come first, as µRaiden checks them, and its state is not shown.
func (c *Config) refuseUnverified(d *Decision, id rdn.ChannelID) *Decision {
	ch, err := c.Ledger.Channel(id)
	switch {
	case err != nil:
		return d.deny(503, "", fmt.Sprintf("ledger: %v", err))
	case ch != nil && ch.State == ledger.StateOpen && !ch.Confirmed(c.Ledger.ConfirmedHeight()):
		return d.deny(402, rdn.FlagInsufficientConfirm, "the channel is not confirmed yet; retry later")
	case ch == nil || ch.State != ledger.StateOpen:
		return d.deny(402, rdn.FlagNonexistingChannel, "no open channel "+id.String())
	}
	return d.deny(402, rdn.FlagInvalidProof, "the balance proof is not signed by the sender for this receiver and contract "+
		"(in the scheme RDN-Proof-Scheme names: legacy when absent)")
}

func (d *Decision) deny(status int, flag, message string) *Decision {
	d.Status, d.Flag, d.Message = status, flag, message
	return d
}

// recoverSlots bounds the recoveries running at once to the cores. A recovery is most of a
// paid check's CPU; without the bound, every request in flight queues for a core with ~40 µs
// of it to do, and the short work around them (the ledger's commits, gRPC's reads and
// writes, answering) waits behind all of them. Bounded, the waiting requests are parked
// instead of queued, and what is queued is short.
var recoverSlots = make(chan struct{}, runtime.GOMAXPROCS(0))
