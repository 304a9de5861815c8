package crashtest

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/testkit/proctest"
	"github.com/uraiden/uraiden/ledger"
)

// pay sends the next proof on ch, amount above the last, and records an OK; it returns
// the HTTP status and the body of a denial.
func (s *service) pay(t *testing.T, c authv3.AuthorizationClient, ch *proctest.Channel, amount int64) (int, string) {
	t.Helper()
	b, sig := ch.Take(s.env, amount)
	status, hdr, err := s.env.Check(context.Background(), c, ch, b, &sig)
	if err != nil {
		t.Fatalf("Check of balance %d: %v\nservice log:\n%s", b, err, s.lastOutput())
	}
	if status == http.StatusOK {
		ch.Paid(b)
	}
	return status, hdr["body"]
}

// mustPay is pay that must be answered OK.
func (s *service) mustPay(t *testing.T, c authv3.AuthorizationClient, ch *proctest.Channel, amount int64) {
	t.Helper()
	if status, body := s.pay(t, c, ch, amount); status != http.StatusOK {
		t.Fatalf("payment answered %d %s, want OK", status, body)
	}
}

// payOnce runs the service until it is ready, pays once on the first channel and stops it.
func (s *service) payOnce(t *testing.T) {
	t.Helper()
	p := s.start()
	p.mustReady()
	s.mustPay(t, s.authzClient(t), s.env.Channels[0], price)
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// wantRefusal waits for a run that must refuse to start: a non-zero exit, and stderr
// saying each of wants.
func wantRefusal(t *testing.T, p *proc, wants ...string) {
	t.Helper()
	err := p.Wait(60 * time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("uraiden serve exited with %v, want a non-zero status", err)
	}
	out := p.Output()
	t.Logf("refused: %s", firstLine(out, "uraiden: "))
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("uraiden serve's refusal does not say %q:\n%s", w, proctest.Tail(out, 10))
		}
	}
}

// verifyStopped checks the ledger of a stopped service against every OK: none lost, and
// only balances that were sent.
func verifyStopped(t *testing.T, s *service) {
	t.Helper()
	l, err := s.openLedger()
	if err != nil {
		t.Fatalf("the ledger does not open: %v", err)
	}
	defer l.Close()
	lost, problems := (&payLoad{e: s.env}).verify(l)
	for _, p := range problems {
		t.Error(p)
	}
	if lost != 0 {
		t.Errorf("%d payments answered OK are not in the ledger", lost)
	}
}

// A ledger directory of another receiver or another channel contract: serve refuses to
// start, exits non-zero and names what the directory holds and what is configured; the
// directory still serves its own configuration afterwards.
func TestRefusesAnotherReceiversOrContractsLedger(t *testing.T) {
	e := startEnv(t, 1)
	s := newService(t, e, serviceOptions{})
	s.payOnce(t)

	other := e.Chain.Accounts()[1]
	p := newService(t, e, serviceOptions{ledgerDir: s.ledgerDir, receiver: other.Key}).start()
	wantRefusal(t, p, ledger.ErrWrongLedger.Error(),
		"receiver "+e.ReceiverAddress().Hex(), "configured chain 1337", "receiver "+other.Address.Hex())

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d, err := chain.Deploy(ctx, e.Chain.Client(), e.Receiver, chain.DeployParams{ChallengePeriod: contracts.MinChallengePeriod,
		Token: e.Chain.Deployment().Token})
	if err != nil {
		t.Fatal(err)
	}
	p = newService(t, e, serviceOptions{ledgerDir: s.ledgerDir, contract: d.Channels}).start()
	wantRefusal(t, p, ledger.ErrWrongLedger.Error(), "contract "+e.Contract().Hex(), "contract "+d.Channels.Hex())

	s.payOnce(t)
	verifyStopped(t, s)
}

// A second serve on a ledger directory in use: it refuses to start, exits non-zero and says
// the directory is in use; the first keeps serving.
func TestRefusesASecondProcessOnTheLedger(t *testing.T) {
	e := startEnv(t, 1)
	s := newService(t, e, serviceOptions{})
	first := s.start()
	first.mustReady()

	second := newService(t, e, serviceOptions{ledgerDir: s.ledgerDir}).start()
	wantRefusal(t, second, ledger.ErrLocked.Error(), s.ledgerDir)

	if code, body := s.get("/readyz"); code != http.StatusOK || first.Exited() {
		t.Errorf("the first serve after the second was refused: /readyz %d %s, exited %v", code, body, first.Exited())
	}
	s.mustPay(t, s.authzClient(t), e.Channels[0], price)
	if err := first.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	verifyStopped(t, s)
}

// The price table is replaced by a broken one while serve runs: the reload is refused with
// the reason in the log, and the last good table stays in force (quotes and charges); a
// good table then reloads. A restart on a broken table refuses to start and says why.
// (pricing's TestWatcherReloads covers the same on the Watcher alone.)
func TestBrokenPriceTableKeepsTheLastGoodOne(t *testing.T) {
	e := startEnv(t, 1)
	s := newService(t, e, serviceOptions{})
	ch := e.Channels[0]
	p := s.start()
	p.mustReady()
	c := s.authzClient(t)
	quote := func() string {
		t.Helper()
		status, hdr, err := e.Check(context.Background(), c, ch, 0, nil)
		if err != nil || status != http.StatusPaymentRequired {
			t.Fatalf("quote: %d %v", status, err)
		}
		return hdr["rdn-price"]
	}
	if q := quote(); q != "1" {
		t.Fatalf("RDN-Price %s at start, want 1", q)
	}

	broken := "default_price: 0\nrules:\n  - name: paid\n    path: \"/paid/(\"\n    price: 7\n"
	writeFile(t, s.prices, broken, 0o644)
	proctest.WaitFor(t, "the broken table to be rejected", 10*time.Second, func() bool {
		return strings.Contains(p.Output(), "price table rejected; keeping the previous one")
	})
	if !strings.Contains(p.Output(), s.prices+":4") {
		t.Errorf("the rejection does not locate the error (%s:4):\n%s", s.prices, proctest.Tail(p.Output(), 5))
	}
	if q := quote(); q != "1" {
		t.Errorf("RDN-Price %s after a broken table, want the last good 1", q)
	}
	s.mustPay(t, c, ch, 1)

	writeFile(t, s.prices, proctest.PriceTable(3), 0o644)
	proctest.WaitFor(t, "the good table to be reloaded", 10*time.Second, func() bool {
		return strings.Contains(p.Output(), "price table reloaded")
	})
	if q := quote(); q != "3" {
		t.Errorf("RDN-Price %s after a good table, want 3", q)
	}
	if status, body := s.pay(t, c, ch, 1); status != http.StatusPaymentRequired {
		t.Errorf("a payment of the old price after the reload: %d %s, want 402", status, body)
	}
	s.mustPay(t, c, ch, 3)
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	writeFile(t, s.prices, broken, 0o644)
	wantRefusal(t, s.start(), "price table", s.prices+":4")

	l, err := s.openLedger()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stored, err := l.Channel(ch.ID)
	if err != nil || stored == nil {
		t.Fatalf("channel: %v", err)
	}
	// Balances 1 (OK at 1), 2 (refused), 5 (OK at 3): 4 charged on a balance of 5.
	if stored.Charged.Cmp(big.NewInt(4)) != 0 || stored.Balance.Cmp(big.NewInt(5)) != 0 {
		t.Errorf("ledger: charged %s on balance %s, want 4 on 5", stored.Charged, stored.Balance)
	}
}
