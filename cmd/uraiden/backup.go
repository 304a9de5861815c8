package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/ledger"
)

func newBackupCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write a full backup of the ledger (stop the server first)",
		Long: `Writes a full backup of the ledger in ledger.dir (Badger's backup stream) to FILE.
The ledger holds the senders' balance proofs, the receiver's only claim to its money: back it
up regularly. Badger allows one process per directory, so stop 'uraiden serve' first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := ledger.OpenExisting(a.cfg.Ledger.Dir, a.log)
			if err != nil {
				return err
			}
			defer l.Close()
			f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if err := l.Backup(f); err != nil {
				f.Close()
				os.Remove(out)
				return err
			}
			if err := errors.Join(f.Sync(), f.Close()); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			id := l.Identity()
			fmt.Fprintf(cmd.OutOrStdout(), "backed up the ledger of chain %d, contract %s, receiver %s to %s\n", id.ChainID, id.Contract, id.Receiver, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "backup file to create (must not exist)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newRestoreCmd(a *app) *cobra.Command {
	var in string
	cmd := &cobra.Command{
		Use:   "restore --in FILE",
		Short: "Restore a ledger backup into an empty ledger.dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := os.Open(in)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer f.Close()
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
		Short: "Make the next start read every channel from the contract again (stop the server first)",
		Long: `Marks the ledger in ledger.dir so that the next 'uraiden serve' takes no payment until its
chain watcher has read every channel's deposit, close request and withdrawals from the
contract again, keeping the payments. Use it when you doubt the ledger's view of the chain
(say, a node served wrong logs). A ledger whose last large chain update was cut short by a
crash does this by itself. Badger allows one process per directory: stop 'uraiden serve' first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
