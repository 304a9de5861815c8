package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// closeGas is the gas limit of close transactions sent in the block after a channel's
// opening: estimation runs at the head, the opening block, where the contract refuses them.
const closeGas = 200_000

// ErrCloseRefused is returned when the server does not sign a cooperative close.
var ErrCloseRefused = errors.New("the server refused the cooperative close")

// ErrBadClosingSignature is returned when the server's closing signature is not the
// receiver's for the balance: sending it would only burn gas.
var ErrBadClosingSignature = errors.New("the closing signature is not the receiver's")

// ErrNotOnChain is returned for a close of a channel the contract no longer holds (settled,
// closed cooperatively) or never held: the transaction would only revert.
var ErrNotOnChain = errors.New("the channel is not on chain: it was settled or closed already, or never created")

// CloseRequestedError refuses a second close request: one already runs its challenge period.
type CloseRequestedError struct {
	SettleBlock uint32
	Balance     *big.Int
}

func (e *CloseRequestedError) Error() string {
	return fmt.Sprintf("a close at balance %s was already requested; settle it after block %d (channel settle)", e.Balance, e.SettleBlock)
}

// onChain says why the contract would refuse a close of the channel, before a transaction
// that would revert with a bare "execution reverted"; a channel gone from the contract is
// marked so in the store.
func (c *Client) onChain(ctx context.Context, what string, receiver common.Address, openBlock uint32) error {
	info, err := c.Info(ctx, receiver, openBlock)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case !info.Exists:
		if _, err := c.Refresh(ctx, receiver, openBlock); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return fmt.Errorf("%s %s/%d: %w", what, receiver, openBlock, ErrNotOnChain)
	case info.SettleBlock != 0:
		return fmt.Errorf("%s %s/%d: %w", what, receiver, openBlock, &CloseRequestedError{SettleBlock: info.SettleBlock, Balance: info.ClosingBalance})
	}
	return nil
}

// SettleTooEarlyError says how long the challenge period still runs.
type SettleTooEarlyError struct {
	SettleBlock uint32
	Head        uint64
}

func (e *SettleTooEarlyError) Error() string {
	return fmt.Sprintf("the challenge period ends at block %d: %d blocks remain", e.SettleBlock, uint64(e.SettleBlock)+1-e.Head)
}

// CloseCooperatively asks the server (api: its /api/1 base URL; empty uses the one learned
// from its 402s) for the receiver's closing signature on the channel's balance, checks it,
// and sends cooperativeClose, or cooperativeCloseTyped: the channel settles at once.
//
// The close is in the scheme of the channel's last proof, or the one Config.ProofScheme
// forces: the balance proof, the close request, the closing signature and the contract
// function are all of that one scheme, the last proof signed again in it when it is of
// the other (same balance: nothing more is promised).
func (c *Client) CloseCooperatively(ctx context.Context, receiver common.Address, openBlock uint32, api string) (Channel, error) {
	ch, ok := c.Channel(receiver, openBlock)
	if !ok {
		return Channel{}, fmt.Errorf("close: no stored channel %s/%d (list the channels first)", receiver, openBlock)
	}
	if api == "" {
		api = ch.API
	}
	if api == "" {
		return Channel{}, errors.New("close: the server's API URL is unknown: pay through it once, or give it")
	}
	scheme := ch.Scheme
	if forced, ok := c.scheme.forced(); ok {
		scheme = forced
	}
	balance, balanceSig, err := c.balanceProof(ch, scheme)
	if err != nil {
		return Channel{}, err
	}
	closing, err := c.askClose(ctx, api, ch, balance, balanceSig, scheme)
	var mismatch *balanceMismatch
	if errors.As(err, &mismatch) && mismatch.balance.Cmp(balance) < 0 {
		// Values signed but never delivered: close at what the server accepted, less than
		// what we signed, with a proof for that balance.
		balance = mismatch.balance
		if balanceSig, err = c.signAt(ch, balance, scheme); err != nil {
			return Channel{}, err
		}
		closing, err = c.askClose(ctx, api, ch, balance, balanceSig, scheme)
	}
	if err != nil {
		return Channel{}, err
	}
	signer, err := rdn.Closing{Sender: c.sender, OpenBlock: openBlock, Balance: balance, Contract: c.contract.Address,
		Scheme: scheme, ChainID: c.chainID.Uint64()}.Signer(closing[:])
	if err != nil || signer != receiver {
		return Channel{}, fmt.Errorf("close: %w in scheme %s (recovered %s, %v)", ErrBadClosingSignature, scheme, signer.Hex(), err)
	}
	gas, err := c.closeGas(ctx, openBlock)
	if err != nil {
		return Channel{}, err
	}
	data := c.channelsABI.PackCooperativeClose(receiver, openBlock, balance, balanceSig[:], closing[:])
	if scheme == rdn.SchemeTyped {
		data = c.channelsABI.PackCooperativeCloseTyped(receiver, openBlock, balance, balanceSig[:], closing[:])
	}
	if _, err := c.transact(ctx, "cooperative close", c.contract.Address, data, gas); err != nil {
		return Channel{}, err
	}
	c.log.Info("channel closed cooperatively", "receiver", receiver, "open_block", openBlock, "balance", balance, "scheme", scheme)
	return c.Refresh(ctx, receiver, openBlock)
}

// balanceProof is the channel's last signed balance and its signature in scheme; a channel
// with nothing signed gets a proof for 0.
func (c *Client) balanceProof(ch Channel, scheme rdn.Scheme) (*big.Int, rdn.Signature, error) {
	if ch.Signature == "" {
		sig, err := c.signAt(ch, new(big.Int), scheme)
		return new(big.Int), sig, err
	}
	if ch.Scheme != scheme {
		sig, err := c.signAt(ch, ch.Balance, scheme)
		return ch.Balance, sig, err
	}
	sig, err := rdn.ParseSignature(ch.Signature)
	if err != nil {
		return nil, sig, fmt.Errorf("stored signature of %s: %w", ch.Key(), err)
	}
	return ch.Balance, sig, nil
}

func (c *Client) signAt(ch Channel, balance *big.Int, scheme rdn.Scheme) (rdn.Signature, error) {
	return rdn.Balance{Receiver: ch.Receiver, OpenBlock: ch.OpenBlock, Balance: balance, Contract: c.contract.Address,
		Scheme: scheme, ChainID: c.chainID.Uint64()}.Sign(c.key)
}

type balanceMismatch struct{ balance *big.Int }

func (e *balanceMismatch) Error() string {
	return fmt.Sprintf("%v: the server's last accepted balance is %s", ErrCloseRefused, e.balance)
}

// closeRequestLifetime is how long the close request sent with a cooperative close is
// valid: enough for the call, within the server's rdn.MaxCloseRequestLifetime.
const closeRequestLifetime = 5 * time.Minute

// askClose calls DELETE <api>/channels/<sender>/<open_block> with the balance proof and the
// sender's close request for the balance, both in scheme: the server signs a close only for
// the sender.
func (c *Client) askClose(ctx context.Context, api string, ch Channel, balance *big.Int, sig rdn.Signature, scheme rdn.Scheme) (rdn.Signature, error) {
	request := rdn.CloseRequest{
		Receiver: ch.Receiver, Contract: c.contract.Address, ChainID: c.chainID.Uint64(),
		Sender: c.sender, OpenBlock: ch.OpenBlock, Balance: balance, Expires: time.Now().Add(closeRequestLifetime).Unix(),
		Scheme: scheme,
	}
	requestSig, err := request.Sign(c.key)
	if err != nil {
		return rdn.Signature{}, fmt.Errorf("close: sign the close request: %w", err)
	}
	fields := map[string]any{
		"balance": balance.String(), "balance_signature": sig.Hex(),
		"close_request_signature": requestSig.Hex(), "close_request_expires": request.Expires,
	}
	if scheme != rdn.SchemeLegacy {
		// Absent means legacy: a legacy close stays exactly what servers before the typed
		// scheme read.
		fields["proof_scheme"] = scheme.String()
	}
	body, _ := json.Marshal(fields)
	url := fmt.Sprintf("%s/channels/%s/%d", strings.TrimRight(api, "/"), c.sender.Hex(), ch.OpenBlock)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, bytes.NewReader(body))
	if err != nil {
		return rdn.Signature{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rdn.Signature{}, fmt.Errorf("close: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var out struct {
		CloseSignature string `json:"close_signature"`
		Balance        string `json:"balance"`
		ProofScheme    string `json:"proof_scheme"`
		Error          string `json:"error"`
	}
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode == http.StatusConflict && out.Balance != "" {
		if b, ok := new(big.Int).SetString(out.Balance, 10); ok {
			return rdn.Signature{}, &balanceMismatch{balance: b}
		}
	}
	if resp.StatusCode != http.StatusOK {
		return rdn.Signature{}, fmt.Errorf("close: %w: %s: %s", ErrCloseRefused, resp.Status, out.Error)
	}
	if answered := cmp.Or(out.ProofScheme, rdn.SchemeLegacyName); answered != scheme.String() {
		// A server that does not know typed closes ignores proof_scheme and signs legacy.
		return rdn.Signature{}, fmt.Errorf("close: %w: asked for a %s closing signature, the server answered %s", ErrBadClosingSignature, scheme, answered)
	}
	closing, err := rdn.DecodeSignature(out.CloseSignature)
	if err != nil {
		return rdn.Signature{}, fmt.Errorf("close: %w: %v", ErrBadClosingSignature, err)
	}
	return closing, nil
}

// closeGas is 0 (estimate) unless the head is still the opening block.
func (c *Client) closeGas(ctx context.Context, openBlock uint32) (uint64, error) {
	head, err := c.ec.BlockNumber(ctx)
	if err != nil {
		return 0, fmt.Errorf("head: %w", err)
	}
	if head <= uint64(openBlock) {
		return closeGas, nil
	}
	return 0, nil
}

// CloseUncooperatively asks the contract to close the channel at the last signed balance
// without the receiver: the challenge period starts, in which the receiver may submit a
// higher proof; Settle ends it.
func (c *Client) CloseUncooperatively(ctx context.Context, receiver common.Address, openBlock uint32) (Channel, error) {
	ch, ok := c.Channel(receiver, openBlock)
	if !ok {
		return Channel{}, fmt.Errorf("close: no stored channel %s/%d (list the channels first)", receiver, openBlock)
	}
	if err := c.onChain(ctx, "close", receiver, openBlock); err != nil {
		return Channel{}, err
	}
	gas, err := c.closeGas(ctx, openBlock)
	if err != nil {
		return Channel{}, err
	}
	data := c.channelsABI.PackUncooperativeClose(receiver, openBlock, ch.Balance)
	if _, err := c.transact(ctx, "uncooperative close", c.contract.Address, data, gas); err != nil {
		return Channel{}, err
	}
	c.log.Info("uncooperative close requested", "receiver", receiver, "open_block", openBlock, "balance", ch.Balance)
	return c.Refresh(ctx, receiver, openBlock)
}

// Settle ends an uncooperative close after its challenge period, paying both sides; before
// that it returns a *SettleTooEarlyError.
func (c *Client) Settle(ctx context.Context, receiver common.Address, openBlock uint32) (Channel, error) {
	info, err := c.Info(ctx, receiver, openBlock)
	if err != nil {
		return Channel{}, err
	}
	if !info.Exists {
		return c.Refresh(ctx, receiver, openBlock) // settled already, by the receiver's dispute for one
	}
	if info.SettleBlock == 0 {
		return Channel{}, errors.New("settle: no close was requested: close the channel first")
	}
	head, err := c.ec.BlockNumber(ctx)
	if err != nil {
		return Channel{}, fmt.Errorf("head: %w", err)
	}
	if head+1 <= uint64(info.SettleBlock) {
		// The next block is the first that may settle only if it is above settle_block.
		return Channel{}, &SettleTooEarlyError{SettleBlock: info.SettleBlock, Head: head + 1}
	}
	if _, err := c.transact(ctx, "settle", c.contract.Address, c.channelsABI.PackSettle(receiver, openBlock), 0); err != nil {
		return Channel{}, err
	}
	return c.Refresh(ctx, receiver, openBlock)
}
