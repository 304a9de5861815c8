package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/dev/etcdcluster"
	"github.com/uraiden/uraiden/internal/gateway"
	"github.com/uraiden/uraiden/internal/server"
	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/rdn"
)

// Three uraiden replicas on one dev chain share a ledger on a real three-member etcd cluster.
// A client pays through a gateway that spreads its Checks over them; one replica runs the
// chain side. That replica is closed mid-run: another takes the chain side over, the
// payments go on, and the ledger charged exactly what the client spent.
func TestReplicasShareAnEtcdLedger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster, err := etcdcluster.Start(ctx, etcdcluster.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	chain := servertest.DevChain(t, 3)
	var replicas []*server.Server
	var checkers []gateway.Checker
	for range 3 {
		cfg := servertest.Config(t, "../../prices.yaml")
		cfg.Ledger.Backend = config.BackendEtcd
		cfg.Ledger.Etcd.Endpoints = cluster.Endpoints()
		srv := servertest.Start(t, cfg, chain)
		replicas = append(replicas, srv)
		checkers = append(checkers, gateway.GRPCChecker(servertest.AuthzClient(t, srv)))
	}
	rr := gateway.NewRoundRobin(checkers...)
	leader := func() int {
		found := -1
		for i, r := range replicas {
			if !rr.Down(i) && r.RunsChainSide() {
				if found >= 0 {
					t.Fatalf("replicas %d and %d both run the chain side", found, i)
				}
				found = i
			}
		}
		return found
	}
	waitLeader := func() int {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if i := leader(); i >= 0 {
				return i
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("no replica runs the chain side")
		return -1
	}
	first := waitLeader()
	// Every replica is ready, the followers too: Envoy's health checks keep them all in
	// the rotation.
	for i, r := range replicas {
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + r.Admin.Addr() + "/readyz")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("%s %s", resp.Status, body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d (chain side: %v) is not ready: %v", i, r.RunsChainSide(), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	g, err := gateway.Start(gateway.Config{Listen: "127.0.0.1:0", Authz: rr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	payer := chain.Accounts()[2]
	c, err := client.New(ctx, client.Config{Node: chain.Client(), Key: payer.Key, Contract: chain.Deployment().Channels})
	if err != nil {
		t.Fatal(err)
	}
	rt := c.Transport(client.TransportConfig{})
	get := func(path string) {
		t.Helper()
		resp, err := (&http.Client{Transport: rt}).Get(g.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	// prices.yaml charges 0.001 token (10^15 base units) per character of an /echodyn/ path.
	const milli = 1_000_000_000_000_000
	for range 9 {
		get("/echodyn/abcd") // 0.004 token each, over every replica in turn
	}

	// The chain side's replica goes away; another must take over, and payments go on.
	rr.SetDown(first, true)
	replicas[first].Close()
	second := waitLeader()
	if second == first {
		t.Fatal("the closed replica still runs the chain side")
	}
	for range 6 {
		get("/echodyn/xy") // 0.002 token each
	}

	want := int64(9*4+6*2) * milli
	if rt.Spent().Int64() != want {
		t.Fatalf("the client spent %s, want %d", rt.Spent(), want)
	}
	chs, err := c.Channels(ctx, nil)
	if err != nil || len(chs) != 1 {
		t.Fatalf("channels %v, %v", chs, err)
	}
	id := rdn.ChannelID{Sender: crypto.PubkeyToAddress(payer.Key.PublicKey), OpenBlock: chs[0].OpenBlock}
	// Each replica learns of the others' payments through its Watch: the last may still be
	// on its way.
	for i, r := range replicas {
		if i == first {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			ch, err := r.Ledger.Channel(id)
			if err == nil && ch != nil && ch.Charged.Int64() == want {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("replica %d: channel %+v, %v; want %d charged", i, ch, err, want)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
