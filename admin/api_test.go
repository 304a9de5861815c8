package admin_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"

	"github.com/uraiden/uraiden/admin"
	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/rdn"
)

// scenario: account 1 opens A (1000) and, later, C (200); account 2 opens B (500). A and B
// are confirmed, C and a top-up of B by 100 are not. A pays three times (balance 15).
type scenario struct {
	*harness
	a, b, c channel
}

func newScenario(t *testing.T) *scenario { return newScenarioWith(t, nil) }

// newScenarioWith is newScenario on a configuration edit changes.
func newScenarioWith(t *testing.T, edit func(*config.Config)) *scenario {
	h := newHarness(t, edit)
	s := &scenario{harness: h}
	s.a = h.open(h.account(1), 1000)
	s.b = h.open(h.account(2), 500)
	h.mine(confirmations)
	h.start()
	for _, balance := range []int64{5, 10, 15} {
		if st := h.pay(s.a, balance); st != 200 {
			t.Fatalf("payment of balance %d: status %d", balance, st)
		}
	}
	s.c = h.open(h.account(1), 200)
	h.topUp(s.b, 100)
	h.sync()
	return s
}

func (h *harness) stats() admin.StatsBody {
	h.t.Helper()
	r := h.do("GET", "/api/1/stats", testToken, "")
	if r.status != 200 {
		h.t.Fatalf("stats: %d %s", r.status, r.body)
	}
	var s admin.StatsBody
	r.json(h.t, &s)
	return s
}

func TestStats(t *testing.T) {
	s := newScenario(t)
	head := s.head()
	liquid := s.tokenBalance(s.receiver())
	got := s.stats()
	d := s.chain.Deployment()
	want := admin.StatsBody{
		DepositSum: "1800", OpenChannels: 3, PendingChannels: 0, BalanceSum: "15", UniqueSenders: 2,
		TokenAddress: d.Token.Hex(), ContractAddress: d.Channels.Hex(), ReceiverAddress: s.receiver().Hex(),
		SyncBlock: head, UnconfirmedDepositSum: "300", ChargedSum: "15", WithdrawnSum: "0", SettledSum: "0",
		ConfirmedBlock: head - confirmations,
	}
	if got.LiquidBalance == nil || *got.LiquidBalance != liquid.String() {
		t.Errorf("liquid_balance %v, want %s", got.LiquidBalance, liquid)
	}
	if got.ChainHead == nil || *got.ChainHead != head || got.SyncLag == nil || *got.SyncLag != 0 {
		t.Errorf("chain_head %v sync_lag %v, want %d and 0", got.ChainHead, got.SyncLag, head)
	}
	for _, abi := range []json.RawMessage{got.ManagerABI, got.TokenABI} {
		var entries []map[string]any
		if err := json.Unmarshal(abi, &entries); err != nil || len(entries) < 5 {
			t.Errorf("ABI is not a JSON array of entries: %.80s", abi)
		}
	}
	if !strings.Contains(string(got.ManagerABI), `"cooperativeClose"`) || !strings.Contains(string(got.TokenABI), `"balanceOf"`) {
		t.Error("manager_abi or token_abi is not the contract's")
	}
	got.LiquidBalance, got.ChainHead, got.SyncLag, got.ManagerABI, got.TokenABI = nil, nil, nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats\n got %+v\nwant %+v", got, want)
	}

	// Confirmations come: the unconfirmed deposits are none; the amounts stay.
	s.mine(confirmations)
	s.sync()
	if got := s.stats(); got.UnconfirmedDepositSum != "0" || got.DepositSum != "1800" {
		t.Errorf("after confirmations: unconfirmed %s deposit %s", got.UnconfirmedDepositSum, got.DepositSum)
	}
}

func TestChannels(t *testing.T) {
	s := newScenario(t)
	// Key order: by sender, then open block.
	all := []channel{s.a, s.c, s.b}
	slices.SortStableFunc(all, func(x, y channel) int { return strings.Compare(string(x.sender.Bytes()), string(y.sender.Bytes())) })

	var list []admin.ChannelBody
	r := s.do("GET", "/api/1/channels", testToken, "")
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	r.json(t, &list)
	if len(list) != 3 || r.header.Get("Link") != "" {
		t.Fatalf("open channels: %d, Link %q", len(list), r.header.Get("Link"))
	}
	for i, c := range list {
		if !strings.EqualFold(c.SenderAddress, all[i].sender.Hex()) || c.OpenBlock != all[i].openBlock || c.State != "open" {
			t.Errorf("channel %d: %+v, want %s/%d", i, c, all[i].sender.Hex(), all[i].openBlock)
		}
		if c.BalanceSignature != "" && c.Balance == "0" {
			t.Errorf("channel %d has a signature without a balance", i)
		}
	}

	// One at a time, following the cursor: the same channels in the same order.
	var paged []admin.ChannelBody
	path := "/api/1/channels?limit=1&status=all"
	for range 10 {
		r := s.do("GET", path, testToken, "")
		var page []admin.ChannelBody
		r.json(t, &page)
		if r.status != 200 || len(page) != 1 {
			t.Fatalf("%s: %d, %d channels", path, r.status, len(page))
		}
		paged = append(paged, page...)
		link := r.header.Get("Link")
		if link == "" {
			break
		}
		if !strings.HasPrefix(link, "</api/1/channels?") || !strings.HasSuffix(link, `>; rel="next"`) ||
			!strings.Contains(link, "cursor="+r.header.Get("X-Next-Cursor")) {
			t.Fatalf("Link %q, X-Next-Cursor %q", link, r.header.Get("X-Next-Cursor"))
		}
		path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	}
	if len(paged) != 3 || paged[0] != list[0] || paged[1] != list[1] || paged[2] != list[2] {
		t.Errorf("paged listing differs:\n%+v\n%+v", paged, list)
	}

	// One sender's channels: A and C.
	var mine []admin.ChannelBody
	r = s.do("GET", "/api/1/channels/"+s.a.sender.Hex(), testToken, "")
	r.json(t, &mine)
	if len(mine) != 2 || mine[0].OpenBlock != s.a.openBlock || mine[1].OpenBlock != s.c.openBlock {
		t.Errorf("sender's channels: %+v", mine)
	}
	// A's fields, as the operator sees them.
	a := mine[0]
	if a.Balance != "15" || a.Deposit != "1000" || a.Charged != "15" || !a.Confirmed || a.BalanceSignature != s.sign(s.a.key, s.a, 15) {
		t.Errorf("channel A: %+v", a)
	}
	// C is not confirmed yet; B's top-up is counted in its deposit, not in its confirmed one.
	if c := mine[1]; c.Confirmed || c.Deposit != "200" || c.ConfirmedDeposit != "0" {
		t.Errorf("channel C: %+v", c)
	}
	var b admin.ChannelBody
	s.do("GET", channelPath(s.b), testToken, "").json(t, &b)
	if b.Deposit != "600" || b.ConfirmedDeposit != "500" || b.Balance != "0" || b.BalanceSignature != "" {
		t.Errorf("channel B: %+v", b)
	}

	// The public view of one channel: the same fields, no signature.
	var public admin.ChannelBody
	r = s.do("GET", channelPath(s.a), "", "")
	r.json(t, &public)
	if r.status != 200 || public.Balance != "15" || public.State != "open" || public.BalanceSignature != "" {
		t.Errorf("public channel view: %d %+v", r.status, public)
	}

	for _, bad := range []struct {
		path   string
		status int
	}{
		{"/api/1/channels?status=pending", 400},
		{"/api/1/channels?limit=0", 400},
		{"/api/1/channels?limit=1001", 400},
		{"/api/1/channels?cursor=zz", 400},
		{"/api/1/channels?offset=2", 400},
		{"/api/1/channels/0x1234", 400},
		{"/api/1/channels/" + s.a.sender.Hex() + "/x", 400},
		{"/api/1/channels/" + s.a.sender.Hex() + "/4294967296", 400},
		{"/api/1/channels/" + s.a.sender.Hex() + "/1", 404},
		{"/api/1/nothing", 404},
	} {
		r := s.do("GET", bad.path, testToken, "")
		if r.status != bad.status {
			t.Errorf("%s: %d, want %d (%s)", bad.path, r.status, bad.status, r.body)
		} else {
			r.errorText(t)
		}
	}
	if r := s.do("POST", channelPath(s.a), testToken, "{}"); r.status != 405 || r.header.Get("Allow") == "" {
		t.Errorf("POST: %d, Allow %q", r.status, r.header.Get("Allow"))
	}
}

func TestAuthentication(t *testing.T) {
	s := newScenario(t)
	operatorPaths := []string{"/api/1/stats", "/api/1/channels", "/api/1/channels/" + s.a.sender.Hex(), "/metrics"}
	for _, p := range operatorPaths {
		r := s.do("GET", p, "", "")
		if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s without a token: %d %q", p, r.status, r.header.Get("WWW-Authenticate"))
		}
		r.errorText(t)
		if r := s.do("GET", p, testToken+"x", ""); r.status != 403 {
			t.Errorf("%s with a wrong token: %d", p, r.status)
		}
		if r := s.do("GET", p, testToken, ""); r.status != 200 {
			t.Errorf("%s with the token: %d", p, r.status)
		}
	}
	// Another scheme is no token; the scheme's case does not matter.
	for header, want := range map[string]int{"Basic " + testToken: 401, "bearer " + testToken: 200, "Bearer": 401} {
		req, _ := http.NewRequest("GET", s.base+"/api/1/stats", nil)
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization %.12q…: %d, want %d", header, resp.StatusCode, want)
		}
	}
	// A single channel is public, but a wrong token is refused rather than ignored.
	if r := s.do("GET", channelPath(s.a), "wrong-token-but-long-enough", ""); r.status != 403 {
		t.Errorf("single channel with a wrong token: %d", r.status)
	}
	// Probes are public; pprof is not served unless enabled.
	for p, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/debug/pprof/": 404} {
		if r := s.do("GET", p, "", ""); r.status != want {
			t.Errorf("%s: %d, want %d", p, r.status, want)
		}
	}
}

func (h *harness) deleteChannel(c channel, body string) response {
	h.t.Helper()
	return h.do("DELETE", channelPath(c), "", body)
}

// closeBody is a close's body: the balance, a balance proof and, given as a signature and
// an expiry, a close request. Without one it is µRaiden's (legacy) body.
func closeBody(balance any, sig string, request ...any) string {
	m := map[string]any{"balance": balance, "balance_signature": sig}
	if len(request) == 2 {
		m["close_request_signature"], m["close_request_expires"] = request[0], request[1]
	}
	data, _ := json.Marshal(m)
	return string(data)
}

// closeRequest is the close request of c at balance, expiring in five minutes, signed with
// key; edit changes it before it is signed.
func (h *harness) closeRequest(key *ecdsa.PrivateKey, c channel, balance int64, edit func(*rdn.CloseRequest)) closeReq {
	h.t.Helper()
	cr := rdn.CloseRequest{Receiver: h.receiver(), Contract: h.chain.Deployment().Channels, ChainID: devchain.ChainID,
		Sender: c.sender, OpenBlock: c.openBlock, Balance: big.NewInt(balance), Expires: time.Now().Add(5 * time.Minute).Unix()}
	if edit != nil {
		edit(&cr)
	}
	sig, err := cr.Sign(key)
	if err != nil {
		h.t.Fatal(err)
	}
	return closeReq{sig.Hex(), cr.Expires}
}

// closeReq is a signed close request: its signature and expiry.
type closeReq struct {
	sig     string
	expires int64
}

// senderClose is the sender's body to close c at balance: its balance proof and close request.
func (h *harness) senderClose(c channel, balance int64) string {
	h.t.Helper()
	return closeWith(balance, h.sign(c.key, c, balance), h.closeRequest(c.key, c, balance, nil))
}

// The cooperative close: refused to third parties and at a stale balance; the receiver's
// signature verifies on chain and settles the channel with cooperativeClose.
func TestCooperativeClose(t *testing.T) {
	s := newScenario(t)
	stranger := s.account(3)
	for _, bad := range []struct {
		name, body string
		status     int
	}{
		{"a stranger's proof", closeWith(15, s.sign(stranger, s.a, 15), s.closeRequest(s.a.key, s.a, 15, nil)), 403},
		{"the sender's proof of another balance", closeWith(15, s.sign(s.a.key, s.a, 14), s.closeRequest(s.a.key, s.a, 15, nil)), 403},
		{"the sender's proof without a close request", closeBody(15, s.sign(s.a.key, s.a, 15)), 403},
		{"no signature", `{"balance": 15}`, 400},
		{"a malformed signature", closeBody(15, "0x1234"), 400},
		{"a negative balance", closeBody(-1, s.sign(s.a.key, s.a, 15)), 400},
		{"a fractional balance", `{"balance": 1.5, "balance_signature": "` + s.sign(s.a.key, s.a, 15) + `"}`, 400},
		{"an unknown field", `{"balance": 15, "balance_signature": "` + s.sign(s.a.key, s.a, 15) + `", "x": 1}`, 400},
		{"not JSON", `balance=15`, 400},
	} {
		r := s.deleteChannel(s.a, bad.body)
		if r.status != bad.status {
			t.Errorf("%s: %d, want %d (%s)", bad.name, r.status, bad.status, r.body)
		} else if strings.Contains(string(r.body), "close_signature") {
			t.Errorf("%s: a close signature leaked: %s", bad.name, r.body)
		}
	}
	unknown := channel{key: s.a.key, sender: s.a.sender, openBlock: 1}
	if r := s.deleteChannel(unknown, s.senderClose(unknown, 0)); r.status != 404 {
		t.Errorf("unknown channel: %d", r.status)
	}
	// The sender at a stale balance: 409 with the last balance.
	r := s.deleteChannel(s.a, s.senderClose(s.a, 10))
	var conflict struct{ Error, Balance string }
	r.json(t, &conflict)
	if r.status != 409 || conflict.Balance != "15" || conflict.Error == "" {
		t.Fatalf("stale balance: %d %s", r.status, r.body)
	}
	if st := s.pay(s.a, 20); st != 200 {
		t.Fatalf("refused closes must not stop payments: %d", st)
	}

	// The sender at the last balance (20), as a string.
	balanceSig := s.sign(s.a.key, s.a, 20)
	request := s.closeRequest(s.a.key, s.a, 20, nil)
	r = s.deleteChannel(s.a, closeBody("20", balanceSig, request.sig, fmt.Sprint(request.expires)))
	var closed admin.CloseResponse
	r.json(t, &closed)
	if r.status != 200 || closed.Balance != "20" || closed.ProofScheme != "legacy" {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	closingSig, err := rdn.ParseSignature(closed.CloseSignature)
	if err != nil {
		t.Fatal(err)
	}
	// Asked again (as JSON numbers): the same signature.
	r = s.deleteChannel(s.a, closeBody(20, balanceSig, request.sig, request.expires))
	if r.status != 200 || !strings.Contains(string(r.body), closed.CloseSignature) {
		t.Errorf("second close: %d %s", r.status, r.body)
	}
	if st := s.pay(s.a, 25); st != 402 {
		t.Errorf("payment after the close: %d, want 402", st)
	}
	var view admin.ChannelBody
	s.do("GET", channelPath(s.a), testToken, "").json(t, &view)
	if view.State != "closing" || !view.CloseSigned || view.CloseSignature != closed.CloseSignature || view.Balance != "20" ||
		view.ProofScheme != "legacy" || view.CloseProofScheme != "legacy" {
		t.Errorf("closed channel: %+v", view)
	}
	if st := s.stats(); st.OpenChannels != 2 || st.PendingChannels != 1 || st.UniqueSenders != 2 {
		t.Errorf("stats after the close: open %d pending %d senders %d", st.OpenChannels, st.PendingChannels, st.UniqueSenders)
	}

	// The contract recovers the receiver from the signature.
	d := s.chain.Deployment()
	mgr := s.mgr.Instance(s.chain.Client(), d.Channels)
	signer, err := bind.Call(mgr, &bind.CallOpts{Context: context.Background()},
		s.mgr.PackExtractClosingSignature(s.a.sender, s.a.openBlock, big.NewInt(20), closingSig[:]), s.mgr.UnpackExtractClosingSignature)
	if err != nil || signer != s.receiver() {
		t.Fatalf("extractClosingSignature: %s, %v; want the receiver %s", signer, err, s.receiver())
	}
	// cooperativeClose settles at once: the receiver gets 20, the sender the rest of 1000.
	receiverBefore, senderBefore := s.tokenBalance(s.receiver()), s.tokenBalance(s.a.sender)
	balanceProof, _ := rdn.ParseSignature(balanceSig)
	s.transact(s.a.key, d.Channels, s.mgr.PackCooperativeClose(s.receiver(), s.a.openBlock, big.NewInt(20), balanceProof[:], closingSig[:]))
	if got := new(big.Int).Sub(s.tokenBalance(s.receiver()), receiverBefore); got.Int64() != 20 {
		t.Errorf("receiver got %s tokens, want 20", got)
	}
	if got := new(big.Int).Sub(s.tokenBalance(s.a.sender), senderBefore); got.Int64() != 980 {
		t.Errorf("sender got %s tokens back, want 980", got)
	}
	s.sync()
	s.do("GET", channelPath(s.a), "", "").json(t, &view)
	if view.State != "settled" || view.CloseBalance != "20" {
		t.Errorf("after cooperativeClose: %+v", view)
	}
	if st := s.stats(); st.SettledChannels != 1 || st.SettledSum != "20" || st.PendingChannels != 0 || st.DepositSum != "800" || st.BalanceSum != "0" {
		t.Errorf("stats after settlement: settled %d (sum %s), pending %d, deposits %s, balances %s",
			st.SettledChannels, st.SettledSum, st.PendingChannels, st.DepositSum, st.BalanceSum)
	}
	if r := s.deleteChannel(s.a, s.senderClose(s.a, 20)); r.status != 409 {
		t.Errorf("closing a settled channel: %d %s", r.status, r.body)
	}
}

// closeWith is closeBody with a close request as closeRequest returns it.
func closeWith(balance any, sig string, request closeReq) string {
	return closeBody(balance, sig, request.sig, request.expires)
}

// A payment proof, however it leaked, does not close the channel: the latest one (which a
// replayed older proof's 402 hands to anyone) gets 403 without the sender's close request,
// and so does every close request that is not the sender's for this receiver, contract,
// chain, channel and balance, or that has expired or lives too long.
func TestALeakedProofCannotClose(t *testing.T) {
	s := newScenario(t)
	// A stranger replays the sender's first proof (balance 5) and learns the latest one.
	replay := s.checkProof(s.a, 5, s.sign(s.a.key, s.a, 5))
	latest := map[string]string{}
	for _, h := range replay.GetDeniedResponse().GetHeaders() {
		latest[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if latest["RDN-Invalid-Amount"] != "1" || latest["RDN-Sender-Balance"] != "15" || latest["RDN-Balance-Signature"] == "" {
		t.Fatalf("the replay's 402: %v", latest)
	}
	leaked := latest["RDN-Balance-Signature"]
	stranger := s.account(3)
	for _, bad := range []struct {
		name, body string
		status     int
	}{
		{"the leaked latest proof", closeBody(15, leaked), 403},
		{"the leaked proof, as a string balance", closeBody("15", leaked), 403},
		{"the leaked proof, as a form", "", 403},
		{"the leaked proof with the stranger's close request", closeWith(15, leaked, s.closeRequest(stranger, s.a, 15, nil)), 403},
		{"the leaked proof as the close request", closeBody(15, leaked, leaked, time.Now().Add(time.Minute).Unix()), 403},
		{"an expired close request", closeWith(15, leaked, s.closeRequest(s.a.key, s.a, 15, func(c *rdn.CloseRequest) {
			c.Expires = time.Now().Add(-time.Second).Unix()
		})), 403},
		{"a close request for too long", closeWith(15, leaked, s.closeRequest(s.a.key, s.a, 15, func(c *rdn.CloseRequest) {
			c.Expires = time.Now().Add(rdn.MaxCloseRequestLifetime + time.Minute).Unix()
		})), 403},
		{"a close request to another receiver", closeWith(15, leaked, s.closeRequest(s.a.key, s.a, 15, func(c *rdn.CloseRequest) {
			c.Receiver = s.a.sender
		})), 403},
		{"a close request on another contract", closeWith(15, leaked, s.closeRequest(s.a.key, s.a, 15, func(c *rdn.CloseRequest) {
			c.Contract = s.chain.Deployment().Token
		})), 403},
		{"a close request on another chain", closeWith(15, leaked, s.closeRequest(s.a.key, s.a, 15, func(c *rdn.CloseRequest) {
			c.ChainID = 1
		})), 403},
		{"a close request of another channel", closeWith(15, leaked, s.closeRequest(s.a.key, s.c, 15, nil)), 403},
		{"a close request at another balance", closeWith(15, leaked, s.closeRequest(s.a.key, s.a, 14, nil)), 403},
		{"half a close request", closeBody(15, leaked, "", time.Now().Add(time.Minute).Unix()), 400},
		{"a malformed close request", closeBody(15, leaked, "0x1234", time.Now().Add(time.Minute).Unix()), 400},
		{"a close request expiring at no time", closeBody(15, leaked, s.closeRequest(s.a.key, s.a, 15, nil).sig, 0), 400},
	} {
		var r response
		if bad.body == "" {
			r = formDelete(t, s.base+channelPath(s.a), "balance=15&balance_signature="+leaked)
		} else {
			r = s.deleteChannel(s.a, bad.body)
		}
		if r.status != bad.status || strings.Contains(string(r.body), "close_signature") {
			t.Errorf("%s: %d %s, want %d", bad.name, r.status, r.body, bad.status)
		}
	}
	// The channel still takes payments; the sender's own close request closes it.
	if st := s.pay(s.a, 20); st != 200 {
		t.Fatalf("payment after refused closes: %d", st)
	}
	if r := s.deleteChannel(s.a, s.senderClose(s.a, 20)); r.status != 200 || !strings.Contains(string(r.body), "close_signature") {
		t.Errorf("the sender's close: %d %s", r.status, r.body)
	}
}

// admin.legacy_close accepts µRaiden 0.2.0's close, the balance proof alone; a close
// request, when given, must still be right.
func TestLegacyClose(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Admin.LegacyClose = true })
	a := h.open(h.account(1), 1000)
	h.mine(confirmations)
	h.start()
	if st := h.pay(a, 5); st != 200 {
		t.Fatalf("payment: %d", st)
	}
	if r := h.deleteChannel(a, closeWith(5, h.sign(a.key, a, 5), h.closeRequest(h.account(3), a, 5, nil))); r.status != 403 {
		t.Errorf("a stranger's close request: %d %s", r.status, r.body)
	}
	if r := h.deleteChannel(a, closeBody(5, h.sign(a.key, a, 5))); r.status != 200 || !strings.Contains(string(r.body), "close_signature") {
		t.Errorf("the legacy close: %d %s", r.status, r.body)
	}
}

// µRaiden's Python client sends the balance as a form; with the signatures it is accepted.
func TestCooperativeCloseForm(t *testing.T) {
	s := newScenario(t)
	form := func(balance int64) string {
		request := s.closeRequest(s.b.key, s.b, balance, nil)
		return fmt.Sprintf("balance=%d&balance_signature=%s&close_request_signature=%s&close_request_expires=%d",
			balance, s.sign(s.b.key, s.b, balance), request.sig, request.expires)
	}
	r := formDelete(t, s.base+channelPath(s.b), form(15))
	if r.status != 409 || !strings.Contains(string(r.body), `"balance":"0"`) {
		t.Errorf("form close at a balance never paid: %d %s", r.status, r.body)
	}
	r = formDelete(t, s.base+channelPath(s.b), form(0))
	if r.status != 200 || !strings.Contains(string(r.body), "close_signature") {
		t.Errorf("form close: %d %s", r.status, r.body)
	}
}

func formDelete(t *testing.T, url, body string) response {
	t.Helper()
	req, err := http.NewRequest("DELETE", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}
