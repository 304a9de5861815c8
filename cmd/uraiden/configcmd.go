package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/pricing"
)

func newConfigCmd(a *app) *cobra.Command {
	cfg := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	cfg.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration file, environment and flags; exit non-zero on any error",
		Long: `Validates the whole configuration as the service would load it, and the files it
names: unknown keys, values out of range, malformed addresses, regular expressions and price
expressions that do not compile are all reported, each with its rule and line, and the
command exits 1. So are key, password and token files that are missing or readable by group
or others (chmod 600 them), etcd's password file among them, and TLS certificates and keys
(authz.tls, admin.tls, ledger.etcd.tls) that are missing, do not match or do not parse. It
does not connect to the chain or to etcd. Warnings do not fail the check: valid settings
that weaken a guarantee (admin.legacy_close, an etcd password sent over http:// to another
host), and a priced rule restricted to some methods whose other methods fall to a free
price, are printed to stderr.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annotationConfigRequired: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// PersistentPreRunE already loaded and validated the configuration.
			if err := a.cfg.CheckFiles(); err != nil {
				return err
			}
			table, err := pricing.Load(a.cfg.Pricing.File)
			if err != nil {
				return fmt.Errorf("price table: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK\n%s: OK (%d rules, default price %s)\n",
				a.configPath, a.cfg.Pricing.File, table.Len(), table.DefaultPrice())
			// Warnings do not fail the check: the settings are valid, perhaps not as meant.
			for _, w := range a.cfg.Warnings() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			for _, w := range table.Warnings() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", a.cfg.Pricing.File, w)
			}
			return nil
		},
	})
	return cfg
}
