package crashtest

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// payChannel is one channel under load: every balance signed and sent on it, and those
// that were answered OK.
type payChannel struct {
	id  rdn.ChannelID
	key *ecdsa.PrivateKey

	mu   sync.Mutex
	last int64                   // the highest balance handed out
	sent map[int64]rdn.Signature // every proof sent, by balance
	ok   []int64                 // the balances answered OK
}

// take signs the balance amount above the last one handed out, and records it as sent
// before it leaves.
func (ch *payChannel) take(e *env, amount int64) (int64, rdn.Signature) {
	ch.mu.Lock()
	ch.last += amount
	b := ch.last
	ch.mu.Unlock()
	sig := e.sign(ch, b)
	ch.mu.Lock()
	ch.sent[b] = sig
	ch.mu.Unlock()
	return b, sig
}

func (ch *payChannel) paid(b int64) {
	ch.mu.Lock()
	ch.ok = append(ch.ok, b)
	ch.mu.Unlock()
}

// payLoad is workers paying on the env's channels, several per channel so that proofs of
// one channel are in flight together and arrive out of order. Each proof is sent once: after
// any answer, or none, a worker moves on to the next balance, which covers the price
// whether or not the unanswered one was stored.
type payLoad struct {
	e      *env
	client authv3.AuthorizationClient
	stop   chan struct{}
	wg     sync.WaitGroup

	ok, refused, suspended, unanswered atomic.Int64

	mu         sync.Mutex
	unexpected []string
}

func startLoad(t *testing.T, e *env, c authv3.AuthorizationClient, workers int) *payLoad {
	ld := &payLoad{e: e, client: c, stop: make(chan struct{})}
	for w := range workers {
		ch := e.channels[w%len(e.channels)]
		ld.wg.Go(func() { ld.work(ch) })
	}
	t.Cleanup(ld.halt)
	return ld
}

func (ld *payLoad) work(ch *payChannel) {
	for {
		select {
		case <-ld.stop:
			return
		default:
		}
		b, sig := ch.take(ld.e, price)
		status, hdr, err := ld.e.check(context.Background(), ld.client, ch, b, &sig)
		switch {
		case err != nil:
			// The service is down or died while answering: this payment's fate is unknown.
			ld.unanswered.Add(1)
			time.Sleep(25 * time.Millisecond) // leave the cores to the restarting service
		case status == http.StatusOK:
			ch.paid(b)
			ld.ok.Add(1)
		case status == http.StatusPaymentRequired:
			ld.refused.Add(1)
		case status == http.StatusBadGateway || status == http.StatusServiceUnavailable:
			ld.suspended.Add(1)
			time.Sleep(10 * time.Millisecond)
		default:
			ld.mu.Lock()
			ld.unexpected = append(ld.unexpected, fmt.Sprintf("balance %d on %s: HTTP %d %s", b, ch.id, status, hdr["body"]))
			ld.mu.Unlock()
		}
	}
}

// halt stops the workers; it may be called more than once.
func (ld *payLoad) halt() {
	select {
	case <-ld.stop:
	default:
		close(ld.stop)
	}
	ld.wg.Wait()
}

// summary is the answers counted so far.
func (ld *payLoad) summary() string {
	return fmt.Sprintf("%d OK, %d refused (402), %d suspended (5xx), %d unanswered", ld.ok.Load(), ld.refused.Load(),
		ld.suspended.Load(), ld.unanswered.Load())
}

// verify compares a ledger, read from disk with no service running, with what the load saw:
// every OK'd balance is spent in it (at or below the watermark, or among the accepted
// values), it charged at least the price of every OK, and its balance and signature are a
// proof that was sent. lost counts OK'd payments the ledger does not hold.
func (ld *payLoad) verify(l *ledger.Ledger) (lost int, problems []string) {
	for _, ch := range ld.e.channels {
		ch.mu.Lock()
		ok := slices.Clone(ch.ok)
		stored, err := l.Channel(ch.id)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", ch.id, err))
		case stored == nil:
			problems = append(problems, fmt.Sprintf("%s: not in the ledger", ch.id))
			lost += len(ok)
		default:
			n, p := ld.verifyChannel(ch, stored, ok)
			lost += n
			problems = append(problems, p...)
		}
		ch.mu.Unlock()
	}
	return lost, problems
}

// verifyChannel runs under ch.mu.
func (ld *payLoad) verifyChannel(ch *payChannel, c *ledger.Channel, ok []int64) (lost int, problems []string) {
	for _, b := range ok {
		v := big.NewInt(b)
		_, accepted := slices.BinarySearchFunc(c.Accepted, v, (*big.Int).Cmp)
		if v.Cmp(c.Balance) > 0 || v.Cmp(c.Watermark) > 0 && !accepted {
			lost++
			if lost <= 3 {
				problems = append(problems, fmt.Sprintf("%s: balance %d was answered OK but the ledger holds balance %s, watermark %s",
					ch.id, b, c.Balance, c.Watermark))
			}
		}
	}
	if charged := big.NewInt(int64(len(ok)) * price); c.Charged.Cmp(charged) < 0 {
		short := int(new(big.Int).Sub(charged, c.Charged).Int64() / price)
		lost = max(lost, short)
		problems = append(problems, fmt.Sprintf("%s: %d OKs cost %s but the ledger charged %s", ch.id, len(ok), charged, c.Charged))
	}
	if c.Charged.Cmp(c.Balance) > 0 {
		problems = append(problems, fmt.Sprintf("%s: charged %s above the balance %s", ch.id, c.Charged, c.Balance))
	}
	if c.Balance.Sign() > 0 {
		sig, sent := ch.sent[c.Balance.Int64()]
		switch {
		case !c.Balance.IsInt64() || !sent:
			problems = append(problems, fmt.Sprintf("%s: the ledger holds balance %s, which was never sent", ch.id, c.Balance))
		case sig != c.Signature:
			problems = append(problems, fmt.Sprintf("%s: the ledger's signature of balance %s is not the one sent", ch.id, c.Balance))
		}
	}
	return lost, problems
}
