package ledger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/uraiden/uraiden/internal/dev/etcdcluster"
	"github.com/uraiden/uraiden/rdn"
)

var (
	bob   = rdn.ChannelID{Sender: common.HexToAddress("0xb0"), OpenBlock: 11}
	carol = rdn.ChannelID{Sender: common.HexToAddress("0xca"), OpenBlock: 12}
)

// leadChainSide makes l the chain side through the election the replicas use, so that its
// keys are under the ledger's prefix as in production.
func leadChainSide(t *testing.T, c *etcdcluster.Cluster, l *Ledger, root string) {
	t.Helper()
	session, err := concurrency.NewSession(etcdClient(t, c), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { session.Close() })
	e := concurrency.NewElection(session, ChainSideElectionPrefix(root, l.Identity()))
	if err := e.Campaign(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := l.SetFence(t.Context(), &Fence{Key: e.Key(), Rev: e.Rev()}); err != nil {
		t.Fatal(err)
	}
}

// fillLedger gives a ledger of either store channels in every state worth keeping: paid,
// closed cooperatively, disputed, unconfirmed; the sync state and undo records come with
// the events.
func fillLedger(t *testing.T, l *Ledger) {
	t.Helper()
	ctx := t.Context()
	create(t, l, alice, 100, 10)
	create(t, l, bob, 50, 12)
	pay(t, l, alice, 40, 40)
	pay(t, l, bob, 20, 20)
	if _, err := l.CloseCooperatively(ctx, bob, big.NewInt(20), rdn.SchemeLegacy, func(rdn.ChannelID, *big.Int, rdn.Scheme) (rdn.Signature, error) { return sig(999), nil }); err != nil {
		t.Fatal(err)
	}
	err := l.Apply(ctx, Update{
		Events: []Event{{Kind: Created, Channel: carol, Block: uint64(carol.OpenBlock), Amount: big.NewInt(70)}},
		Sync:   SyncState{Cursor: 14, CursorHash: "0x14", Confirmed: 12, Recent: []BlockRef{{Number: 14, Hash: "0x14"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	nonce := uint64(7)
	if err := l.SaveDispute(ctx, Dispute{Channel: alice, Balance: "40", CloseAt: "10", SettleBlock: 500, Deadline: 400,
		Status: DisputeSent, Nonce: &nonce, Txs: []DisputeTx{{Hash: "0xaa", GasFeeCap: "2", GasTipCap: "1", Gas: 90000}}}); err != nil {
		t.Fatal(err)
	}
}

// sameLedger checks that b holds what a holds: channels, sync state, disputes, statistics.
func sameLedger(t *testing.T, a, b *Ledger) {
	t.Helper()
	for _, id := range []rdn.ChannelID{alice, bob, carol} {
		ca, err1 := a.Channel(id)
		cb, err2 := b.Channel(id)
		if err1 != nil || err2 != nil || ca == nil || cb == nil || !bytes.Equal(ca.marshal(), cb.marshal()) {
			t.Errorf("channel %s: %+v (%v), restored %+v (%v)", id, ca, err1, cb, err2)
		}
	}
	if !reflect.DeepEqual(a.Sync(), b.Sync()) {
		t.Errorf("sync state %+v, restored %+v", a.Sync(), b.Sync())
	}
	da, _ := a.Disputes()
	db, _ := b.Disputes()
	ja, _ := json.Marshal(da)
	jb, _ := json.Marshal(db)
	if len(da) != 1 || !bytes.Equal(ja, jb) {
		t.Errorf("disputes %s, restored %s", ja, jb)
	}
	if sa, sb := a.Stats(), b.Stats(); !bytes.Equal(sa.marshal(), sb.marshal()) || sa.UniqueSenders != sb.UniqueSenders {
		t.Errorf("stats %s, restored %s", sa.marshal(), sb.marshal())
	}
	if a.NeedsResync() != b.NeedsResync() {
		t.Errorf("needs resync %v, restored %v", a.NeedsResync(), b.NeedsResync())
	}
}

// backupKeys decodes a portable backup's keys.
func backupKeys(t *testing.T, data []byte) []string {
	t.Helper()
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l portableLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.K != nil {
			keys = append(keys, string(l.K))
		}
	}
	return keys
}

func countUnder(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// An etcd ledger backed up while its replica is running restores into another prefix as
// the same ledger; the replicas' slot markers and the chain side's election are left out;
// a backup cut short, altered or restored over a ledger is refused without writing; of two
// restores at once one writes.
func TestEtcdBackupRestore(t *testing.T) {
	c := cluster(t)
	cli := etcdClient(t, c)
	root := "/test/" + t.Name() + "/"
	l := replica(t, c, 0)
	leadChainSide(t, c, l, root)
	fillLedger(t, l)
	prefix := EtcdPrefix(root, testIdentity)
	if countUnder(t, cli, prefix+prefixReplica) == 0 || countUnder(t, cli, prefix+chainSideElection) == 0 {
		t.Fatal("the test needs slot markers and an election key under the prefix")
	}

	var buf bytes.Buffer
	if err := l.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	backup := buf.Bytes()
	if !bytes.HasPrefix(backup, []byte(portableMagic)) {
		t.Fatalf("backup begins %.80s", backup)
	}
	keys := backupKeys(t, backup)
	for _, k := range keys {
		// Spelled out, not the exporter's own list: a replica's slot marker or the chain
		// side's election key in a backup would come back as a ghost replica or leader.
		if strings.HasPrefix(k, "replica/") || strings.HasPrefix(k, "chain-side") {
			t.Errorf("backup holds %q", k)
		}
	}
	for _, want := range []string{"meta/identity", "meta/sync", string(disputeKey(alice)), string(channelKey(carol))} {
		if !strings.Contains(strings.Join(keys, "\n"), want) {
			t.Errorf("backup lacks %q: %q", want, keys)
		}
	}
	// What the ledger's own reader of the cluster sees, less what a backup leaves out.
	if _, n, err := countPortable(t.Context(), cli, prefix, 0, restoreTimeout); err != nil || n != int64(len(keys)) {
		t.Errorf("backup holds %d keys, the prefix %d portable ones (%v)", len(keys), n, err)
	}

	// Refused, and nothing written: cut short inside a line, cut at a line's end, altered.
	lastLine := bytes.LastIndexByte(backup[:len(backup)-1], '\n') + 1
	altered := bytes.Clone(backup)
	altered[lastLine-10] ^= 1 // in the last key's value: still JSON and base64, another value
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"cut in a line": {backup[:len(backup)/2], "cut short"},
		"cut at a line": {backup[:lastLine], "cut short"},
		"altered":       {altered, "checksum"},
		"badger":        {[]byte("\x00\x01badger backup stream"), "not a portable ledger backup"},
	} {
		bad := "/test/" + t.Name() + "-bad/"
		if _, err := RestoreEtcd(t.Context(), cli, bad, bytes.NewReader(tc.data), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: restore: %v, want %q", name, err, tc.want)
		}
		if n := countUnder(t, cli, bad); n != 0 {
			t.Errorf("%s: a refused restore wrote %d keys", name, n)
		}
	}

	root2 := "/test/" + t.Name() + "-restored/"
	// Read through a plain reader: the backup is copied aside to be read twice.
	h, err := RestoreEtcd(t.Context(), cli, root2, bufio.NewReader(bytes.NewReader(backup)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Store != "etcd" || h.Identity != testIdentity || h.Keys != int64(len(keys)) || h.Revision == 0 {
		t.Errorf("header %+v", h)
	}
	if n := countUnder(t, cli, EtcdPrefix(root2, testIdentity)); n != int64(len(keys)) {
		t.Errorf("restored %d keys, the backup holds %d", n, len(keys))
	}
	r, err := OpenEtcd(t.Context(), EtcdOptions{Client: etcdClient(t, c), Prefix: root2, Identity: testIdentity, Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sameLedger(t, l, r)
	// The restored ledger takes payments where the original stood.
	if got := pay(t, r, alice, 40, 40); got.Outcome != Replayed {
		t.Errorf("the last proof again on the restored ledger: %v", got.Outcome)
	}
	if got := pay(t, r, alice, 45, 5); got.Outcome != Accepted {
		t.Errorf("a new proof on the restored ledger: %v", got.Outcome)
	}

	if _, err := RestoreEtcd(t.Context(), cli, root2, bytes.NewReader(backup), nil); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("restore over a ledger: %v", err)
	}

	// Two restores at once into one prefix: one writes the ledger, the other is refused.
	root3 := "/test/" + t.Name() + "-race/"
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = RestoreEtcd(context.Background(), cli, root3, bytes.NewReader(backup), nil) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Errorf("two restores at once: %v, %v", errs[0], errs[1])
	}
	if n := countUnder(t, cli, EtcdPrefix(root3, testIdentity)); n != int64(len(keys)) {
		t.Errorf("after two restores at once the prefix holds %d keys, want %d", n, len(keys))
	}

	// A ledger a restore is writing does not open.
	root4 := "/test/" + t.Name() + "-restoring/"
	if _, err := cli.Put(t.Context(), EtcdPrefix(root4, testIdentity)+string(keyRestoring), "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEtcd(t.Context(), EtcdOptions{Client: cli, Prefix: root4, Identity: testIdentity}); !errors.Is(err, ErrRestoring) {
		t.Errorf("open during a restore: %v", err)
	}
	if _, err := OpenEtcd(t.Context(), EtcdOptions{Client: cli, Prefix: "/test/" + t.Name() + "-none/", Identity: testIdentity, Existing: true}); err == nil || !strings.Contains(err.Error(), "holds no ledger") {
		t.Errorf("open an absent ledger as existing: %v", err)
	}
}

// A Badger ledger exported in the portable format restores onto etcd as the same ledger:
// the way from one store to the other. Badger's own restore refuses the format, saying why.
func TestBadgerExportRestoresOnEtcd(t *testing.T) {
	c := cluster(t)
	b, _ := openTest(t)
	fillLedger(t, b)
	var buf bytes.Buffer
	n, err := b.Export(t.Context(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range backupKeys(t, buf.Bytes()) {
		if strings.HasPrefix(k, string(prefixSender)) || k == string(keyStats) {
			t.Errorf("a portable export holds Badger's counter %q", k)
		}
	}
	if err := Restore(t.TempDir(), bytes.NewReader(buf.Bytes()), nil); err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("Badger restore of a portable backup: %v", err)
	}
	root := "/test/" + t.Name() + "/"
	h, err := RestoreEtcd(t.Context(), etcdClient(t, c), root, bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Store != "badger" || h.Keys != n {
		t.Errorf("header %+v, %d keys exported", h, n)
	}
	e, err := OpenEtcd(t.Context(), EtcdOptions{Client: etcdClient(t, c), Prefix: root, Identity: testIdentity, Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	sameLedger(t, b, e)
}
