package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newConfigCmd(a *app) *cobra.Command {
	cfg := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	cfg.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration file, environment and flags; exit non-zero on any error",
		Long: `Validates the whole configuration as the service would load it: unknown keys, values
out of range and malformed addresses are all reported, then the command exits 1.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annotationConfigRequired: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// PersistentPreRunE already loaded and validated it; say so.
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK\n", a.configPath)
			return nil
		},
	})
	return cfg
}
