package authz_test

import (
	"bytes"
	"fmt"
	"github.com/uraiden/uraiden/rdn"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
)

// TestFixtures sends every CheckRequest of testdata/checks over gRPC to a server on the dev
// chain, in order, and checks each answer.
func TestFixtures(t *testing.T) {
	h := newHarness(t)
	for _, f := range loadFixtures(t) {
		switch f.Before {
		case "":
		case "mine":
			h.mine(confirmations + 1)
			h.sync()
		case "close":
			d := h.chain.Deployment()
			h.transact(h.payer.key, d.Channels, contracts.NewRaidenMicroTransferChannels().PackUncooperativeClose(h.receiver(), h.payer.openBlock, big.NewInt(1)))
			h.sync()
		default:
			t.Fatalf("%s: unknown before %q", f.Name, f.Before)
		}
		resp := h.check(h.render(&f))
		expand := func(s string) string {
			var buf bytes.Buffer
			template.Must(template.New("").Funcs(h.funcs()).Parse(s)).Execute(&buf, h.templateData())
			return buf.String()
		}
		if got := httpStatus(resp); got != f.Want.Status {
			t.Errorf("%s: status %d, want %d (%s)", f.Name, got, f.Want.Status, resp.GetDeniedResponse().GetBody())
			continue
		}
		headers := responseHeaders(resp)
		for k, v := range f.Want.Headers {
			if got, ok := headers[k]; !ok || !strings.EqualFold(got, expand(v)) {
				t.Errorf("%s: header %s = %q, want %q", f.Name, k, got, expand(v))
			}
		}
		for _, k := range f.Want.Absent {
			if v, ok := headers[k]; ok {
				t.Errorf("%s: unexpected header %s: %q", f.Name, k, v)
			}
		}
		upstream := upstreamHeaders(resp)
		for k, v := range f.Want.Upstream {
			if got := upstream[k]; !strings.EqualFold(got, expand(v)) {
				t.Errorf("%s: upstream header %s = %q, want %q", f.Name, k, got, expand(v))
			}
		}
		body := resp.GetDeniedResponse().GetBody()
		for _, part := range f.Want.BodyContains {
			if !strings.Contains(strings.ToLower(body), strings.ToLower(expand(part))) {
				t.Errorf("%s: body %s lacks %q", f.Name, body, expand(part))
			}
		}
		removed := resp.GetOkResponse().GetHeadersToRemove()
		for _, k := range f.Want.RemovedUpstream {
			if !slices.Contains(removed, k) {
				t.Errorf("%s: %s not in headers_to_remove %v", f.Name, k, removed)
			}
		}
		for k := range f.Want.Upstream {
			if slices.Contains(removed, k) {
				t.Errorf("%s: %s is set for the upstream, then in headers_to_remove", f.Name, k)
			}
		}
		meta := resp.GetDynamicMetadata().GetFields()["uraiden"].GetStructValue().GetFields()
		for k, v := range f.Want.Metadata {
			if got := meta[k].GetStringValue(); !strings.EqualFold(got, expand(v)) {
				t.Errorf("%s: metadata %s = %q, want %q", f.Name, k, got, expand(v))
			}
		}
	}
}

// 16 proofs of one channel (balance+price, +2·price, …) sent at once in random order: all
// served, charged exactly 16 × price. Then 1,000 concurrent copies of a new proof, each on a
// request of its own (a replay, not a retry): one OK.
func TestConcurrentPayments(t *testing.T) {
	for _, scheme := range rdn.Schemes {
		t.Run(scheme.String(), func(t *testing.T) { concurrentPayments(t, scheme) })
	}
}

func concurrentPayments(t *testing.T, scheme rdn.Scheme) {
	h := newHarness(t)
	h.scheme = scheme
	const price, n = 5, 16
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i, k := range rand.Perm(n) {
		balance := int64((k + 1) * price)
		req := envoyRequest("GET", fmt.Sprintf("/echofix/p%d", k), h.proofHeaders(h.payer, balance))
		wg.Go(func() { statuses[i] = httpStatus(h.check(req)) })
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("proof %d: status %d", i, s)
		}
	}
	ch := h.channel(h.payer)
	if ch.Charged.Int64() != n*price || ch.Balance.Int64() != n*price {
		t.Fatalf("charged %s, balance %s; want %d", ch.Charged, ch.Balance, n*price)
	}

	proof := h.proofHeaders(h.payer, (n+1)*price)
	var mu sync.Mutex
	counts := map[int]int{}
	for range 1000 {
		wg.Go(func() {
			s := httpStatus(h.check(envoyRequest("GET", "/echofix/again", proof)))
			mu.Lock()
			counts[s]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[200] != 1 || counts[402] != 999 {
		t.Errorf("1,000 copies of one proof: %v, want one 200 and 999 402", counts)
	}
	if ch := h.channel(h.payer); ch.Charged.Int64() != (n+1)*price || ch.Scheme != scheme {
		t.Errorf("charged %s after the copies, want %d; stored proof in %v", ch.Charged, (n+1)*price, ch.Scheme)
	}
}

// Many senders, each with several clients on its channel, pay over one gRPC connection at
// once; every proof is also sent by a second client in a request of its own (a thief, or a
// client retrying without an Idempotency-Key), and a few more
// requests carry no proof at all. Run under -race in CI. Each distinct proof buys exactly one
// request, every copy is refused, and what the ledger charged is the served requests times
// the price.
func TestManySendersAtOnce(t *testing.T) {
	const senders, proofs, price = 8, 24, 5
	c := servertest.DevChain(t, senders+1)
	cfg := servertest.Config(t, "testdata/prices.yaml")
	cfg.DevChain.Confirmations = confirmations
	h := &harness{t: t, chain: c, cfg: cfg}
	channels := make([]channelKey, senders)
	for i := range channels {
		channels[i] = h.openChannel(c.Accounts()[i+1].Key, 1000)
	}
	h.mine(confirmations)
	h.start()

	type sent struct {
		channel int
		status  int
	}
	var requests []*authv3.CheckRequest
	var owners []int
	for i, ch := range channels {
		for k := range proofs {
			path, proof := fmt.Sprintf("/echofix/s%dp%d", i, k), h.proofHeaders(ch, int64((k+1)*price))
			requests = append(requests, envoyRequest("GET", path, proof), envoyRequest("GET", path, proof)) // the proof and its copy
			owners = append(owners, i, i)
		}
	}
	results := make([]sent, len(requests))
	var wg sync.WaitGroup
	for _, n := range rand.Perm(len(requests)) {
		wg.Go(func() { results[n] = sent{owners[n], httpStatus(h.check(requests[n]))} })
	}
	var quotes atomic.Int64
	for range 50 {
		wg.Go(func() {
			if httpStatus(h.check(envoyRequest("GET", "/echofix/nothing", nil))) == 402 {
				quotes.Add(1)
			}
		})
	}
	wg.Wait()

	served := make([]int64, senders)
	for _, r := range results {
		switch r.status {
		case 200:
			served[r.channel]++
		case 402:
		default:
			t.Errorf("channel %d: status %d", r.channel, r.status)
		}
	}
	if quotes.Load() != 50 {
		t.Errorf("%d of 50 requests without a proof got a quote", quotes.Load())
	}
	for i, ch := range channels {
		got := h.channel(ch)
		if served[i] != proofs {
			t.Errorf("channel %d: %d requests served, want one per distinct proof (%d)", i, served[i], proofs)
		}
		if got.Charged.Int64() != served[i]*price || got.Balance.Int64() != proofs*price {
			t.Errorf("channel %d: charged %s, balance %s; served %d × %d", i, got.Charged, got.Balance, served[i], price)
		}
	}
}

// A restart keeps every accepted payment: the old proofs stay spent, the next one pays.
func TestRestartKeepsPayments(t *testing.T) {
	h := newHarness(t)
	for b := int64(5); b <= 50; b += 5 {
		if s := httpStatus(h.check(envoyRequest("GET", "/echofix/a", h.proofHeaders(h.payer, b)))); s != 200 {
			t.Fatalf("balance %d: %d", b, s)
		}
	}
	h.restart()
	ch := h.channel(h.payer)
	if ch.Balance.Int64() != 50 || ch.Charged.Int64() != 50 {
		t.Fatalf("after restart: balance %s charged %s", ch.Balance, ch.Charged)
	}
	for b := int64(5); b <= 50; b += 5 {
		if s := httpStatus(h.check(envoyRequest("GET", "/echofix/a", h.proofHeaders(h.payer, b)))); s != 402 {
			t.Errorf("spent balance %d after restart: %d", b, s)
		}
	}
	if s := httpStatus(h.check(envoyRequest("GET", "/echofix/a", h.proofHeaders(h.payer, 55)))); s != 200 {
		t.Errorf("next balance after restart: %d", s)
	}
}

// Without the ETH to dispute a cheating close, the server takes no payment: 502, never 402.
func TestReceiverWithoutETHAnswers502(t *testing.T) {
	h := newHarness(t)
	h.srv.Close()
	h.cfg.Chain.MinReceiverETH = "1000000000" // far above the dev account's 1000 ETH
	h.start()
	resp := h.check(envoyRequest("GET", "/echofix/foo", nil))
	if s := httpStatus(resp); s != 502 || !strings.Contains(resp.GetDeniedResponse().GetBody(), "too low to send a dispute") {
		t.Errorf("status %d, body %s", s, resp.GetDeniedResponse().GetBody())
	}
	// Free routes stay free.
	if s := httpStatus(h.check(envoyRequest("GET", "/free", nil))); s != 200 {
		t.Errorf("free route: %d", s)
	}
}

// A retry over real gRPC, as Envoy's retry_policy sends it after losing the first answer: the
// identical CheckRequest is served again, charged once, at most 3 times; a client's retry is
// one when it repeats its Idempotency-Key, whatever x-request-id Envoy gave it; the proof on
// any other request is refused (docs/protocol.md §8).
func TestRetriesOverGRPC(t *testing.T) {
	h := newHarness(t)
	paid := envoyRequest("GET", "/echofix/r?x=1", h.proofHeaders(h.payer, 5))
	if s := httpStatus(h.check(paid)); s != 200 {
		t.Fatalf("payment: %d", s)
	}
	for i := 1; i <= 3; i++ {
		resp := h.check(paid)
		if s, up := httpStatus(resp), upstreamHeaders(resp); s != 200 || up["x-rdn-retry"] != "1" || up["x-rdn-price"] != "5" {
			t.Fatalf("retry %d: %d, upstream %v", i, s, up)
		}
	}
	if s := httpStatus(h.check(paid)); s != 402 {
		t.Errorf("a 4th retry: %d, want 402", s)
	}
	if s := httpStatus(h.check(envoyRequest("GET", "/echofix/r?x=1", h.proofHeaders(h.payer, 5)))); s != 402 {
		t.Errorf("the proof on another request: %d, want 402", s)
	}

	idem := h.proofHeaders(h.payer, 10)
	idem["Idempotency-Key"] = "order-42"
	for i, want := range []int{200, 200} { // the payment, then the client's retry with a new x-request-id
		if s := httpStatus(h.check(envoyRequest("GET", "/echofix/k", idem))); s != want {
			t.Fatalf("request %d with the Idempotency-Key: %d, want %d", i, s, want)
		}
	}
	if s := httpStatus(h.check(envoyRequest("GET", "/echofix/elsewhere", idem))); s != 402 {
		t.Errorf("the Idempotency-Key on another path: %d, want 402", s)
	}
	if ch := h.channel(h.payer); ch.Charged.Int64() != 10 || ch.Balance.Int64() != 10 {
		t.Errorf("charged %s, balance %s; want the two payments' 10", ch.Charged, ch.Balance)
	}
	if st := h.srv.Ledger.Stats(); st.ChargedSum.Int64() != 10 {
		t.Errorf("the ledger's charged sum %s, want 10", st.ChargedSum)
	}
}
