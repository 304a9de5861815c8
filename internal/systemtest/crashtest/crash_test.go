package crashtest

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/uraiden/uraiden/internal/testkit/proctest"
)

// crashKills is how many times TestKillUnderPaidLoad kills the service while it answers
// paid load; URAIDEN_CRASH_KILLS raises it for a longer run.
func crashKills(t *testing.T) int {
	kills := 20
	if v := os.Getenv("URAIDEN_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("URAIDEN_CRASH_KILLS=%q: want a positive number", v)
		}
		kills = n
	}
	return kills
}

// `uraiden serve` is killed with SIGKILL at random moments while many paid Checks on several
// channels are in flight, and started again on the same ledger directory, at least 20 times.
// After every kill the ledger, read from disk, opens, holds every payment that was answered
// OK and no balance that was not signed and sent; after every restart the service becomes
// ready. Some kills hit the start-up itself (the ledger replaying its log, the first chain
// sync).
func TestKillUnderPaidLoad(t *testing.T) {
	kills := crashKills(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("seed %d", seed)

	e := startEnv(t, 4)
	s := newService(t, e, serviceOptions{})
	ld := startLoad(t, e, s.authzClient(t), 16)

	lost, startupKills := 0, 0
	var problems []string
	checkLedger := func(when string) {
		t.Helper()
		l, err := s.openLedger()
		if err != nil {
			t.Fatalf("%s: the ledger does not open: %v\nservice log:\n%s", when, err, s.lastOutput())
		}
		n, p := ld.verify(l)
		if err := l.Close(); err != nil {
			t.Fatalf("%s: closing the ledger: %v", when, err)
		}
		lost = max(lost, n) // the ledger only grows: a payment lost once is lost at every later check
		for _, msg := range p {
			problems = append(problems, when+": "+msg)
		}
	}
	for i := range kills {
		p := s.start()
		if i%5 == 2 {
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			p.Kill()
			startupKills++
			checkLedger("kill during start-up " + strconv.Itoa(startupKills))
			p = s.start()
		}
		p.mustReady()
		// Kill only once this run has answered a payment: the kill then lands under load.
		before := ld.ok.Load()
		proctest.WaitFor(t, "a payment answered OK", 30*time.Second, func() bool { return ld.ok.Load() > before || p.Exited() })
		time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
		if p.Exited() {
			t.Fatalf("uraiden serve exited by itself (%v):\n%s", p.Err(), p.Output())
		}
		p.Kill()
		checkLedger("kill " + strconv.Itoa(i+1))
	}

	// A last run: ready again, takes payments, and stops cleanly on SIGTERM.
	p := s.start()
	p.mustReady()
	before := ld.ok.Load()
	proctest.WaitFor(t, "a payment answered OK", 30*time.Second, func() bool { return ld.ok.Load() > before })
	ld.halt()
	if err := p.Stop(); err != nil {
		t.Errorf("uraiden serve did not stop cleanly on SIGTERM: %v\n%s", err, p.Output())
	}
	checkLedger("after the last run")

	for i, msg := range problems {
		if i == 20 {
			t.Errorf("… and %d more problems", len(problems)-i)
			break
		}
		t.Error(msg)
	}
	for _, msg := range ld.unexpected {
		t.Errorf("unexpected answer: %s", msg)
	}
	if ld.ok.Load() == 0 {
		t.Error("no payment was answered OK")
	}
	t.Logf("crash test: %d kills survived (%d under paid load, %d during start-up), %d payments OK'd, %d lost; answers: %s",
		kills+startupKills, kills, startupKills, ld.ok.Load(), lost, ld.summary())
}
