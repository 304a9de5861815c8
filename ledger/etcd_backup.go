package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The portable backup is a ledger's records in a form both stores read, so that an etcd
// ledger can be backed up and restored, and a Badger ledger moved onto etcd. It is text, one
// JSON object a line:
//
//	{"format":"uraiden-ledger","version":1,"store":"etcd","identity":{…},"revision":812,"keys":3,"created":"…"}
//	{"k":"<base64 key>","v":"<base64 value>"}            one per key, in key order
//	{"end":true,"keys":3,"sha256":"<hex>"}
//
// Keys are relative to the ledger's own prefix (etcd's <root><chain id>/<contract>/<receiver>/,
// nothing in Badger). The last line counts the keys and holds the SHA-256 of every byte
// before it, so that a file cut short or altered is refused before anything is written.
// "revision" is the etcd revision every key was read at (0 from Badger).
//
// Left out are what each store derives or keeps for its own running: etcd's per-replica
// slot markers and the chain side's election keys, Badger's counters and per-sender counts
// (etcd counts from the channels; Badger does not read this format), and a restore's marker.

// PortableFormat and PortableVersion name the portable backup's format in its first line.
const (
	PortableFormat  = "uraiden-ledger"
	PortableVersion = 1
)

// portableMagic is how a portable backup begins: its header's first field.
const portableMagic = `{"format":"` + PortableFormat + `"`

// chainSideElection is where, under a ledger's etcd prefix, the replicas elect the one that
// runs the chain side.
const chainSideElection = "chain-side"

// ChainSideElectionPrefix is the etcd election of the chain side of the ledger of id under
// root: the replicas campaign in it, and so does a command that makes chain-side writes.
func ChainSideElectionPrefix(root string, id Identity) string {
	return EtcdPrefix(root, id) + chainSideElection
}

// keyRestoring marks a prefix a restore is writing into: the ledger cannot be opened there
// (see claim) until the restore's last transaction writes the identity and removes it.
var keyRestoring = []byte("meta/restoring")

// nonPortable are the key prefixes a portable backup leaves out.
var nonPortable = [][]byte{[]byte(prefixReplica), []byte(chainSideElection), prefixSender, keyStats, keyRestoring}

func portableKey(key []byte) bool {
	for _, p := range nonPortable {
		if bytes.HasPrefix(key, p) {
			return false
		}
	}
	return true
}

// ErrRestoring refuses to open an etcd ledger a restore is writing, or a restore cut short.
var ErrRestoring = errors.New("ledger: a restore into this prefix is under way or was cut short")

// PortableHeader is the first line of a portable backup.
type PortableHeader struct {
	Format   string    `json:"format"`
	Version  int       `json:"version"`
	Store    string    `json:"store"` // where it was exported from: "etcd" or "badger"
	Identity Identity  `json:"identity"`
	Revision int64     `json:"revision,omitempty"`
	Keys     int64     `json:"keys"`
	Created  time.Time `json:"created"`
}

type portableRecord struct {
	K []byte `json:"k"`
	V []byte `json:"v"`
}

// portableLine is any line of a portable backup but the first.
type portableLine struct {
	K      []byte `json:"k"`
	V      []byte `json:"v"`
	End    bool   `json:"end"`
	Keys   int64  `json:"keys"`
	SHA256 string `json:"sha256"`
}

// Export writes the ledger in the portable format to w: on etcd every key at one revision,
// whatever the replicas write meanwhile; on Badger the ledger must not be written during the
// export (the commands hold its directory), or the export fails. It returns the number of
// keys written.
func (l *Ledger) Export(ctx context.Context, w io.Writer) (int64, error) {
	if l.etcd != nil {
		return l.etcd.export(ctx, l.id, w)
	}
	var count int64
	err := l.store.scan(ctx, nil, nil, 0, func(key, _ []byte) (bool, error) {
		if portableKey(key) {
			count++
		}
		return true, nil
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: export: %w", err)
	}
	return writePortable(w, PortableHeader{Store: "badger", Identity: l.id, Keys: count}, func(fn func(key, value []byte) (bool, error)) error {
		return l.store.scan(ctx, nil, nil, 256, fn)
	})
}

// ExportEtcd writes the etcd ledger of id under root in the portable format, without
// opening it: a backup needs no watch of the replicas nor a count of the channels. The
// ledger must exist.
func ExportEtcd(ctx context.Context, cli *clientv3.Client, root string, id Identity, w io.Writer) (int64, error) {
	s := &etcdStore{cli: cli, prefix: EtcdPrefix(root, id), timeout: restoreTimeout}
	v, _, err := s.get(ctx, keyIdentity)
	if err != nil {
		return 0, fmt.Errorf("ledger: export %s: %w", s.prefix, err)
	}
	if v == nil {
		return 0, fmt.Errorf("ledger: export: etcd %s holds no ledger", s.prefix)
	}
	var stored Identity
	if err := json.Unmarshal(v, &stored); err != nil || stored != id {
		return 0, fmt.Errorf("%w: %s holds %s", ErrWrongLedger, s.prefix, v)
	}
	return s.export(ctx, id, w)
}

func (s *etcdStore) export(ctx context.Context, id Identity, w io.Writer) (int64, error) {
	rev, count, err := countPortable(ctx, s.cli, s.prefix, 0, s.timeout)
	if err != nil {
		return 0, fmt.Errorf("ledger: export %s: %w", s.prefix, err)
	}
	return writePortable(w, PortableHeader{Store: "etcd", Identity: id, Revision: rev, Keys: count}, func(fn func(key, value []byte) (bool, error)) error {
		_, err := s.scanAt(ctx, rev, nil, nil, fn)
		return err
	})
}

// countPortable counts the portable keys under prefix at rev (0: now), without reading
// them; it returns the revision counted at.
func countPortable(ctx context.Context, cli *clientv3.Client, prefix string, rev int64, timeout time.Duration) (int64, int64, error) {
	count := func(p string) (int64, error) {
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		resp, err := cli.Get(rctx, p, opts...)
		if err != nil {
			return 0, err
		}
		rev = resp.Header.Revision
		return resp.Count, nil
	}
	total, err := count(prefix)
	if err != nil {
		return 0, 0, fmt.Errorf("count the keys: %w", err)
	}
	for _, p := range nonPortable {
		n, err := count(prefix + string(p))
		if err != nil {
			return 0, 0, fmt.Errorf("count the keys: %w", err)
		}
		total -= n
	}
	return rev, total, nil
}

// writePortable writes the header, the portable keys scan gives, and the last line.
func writePortable(w io.Writer, h PortableHeader, scan func(fn func(key, value []byte) (bool, error)) error) (int64, error) {
	h.Format, h.Version, h.Created = PortableFormat, PortableVersion, time.Now().UTC()
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 64<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(h); err != nil {
		return 0, fmt.Errorf("ledger: export: %w", err)
	}
	var n int64
	err := scan(func(key, value []byte) (bool, error) {
		if !portableKey(key) {
			return true, nil
		}
		n++
		return true, enc.Encode(portableRecord{K: key, V: value})
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: export: %w", err)
	}
	if n != h.Keys {
		return 0, fmt.Errorf("ledger: export: %d keys counted, %d read: the ledger changed during the export", h.Keys, n)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("ledger: export: %w", err)
	}
	end, _ := json.Marshal(portableLine{End: true, Keys: n, SHA256: hex.EncodeToString(sum.Sum(nil))})
	if _, err := w.Write(append(end, '\n')); err != nil {
		return 0, fmt.Errorf("ledger: export: %w", err)
	}
	return n, nil
}

// readPortable reads a portable backup, calling fn for each key, and checks that it is
// whole: the header's format, the keys in strictly increasing order, the identity record
// the header's, and the last line's count and checksum. fn sees every key before the
// checksum is known: run it over a backup that passed once with fn nil.
func readPortable(r io.Reader, fn func(key, value []byte) error) (PortableHeader, error) {
	var h PortableHeader
	br := bufio.NewReaderSize(r, 64<<10)
	sum := sha256.New()
	first, err := readLine(br)
	if err != nil {
		return h, fmt.Errorf("not a portable ledger backup: %w", err)
	}
	if err := json.Unmarshal(first[:len(first)-1], &h); err != nil || h.Format != PortableFormat {
		return h, errors.New("not a portable ledger backup (its first line does not name the format " + PortableFormat + ")")
	}
	if h.Version != PortableVersion {
		return h, fmt.Errorf("a portable ledger backup of version %d; this uraiden reads version %d", h.Version, PortableVersion)
	}
	sum.Write(first)
	var n int64
	var last []byte
	sawIdentity := false
	for {
		line, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return h, fmt.Errorf("the backup is cut short: it ends after %d of %d keys, without its last line", n, h.Keys)
		}
		if err != nil {
			return h, err
		}
		var l portableLine
		if err := json.Unmarshal(line[:len(line)-1], &l); err != nil {
			return h, fmt.Errorf("the backup is damaged after %d keys: %v", n, err)
		}
		if l.End {
			want := hex.EncodeToString(sum.Sum(nil)) // of every line before this one
			switch {
			case l.SHA256 != want:
				return h, errors.New("the backup is damaged: its checksum does not match its contents")
			case l.Keys != n || n != h.Keys:
				return h, fmt.Errorf("the backup is damaged: it holds %d keys, its first line says %d and its last %d", n, h.Keys, l.Keys)
			case !sawIdentity:
				return h, errors.New("the backup holds no identity record")
			}
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				return h, errors.New("the backup goes on after its last line")
			}
			return h, nil
		}
		switch {
		case len(l.K) == 0:
			return h, fmt.Errorf("the backup is damaged after %d keys: a line without a key", n)
		case last != nil && bytes.Compare(l.K, last) <= 0:
			return h, fmt.Errorf("the backup is damaged after %d keys: keys out of order", n)
		case !portableKey(l.K):
			return h, fmt.Errorf("the backup holds a key no backup should (%q)", l.K)
		case bytes.Equal(l.K, keyIdentity):
			var id Identity
			if err := json.Unmarshal(l.V, &id); err != nil || id != h.Identity {
				return h, fmt.Errorf("the backup's identity record (%s) is not its header's", l.V)
			}
			sawIdentity = true
		}
		sum.Write(line)
		last = l.K
		n++
		if fn != nil {
			if err := fn(l.K, l.V); err != nil {
				return h, err
			}
		}
	}
}

// readLine reads one line with its end; a last line without its end is a file cut short
// (io.EOF).
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read the backup: %w", err)
	}
	return line, nil
}

// restoreTimeout bounds each request of a restore or an export made outside a ledger.
const restoreTimeout = 10 * time.Second

// restoreOps is the most operations one restore transaction holds, well under etcd's
// default --max-txn-ops (128).
const restoreOps = 64

// RestoreEtcd writes a portable backup into an etcd cluster, under root, as the ledger of
// the identity the backup names; it returns the backup's header. The whole backup is read
// and checked first (a file cut short is refused before anything is written); the target
// prefix must hold nothing. The keys go in transactions of at most 64 operations; the first
// claims the prefix (no identity, no other restore: of two restores at once only one
// writes) and marks it, so that no replica opens the ledger half written; the last writes
// the identity and removes the mark. The count of keys is checked at the end.
func RestoreEtcd(ctx context.Context, cli *clientv3.Client, root string, r io.Reader, logger *slog.Logger) (PortableHeader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	src, done, err := rewindable(r)
	if err != nil {
		return PortableHeader{}, fmt.Errorf("ledger: restore: %w", err)
	}
	defer done()
	start, err := src.Seek(0, io.SeekCurrent)
	if err != nil {
		return PortableHeader{}, fmt.Errorf("ledger: restore: %w", err)
	}
	h, err := readPortable(src, nil)
	if err != nil {
		return h, fmt.Errorf("ledger: restore: %w", err)
	}
	prefix := EtcdPrefix(root, h.Identity)
	rctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	resp, err := cli.Get(rctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return h, fmt.Errorf("ledger: restore into etcd %s: %w", prefix, err)
	}
	if resp.Count > 0 {
		return h, fmt.Errorf("ledger: restore into etcd %s: the prefix already holds %d keys (a ledger, or a restore cut short); "+
			"a restore writes only into an empty prefix", prefix, resp.Count)
	}
	if _, err := src.Seek(start, io.SeekStart); err != nil {
		return h, fmt.Errorf("ledger: restore: %w", err)
	}

	mark := make([]byte, 16)
	_, _ = rand.Read(mark)
	w := &restoreWriter{cli: cli, prefix: prefix, mark: hex.EncodeToString(mark)}
	if _, err := readPortable(src, w.add(ctx)); err != nil {
		return h, w.failed(err)
	}
	if err := w.flush(ctx, true); err != nil {
		return h, w.failed(err)
	}
	_, count, err := countPortable(ctx, cli, prefix, w.rev, restoreTimeout)
	if err != nil {
		return h, fmt.Errorf("ledger: restore into etcd %s: check: %w", prefix, err)
	}
	if count != h.Keys {
		return h, fmt.Errorf("ledger: restore into etcd %s: %d keys written, the backup holds %d", prefix, count, h.Keys)
	}
	logger.Info("ledger: restored", "prefix", prefix, "keys", count, "from", h.Store, "revision", h.Revision)
	return h, nil
}

// restoreWriter writes a restore's keys, a transaction at a time.
type restoreWriter struct {
	cli      *clientv3.Client
	prefix   string
	mark     string
	started  bool // the first transaction, which claims the prefix, committed
	identity []byte
	ops      []clientv3.Op
	rev      int64 // of the last transaction
}

func (w *restoreWriter) add(ctx context.Context) func(key, value []byte) error {
	return func(key, value []byte) error {
		if bytes.Equal(key, keyIdentity) {
			w.identity = bytes.Clone(value) // last: the ledger exists once it is there
			return nil
		}
		w.ops = append(w.ops, clientv3.OpPut(w.prefix+string(key), string(value)))
		if len(w.ops) >= restoreOps-2 {
			return w.flush(ctx, false)
		}
		return nil
	}
}

// flush commits the keys added since the last transaction; the final one writes the
// identity and removes the mark.
func (w *restoreWriter) flush(ctx context.Context, final bool) error {
	idKey, markKey := w.prefix+string(keyIdentity), w.prefix+string(keyRestoring)
	var cmps []clientv3.Cmp
	ops := w.ops
	if !w.started {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(idKey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(markKey), "=", 0))
		if !final {
			ops = append(ops, clientv3.OpPut(markKey, w.mark))
		}
	} else {
		cmps = append(cmps, clientv3.Compare(clientv3.Value(markKey), "=", w.mark))
		if final {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(idKey), "=", 0))
		}
	}
	if final {
		ops = append(ops, clientv3.OpPut(idKey, string(w.identity)))
		if w.started {
			ops = append(ops, clientv3.OpDelete(markKey))
		}
	}
	rctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	resp, err := w.cli.Txn(rctx).If(cmps...).Then(ops...).Commit()
	cancel()
	switch {
	case err != nil:
		return err
	case !resp.Succeeded && !w.started:
		return errors.New("another restore, or a replica, claimed the prefix meanwhile")
	case !resp.Succeeded:
		return errors.New("the prefix changed under the restore: another process wrote its mark or the identity")
	}
	w.started, w.ops, w.rev = true, nil, resp.Header.Revision
	return nil
}

// failed explains a restore that stopped: after its first transaction the prefix holds a
// part of the ledger, behind the mark that keeps replicas from opening it.
func (w *restoreWriter) failed(err error) error {
	if !w.started {
		return fmt.Errorf("ledger: restore into etcd %s: %w; nothing was written", w.prefix, err)
	}
	return fmt.Errorf("ledger: restore into etcd %s: %w; the prefix holds a part of the ledger, marked at %s so that no "+
		"replica opens it: delete the prefix (etcdctl del --prefix %q) and restore again", w.prefix, err, keyRestoring, w.prefix)
}

// rewindable returns r, if it can seek, or a copy of it in a temporary file: a restore
// reads the backup twice, to check it whole before writing anything.
func rewindable(r io.Reader) (io.ReadSeeker, func(), error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		if _, err := rs.Seek(0, io.SeekCurrent); err == nil {
			return rs, func() {}, nil
		}
	}
	f, err := os.CreateTemp("", "uraiden-restore-*")
	if err != nil {
		return nil, nil, err
	}
	done := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, r); err != nil {
		done()
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		done()
		return nil, nil, err
	}
	return f, done, nil
}
