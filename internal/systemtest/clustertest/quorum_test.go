package clustertest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/uraiden/uraiden/internal/testkit/proctest"
)

// The phases of TestMembersAndReplicaLostUnderPaidLoad.
const (
	warm          phase = iota + 1
	leaderStopped       // etcd's leader member closed
	replicaKilled       // and a uraiden replica SIGKILLed
	noQuorum            // and a second member closed: one of three left
	restored            // the second member started again
)

// progress is how many proofs started in a phase must be answered OK before the test moves
// on: the faults then land under load, and each phase shows payments served.
const progress = 60

// Three replicas take paid load, copies of proofs included, on a three-member etcd cluster.
// The etcd leader is closed, then the replica running the chain side is SIGKILLed, then a
// second member is closed; then that member is started again. Payments go on after each of
// the first two faults; without a quorum every Check is answered 503, never OK and never
// 402; with the quorum back payments resume. At the end every OK is in etcd, charged, and no
// proof was answered OK twice.
func TestMembersAndReplicaLostUnderPaidLoad(t *testing.T) {
	c := startCluster(t, 4)
	rs := c.startReplicas(3, replicaOptions{requestTimeout: time.Second})
	ld := startLoad(t, c, rs, 12)

	waitOKs := func(p phase, n int) {
		t.Helper()
		proctest.WaitFor(t, "payments answered OK", 90*time.Second, func() bool { return ld.oksStartedIn(p) >= n })
	}
	ld.setPhase(warm)
	waitOKs(warm, progress)
	for _, r := range rs {
		if r.oks.Load() == 0 {
			t.Errorf("replica %d answered no payment OK", r.i)
		}
	}

	leader := c.etcd.Leader()
	if leader < 0 {
		t.Fatal("the etcd cluster has no leader")
	}
	t.Logf("closing etcd member %d, the leader", leader)
	c.etcd.Stop(leader)
	ld.setPhase(leaderStopped)
	waitOKs(leaderStopped, progress)

	side := c.waitChainSide(rs)
	t.Logf("SIGKILL replica %d (pid %d), which runs the chain side", side.i, side.proc.Pid())
	side.kill()
	ld.setPhase(replicaKilled)
	waitOKs(replicaKilled, progress)

	second := -1
	for i := range c.etcd.Members() {
		if i != leader {
			second = i
			break
		}
	}
	t.Logf("closing etcd member %d: one member of three left", second)
	c.etcd.Stop(second)
	ld.setPhase(noQuorum)
	// Every Check sent and answered without a quorum is a 503. Wait for enough of them to
	// mean something.
	proctest.WaitFor(t, "Checks answered without a quorum", 90*time.Second, func() bool {
		n := 0
		for _, k := range ld.answeredWithin(noQuorum) {
			n += k
		}
		return n >= 30
	})
	without := ld.answeredWithin(noQuorum)

	// The phase moves on before the member is back: a payment written while the quorum was
	// away may then be acknowledged, rightly.
	ld.setPhase(restored)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := c.etcd.Restart(ctx, second); err != nil {
		t.Fatalf("restart etcd member %d: %v", second, err)
	}
	t.Logf("etcd member %d restarted", second)
	waitOKs(restored, progress)
	ld.halt()

	t.Logf("answers: %s", ld.summary())
	for status, n := range without {
		if status != http.StatusServiceUnavailable {
			t.Errorf("without a quorum, %d Checks were answered %d (0: no answer), want 503", n, status)
		}
	}
	for _, msg := range ld.twice {
		t.Errorf("a proof accepted twice: %s", msg)
	}
	if ld.copiesOK.Load() == 0 {
		t.Log("no copy of a proof was answered OK: every copy lost its race")
	}
	c.verifyLedger(rs)
	for _, r := range rs {
		if !r.down.Load() && r.proc.Exited() {
			t.Errorf("replica %d exited by itself (%v):\n%s", r.i, r.proc.Err(), proctest.Tail(r.proc.Output(), 30))
		}
	}
	if t.Failed() {
		t.Log(logs(rs))
	}
}
