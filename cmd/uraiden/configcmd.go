package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/pricing"
)

func newConfigCmd(a *app) *cobra.Command {
	cfg := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	var tokenDecimals uint8
	check := &cobra.Command{
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
price, are printed to stderr.

Prices in tokens ("0.005 token") are converted as the service would, and must be exact,
with --token-decimals (the token's ERC20 decimals()) or, on the dev chain (no
chain.rpc_url), its token's 18. Without either, their syntax is checked and the output says
that the conversion happens at start, with the decimals read from the chain.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annotationConfigRequired: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// PersistentPreRunE already loaded and validated the configuration.
			if err := a.cfg.CheckFiles(); err != nil {
				return err
			}
			opts, source := pricing.Options{Unconverted: true}, ""
			switch {
			case cmd.Flags().Changed("token-decimals"):
				opts.Token, source = &pricing.Token{Decimals: tokenDecimals}, "--token-decimals"
			case a.cfg.Chain.RPCURL == "":
				opts.Token, source = &pricing.Token{Decimals: devchain.TokenDecimals}, "the dev chain's token"
			}
			table, err := pricing.LoadWith(a.cfg.Pricing.File, opts)
			if err != nil {
				return fmt.Errorf("price table: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: OK\n", a.configPath)
			switch {
			case table.Unconverted() > 0:
				fmt.Fprintf(out, "%s: OK (%d rules; prices in tokens: %d, syntax checked, not converted: the service converts them at start "+
					"with the token's decimals() read from the chain; give --token-decimals to check that they convert exactly)\n",
					a.cfg.Pricing.File, table.Len(), table.Unconverted())
			case table.TokenPrices() > 0:
				tok, _ := table.Token()
				fmt.Fprintf(out, "%s: OK (%d rules, default price %s base units; prices in tokens: %d, converted with %d decimals, %s)\n",
					a.cfg.Pricing.File, table.Len(), table.DefaultPrice(), table.TokenPrices(), tok.Decimals, source)
			default:
				fmt.Fprintf(out, "%s: OK (%d rules, default price %s)\n", a.cfg.Pricing.File, table.Len(), table.DefaultPrice())
			}
			// Warnings do not fail the check: the settings are valid, perhaps not as meant.
			for _, w := range a.cfg.Warnings() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			for _, w := range table.Warnings() {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", a.cfg.Pricing.File, w)
			}
			return nil
		},
	}
	check.Flags().Uint8Var(&tokenDecimals, "token-decimals", 0,
		"decimals() of the channel's token, to convert the prices in tokens (default: 18 on the dev chain, else syntax only)")
	cfg.AddCommand(check)
	return cfg
}
