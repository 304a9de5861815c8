package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/ledger"
)

// Backup formats.
const (
	formatNative   = ""         // the store's own: Badger's stream, or portable on etcd
	formatBadger   = "badger"   // Badger's backup stream
	formatPortable = "portable" // ledger.PortableFormat: both stores, restores onto etcd
)

func newBackupCmd(a *app) *cobra.Command {
	var out, format string
	cmd := &cobra.Command{
		Use:   "backup --out FILE [--format portable]",
		Short: "Write a full backup of the ledger (Badger: stop the server first)",
		Long: `Writes a full backup of the ledger to FILE (created with mode 600; an existing file is
refused). The ledger holds the senders' balance proofs, the receiver's only claim to its money:
back it up regularly.

ledger.backend: badger: the ledger in ledger.dir, in Badger's backup stream ('uraiden restore'
reads it into an empty ledger.dir). Badger allows one process per directory, so stop
'uraiden serve' first. With --format portable, the portable format instead: it restores onto
etcd, the way from a Badger ledger to a replicated one.

ledger.backend: etcd: the ledger of chain.chain_id, chain.contract_address and the receiver
of receiver.key_file under ledger.etcd.prefix, in the portable format, every key read at one
revision: a consistent copy taken while the replicas run, without their slot markers and the
chain side's election.

The portable format is JSON lines: a header (format version, store, identity, revision,
key count), one line per key, and a last line with the count and a SHA-256, so that a file
cut short is refused by restore.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != formatNative && format != formatBadger && format != formatPortable {
				return fmt.Errorf("--format: %q is neither %q nor %q", format, formatBadger, formatPortable)
			}
			if a.usesEtcd() && format == formatBadger {
				return errors.New("--format badger: an etcd ledger backs up in the portable format only")
			}
			return writeBackup(out, func(f io.Writer) (string, error) {
				if a.usesEtcd() {
					return a.backupEtcd(cmd.Context(), f)
				}
				l, err := ledger.OpenExisting(a.cfg.Ledger.Dir, a.log)
				if err != nil {
					return "", err
				}
				defer l.Close()
				id := l.Identity()
				what := fmt.Sprintf("the ledger of chain %d, contract %s, receiver %s", id.ChainID, id.Contract, id.Receiver)
				if format == formatPortable {
					n, err := l.Export(cmd.Context(), f)
					return fmt.Sprintf("%s (%d keys, portable format)", what, n), err
				}
				return what, l.Backup(f)
			}, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "backup file to create (must not exist)")
	cmd.Flags().StringVar(&format, "format", formatNative, "portable: the portable format from a Badger ledger, to restore onto etcd (an etcd ledger always writes it)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// writeBackup creates out, has backup fill it, and makes it durable; a failed backup leaves
// no file.
func writeBackup(out string, backup func(io.Writer) (string, error), stdout io.Writer) error {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	what, err := backup(f)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(out)
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", what, out)
	return nil
}

func (a *app) backupEtcd(ctx context.Context, w io.Writer) (string, error) {
	id, err := a.configuredIdentity("backup")
	if err != nil {
		return "", err
	}
	cli, err := a.connectEtcd(ctx)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	n, err := ledger.ExportEtcd(ctx, cli, a.cfg.Ledger.Etcd.Prefix, id, w)
	return fmt.Sprintf("the ledger of chain %d, contract %s, receiver %s (%d keys from etcd %s)",
		id.ChainID, id.Contract, id.Receiver, n, ledger.EtcdPrefix(a.cfg.Ledger.Etcd.Prefix, id)), err
}

func newRestoreCmd(a *app) *cobra.Command {
	var in string
	cmd := &cobra.Command{
		Use:   "restore --in FILE",
		Short: "Restore a ledger backup into an empty ledger (ledger.dir, or an empty etcd prefix)",
		Long: `Restores a backup made by 'uraiden backup'.

ledger.backend: badger: Badger's backup stream into an empty ledger.dir.

ledger.backend: etcd: a portable backup (of an etcd ledger, or of a Badger one made with
--format portable) into the cluster, under ledger.etcd.prefix, as the ledger the backup
names. The whole file is checked first (one cut short or altered is refused, nothing
written); the ledger's prefix must hold nothing. The keys go in transactions of at most 64
operations; until the last, which writes the ledger's identity, the prefix is marked and no
replica opens it. A restore cut short leaves the mark, and says so: delete the prefix and
restore again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := os.Open(in)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer f.Close()
			if a.usesEtcd() {
				cli, err := a.connectEtcd(cmd.Context())
				if err != nil {
					return err
				}
				defer cli.Close()
				h, err := ledger.RestoreEtcd(cmd.Context(), cli, a.cfg.Ledger.Etcd.Prefix, f, a.log)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "restored the ledger of chain %d, contract %s, receiver %s (%d keys, backed up from %s) from %s into etcd %s\n",
					h.Identity.ChainID, h.Identity.Contract, h.Identity.Receiver, h.Keys, h.Store, in, ledger.EtcdPrefix(a.cfg.Ledger.Etcd.Prefix, h.Identity))
				return nil
			}
			if err := ledger.Restore(a.cfg.Ledger.Dir, f, a.log); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s into %s\n", in, a.cfg.Ledger.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "backup file to restore")
	_ = cmd.MarkFlagRequired("in")
	return cmd
}

func newResyncCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "resync",
		Short: "Make the chain side read every channel from the contract again (stop the server first)",
		Long: `Marks the ledger so that the next 'uraiden serve' takes no payment until its chain
watcher has read every channel's deposit, close request and withdrawals from the contract
again, keeping the payments. Use it when you doubt the ledger's view of the chain (say, a
node served wrong logs). A ledger whose last large chain update was cut short by a crash does
this by itself.

ledger.backend: badger: the ledger in ledger.dir; Badger allows one process per directory:
stop 'uraiden serve' first.

ledger.backend: etcd: the ledger of chain.chain_id, chain.contract_address and the receiver
of receiver.key_file. The mark is a chain-side write: the command takes the chain side's
election for the moment of the write, and refuses while a running replica holds it (stop
every replica first). Every replica stops taking payments when the mark is written; the
replica that next runs the chain side reads the channels again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.usesEtcd() {
				id, err := a.configuredIdentity("resync")
				if err != nil {
					return err
				}
				l, release, err := a.openEtcdLedger(cmd.Context(), id, "resync")
				if err != nil {
					return err
				}
				err = l.RequestResync()
				release()
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "the next chain side reads every channel of the ledger in etcd %s from the contract again; no replica takes payments until then\n",
					ledger.EtcdPrefix(a.cfg.Ledger.Etcd.Prefix, id))
				return nil
			}
			l, err := ledger.OpenExisting(a.cfg.Ledger.Dir, a.log)
			if err != nil {
				return err
			}
			if err := errors.Join(l.RequestResync(), l.Close()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "the next start reads every channel of the ledger in %s from the contract again before it takes payments\n", a.cfg.Ledger.Dir)
			return nil
		},
	}
}
