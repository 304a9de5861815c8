package etcdcluster

import (
	"context"
	"testing"
	"time"
)

// TestLeaderLossKeepsWrites puts a key, stops the leader, and reads the key from the two
// members left, which elect a new leader; then it stops a second member, and a write must
// fail for want of a quorum.
func TestLeaderLossKeepsWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cli, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	leader := c.Leader()
	if leader < 0 {
		t.Fatal("no leader after Start")
	}
	c.Stop(leader)
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after the leader stopped: %v, %v", resp, err)
	}
	if c.Leader() < 0 || c.Leader() == leader {
		t.Fatalf("leader %d after stopping %d", c.Leader(), leader)
	}
	c.Stop(c.Leader())
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if _, err := cli.Put(short, "k", "w"); err == nil {
		t.Fatal("a write succeeded on one member of three")
	}
	if err := c.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "k", "x"); err != nil {
		t.Fatalf("with a quorum again: %v", err)
	}
}
