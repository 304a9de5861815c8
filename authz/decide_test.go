package authz

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/grpc/codes"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// decideRow is one row of the decision table: a request, what the fakes answer, and what
// the decision and the response must be.
type decideRow struct {
	name string
	// The request: GET path (/echofix/a, price 5, when empty) with these headers, or req.
	path    string
	headers map[string]string
	req     *authv3.CheckRequest
	// The fakes: the ledger's answers, the chain backend down, another pricer.
	ledger    fakeLedger
	chainDown bool
	prices    Pricer

	status  int
	flag    string // the RDN-* flag of a 402
	msg     string // in Decision.Message and the body's error
	outcome string // Decision.Outcome()
	calls   string // the ledger's methods called, in order
	// pays is the balance of the proof Pay must be given (5 when 0), claimed the sender the
	// ledger is asked about (the signer when zero).
	pays    int64
	claimed common.Address
	// shown is RDN-Sender-Balance in the answer: the channel's state as the ledger gave it,
	// "" when the answer must not show the channel at all.
	shown string
	// keyed says that Pay must be given a retry key (the request names itself).
	keyed bool
	check func(t *testing.T, d *Decision, resp *authv3.CheckResponse)
}

// edit returns a copy of headers with the name, value pairs set (whatever the case of an
// existing name) and the names paired with "-" removed.
func edit(headers map[string]string, pairs ...string) map[string]string {
	out := make(map[string]string, len(headers))
	for k, v := range headers {
		out[k] = v
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		for k := range out {
			if strings.EqualFold(k, pairs[i]) {
				delete(out, k)
			}
		}
		if pairs[i+1] != "-" {
			out[pairs[i]] = pairs[i+1]
		}
	}
	return out
}

// answerHeaders are the headers of a denial (or the OK answer's headers for the client),
// by name as sent, and the Set-Cookie values.
func answerHeaders(resp *authv3.CheckResponse) (map[string]string, []string) {
	opts := resp.GetOkResponse().GetResponseHeadersToAdd()
	if denied := resp.GetDeniedResponse(); denied != nil {
		opts = denied.GetHeaders()
	}
	headers, cookies := map[string]string{}, []string(nil)
	for _, o := range opts {
		if o.GetHeader().GetKey() == "Set-Cookie" {
			cookies = append(cookies, o.GetHeader().GetValue())
			continue
		}
		headers[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return headers, cookies
}

// upstreamSet are the headers an OK answer sets on the upstream request.
func upstreamSet(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for _, o := range resp.GetOkResponse().GetHeaders() {
		out[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return out
}

var allFlags = []string{rdn.FlagInsufficientConfirm, rdn.FlagNonexistingChannel, rdn.FlagInvalidProof, rdn.FlagInvalidAmount, rdn.FlagInsufficientDeposit}

// TestDecide runs every row of the decision table (doc.go), in µRaiden's check order, in
// process against fakes of the Pricer, the Ledger and the chain's health: no chain, no
// Badger, no network. The JSON fixtures (check_test.go) run the table over gRPC with a real
// ledger on the dev chain, as the integration suite.
func TestDecide(t *testing.T) {
	base, proofHeaders := paidService(t)
	base.cfg.RetryWindow = decideRetryWindow
	table := base.cfg.Prices()
	key, err := crypto.HexToECDSA(strings.Repeat("a0", 32)) // paidService's sender
	if err != nil {
		t.Fatal(err)
	}
	sender := crypto.PubkeyToAddress(key.PublicKey)
	stranger, err := crypto.HexToECDSA(strings.Repeat("b1", 32))
	if err != nil {
		t.Fatal(err)
	}
	other := common.HexToAddress("0x00000000000000000000000000000000000000e1")
	sign := func(k *ecdsa.PrivateKey, b rdn.Balance) string {
		sig, err := b.Sign(k)
		if err != nil {
			t.Fatal(err)
		}
		return sig.Hex()
	}
	signed := func(balance int64) rdn.Balance {
		return rdn.Balance{Receiver: base.cfg.Receiver, OpenBlock: 7, Balance: big.NewInt(balance), Contract: base.cfg.Contract}
	}

	p5 := proofHeaders(5) // pays /echofix/a, priced 5
	lastSig, err := rdn.DecodeSignature(proofHeaders(10)[rdn.HeaderBalanceSignature])
	if err != nil {
		t.Fatal(err)
	}
	// malleated is p5's signature with s -> n-s and v flipped: the same signer to ecrecover,
	// a signature the contract refuses (high s).
	malleated, _ := rdn.DecodeSignature(p5[rdn.HeaderBalanceSignature])
	s := new(big.Int).SetBytes(malleated[32:64])
	new(big.Int).Sub(crypto.S256().Params().N, s).FillBytes(malleated[32:64])
	malleated[64] = 27 + 28 - malleated[64]

	channel := func(state ledger.State) *ledger.Channel {
		return &ledger.Channel{ID: rdn.ChannelID{Sender: sender, OpenBlock: 7}, State: state,
			Deposit: big.NewInt(100), Balance: big.NewInt(10), Signature: lastSig, Charged: big.NewInt(10)}
	}
	confirmed := func(state ledger.State) fakeLedger { return fakeLedger{channel: channel(state), height: 7} }
	known := func(o ledger.Outcome, balance int64) fakeLedger {
		return fakeLedger{result: ledger.PayResult{Outcome: o, Known: true, Balance: big.NewInt(balance),
			Signature: lastSig, Charged: big.NewInt(balance), Deposit: big.NewInt(100)}}
	}
	accepted := func(balance int64) fakeLedger {
		l := known(ledger.Accepted, balance)
		sig, _ := rdn.DecodeSignature(proofHeaders(balance)[rdn.HeaderBalanceSignature])
		l.result.Signature = sig
		return l
	}
	down := errors.New("ledger: disk nearly full")
	browser := map[string]string{"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}

	rows := []decideRow{
		// Before any check: a request that cannot be read or priced unambiguously.
		{name: "no HTTP attributes", req: &authv3.CheckRequest{}, status: 409, msg: "no HTTP request attributes", outcome: "malformed"},
		{name: "path above the root, everything else broken too", path: "/../echofix/a", headers: edit(p5, rdn.HeaderOpenBlock, "x"),
			ledger: fakeLedger{err: down}, chainDown: true, status: 400, outcome: "malformed"},
		{name: "path with an encoded %", path: "/echofix/a%252F", status: 400, outcome: "malformed"},
		{name: "path with a bad escape", path: "/echofix/a%zz", status: 400, outcome: "malformed"},
		{name: "path without a leading slash", path: "echofix/a", status: 400, outcome: "malformed"},
		{name: "path read at two prices", path: "/echofix%2Fa", headers: p5, status: 400, msg: "to some servers", outcome: "malformed"},
		{name: "path read two ways at one price", path: "/misc%2Fa", status: 402, msg: "payment required", outcome: "quote", calls: "Err",
			check: price("1")},

		// Pricing, before anything else is asked.
		{name: "pricing error", headers: p5, ledger: fakeLedger{err: down}, chainDown: true,
			prices: failingPricer{Pricer: table, fail: "/echofix/a", err: errors.New("price_expr: no such key")},
			status: 500, msg: "pricing: price_expr: no such key", outcome: "error"},
		{name: "pricing error on the other reading", path: "/echofix%2Fa",
			prices: failingPricer{Pricer: table, fail: "/echofix/a", err: errors.New("boom")},
			status: 500, msg: "pricing: boom", outcome: "error"},

		// Free: allowed without a look at the ledger, the chain or a proof.
		{name: "free route", path: "/free/x", status: 200, outcome: "free",
			check: func(t *testing.T, _ *Decision, resp *authv3.CheckResponse) {
				if resp != freeResponse {
					t.Errorf("answer %v, want the shared free answer", resp)
				}
			}},
		{name: "free route, ledger and chain down, malformed proof", path: "/free/x", headers: map[string]string{rdn.HeaderBalanceSignature: "0x12"},
			ledger: fakeLedger{err: down}, chainDown: true, status: 200, outcome: "free"},
		{name: "free route with a valid proof: nothing charged", path: "/free/x", headers: p5, status: 200, outcome: "free",
			check: func(t *testing.T, d *Decision, resp *authv3.CheckResponse) {
				if d.Channel != nil || len(resp.GetOkResponse().GetHeaders()) != 0 {
					t.Errorf("channel %+v, upstream headers %v", d.Channel, resp.GetOkResponse().GetHeaders())
				}
			}},

		// Priced, no proof: a quote.
		{name: "quote", status: 402, msg: "payment required", outcome: "quote", calls: "Err", check: price("5")},
		{name: "quote of a price_expr", path: "/echodyn/abc", status: 402, outcome: "quote", calls: "Err", check: price("3")},
		{name: "quote: proof cookies without a signature", headers: map[string]string{"cookie": "RDN-Sender-Address=" + sender.Hex() + "; RDN-Open-Block=7"},
			status: 402, outcome: "quote", calls: "Err"},
		{name: "quote to a browser: the paywall", headers: browser, status: 402, outcome: "quote", calls: "Err",
			check: func(t *testing.T, _ *Decision, resp *authv3.CheckResponse) {
				headers, cookies := answerHeaders(resp)
				if headers["Content-Type"] != "text/html; charset=utf-8" || !strings.Contains(strings.Join(cookies, "\n"), "RDN-Price=5") ||
					!strings.Contains(resp.GetDeniedResponse().GetBody(), "<html") {
					t.Errorf("headers %v, cookies %q, want the HTML paywall", headers, cookies)
				}
			}},

		// Payments suspended: the ledger first, then the chain; never a 402 or 409 meanwhile.
		{name: "ledger down", headers: p5, ledger: fakeLedger{err: down}, status: 503, msg: "payments suspended: ledger: disk nearly full",
			outcome: "error", calls: "Err", check: suspended},
		{name: "ledger and chain down", headers: p5, ledger: fakeLedger{err: down}, chainDown: true, status: 503, outcome: "error", calls: "Err"},
		{name: "chain down", headers: p5, chainDown: true, status: 502, msg: "payments suspended: chain backend", outcome: "error",
			calls: "Err", check: suspended},
		{name: "chain down: no quote", chainDown: true, status: 502, outcome: "error", calls: "Err"},
		{name: "chain down: before a malformed proof", headers: edit(p5, rdn.HeaderOpenBlock, "x"), chainDown: true, status: 502, outcome: "error", calls: "Err"},

		// Malformed RDN-* values: 409 naming the header, before any proof is checked.
		{name: "signature not hex", headers: edit(p5, rdn.HeaderBalanceSignature, "0x12"), msg: "RDN-Balance-Signature: "},
		{name: "signature without 0x", headers: edit(p5, rdn.HeaderBalanceSignature, strings.TrimPrefix(p5[rdn.HeaderBalanceSignature], "0x")), msg: "RDN-Balance-Signature: "},
		{name: "signature of 64 bytes", headers: edit(p5, rdn.HeaderBalanceSignature, p5[rdn.HeaderBalanceSignature][:130]), msg: "RDN-Balance-Signature: "},
		{name: "signature with a non-hex digit", headers: edit(p5, rdn.HeaderBalanceSignature, "0x"+strings.Repeat("g", 130)), msg: "RDN-Balance-Signature: "},
		{name: "sender missing", headers: edit(p5, rdn.HeaderSenderAddress, "-"), msg: "RDN-Sender-Address: missing"},
		{name: "sender not an address", headers: edit(p5, rdn.HeaderSenderAddress, "0x1234"), msg: "RDN-Sender-Address: not an address"},
		{name: "open block missing", headers: edit(p5, rdn.HeaderOpenBlock, "-"), msg: "RDN-Open-Block: missing"},
		{name: "open block not a number", headers: edit(p5, rdn.HeaderOpenBlock, "-7"), msg: "RDN-Open-Block: not a block number"},
		{name: "open block above uint32", headers: edit(p5, rdn.HeaderOpenBlock, "4294967296"), msg: "RDN-Open-Block: not a block number"},
		{name: "balance missing", headers: edit(p5, rdn.HeaderBalance, "-", rdn.HeaderSenderBalance, "-"), msg: "RDN-Balance: missing"},
		{name: "balance not an integer", headers: edit(p5, rdn.HeaderBalance, "5.0"), msg: "RDN-Balance: not a non-negative integer"},
		{name: "balance above uint192", headers: edit(p5, rdn.HeaderBalance, new(big.Int).Lsh(big.NewInt(1), 192).String()), msg: "RDN-Balance: out of range"},
		{name: "balance of 79 digits", headers: edit(p5, rdn.HeaderBalance, strings.Repeat("9", 79)), msg: "RDN-Balance: out of range"},
		{name: "balances disagree", headers: edit(p5, rdn.HeaderSenderBalance, "6"), msg: "RDN-Sender-Balance: disagrees with RDN-Balance"},
		{name: "contract not an address", headers: edit(p5, rdn.HeaderContractAddress, "contract"), msg: "RDN-Contract-Address: not an address"},
		{name: "receiver not an address", headers: edit(p5, rdn.HeaderReceiverAddress, "0xzz"), msg: "RDN-Receiver-Address: not an address"},
		{name: "payment not an integer", headers: edit(p5, rdn.HeaderPayment, "five"), msg: "RDN-Payment: not a non-negative integer"},
		{name: "header repeated with different values", headers: edit(p5, rdn.HeaderOpenBlock, "7,8"), msg: "RDN-Open-Block: repeated with different values"},
		{name: "signature over the length limit", headers: edit(p5, rdn.HeaderBalanceSignature, "0x"+strings.Repeat("ab", 512)), msg: "RDN-Balance-Signature: 1026 bytes long"},
		{name: "unknown RDN-* header over the length limit", headers: edit(p5, "RDN-Note", strings.Repeat("x", 1025)), msg: "RDN-Note: 1025 bytes long"},
		{name: "signature cookie malformed", headers: map[string]string{"cookie": asCookies(edit(p5, rdn.HeaderBalanceSignature, "0x12"))}, msg: "RDN-Balance-Signature: "},
		{name: "cookie repeated with different values", headers: map[string]string{"cookie": asCookies(p5) + "; RDN-Open-Block=8"},
			msg: "RDN-Open-Block cookie: repeated with different values"},
		{name: "malformed, to a browser: the paywall", headers: edit(p5, rdn.HeaderOpenBlock, "x", "accept", browser["accept"]), msg: "RDN-Open-Block: ",
			check: func(t *testing.T, _ *Decision, resp *authv3.CheckResponse) {
				if headers, _ := answerHeaders(resp); headers["Content-Type"] != "text/html; charset=utf-8" {
					t.Errorf("headers %v, want the HTML paywall", headers)
				}
			}},

		// A proof that does not recover to its sender: the channel's existence and
		// confirmation come first; Pay is never called, and the channel is not shown.
		{name: "unverified: unknown channel", headers: edit(p5, rdn.HeaderSenderAddress, other.Hex()), claimed: other,
			status: 402, flag: rdn.FlagNonexistingChannel, msg: "no open channel", calls: "Err Channel"},
		{name: "unverified: closing channel", headers: edit(p5, rdn.HeaderBalance, "6", rdn.HeaderSenderBalance, "6"), ledger: confirmed(ledger.StateClosing),
			status: 402, flag: rdn.FlagNonexistingChannel, calls: "Err Channel"},
		{name: "unverified: settled channel", headers: edit(p5, rdn.HeaderBalance, "6", rdn.HeaderSenderBalance, "6"), ledger: confirmed(ledger.StateSettled),
			status: 402, flag: rdn.FlagNonexistingChannel, calls: "Err Channel"},
		{name: "unverified: orphaned channel", headers: edit(p5, rdn.HeaderBalance, "6", rdn.HeaderSenderBalance, "6"), ledger: confirmed(ledger.StateOrphaned),
			status: 402, flag: rdn.FlagNonexistingChannel, calls: "Err Channel"},
		{name: "unverified: unconfirmed channel", headers: edit(p5, rdn.HeaderBalance, "6", rdn.HeaderSenderBalance, "6"),
			ledger: fakeLedger{channel: channel(ledger.StateOpen), height: 6},
			status: 402, flag: rdn.FlagInsufficientConfirm, msg: "not confirmed yet", calls: "Err Channel ConfirmedHeight"},
		{name: "unverified: the ledger fails", headers: edit(p5, rdn.HeaderBalance, "6", rdn.HeaderSenderBalance, "6"),
			ledger: fakeLedger{channelErr: errors.New("badger: closed")}, status: 503, msg: "ledger: badger: closed", outcome: "error", calls: "Err Channel"},
		{name: "proof signed for another balance", headers: edit(p5, rdn.HeaderBalance, "6", rdn.HeaderSenderBalance, "6"), ledger: confirmed(ledger.StateOpen),
			status: 402, flag: rdn.FlagInvalidProof, msg: "not signed by the sender", calls: "Err Channel ConfirmedHeight"},
		{name: "proof of another sender", headers: edit(p5, rdn.HeaderSenderAddress, other.Hex()), claimed: other, ledger: confirmed(ledger.StateOpen),
			status: 402, flag: rdn.FlagInvalidProof, calls: "Err Channel ConfirmedHeight"},
		{name: "proof signed by a stranger", headers: edit(p5, rdn.HeaderBalanceSignature, sign(stranger, signed(5))), ledger: confirmed(ledger.StateOpen),
			status: 402, flag: rdn.FlagInvalidProof, calls: "Err Channel ConfirmedHeight"},
		{name: "proof for another contract", ledger: confirmed(ledger.StateOpen), status: 402, flag: rdn.FlagInvalidProof, calls: "Err Channel ConfirmedHeight",
			headers: edit(p5, rdn.HeaderContractAddress, other.Hex(), rdn.HeaderBalanceSignature,
				sign(key, rdn.Balance{Receiver: base.cfg.Receiver, OpenBlock: 7, Balance: big.NewInt(5), Contract: other}))},
		{name: "proof for another receiver", ledger: confirmed(ledger.StateOpen), status: 402, flag: rdn.FlagInvalidProof, calls: "Err Channel ConfirmedHeight",
			headers: edit(p5, rdn.HeaderReceiverAddress, other.Hex(), rdn.HeaderBalanceSignature,
				sign(key, rdn.Balance{Receiver: other, OpenBlock: 7, Balance: big.NewInt(5), Contract: base.cfg.Contract}))},
		{name: "proof for another open block", headers: edit(p5, rdn.HeaderBalanceSignature, sign(key, rdn.Balance{Receiver: base.cfg.Receiver, OpenBlock: 8,
			Balance: big.NewInt(5), Contract: base.cfg.Contract})), ledger: confirmed(ledger.StateOpen), status: 402, flag: rdn.FlagInvalidProof, calls: "Err Channel ConfirmedHeight"},
		{name: "signature with r and s zero", headers: edit(p5, rdn.HeaderBalanceSignature, "0x"+strings.Repeat("00", 64)+"1b"), ledger: confirmed(ledger.StateOpen),
			status: 402, flag: rdn.FlagInvalidProof, calls: "Err Channel ConfirmedHeight"},
		{name: "malleated signature (high s)", headers: edit(p5, rdn.HeaderBalanceSignature, malleated.Hex()), ledger: confirmed(ledger.StateOpen),
			status: 402, flag: rdn.FlagInvalidProof, calls: "Err Channel ConfirmedHeight"},

		// A verified proof: Pay decides, and its outcome is the answer.
		{name: "accepted", headers: p5, ledger: accepted(5), status: 200, outcome: "paid", calls: "Err Pay", shown: "5",
			check: func(t *testing.T, d *Decision, resp *authv3.CheckResponse) {
				if d.Channel.Paid.Int64() != 5 || d.Rule != "echofix" {
					t.Errorf("paid %v, rule %q", d.Channel.Paid, d.Rule)
				}
				up := applyAsEnvoy(plainRequest("GET", "/echofix/a", p5).GetAttributes().GetRequest().GetHttp().GetHeaders(), resp.GetOkResponse())
				noProof(t, "accepted", up)
				if up[UpstreamSender] != sender.Hex() || up[UpstreamOpenBlock] != "7" || up[UpstreamPrice] != "5" {
					t.Errorf("upstream headers %v", up)
				}
				headers, _ := answerHeaders(resp)
				if headers[rdn.HeaderPrice] != "5" || headers[rdn.HeaderReceiverAddress] != base.cfg.Receiver.Hex() || headers[rdn.HeaderGatewayPath] != "/api/1" {
					t.Errorf("client headers %v", headers)
				}
				meta := resp.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
				if meta["balance"].GetStringValue() != "5" || meta["price"].GetStringValue() != "5" || meta["rule"].GetStringValue() != "echofix" {
					t.Errorf("metadata %v", meta)
				}
			}},
		{name: "accepted with the paywall's cookies", headers: map[string]string{"cookie": asCookies(p5, "theme=dark")}, ledger: accepted(5),
			status: 200, outcome: "paid", calls: "Err Pay", shown: "5",
			check: func(t *testing.T, _ *Decision, resp *authv3.CheckResponse) {
				if up := upstreamSet(resp); up["cookie"] != "theme=dark" || up[UpstreamSender] != sender.Hex() {
					t.Errorf("upstream headers set %v, want the cookie line without the proof", up)
				}
			}},
		{name: "accepted with RDN-Sender-Balance only", headers: edit(p5, rdn.HeaderBalance, "-"), ledger: accepted(5), status: 200, outcome: "paid", calls: "Err Pay", shown: "5"},
		{name: "accepted with a header repeated", headers: edit(p5, rdn.HeaderOpenBlock, "7, 7"), ledger: accepted(5), status: 200, outcome: "paid", calls: "Err Pay", shown: "5"},
		{name: "accepted with credit", headers: proofHeaders(20), pays: 20, ledger: accepted(20), status: 200, outcome: "paid", calls: "Err Pay", shown: "20",
			check: func(t *testing.T, _ *Decision, resp *authv3.CheckResponse) {
				if up := upstreamSet(resp); up[UpstreamPrice] != "5" {
					t.Errorf("upstream headers set %v, want the price 5 charged", up)
				}
			}},
		{name: "replayed", headers: p5, ledger: known(ledger.Replayed, 5), status: 402, msg: "already used", calls: "Err Pay", shown: "5"},
		{name: "invalid amount: resynchronize", headers: p5, ledger: known(ledger.InvalidAmount, 10),
			status: 402, flag: rdn.FlagInvalidAmount, msg: "plus the price (5); resynchronize", calls: "Err Pay", shown: "10"},
		{name: "invalid amount on a channel never paid", headers: p5, ledger: known(ledger.InvalidAmount, 0),
			status: 402, flag: rdn.FlagInvalidAmount, calls: "Err Pay", shown: "0"},
		{name: "invalid amount, to a browser", headers: edit(p5, "accept", browser["accept"]), ledger: known(ledger.InvalidAmount, 10),
			status: 402, flag: rdn.FlagInvalidAmount, calls: "Err Pay", shown: "10"},
		{name: "exceeds the deposit", headers: p5, ledger: known(ledger.ExceedsDeposit, 0),
			status: 402, flag: rdn.FlagInsufficientDeposit, msg: "confirmed deposit (100); top up", calls: "Err Pay", shown: "0"},
		{name: "unconfirmed", headers: p5, ledger: known(ledger.Unconfirmed, 0), status: 402, flag: rdn.FlagInsufficientConfirm, calls: "Err Pay", shown: "0"},
		{name: "no channel", headers: p5, ledger: fakeLedger{result: ledger.PayResult{Outcome: ledger.NoChannel}},
			status: 402, flag: rdn.FlagNonexistingChannel, msg: "no open channel", calls: "Err Pay"},
		{name: "closed channel", headers: p5, ledger: known(ledger.NoChannel, 10), status: 402, flag: rdn.FlagNonexistingChannel, calls: "Err Pay", shown: "10"},
		{name: "no outcome", headers: p5, ledger: fakeLedger{result: ledger.PayResult{}}, status: 402, flag: rdn.FlagNonexistingChannel, calls: "Err Pay"},
		{name: "an outcome unknown here", headers: p5, ledger: fakeLedger{result: ledger.PayResult{Outcome: 99}}, status: 402, flag: rdn.FlagNonexistingChannel, calls: "Err Pay"},
		{name: "accepted on a channel the ledger does not report", headers: p5, ledger: fakeLedger{result: ledger.PayResult{Outcome: ledger.Accepted}},
			status: 503, msg: "did not report", outcome: "error", calls: "Err Pay"},
		// A retry of a paid request (docs/protocol.md §8): the ledger says whether it is one.
		{name: "retried: served again, uncharged", headers: edit(p5, "x-request-id", "r-1"), ledger: known(ledger.Retried, 5),
			status: 200, outcome: "retried", msg: "not charged", calls: "Err Pay", shown: "5", keyed: true,
			check: func(t *testing.T, d *Decision, resp *authv3.CheckResponse) {
				up := applyAsEnvoy(plainRequest("GET", "/echofix/a", edit(p5, UpstreamRetry, "0")).GetAttributes().GetRequest().GetHttp().GetHeaders(), resp.GetOkResponse())
				noProof(t, "retried", up)
				if up[UpstreamRetry] != "1" || up[UpstreamSender] != sender.Hex() || up[UpstreamPrice] != "5" || d.Channel.Paid.Int64() != 5 {
					t.Errorf("upstream headers %v, paid %v", up, d.Channel.Paid)
				}
				meta := resp.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
				if meta["retry"].GetStringValue() != "1" || meta["balance"].GetStringValue() != "5" {
					t.Errorf("metadata %v", meta)
				}
			}},
		{name: "retried with the paywall's cookies", headers: map[string]string{"cookie": asCookies(p5, "theme=dark"), "x-request-id": "r-1"},
			ledger: known(ledger.Retried, 5), status: 200, outcome: "retried", calls: "Err Pay", shown: "5", keyed: true,
			check: func(t *testing.T, _ *Decision, resp *authv3.CheckResponse) {
				if up := upstreamSet(resp); up["cookie"] != "theme=dark" || up[UpstreamRetry] != "1" {
					t.Errorf("upstream headers set %v", up)
				}
			}},
		{name: "paid: a client's own x-rdn-retry is removed", headers: edit(p5, UpstreamRetry, "1", "Idempotency-Key", "order-1"), ledger: accepted(5),
			status: 200, outcome: "paid", calls: "Err Pay", shown: "5", keyed: true,
			check: func(t *testing.T, _ *Decision, resp *authv3.CheckResponse) {
				up := applyAsEnvoy(plainRequest("GET", "/echofix/a", edit(p5, UpstreamRetry, "1")).GetAttributes().GetRequest().GetHttp().GetHeaders(), resp.GetOkResponse())
				if _, ok := up[UpstreamRetry]; ok {
					t.Errorf("upstream gets %s: %q", UpstreamRetry, up[UpstreamRetry])
				}
			}},
		{name: "free: a client's own x-rdn-retry is removed", path: "/free/x", headers: map[string]string{UpstreamRetry: "1"}, status: 200, outcome: "free",
			check: func(t *testing.T, _ *Decision, resp *authv3.CheckResponse) {
				if !slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), UpstreamRetry) {
					t.Errorf("headers to remove %v", resp.GetOkResponse().GetHeadersToRemove())
				}
			}},
		{name: "Idempotency-Key not printable", headers: edit(p5, "Idempotency-Key", "a\tb"), ledger: accepted(5),
			status: 400, msg: "Idempotency-Key: character 2", outcome: "malformed", calls: "Err"},
		{name: "Idempotency-Key empty", headers: edit(p5, "Idempotency-Key", ""), ledger: accepted(5),
			status: 400, msg: "Idempotency-Key: must be 1 to 255", outcome: "malformed", calls: "Err"},
		{name: "Idempotency-Key too long, on a quote", headers: map[string]string{"Idempotency-Key": strings.Repeat("k", 256)},
			status: 400, msg: "got 256", outcome: "malformed", calls: "Err"},
		{name: "pay fails", headers: p5, ledger: fakeLedger{payErr: ledger.ErrLowSpace, result: known(ledger.Accepted, 5).result},
			status: 503, msg: "could not be stored", outcome: "error", calls: "Err Pay",
			check: func(t *testing.T, d *Decision, _ *authv3.CheckResponse) {
				if d.suspended || d.Channel != nil {
					t.Errorf("suspended %v, channel %+v: a failed payment is this request's", d.suspended, d.Channel)
				}
			}},
	}
	for _, r := range rows {
		if r.status == 0 { // the malformed rows
			r.status, r.outcome, r.calls = 409, "malformed", "Err"
		}
		if r.outcome == "" && r.status == 402 {
			r.outcome = "refused"
		}
		t.Run(r.name, func(t *testing.T) { r.run(t, base, sender) })
	}
}

// decideRetryWindow is the service's retry window in TestDecide, passed on to Pay.
const decideRetryWindow = 30 * time.Second

// price checks a 402's quoted price.
func price(want string) func(*testing.T, *Decision, *authv3.CheckResponse) {
	return func(t *testing.T, d *Decision, resp *authv3.CheckResponse) {
		if headers, _ := answerHeaders(resp); d.Price.String() != want || headers[rdn.HeaderPrice] != want {
			t.Errorf("price %v, RDN-Price %q, want %s", d.Price, headers[rdn.HeaderPrice], want)
		}
	}
}

func suspended(t *testing.T, d *Decision, _ *authv3.CheckResponse) {
	if !d.suspended {
		t.Error("not marked suspended")
	}
}

func (r decideRow) run(t *testing.T, base *Service, sender common.Address) {
	l := r.ledger
	chain := &switchableChain{}
	chain.down.Store(r.chainDown)
	cfg := base.cfg
	cfg.Ledger, cfg.Chain = &l, chain
	if r.prices != nil {
		cfg.Prices = func() Pricer { return r.prices }
	}
	var d *Decision
	cfg.Observe = func(got *Decision, _ time.Duration) { d = got }
	s := NewService(cfg, nil)
	req := r.req
	if req == nil {
		path := r.path
		if path == "" {
			path = "/echofix/a"
		}
		req = plainRequest("GET", path, r.headers)
	}
	resp, err := s.Check(context.Background(), req)
	if err != nil || d == nil {
		t.Fatalf("Check: %v, decision %v", err, d)
	}

	// The decision.
	if d.Status != r.status || d.Flag != r.flag || !strings.Contains(d.Message, r.msg) || d.Outcome() != r.outcome {
		t.Errorf("decision %d %q %q (%s), want %d %q %q (%s)", d.Status, d.Flag, d.Message, d.Outcome(), r.status, r.flag, r.msg, r.outcome)
	}
	// The ledger: what it was asked, and with what.
	if got := l.called(); got != r.calls {
		t.Errorf("ledger calls %q, want %q", got, r.calls)
	}
	claimed := r.claimed
	if claimed == (common.Address{}) {
		claimed = sender
	}
	for _, id := range l.asked {
		if id != (rdn.ChannelID{Sender: claimed, OpenBlock: 7}) {
			t.Errorf("Channel(%v), want %s/7", id, claimed.Hex())
		}
	}
	if len(l.payments) > 0 {
		pays := r.pays
		if pays == 0 {
			pays = 5
		}
		p := l.payments[0]
		want := signedBy(t, r.headers)
		if len(l.payments) != 1 || p.ID != (rdn.ChannelID{Sender: sender, OpenBlock: 7}) || p.Balance.Int64() != pays ||
			p.Signature != want || p.Price.Int64() != 5 {
			t.Errorf("Pay(%+v), want %s/7 balance %d signature %s price 5", l.payments, sender.Hex(), pays, want.Hex())
		}
		if (p.RetryKey != ledger.RetryKey{}) != r.keyed || p.RetryWindow != decideRetryWindow || time.Since(p.Seen).Abs() > time.Minute {
			t.Errorf("Pay given retry key %x (want one: %v), window %s, seen %s", p.RetryKey, r.keyed, p.RetryWindow, p.Seen)
		}
	}

	// The answer.
	if r.status == 200 {
		if resp.GetStatus().GetCode() != int32(codes.OK) || resp.GetOkResponse() == nil {
			t.Fatalf("answer %v, want OK", resp)
		}
	} else {
		checkDenial(t, r, d, resp, sender)
	}
	headers, _ := answerHeaders(resp)
	if headers[rdn.HeaderSenderBalance] != r.shown {
		t.Errorf("RDN-Sender-Balance %q, want %q", headers[rdn.HeaderSenderBalance], r.shown)
	}
	if r.shown != "" && headers[rdn.HeaderSenderAddress] != sender.Hex() {
		t.Errorf("RDN-Sender-Address %q, want %s", headers[rdn.HeaderSenderAddress], sender.Hex())
	}
	if r.check != nil {
		r.check(t, d, resp)
	}
}

// signedBy is the signature the request carries (in a header or a cookie).
func signedBy(t *testing.T, headers map[string]string) rdn.Signature {
	t.Helper()
	text := headers[rdn.HeaderBalanceSignature]
	if text == "" {
		values, _ := cookieValues(headers["cookie"])
		text = values[strings.ToLower(rdn.HeaderBalanceSignature)]
	}
	sig, err := rdn.DecodeSignature(text)
	if err != nil {
		t.Fatalf("the row's signature: %v", err)
	}
	return sig
}

// checkDenial checks a denial's status, flag, quote and body.
func checkDenial(t *testing.T, r decideRow, d *Decision, resp *authv3.CheckResponse, sender common.Address) {
	t.Helper()
	denied := resp.GetDeniedResponse()
	if code := int(denied.GetStatus().GetCode()); code != r.status || resp.GetStatus().GetCode() == int32(codes.OK) {
		t.Fatalf("answer %d (gRPC %d), want %d", code, resp.GetStatus().GetCode(), r.status)
	}
	headers, _ := answerHeaders(resp)
	if headers["Cache-Control"] != "no-store" {
		t.Errorf("Cache-Control %q", headers["Cache-Control"])
	}
	for _, flag := range allFlags {
		if v, ok := headers[flag]; ok != (flag == r.flag) || (ok && v != "1") {
			t.Errorf("%s: %q (%v), want the flag %q only", flag, v, ok, r.flag)
		}
	}
	if r.status == 402 {
		// The quote: what to pay, and where.
		for name, want := range map[string]string{rdn.HeaderGatewayPath: "/api/1", rdn.HeaderPrice: d.Price.String(),
			rdn.HeaderReceiverAddress: "0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd", rdn.HeaderContractAddress: "0x1440317CB15499083dEE3dDf49C2bD51D0d92e33",
			rdn.HeaderTokenAddress: (common.Address{}).Hex()} {
			if headers[name] != want {
				t.Errorf("%s %q, want %q", name, headers[name], want)
			}
		}
		// The sender's last proof, to resynchronize with, when it has one.
		if sig, ok := headers[rdn.HeaderBalanceSignature]; ok != (r.shown != "" && r.shown != "0") || (ok && sig != d.Channel.Signature.Hex()) {
			t.Errorf("RDN-Balance-Signature %q (%v) with RDN-Sender-Balance %q", sig, ok, r.shown)
		}
	} else {
		for name := range headers {
			if strings.HasPrefix(name, "RDN-") && d.browser == nil {
				t.Errorf("a %d carries %s", r.status, name)
			}
		}
	}
	if d.browser != nil {
		return // the paywall's page: see the rows' checks
	}
	var body paymentBody
	if headers["Content-Type"] != "application/json" || json.Unmarshal([]byte(denied.GetBody()), &body) != nil {
		t.Fatalf("body %q (%s), want JSON", denied.GetBody(), headers["Content-Type"])
	}
	if body.Error != d.Message || body.Flag != r.flag || body.SenderBalance != r.shown ||
		(r.status == 402) != (body.Price != "") || (r.shown != "") != (body.SenderAddress == sender.Hex()) {
		t.Errorf("body %+v", body)
	}
	if r.shown != "" && r.shown != "0" && body.Signature != d.Channel.Signature.Hex() {
		t.Errorf("body's signature %q, want %s", body.Signature, d.Channel.Signature.Hex())
	}
}
