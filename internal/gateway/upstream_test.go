package gateway

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// payingLedger takes every payment: the gateway's part is what it does with the answer.
type payingLedger struct{}

func (payingLedger) Channel(rdn.ChannelID) (*ledger.Channel, error) { return nil, nil }
func (payingLedger) ConfirmedHeight() uint64                        { return 0 }
func (payingLedger) Err() error                                     { return nil }
func (payingLedger) Pay(_ context.Context, p ledger.Payment) (ledger.PayResult, error) {
	return ledger.PayResult{Outcome: ledger.Accepted, Balance: p.Balance, Signature: p.Signature, Charged: p.Price, Known: true}, nil
}

// recorder is an upstream that keeps the headers of every request it gets.
type recorder struct {
	mu   sync.Mutex
	seen []http.Header
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Header.Clone())
	u.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

func (u *recorder) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[len(u.seen)-1]
}

// The gateway applies the OK answer as Envoy does: the upstream gets the x-rdn-* headers of
// the payment and the site's other cookies, and no RDN-* header or cookie, whether the proof
// came as headers or as the paywall's cookies, paid or free.
func TestUpstreamSeesNoProof(t *testing.T) {
	table := shippedPrices(t)
	receiver := common.HexToAddress("0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd")
	contract := common.HexToAddress("0x1440317CB15499083dEE3dDf49C2bD51D0d92e33")
	service := authz.NewService(authz.Config{
		Receiver: receiver, Contract: contract, Prices: func() authz.Pricer { return table },
		Ledger: payingLedger{}, Chain: healthy{},
	}, nil)
	up := &recorder{}
	upstream := httptest.NewServer(up)
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	g, err := Start(Config{Listen: "127.0.0.1:0", Authz: service, Upstream: target})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })

	key, _ := crypto.ToECDSA(bytes.Repeat([]byte{0xa0}, 32))
	sender := crypto.PubkeyToAddress(key.PublicKey)
	proofOf := func(balance int64) map[string]string {
		sig, err := rdn.Balance{Receiver: receiver, OpenBlock: 7, Balance: big.NewInt(balance), Contract: contract}.Sign(key)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{
			"RDN-Contract-Address": contract.Hex(), "RDN-Receiver-Address": receiver.Hex(), "RDN-Sender-Address": sender.Hex(),
			"RDN-Open-Block": "7", "RDN-Balance": fmt.Sprint(balance), "RDN-Balance-Signature": sig.Hex(),
		}
	}
	cookiesOf := func(p map[string]string) string {
		return fmt.Sprintf("RDN-Sender-Address=%s; RDN-Open-Block=7; RDN-Sender-Balance=%s; RDN-Balance-Signature=%s",
			p["RDN-Sender-Address"], p["RDN-Balance"], p["RDN-Balance-Signature"])
	}
	get := func(path string, headers map[string]string, cookie string) http.Header {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.URL()+path, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("X-Rdn-Sender", "forged")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return up.last()
	}
	check := func(what string, got http.Header, wantSender, wantCookie string) {
		t.Helper()
		for name, values := range got {
			if strings.HasPrefix(strings.ToLower(name), "rdn-") {
				t.Errorf("%s: the upstream got %s: %q", what, name, values)
			}
		}
		if cookie := strings.Join(got.Values("Cookie"), "; "); cookie != wantCookie {
			t.Errorf("%s: the upstream got the cookies %q, want %q", what, cookie, wantCookie)
		}
		if s := got.Get("X-Rdn-Sender"); s != wantSender {
			t.Errorf("%s: the upstream got x-rdn-sender %q, want %q", what, s, wantSender)
		}
	}

	const price = 5_000_000_000_000_000 // /echofix/ in prices.yaml
	check("paid with headers", get("/echofix/a", proofOf(price), "theme=dark"), sender.Hex(), "theme=dark")
	check("paid with cookies", get("/echofix/b", nil, "theme=dark; "+cookiesOf(proofOf(2*price))+"; lang=en"), sender.Hex(), "theme=dark; lang=en")
	check("paid with only cookies", get("/echofix/c", nil, cookiesOf(proofOf(3*price))), sender.Hex(), "")
	check("free with a proof", get("/healthz", proofOf(4*price), cookiesOf(proofOf(4*price))+"; theme=dark"), "", "theme=dark")
	check("free without cookies", get("/healthz", nil, ""), "", "")
}
