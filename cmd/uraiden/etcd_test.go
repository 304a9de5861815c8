package main

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/uraiden/uraiden/internal/dev/etcdcluster"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// cliChannel is the channel the etcd command tests pay on.
var cliChannel = rdn.ChannelID{Sender: common.HexToAddress("0xa1"), OpenBlock: 10}

// fundLedger opens cliChannel in l and pays it up to 40.
func fundLedger(t *testing.T, l *ledger.Ledger) {
	t.Helper()
	err := l.Apply(t.Context(), ledger.Update{
		Events: []ledger.Event{{Kind: ledger.Created, Channel: cliChannel, Block: 10, Amount: big.NewInt(100)}},
		Sync:   ledger.SyncState{Cursor: 10, Confirmed: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	var sig rdn.Signature
	sig[0], sig[64] = 1, 27
	r, err := l.Pay(t.Context(), ledger.Payment{ID: cliChannel, Balance: big.NewInt(40), Signature: sig, Price: big.NewInt(40)})
	if err != nil || r.Outcome != ledger.Accepted {
		t.Fatalf("pay: %v %v", r.Outcome, err)
	}
}

// balanceOf reads cliChannel's balance in an etcd ledger.
func balanceOf(t *testing.T, cli *clientv3.Client, root string, id ledger.Identity) (int64, bool) {
	t.Helper()
	l, err := ledger.OpenEtcd(t.Context(), ledger.EtcdOptions{Client: cli, Prefix: root, Identity: id, Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := l.Channel(cliChannel)
	if err != nil || c == nil {
		t.Fatalf("channel: %v %v", c, err)
	}
	return c.Balance.Int64(), l.NeedsResync()
}

// backup, restore and resync with ledger.backend: etcd, on a real three-member cluster: a
// backup taken beside a running replica restores into another prefix as the same ledger, a
// second restore over it is refused; resync refuses while a replica holds the chain side and
// marks the ledger once none does; a Badger ledger backed up in the portable format moves
// onto etcd, and Badger's restore refuses that format.
func TestEtcdLedgerCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := etcdcluster.Start(ctx, etcdcluster.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cli, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	key, _ := crypto.GenerateKey()
	keyFile := filepath.Join(t.TempDir(), "receiver.key")
	if err := os.WriteFile(keyFile, []byte(common.Bytes2Hex(crypto.FromECDSA(key))), 0o600); err != nil {
		t.Fatal(err)
	}
	id := ledger.Identity{ChainID: 4242, Contract: common.HexToAddress("0xc0ffee"), Receiver: crypto.PubkeyToAddress(key.PublicKey)}
	t.Setenv("URAIDEN_CHAIN_CHAIN_ID", strconv.FormatUint(id.ChainID, 10))
	t.Setenv("URAIDEN_CHAIN_CONTRACT_ADDRESS", id.Contract.Hex())
	t.Setenv("URAIDEN_RECEIVER_KEY_FILE", keyFile)

	// Badger → etcd: the portable format, before the etcd settings are in the environment
	// (endpoints with backend badger are an error).
	dir := t.TempDir()
	b, err := ledger.Open(ledger.Options{Dir: dir, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	fundLedger(t, b)
	b.Close()
	t.Setenv("URAIDEN_LEDGER_DIR", dir)
	portable := filepath.Join(t.TempDir(), "badger.portable")
	if o, err := run(ctx, "backup", "--format", "portable", "--out", portable); err != nil || !strings.Contains(o, "portable format") {
		t.Fatalf("backup --format portable: %v\n%s", err, o)
	}
	t.Setenv("URAIDEN_LEDGER_DIR", t.TempDir())
	if o, err := run(ctx, "restore", "--in", portable); err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("Badger restore of a portable backup: %v\n%s", err, o)
	}

	t.Setenv("URAIDEN_LEDGER_BACKEND", "etcd")
	t.Setenv("URAIDEN_LEDGER_ETCD_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	t.Setenv("URAIDEN_LEDGER_ETCD_PREFIX", "/migrated/")
	if o, err := run(ctx, "restore", "--in", portable); err != nil || !strings.Contains(o, "backed up from badger") {
		t.Fatalf("restore of a Badger ledger onto etcd: %v\n%s", err, o)
	}
	if bal, _ := balanceOf(t, cli, "/migrated/", id); bal != 40 {
		t.Errorf("migrated balance %d", bal)
	}

	// A replica of the etcd ledger, running the chain side.
	root := "/live/"
	t.Setenv("URAIDEN_LEDGER_ETCD_PREFIX", root)
	if o, err := run(ctx, "backup", "--out", filepath.Join(t.TempDir(), "none.bak")); err == nil || !strings.Contains(err.Error(), "holds no ledger") {
		t.Errorf("backup of an absent ledger: %v\n%s", err, o)
	}
	l, err := ledger.OpenEtcd(ctx, ledger.EtcdOptions{Client: cli, Prefix: root, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	session, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	election := concurrency.NewElection(session, ledger.ChainSideElectionPrefix(root, id))
	if err := election.Campaign(ctx, "replica-one"); err != nil {
		t.Fatal(err)
	}
	if err := l.SetFence(ctx, &ledger.Fence{Key: election.Key(), Rev: election.Rev()}); err != nil {
		t.Fatal(err)
	}
	fundLedger(t, l)

	backup := filepath.Join(t.TempDir(), "etcd.bak")
	if o, err := run(ctx, "backup", "--out", backup); err != nil || !strings.Contains(o, "chain 4242") {
		t.Fatalf("backup beside a running replica: %v\n%s", err, o)
	}
	if o, err := run(ctx, "backup", "--format", "badger", "--out", backup+"2"); err == nil {
		t.Errorf("an etcd ledger in Badger's format: %s", o)
	}
	o, err := run(ctx, "resync")
	if err == nil || !strings.Contains(err.Error(), "a running replica holds the chain side") || !strings.Contains(err.Error(), "replica-one") {
		t.Errorf("resync while a replica runs the chain side: %v\n%s", err, o)
	}
	if l.NeedsResync() {
		t.Error("a refused resync marked the ledger")
	}
	// The replica steps down (its lease ends): the command takes the chain side, writes.
	l.SetFence(ctx, nil)
	session.Close()
	if o, err := run(ctx, "resync"); err != nil || !strings.Contains(o, "from the contract again") {
		t.Fatalf("resync: %v\n%s", err, o)
	}
	for deadline := time.Now().Add(20 * time.Second); !l.NeedsResync(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not see the resync mark")
		}
	}

	// Restored into another prefix: the same ledger, as it was before the resync.
	t.Setenv("URAIDEN_LEDGER_ETCD_PREFIX", "/restored/")
	if o, err := run(ctx, "restore", "--in", backup); err != nil || !strings.Contains(o, "into etcd /restored/4242/") {
		t.Fatalf("restore: %v\n%s", err, o)
	}
	if bal, resync := balanceOf(t, cli, "/restored/", id); bal != 40 || resync {
		t.Errorf("restored: balance %d, needs resync %v", bal, resync)
	}
	if o, err := run(ctx, "restore", "--in", backup); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("restore over a ledger: %v\n%s", err, o)
	}
}
