package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/uraiden/uraiden/internal/testkit/proctest"
	"github.com/uraiden/uraiden/rdn"
)

// phase is the stage of a test's fault schedule a Check started in; the rules for its
// answer depend on it.
type phase int32

// noPhase is what a load without a schedule runs in.
const noPhase phase = 0

// sendKey names one proof: a channel and a balance on it.
type sendKey struct {
	ch      rdn.ChannelID
	balance int64
}

// answer is how a Check was answered: an HTTP status, or 0 for a gRPC error.
type answer struct {
	started, answered phase
	status            int
	copy              bool // the second send of a proof, to another replica
}

// payLoad is workers paying on the cluster's channels through every live replica in turn,
// several per channel so that proofs of one channel are in flight together and arrive out of
// order at different replicas. Every copyEvery-th proof is also sent, at the same moment, to
// a second replica: a replay of a captured proof, of which at most one may be answered OK.
// Each proof is otherwise sent once: after any answer, or none, a worker moves on to the
// next balance, which covers the price whether or not the unanswered one was stored.
type payLoad struct {
	c        *cluster
	replicas []*replica
	phase    atomic.Int32
	next     atomic.Uint64
	stop     chan struct{}
	wg       sync.WaitGroup

	ok, copiesOK atomic.Int64

	mu       sync.Mutex
	oks      map[sendKey]int // OKs per proof
	answers  map[answer]int
	twice    []string // proofs answered OK more than once
	okStarts map[phase]int
	samples  map[int]string // a denial's body per status, for the summary
}

const copyEvery = 4

func startLoad(t *testing.T, c *cluster, rs []*replica, workers int) *payLoad {
	ld := &payLoad{c: c, replicas: rs, stop: make(chan struct{}),
		oks: map[sendKey]int{}, answers: map[answer]int{}, okStarts: map[phase]int{},
		samples: map[int]string{}}
	for w := range workers {
		ch := c.env.Channels[w%len(c.env.Channels)]
		ld.wg.Go(func() { ld.work(ch) })
	}
	t.Cleanup(ld.halt)
	return ld
}

// pick is the next live replica after skip (-1: none skipped) in round-robin order.
func (ld *payLoad) pick(skip int) *replica {
	for range 2 * len(ld.replicas) {
		r := ld.replicas[ld.next.Add(1)%uint64(len(ld.replicas))]
		if r.i != skip && !r.down.Load() {
			return r
		}
	}
	return nil
}

func (ld *payLoad) work(ch *proctest.Channel) {
	for n := 0; ; n++ {
		select {
		case <-ld.stop:
			return
		default:
		}
		b, sig := ch.Take(ld.c.env, price)
		r := ld.pick(-1)
		if r == nil {
			return
		}
		var copyTo *replica
		if n%copyEvery == copyEvery-1 {
			copyTo = ld.pick(r.i)
		}
		var wg sync.WaitGroup
		if copyTo != nil {
			wg.Go(func() { ld.send(copyTo, ch, b, sig, true) })
		}
		ld.send(r, ch, b, sig, false)
		wg.Wait()
	}
}

// send sends one proof to r and records its answer.
func (ld *payLoad) send(r *replica, ch *proctest.Channel, b int64, sig rdn.Signature, copy bool) {
	started := phase(ld.phase.Load())
	status, hdr, err := ld.c.env.Check(context.Background(), r.client, ch, b, &sig)
	a := answer{started: started, answered: phase(ld.phase.Load()), status: status, copy: copy}
	if err != nil {
		a.status = 0
	}
	ld.mu.Lock()
	defer ld.mu.Unlock()
	ld.answers[a]++
	if _, seen := ld.samples[a.status]; !seen && a.status != http.StatusOK {
		if err != nil {
			ld.samples[a.status] = err.Error()
		} else {
			ld.samples[a.status] = hdr["body"]
		}
	}
	if status != http.StatusOK || err != nil {
		return
	}
	r.oks.Add(1)
	key := sendKey{ch.ID, b}
	ld.oks[key]++
	if ld.oks[key] > 1 {
		ld.twice = append(ld.twice, fmt.Sprintf("%s balance %d answered OK %d times (the last by replica %d)", ch.ID, b, ld.oks[key], r.i))
		return
	}
	ch.Paid(b)
	ld.ok.Add(1)
	if copy {
		ld.copiesOK.Add(1)
	}
	ld.okStarts[started]++
}

// setPhase starts a new phase: Checks sent from now on count as started in it.
func (ld *payLoad) setPhase(p phase) { ld.phase.Store(int32(p)) }

// oksStartedIn is how many proofs started in phase p were answered OK.
func (ld *payLoad) oksStartedIn(p phase) int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.okStarts[p]
}

// answered returns how many Checks started and answered within phase p, by status.
func (ld *payLoad) answeredWithin(p phase) map[int]int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	out := map[int]int{}
	for a, n := range ld.answers {
		if a.started == p && a.answered == p {
			out[a.status] += n
		}
	}
	return out
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

// summary is the answers counted so far, by the phase they started in.
func (ld *payLoad) summary() string {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	byPhase := map[phase]map[int]int{}
	for a, n := range ld.answers {
		if byPhase[a.started] == nil {
			byPhase[a.started] = map[int]int{}
		}
		byPhase[a.started][a.status] += n
	}
	return fmt.Sprintf("%d OK (%d of them copies); answers by phase started (status 0: no answer): %v; a denial of each status: %v",
		ld.ok.Load(), ld.copiesOK.Load(), byPhase, ld.samples)
}
