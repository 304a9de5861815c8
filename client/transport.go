package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// TransportConfig configures the paying RoundTripper.
type TransportConfig struct {
	// Base sends the requests; nil is http.DefaultTransport.
	Base http.RoundTripper
	// OpenFactor × price is the deposit of a new channel (default 10); TopUpFactor × price
	// what a top-up adds (default 5). Either grows to cover the payment at hand.
	OpenFactor, TopUpFactor int64
	// MaxSpend caps the sum of the prices this transport pays (nil: no cap); MaxPrice the
	// price of one request (nil: no cap).
	MaxSpend, MaxPrice *big.Int
	// Funding says how channels are opened and topped up.
	Funding OpenOptions
	// Wait bounds the waiting for a channel or top-up to be confirmed by the server (default 2m).
	Wait time.Duration
}

// UntrustedContractError is returned for a 402 naming a channel contract other than ours:
// paying there would lock tokens in a contract nobody vetted.
type UntrustedContractError struct{ Got, Want common.Address }

func (e *UntrustedContractError) Error() string {
	return fmt.Sprintf("the server asks for payment in contract %s; the trusted one is %s", e.Got, e.Want)
}

// SpendingCapError is returned when paying a request would exceed the spending cap.
type SpendingCapError struct{ Cap, Spent, Price *big.Int }

func (e *SpendingCapError) Error() string {
	return fmt.Sprintf("spending cap %s reached: %s spent, the request costs %s", e.Cap, e.Spent, e.Price)
}

// PriceTooHighError is returned when a request costs more than MaxPrice.
type PriceTooHighError struct{ Price, Max *big.Int }

func (e *PriceTooHighError) Error() string {
	return fmt.Sprintf("the request costs %s, more than the maximum price %s", e.Price, e.Max)
}

// ErrBadServerProof is returned when a server's RDN-Balance-Signature is not our proof of
// RDN-Sender-Balance: adopting it could make us pay twice.
var ErrBadServerProof = errors.New("the server's balance proof is not ours")

// Transport is an http.RoundTripper that pays for requests answered 402 with µRaiden
// balance proofs. Many requests may share a channel at once: each takes the next balance
// under the Client's lock and signs it once, and the server accepts the proofs in any order.
type Transport struct {
	c   *Client
	cfg TransportConfig

	// fundMu lets one request at a time open or top up channels.
	fundMu  sync.Mutex
	scanned map[common.Address]bool // receivers whose channels were read from the chain (fundMu)
	spent   *big.Int                // c.mu
	// scheme and why are the scheme of the last proof signed and the reason it was chosen (c.mu).
	scheme rdn.Scheme
	why    string
}

// Transport returns a paying RoundTripper using this client's channels.
func (c *Client) Transport(cfg TransportConfig) *Transport {
	if cfg.Base == nil {
		cfg.Base = http.DefaultTransport
	}
	if cfg.OpenFactor <= 0 {
		cfg.OpenFactor = 10
	}
	if cfg.TopUpFactor <= 0 {
		cfg.TopUpFactor = 5
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 2 * time.Minute
	}
	return &Transport{c: c, cfg: cfg, scanned: map[common.Address]bool{}, spent: new(big.Int)}
}

// ProofScheme is the scheme of the last proof this transport signed and why it was chosen
// ("" before the first).
func (t *Transport) ProofScheme() (rdn.Scheme, string) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.scheme, t.why
}

// Spent is the sum of the prices paid so far.
func (t *Transport) Spent() *big.Int {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return new(big.Int).Set(t.spent)
}

// quote is what a 402 asks for.
type quote struct {
	receiver common.Address
	price    *big.Int
	api      string
	// scheme is the one to sign in, chosen from the 402's offer; why says why.
	scheme rdn.Scheme
	why    string
}

// payment is one signed balance proof.
type payment struct {
	receiver  common.Address
	openBlock uint32
	balance   *big.Int
	sig       rdn.Signature
	scheme    rdn.Scheme
}

// RoundTrip sends the request; on a 402 it pays and sends it again.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := bufferBody(req); err != nil {
		return nil, err
	}
	resp, err := t.send(req, nil)
	if err != nil || resp.StatusCode != http.StatusPaymentRequired {
		return resp, err
	}
	q, ok, err := t.readQuote(req.URL, resp)
	if !ok || err != nil {
		if err != nil {
			discard(resp)
			return nil, err
		}
		return resp, nil // a 402 that is not µRaiden's: the caller's business
	}
	discard(resp)
	return t.pay(req, q)
}

// action is what to do after a 402 to a payment.
type action int

const (
	giveUp action = iota // hand the 402 to the caller
	resend               // send the same proof again, after a wait
	fresh                // sign a new balance
)

// maxFresh bounds the new balances signed for one request: a server that keeps refusing
// fresh proofs is not going to be paid into.
const maxFresh = 4

// pay reserves a balance, sends it and reacts to the server's flags until the request is
// answered with something other than a 402 we can act on.
func (t *Transport) pay(req *http.Request, q quote) (*http.Response, error) {
	ctx := req.Context()
	deadline := time.Now().Add(t.cfg.Wait)
	delay := 50 * time.Millisecond
	var p *payment
	for signed := 0; ; {
		if p == nil {
			reserved, err := t.reserve(ctx, q)
			if err != nil {
				return nil, err
			}
			p, signed = &reserved, signed+1
		}
		resp, err := t.send(req, p)
		if err != nil || resp.StatusCode != http.StatusPaymentRequired {
			return resp, err
		}
		nq, ok, err := t.readQuote(req.URL, resp)
		if err != nil || !ok {
			if err != nil {
				discard(resp)
			}
			return resp, err
		}
		next, err := t.react(ctx, p, nq, resp.Header)
		if err != nil {
			discard(resp)
			return nil, err
		}
		if next == giveUp || (next == fresh && signed >= maxFresh) {
			return resp, nil
		}
		discard(resp)
		q = nq // a changed price is paid from the next proof on
		if next == fresh {
			p = nil
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pay %s: the server did not take the payment within %s", req.URL, t.cfg.Wait)
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// react decides what a 402 to payment p means.
func (t *Transport) react(ctx context.Context, p *payment, q quote, h http.Header) (action, error) {
	switch {
	case h.Get(rdn.FlagInsufficientConfirm) != "":
		return resend, nil
	case h.Get(rdn.FlagNonexistingChannel) != "":
		return t.nonexisting(ctx, p)
	case h.Get(rdn.FlagInvalidAmount) != "":
		return fresh, t.adopt(p, h)
	case h.Get(rdn.FlagInsufficientDeposit) != "":
		return resend, t.cover(ctx, q, p)
	case h.Get(rdn.FlagInvalidProof) != "":
		return giveUp, nil
	default:
		// The proof was replayed or the price changed: sign a fresh one.
		return fresh, nil
	}
}

// nonexisting handles RDN-Nonexisting-Channel: a channel the chain holds open is one the
// server has not seen yet (wait); any other is gone (forget it, pay with another).
func (t *Transport) nonexisting(ctx context.Context, p *payment) (action, error) {
	ch, err := t.c.Refresh(ctx, p.receiver, p.openBlock)
	if err != nil {
		return giveUp, err
	}
	if ch.State == StateOpen {
		return resend, nil
	}
	t.c.log.Info("channel no longer open; forgetting it", "receiver", p.receiver, "open_block", p.openBlock, "state", ch.State)
	return fresh, nil
}

// adopt takes the server's last accepted balance when it is our proof and above ours: the
// client lost its store, or signed values that never arrived.
func (t *Transport) adopt(p *payment, h http.Header) error {
	text, sigText := h.Get(rdn.HeaderSenderBalance), h.Get(rdn.HeaderBalanceSignature)
	if sigText == "" {
		return nil
	}
	balance, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return fmt.Errorf("%w: RDN-Sender-Balance %q", ErrBadServerProof, text)
	}
	sig, err := rdn.ParseSignature(sigText)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadServerProof, err)
	}
	// The proof is checked in the scheme the server says it is in: a channel may hold proofs
	// of both, each verified in its own.
	scheme := rdn.SchemeLegacy
	if name := h.Get(rdn.HeaderProofScheme); name != "" {
		if scheme, err = rdn.ParseScheme(name); err != nil {
			return fmt.Errorf("%w: RDN-Proof-Scheme: %v", ErrBadServerProof, err)
		}
	}
	bp := rdn.Balance{Receiver: p.receiver, OpenBlock: p.openBlock, Balance: balance, Contract: t.c.contract.Address,
		Scheme: scheme, ChainID: t.c.chainID.Uint64()}
	if signer, err := bp.Signer(sig[:]); err != nil || signer != t.c.sender {
		return fmt.Errorf("%w: RDN-Balance-Signature for %s in scheme %s recovers to %s", ErrBadServerProof, balance, scheme, signer.Hex())
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	ch := t.c.stored(p.receiver, p.openBlock)
	if balance.Cmp(ch.Balance) > 0 {
		t.c.log.Info("adopting the server's balance", "receiver", p.receiver, "open_block", p.openBlock, "ours", ch.Balance, "server", balance)
		ch.Balance.Set(balance)
		ch.Signature, ch.Scheme = sig.Hex(), scheme
		return t.c.store.Save()
	}
	return nil
}

// cover handles RDN-Insufficient-Deposit: top the channel up if the chain's deposit does
// not cover the balance sent, otherwise wait for the server to confirm the last top-up.
func (t *Transport) cover(ctx context.Context, q quote, p *payment) error {
	t.fundMu.Lock()
	defer t.fundMu.Unlock()
	ch, err := t.c.Refresh(ctx, p.receiver, p.openBlock)
	if err != nil {
		return err
	}
	if ch.Deposit.Cmp(p.balance) >= 0 {
		return nil
	}
	amount := t.topUpAmount(q.price, new(big.Int).Sub(p.balance, ch.Deposit))
	_, err = t.c.TopUp(ctx, p.receiver, p.openBlock, amount, t.cfg.Funding)
	return err
}

func (t *Transport) topUpAmount(price, missing *big.Int) *big.Int {
	amount := new(big.Int).Mul(price, big.NewInt(t.cfg.TopUpFactor))
	if amount.Cmp(missing) < 0 {
		amount.Set(missing)
	}
	return amount
}

// reserve takes the next balance on a channel with room for the price, funding one first
// when none has room.
func (t *Transport) reserve(ctx context.Context, q quote) (payment, error) {
	for {
		p, ok, err := t.take(q)
		if ok || err != nil {
			return p, err
		}
		if err := t.provide(ctx, q); err != nil {
			return payment{}, err
		}
	}
}

// take signs balance+price on an open channel to q.receiver with room for it.
func (t *Transport) take(q quote) (payment, bool, error) {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.cfg.MaxSpend != nil && new(big.Int).Add(t.spent, q.price).Cmp(t.cfg.MaxSpend) > 0 {
		return payment{}, false, &SpendingCapError{Cap: t.cfg.MaxSpend, Spent: new(big.Int).Set(t.spent), Price: q.price}
	}
	ch := t.roomy(q)
	if ch == nil {
		return payment{}, false, nil
	}
	next := new(big.Int).Add(ch.Balance, q.price)
	sig, err := c.signAt(*ch, next, q.scheme)
	if err != nil {
		return payment{}, false, err
	}
	ch.Balance, ch.Signature, ch.Scheme, ch.API = next, sig.Hex(), q.scheme, q.api
	t.spent.Add(t.spent, q.price)
	if t.why == "" || t.scheme != q.scheme {
		c.log.Info("signing balance proofs", "scheme", q.scheme, "why", q.why)
	}
	t.scheme, t.why = q.scheme, q.why
	// Saved before it is sent: after a crash the client never signs this value again.
	if err := c.store.Save(); err != nil {
		return payment{}, false, err
	}
	return payment{receiver: ch.Receiver, openBlock: ch.OpenBlock, balance: new(big.Int).Set(next), sig: sig, scheme: q.scheme}, true, nil
}

// roomy returns the open channel to q.receiver with the most room, if it covers the price.
// Called with c.mu held.
func (t *Transport) roomy(q quote) *Channel {
	var best *Channel
	for _, ch := range t.c.store.Channels {
		if ch.Receiver != q.receiver || ch.State != StateOpen {
			continue
		}
		if best == nil || ch.Capacity().Cmp(best.Capacity()) > 0 {
			best = ch
		}
	}
	if best == nil || best.Capacity().Cmp(q.price) < 0 {
		return nil
	}
	return best
}

// provide makes room for the price: recover the channels from the chain the first time a
// receiver is seen, then top up the open channel or open one.
func (t *Transport) provide(ctx context.Context, q quote) error {
	t.fundMu.Lock()
	defer t.fundMu.Unlock()
	if !t.scanned[q.receiver] {
		if _, err := t.c.Channels(ctx, &q.receiver); err != nil {
			return err
		}
		t.scanned[q.receiver] = true
	}
	t.c.mu.Lock()
	room, open := t.roomy(q), t.openTo(q.receiver)
	t.c.mu.Unlock()
	switch {
	case room != nil:
		return nil // funded while we waited for fundMu
	case open != nil:
		missing := new(big.Int).Sub(q.price, open.Capacity())
		_, err := t.c.TopUp(ctx, open.Receiver, open.OpenBlock, t.topUpAmount(q.price, missing), t.cfg.Funding)
		return err
	default:
		_, err := t.c.Open(ctx, q.receiver, new(big.Int).Mul(q.price, big.NewInt(t.cfg.OpenFactor)), t.cfg.Funding)
		return err
	}
}

// openTo returns a copy of the newest open channel to receiver. Called with c.mu held.
func (t *Transport) openTo(receiver common.Address) *Channel {
	var newest *Channel
	for _, ch := range t.c.store.Channels {
		if ch.Receiver == receiver && ch.State == StateOpen && (newest == nil || ch.OpenBlock > newest.OpenBlock) {
			newest = ch
		}
	}
	if newest == nil {
		return nil
	}
	cp := newest.clone()
	return &cp
}

// readQuote reads a µRaiden 402 and chooses the scheme to pay it in; ok is false for a 402
// without RDN-Price.
func (t *Transport) readQuote(u *url.URL, resp *http.Response) (quote, bool, error) {
	h := resp.Header
	priceText := h.Get(rdn.HeaderPrice)
	if priceText == "" {
		return quote{}, false, nil
	}
	price, ok := new(big.Int).SetString(priceText, 10)
	if !ok || price.Sign() <= 0 {
		return quote{}, false, fmt.Errorf("402 with RDN-Price %q", priceText)
	}
	contract := h.Get(rdn.HeaderContractAddress)
	if !common.IsHexAddress(contract) || common.HexToAddress(contract) != t.c.contract.Address {
		return quote{}, false, &UntrustedContractError{Got: common.HexToAddress(contract), Want: t.c.contract.Address}
	}
	receiver := h.Get(rdn.HeaderReceiverAddress)
	if !common.IsHexAddress(receiver) {
		return quote{}, false, fmt.Errorf("402 with RDN-Receiver-Address %q", receiver)
	}
	if t.cfg.MaxPrice != nil && price.Cmp(t.cfg.MaxPrice) > 0 {
		return quote{}, false, &PriceTooHighError{Price: price, Max: t.cfg.MaxPrice}
	}
	api := ""
	if path := h.Get(rdn.HeaderGatewayPath); strings.HasPrefix(path, "/") {
		api = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: path}).String()
	}
	var body []byte
	if strings.Contains(strings.Join(h.Values(rdn.HeaderProofSchemes), ","), rdn.SchemeTypedName) {
		// Only then is the body's eip712_domain needed; the body stays readable for a 402
		// handed back to the caller.
		body = peekBody(resp, 64<<10)
	}
	scheme, why, err := readOffer(h, body, t.c.chainID, t.c.contract.Address).choose(t.c.scheme)
	if err != nil {
		return quote{}, false, err
	}
	return quote{receiver: common.HexToAddress(receiver), price: price, api: api, scheme: scheme, why: why}, true, nil
}

// send sends a copy of req, with payment p when not nil.
func (t *Transport) send(req *http.Request, p *payment) (*http.Response, error) {
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	if p != nil {
		r.Header.Set(rdn.HeaderContractAddress, t.c.contract.Address.Hex())
		r.Header.Set(rdn.HeaderReceiverAddress, p.receiver.Hex())
		r.Header.Set(rdn.HeaderSenderAddress, t.c.sender.Hex())
		r.Header.Set(rdn.HeaderOpenBlock, strconv.FormatUint(uint64(p.openBlock), 10))
		r.Header.Set(rdn.HeaderBalance, p.balance.String())
		r.Header.Set(rdn.HeaderBalanceSignature, p.sig.Hex())
		// Legacy proofs go without the header, as µRaiden's clients send them.
		r.Header.Del(rdn.HeaderProofScheme)
		if p.scheme != rdn.SchemeLegacy {
			r.Header.Set(rdn.HeaderProofScheme, p.scheme.String())
		}
	}
	return t.cfg.Base.RoundTrip(r)
}

// bufferBody reads the body once so that it can be sent again.
func bufferBody(req *http.Request) error {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		return nil
	}
	data, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return fmt.Errorf("read the request body: %w", err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	req.Body, _ = req.GetBody()
	return nil
}

// peekBody reads up to limit bytes of the body and leaves the whole body readable.
func peekBody(resp *http.Response, limit int64) []byte {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
	return data
}

func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
