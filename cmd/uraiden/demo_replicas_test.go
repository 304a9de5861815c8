package main

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// `uraiden demo --replicas 3` pays across three replicas on a real three-member etcd
// cluster through the loss of the chain side's replica and of the etcd leader, and its
// tally holds: every remaining replica charged, the chain settled and the receiver gained
// exactly the prices of the requests served.
func TestReplicatedDemoCommand(t *testing.T) {
	t.Chdir(repoRoot)
	out, err := run(t.Context(), "demo", "--replicas", "3")
	if err != nil {
		t.Fatalf("demo --replicas 3: %v\n%s", err, out)
	}
	for _, want := range []string{"took the chain side over", "stopping etcd member", "tally OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Before the first stop, every replica answered Checks.
	if m := regexp.MustCompile(`so far, Checks answered by r0 (\d+), r1 (\d+), r2 (\d+)`).FindStringSubmatch(out); m == nil {
		t.Errorf("no per-replica counts:\n%s", out)
	} else {
		for _, n := range m[1:] {
			if n == "0" {
				t.Errorf("a replica answered no Check: %s", m[0])
			}
		}
	}
	m := regexp.MustCompile(`requests served\s+(\d+), their prices sum to (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no tally:\n%s", out)
	}
	served, _ := strconv.Atoi(m[1])
	sum := m[2]
	const price = 5_000_000_000_000_000 // /echofix/ costs 0.005 token (prices.yaml)
	// Beyond int64 after 1,844 requests.
	if want := new(big.Int).Mul(big.NewInt(price), big.NewInt(int64(served))); served < 3*demoActBatch || sum != want.String() {
		t.Errorf("%d served for %s, want at least %d at %d each", served, sum, 3*demoActBatch, price)
	}
	charged := regexp.MustCompile(`charged in r\d's ledger\s+(\d+) \(its stats: (\d+) charged, then (\d+) settled\)`).FindAllStringSubmatch(out, -1)
	if len(charged) != 2 {
		t.Errorf("%d replicas in the tally, want the 2 left running:\n%s", len(charged), out)
	}
	for _, c := range charged {
		if c[1] != sum || c[2] != sum || c[3] != sum {
			t.Errorf("%q, want %s each", c[0], sum)
		}
	}
	for _, line := range []string{
		"client signed for               " + sum,
		"channel settled on chain at     " + sum,
		"receiver's tokens on chain      +" + sum,
		"sender's tokens on chain        -" + sum,
		"requests failed                 0",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("tally lacks %q:\n%s", line, out)
		}
	}
}
