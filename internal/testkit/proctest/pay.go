package proctest

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// PaidPath is the path the Checks ask for; a price table must price it.
const PaidPath = "/paid/item"

// PriceTable prices PaidPath (and everything under /paid/) at price, everything else at 0.
func PriceTable(price int) string {
	return fmt.Sprintf("default_price: 0\nrules:\n  - name: paid\n    path: \"/paid/.*\"\n    price: %d\n", price)
}

// Env is a dev chain serving JSON-RPC on a loopback port, outliving the uraiden processes
// a test starts against it, with channels opened by dev accounts 1…n to account 0, the
// receiver.
type Env struct {
	t        testing.TB
	Chain    *devchain.Chain
	RPCURL   string
	Receiver *ecdsa.PrivateKey
	Channels []*Channel
}

// StartEnv starts the chain with cfg (its Listen and Accounts are set here) and opens
// channels channels, each with a deposit no test exhausts. Every second channel pays with
// typed proofs, the others with legacy ones: every process test runs both schemes.
func StartEnv(t testing.TB, channels int, cfg devchain.Config) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cfg.Listen, cfg.Accounts = "127.0.0.1:0", channels+1
	c, err := devchain.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := &Env{t: t, Chain: c, RPCURL: c.HTTPEndpoint(), Receiver: c.Accounts()[0].Key}
	deposit := new(big.Int).Lsh(big.NewInt(1), 64)
	for i, acc := range c.Accounts()[1:] {
		cl, err := client.New(ctx, client.Config{Node: c.Client(), Key: acc.Key, Contract: e.Contract()})
		if err != nil {
			t.Fatal(err)
		}
		ch, err := cl.Open(ctx, e.ReceiverAddress(), deposit, client.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.Channels = append(e.Channels, &Channel{
			ID: rdn.ChannelID{Sender: acc.Address, OpenBlock: ch.OpenBlock}, Key: acc.Key,
			Scheme: rdn.Schemes[i%2], sent: map[int64]rdn.Signature{},
		})
	}
	return e
}

// Contract is the channel contract's address.
func (e *Env) Contract() common.Address { return e.Chain.Deployment().Channels }

// ReceiverAddress is the receiver's address.
func (e *Env) ReceiverAddress() common.Address { return crypto.PubkeyToAddress(e.Receiver.PublicKey) }

// Identity is the ledger identity of the receiver's services.
func (e *Env) Identity() ledger.Identity {
	return ledger.Identity{ChainID: devchain.ChainID, Contract: e.Contract(), Receiver: e.ReceiverAddress()}
}

// Sign is a sender's balance proof for one of its channels to the receiver. Load workers
// call it: a failure is reported with Errorf, which other goroutines may call.
func (e *Env) Sign(ch *Channel, balance int64) rdn.Signature {
	sig, err := rdn.Balance{Receiver: e.ReceiverAddress(), OpenBlock: ch.ID.OpenBlock, Balance: big.NewInt(balance), Contract: e.Contract(),
		Scheme: ch.Scheme, ChainID: devchain.ChainID}.Sign(ch.Key)
	if err != nil {
		e.t.Errorf("sign balance %d on %s: %v", balance, ch.ID, err)
	}
	return sig
}

// Check sends one Check of PaidPath, with a balance proof when sig is not nil. It returns
// the HTTP status uraiden decided (200 for OK) and the denial's headers (its body under
// "body"), or the gRPC error.
func (e *Env) Check(ctx context.Context, c authv3.AuthorizationClient, ch *Channel, balance int64, sig *rdn.Signature) (int, map[string]string, error) {
	headers := map[string]string{":authority": "localhost:10000", ":method": "GET", ":path": PaidPath, ":scheme": "http"}
	if sig != nil {
		headers["rdn-contract-address"] = e.Contract().Hex()
		headers["rdn-receiver-address"] = e.ReceiverAddress().Hex()
		headers["rdn-sender-address"] = ch.ID.Sender.Hex()
		headers["rdn-open-block"] = fmt.Sprint(ch.ID.OpenBlock)
		headers["rdn-balance"] = fmt.Sprint(balance)
		headers["rdn-balance-signature"] = sig.Hex()
		if ch.Scheme != rdn.SchemeLegacy {
			headers["rdn-proof-scheme"] = ch.Scheme.String()
		}
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: PaidPath, Host: "localhost:10000", Scheme: "http",
			Protocol: "HTTP/1.1", Headers: headers},
	}}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		return 0, nil, err
	}
	if resp.GetStatus().GetCode() == 0 {
		return http.StatusOK, nil, nil
	}
	d := resp.GetDeniedResponse()
	out := map[string]string{"body": d.GetBody()}
	for _, h := range d.GetHeaders() {
		out[strings.ToLower(h.GetHeader().GetKey())] = h.GetHeader().GetValue()
	}
	return int(d.GetStatus().GetCode()), out, nil
}

// Channel is one channel under load: every balance signed and sent on it, and those that
// were answered OK.
type Channel struct {
	ID     rdn.ChannelID
	Key    *ecdsa.PrivateKey
	Scheme rdn.Scheme // of every proof sent on it

	mu   sync.Mutex
	last int64                   // the highest balance handed out
	sent map[int64]rdn.Signature // every proof sent, by balance
	ok   []int64                 // the balances answered OK
}

// Take signs the balance amount above the last one handed out, and records it as sent
// before it leaves.
func (ch *Channel) Take(e *Env, amount int64) (int64, rdn.Signature) {
	ch.mu.Lock()
	ch.last += amount
	b := ch.last
	ch.mu.Unlock()
	sig := e.Sign(ch, b)
	ch.mu.Lock()
	ch.sent[b] = sig
	ch.mu.Unlock()
	return b, sig
}

// Paid records that balance b was answered OK.
func (ch *Channel) Paid(b int64) {
	ch.mu.Lock()
	ch.ok = append(ch.ok, b)
	ch.mu.Unlock()
}

// OKs is how many payments were answered OK.
func (ch *Channel) OKs() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.ok)
}

// Verify compares a channel's record in a ledger with what was sent and answered on it:
// every OK'd balance is spent in it (at or below the watermark, or among the accepted
// values), it charged at least price for every OK, and its balance and signature are a proof
// that was sent. lost counts OK'd payments the record does not hold; stored nil loses them
// all.
func (ch *Channel) Verify(stored *ledger.Channel, price int64) (lost int, problems []string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if stored == nil {
		if len(ch.ok) == 0 {
			return 0, nil
		}
		return len(ch.ok), []string{fmt.Sprintf("%s: not in the ledger, with %d payments answered OK", ch.ID, len(ch.ok))}
	}
	c := stored
	for _, b := range ch.ok {
		v := big.NewInt(b)
		_, accepted := slices.BinarySearchFunc(c.Accepted, v, (*big.Int).Cmp)
		if v.Cmp(c.Balance) > 0 || v.Cmp(c.Watermark) > 0 && !accepted {
			lost++
			if lost <= 3 {
				problems = append(problems, fmt.Sprintf("%s: balance %d was answered OK but the ledger holds balance %s, watermark %s",
					ch.ID, b, c.Balance, c.Watermark))
			}
		}
	}
	if charged := big.NewInt(int64(len(ch.ok)) * price); c.Charged.Cmp(charged) < 0 {
		short := int(new(big.Int).Sub(charged, c.Charged).Int64() / price)
		lost = max(lost, short)
		problems = append(problems, fmt.Sprintf("%s: %d OKs cost %s but the ledger charged %s", ch.ID, len(ch.ok), charged, c.Charged))
	}
	if c.Charged.Cmp(c.Balance) > 0 {
		problems = append(problems, fmt.Sprintf("%s: charged %s above the balance %s", ch.ID, c.Charged, c.Balance))
	}
	if c.Balance.Sign() > 0 {
		sig, sent := ch.sent[c.Balance.Int64()]
		switch {
		case !c.Balance.IsInt64() || !sent:
			problems = append(problems, fmt.Sprintf("%s: the ledger holds balance %s, which was never sent", ch.ID, c.Balance))
		case sig != c.Signature:
			problems = append(problems, fmt.Sprintf("%s: the ledger's signature of balance %s is not the one sent", ch.ID, c.Balance))
		case c.Scheme != ch.Scheme:
			problems = append(problems, fmt.Sprintf("%s: the ledger holds the %s proof as %s", ch.ID, ch.Scheme, c.Scheme))
		}
	}
	return lost, problems
}

// ServeConfig is a `uraiden serve` configuration on the env's chain, the given listeners,
// price table, receiver key file and contract, with ledgerYAML as its `ledger:` value.
// Confirmations 0 and fast polling: channels are usable as soon as the chain side sees
// them. max_head_age 0: the dev chain mines only when transactions arrive.
func (e *Env) ServeConfig(grpcAddr, adminAddr, prices, keyFile, ledgerYAML string, contract common.Address) string {
	return fmt.Sprintf(`log: {level: info, format: text}
authz: {listen: %q}
admin: {listen: %q}
pricing: {file: %q}
ledger: %s
receiver: {key_file: %q}
chain:
  rpc_url: %q
  chain_id: %d
  contract_address: %q
  start_block: %d
  confirmations: 0
  poll_interval: 100ms
  max_head_age: 0s
gateway: {listen: ""}
`, grpcAddr, adminAddr, prices, ledgerYAML, keyFile, e.RPCURL, devchain.ChainID, contract.Hex(), e.Chain.Deployment().ChannelsBlock)
}
