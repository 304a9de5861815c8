package admin

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// channelBody is one channel as the API shows it. µRaiden's fields come first. The
// signatures are shown to the operator only: the balance proof is the receiver's claim on
// the sender's deposit, and the closing signature settles the channel.
type channelBody struct {
	SenderAddress    string `json:"sender_address"`
	OpenBlock        uint32 `json:"open_block"`
	Balance          string `json:"balance"`
	Deposit          string `json:"deposit"`
	State            string `json:"state"`
	ConfirmedDeposit string `json:"confirmed_deposit"`
	Confirmed        bool   `json:"confirmed"`
	Charged          string `json:"charged"`
	Withdrawn        string `json:"withdrawn"`
	CloseSigned      bool   `json:"close_signed"`
	CloseBalance     string `json:"close_balance,omitempty"`
	SettleBlock      uint64 `json:"settle_block,omitempty"`
	BalanceSignature string `json:"balance_signature,omitempty"`
	CloseSignature   string `json:"close_signature,omitempty"`
	// ProofScheme is the scheme of the stored balance proof (with a balance above 0);
	// CloseProofScheme the scheme of the closing signature, once one was signed. Neither is
	// a secret: a client that lost its state needs the first to check the proof it gets back.
	ProofScheme      string `json:"proof_scheme,omitempty"`
	CloseProofScheme string `json:"close_proof_scheme,omitempty"`
}

func (s *Server) channelBody(c *ledger.Channel, who access) channelBody {
	confirmed := s.cfg.Ledger.ConfirmedHeight()
	b := channelBody{
		SenderAddress:    c.ID.Sender.Hex(),
		OpenBlock:        c.ID.OpenBlock,
		Balance:          c.Balance.String(),
		Deposit:          c.TotalDeposit().String(),
		State:            c.State.String(),
		ConfirmedDeposit: c.ConfirmedDeposit(confirmed).String(),
		Confirmed:        c.Confirmed(confirmed),
		Charged:          c.Charged.String(),
		Withdrawn:        c.Withdrawn.String(),
		CloseSigned:      c.CloseSigned(),
	}
	if !b.Confirmed {
		b.ConfirmedDeposit = "0" // nothing of an unconfirmed channel's deposit counts yet
	}
	if c.SettleBlock != 0 || c.State == ledger.StateSettled {
		b.CloseBalance, b.SettleBlock = c.CloseBalance.String(), c.SettleBlock
	}
	if c.Balance.Sign() > 0 {
		b.ProofScheme = c.Scheme.String()
	}
	if c.CloseSigned() {
		b.CloseProofScheme = c.ClosingScheme.String()
	}
	if who == operator {
		if c.Balance.Sign() > 0 {
			b.BalanceSignature = c.Signature.Hex()
		}
		if c.CloseSigned() {
			b.CloseSignature = c.ClosingSignature.Hex()
		}
	}
	return b
}

// Paging of listings.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// statuses maps the status parameter to ledger states. µRaiden knew open and closed
// (close requested, not settled); it dropped settled channels, which the ledger keeps.
var statuses = map[string][]ledger.State{
	"open":    {ledger.StateOpen},
	"closing": {ledger.StateClosing},
	"settled": {ledger.StateSettled},
	"closed":  {ledger.StateClosing, ledger.StateSettled},
	"all":     nil,
}

// listChannels is GET <prefix>/channels and <prefix>/channels/<sender>: a JSON array, as
// µRaiden answered, in the ledger's key order (by sender, then open block). Paging is by
// cursor: when more channels may follow, the Link header (rel="next") and X-Next-Cursor
// say where to continue. A cursor stays valid while channels are added, unlike an offset.
func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	page, err := s.cfg.Ledger.Channels(q)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	out := make([]channelBody, 0, len(page.Channels))
	for _, c := range page.Channels {
		out = append(out, s.channelBody(c, operator))
	}
	if page.Next != nil {
		cursor := encodeCursor(*page.Next)
		next := *r.URL
		params := next.Query()
		params.Set("cursor", cursor)
		next.RawQuery = params.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.RequestURI()))
		w.Header().Set("X-Next-Cursor", cursor)
	}
	writeJSON(w, http.StatusOK, out)
}

func parseListQuery(r *http.Request) (ledger.Query, error) {
	params := r.URL.Query()
	q := ledger.Query{Limit: defaultLimit}
	if sender := r.PathValue("sender"); sender != "" {
		a, err := parseAddress(sender)
		if err != nil {
			return q, err
		}
		q.Sender = &a
	}
	status := params.Get("status")
	if status == "" {
		status = "open"
	}
	states, ok := statuses[status]
	if !ok {
		return q, fmt.Errorf("status must be open, closing, settled, closed or all, got %q", status)
	}
	q.States = states
	if v := params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return q, fmt.Errorf("limit must be between 1 and %d, got %q", maxLimit, v)
		}
		q.Limit = n
	}
	if params.Has("offset") {
		return q, errors.New("offset is not supported: page with cursor (the X-Next-Cursor of the previous page)")
	}
	if v := params.Get("cursor"); v != "" {
		after, err := decodeCursor(v)
		if err != nil {
			return q, err
		}
		q.After = &after
	}
	return q, nil
}

// A cursor is the last channel read, hex encoded: sender ‖ uint32 open block.
func encodeCursor(id rdn.ChannelID) string {
	return hex.EncodeToString(id.Sender.Bytes()) + fmt.Sprintf("%08x", id.OpenBlock)
}

func decodeCursor(s string) (rdn.ChannelID, error) {
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != 24 {
		return rdn.ChannelID{}, fmt.Errorf("not a cursor of this API: %q", s)
	}
	return rdn.ChannelID{Sender: common.BytesToAddress(raw[:20]),
		OpenBlock: uint32(raw[20])<<24 | uint32(raw[21])<<16 | uint32(raw[22])<<8 | uint32(raw[23])}, nil
}

func parseAddress(s string) (common.Address, error) {
	if !common.IsHexAddress(s) || !strings.HasPrefix(strings.ToLower(s), "0x") {
		return common.Address{}, fmt.Errorf("not a 0x-prefixed hex address: %q", s)
	}
	return common.HexToAddress(s), nil
}

func parseChannelID(r *http.Request) (rdn.ChannelID, error) {
	sender, err := parseAddress(r.PathValue("sender"))
	if err != nil {
		return rdn.ChannelID{}, err
	}
	block, err := strconv.ParseUint(r.PathValue("open_block"), 10, 32)
	if err != nil {
		return rdn.ChannelID{}, fmt.Errorf("open block must be a decimal uint32, got %q", r.PathValue("open_block"))
	}
	return rdn.ChannelID{Sender: sender, OpenBlock: uint32(block)}, nil
}

// getChannel is GET <prefix>/channels/<sender>/<open_block>: public, the signatures only
// with the operator token.
func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) {
	who, ok := s.authorize(w, r, true)
	if !ok {
		return
	}
	id, err := parseChannelID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	c, err := s.cfg.Ledger.Channel(id)
	switch {
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "%v", err)
	case c == nil:
		writeError(w, http.StatusNotFound, "no channel %s", id)
	default:
		writeJSON(w, http.StatusOK, s.channelBody(c, who))
	}
}

// closeRequest is the body of DELETE <prefix>/channels/<sender>/<open_block>: µRaiden's
// balance and the sender's balance proof for it, the sender's close request (a signature of
// rdn.CloseRequest, and its expiry), and the scheme of both signatures (legacy when absent,
// as µRaiden's clients send none).
type closeRequest struct {
	Balance          amount  `json:"balance"`
	Signature        string  `json:"balance_signature"`
	RequestSignature string  `json:"close_request_signature"`
	RequestExpires   amount  `json:"close_request_expires"`
	ProofScheme      *string `json:"proof_scheme"`
	// Scheme is ProofScheme read.
	Scheme rdn.Scheme `json:"-"`
}

// closeResponse carries the receiver's closing signature for cooperativeClose, or for
// cooperativeCloseTyped when ProofScheme is eip712.
type closeResponse struct {
	CloseSignature string `json:"close_signature"`
	SenderAddress  string `json:"sender_address"`
	OpenBlock      uint32 `json:"open_block"`
	Balance        string `json:"balance"`
	ProofScheme    string `json:"proof_scheme"`
}

// errTypedNotOffered is the refusal of a typed close by a server whose contract takes legacy
// proofs only, in the words of the payment's (docs/protocol.md §3).
const errTypedNotOffered = rdn.HeaderProofScheme + ": " + rdn.SchemeTypedName +
	" is not offered: this server's contract takes legacy proofs only"

// offers reports whether the server takes proofs in a scheme (schemes).
func (s *Server) offers(scheme rdn.Scheme) bool { return slices.Contains(s.schemes(), scheme) }

// closeChannel is the cooperative close: µRaiden's DELETE, which anyone could call to
// freeze a sender's channel. Here the body must carry the sender's balance proof for the
// balance (as for a payment) and the sender's close request: a signature over a message
// made only to close, naming this receiver, contract, chain, channel and balance, that
// expires within minutes. A balance proof alone is not enough (unless LegacyClose): every
// payment hands one to the server and whatever stands between, and a 402 hands the latest
// one to whoever replays an older one. The balance must be the last one accepted; the
// channel then takes no more payments. Asking again returns the same signature.
func (s *Server) closeChannel(w http.ResponseWriter, r *http.Request) {
	id, err := parseChannelID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	req, err := readCloseRequest(w, r)
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, "the body is over %d bytes", tooLarge.Limit)
		return
	} else if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	sig, err := rdn.ParseSignature(req.Signature)
	if err != nil {
		writeError(w, http.StatusBadRequest, "balance_signature: %v", err)
		return
	}
	cr, crSig, err := s.closeRequestOf(id, req)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	scheme := req.Scheme
	if !s.offers(scheme) {
		if scheme == rdn.SchemeTyped {
			writeError(w, http.StatusConflict, "%s", errTypedNotOffered)
		} else {
			writeError(w, http.StatusConflict, "proof_scheme: %s is not offered by this server", scheme)
		}
		return
	}
	if cr == nil && !s.cfg.LegacyClose {
		what := fmt.Sprintf("EIP-191 personal message %q naming receiver, contract, chain id, sender, open block, balance and expiry", rdn.CloseRequestTitle)
		if scheme == rdn.SchemeTyped {
			what = fmt.Sprintf("EIP-712 typed data %s under the domain of this contract and chain", rdn.CloseRequestType)
		}
		writeError(w, http.StatusForbidden, "close_request_signature and close_request_expires are required: the sender's "+
			"signature of a close request (%s; see docs/protocol.md §5), not only its balance proof", what)
		return
	}
	if c, err := s.cfg.Ledger.Channel(id); err != nil {
		writeError(w, http.StatusServiceUnavailable, "%v", err)
		return
	} else if c == nil {
		writeError(w, http.StatusNotFound, "no channel %s", id)
		return
	}
	bp := rdn.Balance{Receiver: s.cfg.Receiver, OpenBlock: id.OpenBlock, Balance: req.Balance.Int, Contract: s.cfg.Contract,
		Scheme: scheme, ChainID: s.cfg.ChainID}
	if signer, err := bp.Signer(sig[:]); err != nil || signer != id.Sender {
		writeError(w, http.StatusForbidden, "balance_signature is not the sender's balance proof (%s) for this balance, receiver and contract", scheme)
		return
	}
	if cr != nil {
		if err := cr.CheckExpiry(s.now()); err != nil {
			// The server's clock in the answer: a client whose clock is off can sign again by it.
			writeError(w, http.StatusForbidden, "close_request_expires: %v (it must lie in the next %v; the server's time is %d)",
				err, rdn.MaxCloseRequestLifetime, s.now().Unix())
			return
		}
		if signer, err := cr.Signer(crSig[:]); err != nil || signer != id.Sender {
			writeError(w, http.StatusForbidden, "close_request_signature is not the sender's close request (%s) for this receiver, "+
				"contract, chain id %d, channel, balance and expiry", scheme, s.cfg.ChainID)
			return
		}
	}
	// Signed in the scheme of the proof: cooperativeCloseTyped takes both signatures typed,
	// cooperativeClose both legacy.
	closing, err := s.cfg.Ledger.CloseCooperatively(r.Context(), id, req.Balance.Int, scheme, s.signClosing)
	if err != nil {
		s.closeFailed(w, id, err)
		return
	}
	s.log.Info("cooperative close signed", "channel", id, "balance", req.Balance.Int, "scheme", scheme)
	writeJSON(w, http.StatusOK, closeResponse{CloseSignature: closing.Hex(), SenderAddress: id.Sender.Hex(),
		OpenBlock: id.OpenBlock, Balance: req.Balance.String(), ProofScheme: scheme.String()})
}

// closeRequestOf returns the close request the body asks for, and its signature; nil
// without one. Half of one, or a malformed one, is an error.
func (s *Server) closeRequestOf(id rdn.ChannelID, req closeRequest) (*rdn.CloseRequest, rdn.Signature, error) {
	if req.RequestSignature == "" && req.RequestExpires.Int == nil {
		return nil, rdn.Signature{}, nil
	}
	if req.RequestSignature == "" || req.RequestExpires.Int == nil {
		return nil, rdn.Signature{}, errors.New("close_request_signature and close_request_expires go together")
	}
	if !req.RequestExpires.IsInt64() || req.RequestExpires.Sign() == 0 {
		return nil, rdn.Signature{}, errors.New("close_request_expires must be a Unix time in seconds")
	}
	sig, err := rdn.ParseSignature(req.RequestSignature)
	if err != nil {
		return nil, sig, fmt.Errorf("close_request_signature: %w", err)
	}
	return &rdn.CloseRequest{
		Receiver: s.cfg.Receiver, Contract: s.cfg.Contract, ChainID: s.cfg.ChainID,
		Sender: id.Sender, OpenBlock: id.OpenBlock, Balance: req.Balance.Int, Expires: req.RequestExpires.Int64(),
		Scheme: req.Scheme,
	}, sig, nil
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

func (s *Server) signClosing(id rdn.ChannelID, balance *big.Int, scheme rdn.Scheme) (rdn.Signature, error) {
	return s.cfg.SignClosing(rdn.Closing{Sender: id.Sender, OpenBlock: id.OpenBlock, Balance: balance, Contract: s.cfg.Contract,
		Scheme: scheme, ChainID: s.cfg.ChainID})
}

func (s *Server) closeFailed(w http.ResponseWriter, id rdn.ChannelID, err error) {
	var mismatch *ledger.BalanceMismatchError
	switch {
	case errors.As(err, &mismatch):
		writeJSON(w, http.StatusConflict, errorBody{
			Error:   fmt.Sprintf("the balance must be the last accepted one, %s", mismatch.Balance),
			Balance: mismatch.Balance.String(),
		})
	case errors.Is(err, ledger.ErrSettled):
		writeError(w, http.StatusConflict, "channel %s is settled", id)
	case errors.Is(err, ledger.ErrUnknownChannel):
		writeError(w, http.StatusNotFound, "no channel %s", id)
	default:
		s.log.Warn("cooperative close failed", "channel", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the close could not be stored: %v", err)
	}
}

// maxCloseBody bounds the close request's body: a balance and a signature take under 300
// bytes; the rest is room for clients' whitespace and form encoding.
const maxCloseBody = 64 << 10

// readCloseRequest reads a JSON body, or a form as µRaiden's Python client sent it.
func readCloseRequest(w http.ResponseWriter, r *http.Request) (closeRequest, error) {
	var req closeRequest
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCloseBody))
	if err != nil {
		return req, fmt.Errorf("read the body: %w", err)
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(data))
		if err != nil {
			return req, fmt.Errorf("form body: %w", err)
		}
		if req.Balance.Int, err = parseAmount(form.Get("balance")); err != nil {
			return req, fmt.Errorf("balance %w", err)
		}
		req.Signature = form.Get("balance_signature")
		req.RequestSignature = form.Get("close_request_signature")
		if form.Has("proof_scheme") {
			v := form.Get("proof_scheme")
			req.ProofScheme = &v
		}
		if v := form.Get("close_request_expires"); v != "" {
			if req.RequestExpires.Int, err = parseAmount(v); err != nil {
				return req, fmt.Errorf("close_request_expires %w", err)
			}
		}
	} else {
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return req, fmt.Errorf("body must be JSON {\"balance\": N, \"balance_signature\": \"0x…\", \"close_request_signature\": \"0x…\", \"close_request_expires\": T, \"proof_scheme\": \"legacy\"|\"eip712\"}: %w", err)
		}
		// One object and nothing after it: Decode alone stops at the first value and would
		// take `{...} garbage` or a second object.
		if _, err := dec.Token(); err != io.EOF {
			return req, errors.New("body must be a single JSON object, with nothing after it")
		}
		if req.Balance.Int == nil {
			return req, errors.New("balance is required")
		}
	}
	if req.Signature == "" {
		return req, errors.New("balance_signature is required: the sender's balance proof for the balance, as sent with a payment")
	}
	if req.ProofScheme != nil {
		if req.Scheme, err = rdn.ParseScheme(*req.ProofScheme); err != nil {
			return req, fmt.Errorf("proof_scheme: %w", err)
		}
	}
	return req, nil
}
