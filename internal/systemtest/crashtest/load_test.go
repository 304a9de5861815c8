package crashtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/uraiden/uraiden/internal/testkit/proctest"
	"github.com/uraiden/uraiden/ledger"
)

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
		ch := e.Channels[w%len(e.Channels)]
		ld.wg.Go(func() { ld.work(ch) })
	}
	t.Cleanup(ld.halt)
	return ld
}

func (ld *payLoad) work(ch *proctest.Channel) {
	for {
		select {
		case <-ld.stop:
			return
		default:
		}
		b, sig := ch.Take(ld.e, price)
		status, hdr, err := ld.e.Check(context.Background(), ld.client, ch, b, &sig)
		switch {
		case err != nil:
			// The service is down or died while answering: this payment's fate is unknown.
			ld.unanswered.Add(1)
			time.Sleep(25 * time.Millisecond) // leave the cores to the restarting service
		case status == http.StatusOK:
			ch.Paid(b)
			ld.ok.Add(1)
		case status == http.StatusPaymentRequired:
			ld.refused.Add(1)
		case status == http.StatusBadGateway || status == http.StatusServiceUnavailable:
			ld.suspended.Add(1)
			time.Sleep(10 * time.Millisecond)
		default:
			ld.mu.Lock()
			ld.unexpected = append(ld.unexpected, fmt.Sprintf("balance %d on %s: HTTP %d %s", b, ch.ID, status, hdr["body"]))
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

// verify compares a ledger, read from disk with no service running, with what the load saw
// (proctest.Channel.Verify). lost counts OK'd payments the ledger does not hold.
func (ld *payLoad) verify(l *ledger.Ledger) (lost int, problems []string) {
	for _, ch := range ld.e.Channels {
		stored, err := l.Channel(ch.ID)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", ch.ID, err))
			continue
		}
		n, p := ch.Verify(stored, price)
		lost += n
		problems = append(problems, p...)
	}
	return lost, problems
}
