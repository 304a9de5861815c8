package authz

import (
	"context"
	"strings"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

// fakeLedger is a Ledger whose answers a test sets and which records what it was asked,
// for the tests of the decision table (decide_test.go). quoteLedger (http_test.go) stays the
// one for tests that never get as far as a payment.
type fakeLedger struct {
	err        error           // Err's answer: the ledger cannot take payments
	channel    *ledger.Channel // Channel's answer, whatever the ID
	channelErr error
	height     uint64           // ConfirmedHeight's answer
	result     ledger.PayResult // Pay's answer
	payErr     error

	calls    []string // the methods called, in order
	asked    []rdn.ChannelID
	payments []ledger.Payment
}

func (l *fakeLedger) Channel(id rdn.ChannelID) (*ledger.Channel, error) {
	l.calls, l.asked = append(l.calls, "Channel"), append(l.asked, id)
	return l.channel, l.channelErr
}

func (l *fakeLedger) ConfirmedHeight() uint64 {
	l.calls = append(l.calls, "ConfirmedHeight")
	return l.height
}

func (l *fakeLedger) Pay(_ context.Context, p ledger.Payment) (ledger.PayResult, error) {
	l.calls, l.payments = append(l.calls, "Pay"), append(l.payments, p)
	return l.result, l.payErr
}

func (l *fakeLedger) Err() error {
	l.calls = append(l.calls, "Err")
	return l.err
}

// called is the calls in order, space-separated ("" for none).
func (l *fakeLedger) called() string { return strings.Join(l.calls, " ") }

// failingPricer prices with Pricer, but fails on the path fail.
type failingPricer struct {
	Pricer
	fail string
	err  error
}

func (p failingPricer) Quote(r *pricing.Request) (pricing.Quote, error) {
	if r.Path == p.fail {
		return pricing.Quote{}, p.err
	}
	return p.Pricer.Quote(r)
}
