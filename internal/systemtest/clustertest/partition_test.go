package clustertest

import (
	"net/http"
	"testing"
	"time"
)

// Three replicas with a 500 ms etcd request timeout; the third reaches the cluster only
// through TCP relays, one per member. The relays are cut: every paid Check the cut-off
// replica answers from then on is a 503 (never OK, never 402, and an answer rather than a
// hang), while the two others go on answering OK on the same channels. Healed, the third
// serves payments again. Every OK is in etcd at the end.
func TestReplicaCutOffFromEtcd(t *testing.T) {
	c := startCluster(t, 2)
	var relays []*relay
	var viaRelays []string
	for _, ep := range c.etcd.Endpoints() {
		r, u := startRelay(t, ep)
		relays = append(relays, r)
		viaRelays = append(viaRelays, u)
	}
	o := replicaOptions{requestTimeout: 500 * time.Millisecond}
	rs := []*replica{c.startReplica(0, o), c.startReplica(1, o)}
	o.endpoints = viaRelays
	rs = append(rs, c.startReplica(2, o))
	for _, r := range rs {
		r.mustReady(t)
	}
	cut := rs[2]
	for _, ch := range c.env.Channels {
		for _, r := range rs {
			c.mustPay(r, ch)
		}
	}

	t.Log("cutting replica 2 off from etcd")
	for _, r := range relays {
		r.setCut(true)
	}
	const rounds = 8
	for i := range rounds {
		ch := c.env.Channels[i%len(c.env.Channels)]
		b, sig := ch.Take(c.env, price)
		status, hdr, err := c.env.Check(t.Context(), cut.client, ch, b, &sig)
		switch {
		case err != nil:
			t.Fatalf("the cut-off replica did not answer a Check of balance %d: %v", b, err)
		case status == http.StatusOK:
			ch.Paid(b)
			t.Errorf("the cut-off replica answered OK to balance %d on %s", b, ch.ID)
		case status != http.StatusServiceUnavailable:
			t.Errorf("the cut-off replica answered %d %s to balance %d, want 503", status, hdr["body"], b)
		}
		// The others keep serving, on the same channel, above the balance the cut-off
		// replica was offered.
		c.mustPay(rs[i%2], ch)
	}
	// Its readiness follows, so that Envoy's health checks take it out of the rotation.
	notReady := false
	for deadline := time.Now().Add(30 * time.Second); !notReady && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		code, _ := cut.get("/readyz")
		notReady = code == http.StatusServiceUnavailable
	}
	if !notReady {
		code, body := cut.get("/readyz")
		t.Errorf("the cut-off replica's /readyz answers %d %s", code, body)
	}

	t.Log("healing the relays")
	for _, r := range relays {
		r.setCut(false)
	}
	ch := c.env.Channels[0]
	resumed := false
	for deadline := time.Now().Add(60 * time.Second); !resumed && time.Now().Before(deadline); {
		b, sig := ch.Take(c.env, price)
		status, _, err := c.env.Check(t.Context(), cut.client, ch, b, &sig)
		if err == nil && status == http.StatusOK {
			ch.Paid(b)
			resumed = true
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !resumed {
		t.Errorf("replica 2 serves no payment once it reaches etcd again\n%s", logs(rs))
	}
	if code, body := cut.get("/readyz"); code != http.StatusOK {
		t.Errorf("replica 2 is not ready once it reaches etcd again: %d %s", code, body)
	}
	c.verifyLedger(rs)
	if t.Failed() {
		t.Log(logs(rs))
	}
}
