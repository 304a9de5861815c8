package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/contracts"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the build's version and the contract version it speaks",
		Args:  cobra.NoArgs,
		// Needs no configuration.
		PersistentPreRun: func(*cobra.Command, []string) {},
		Run: func(cmd *cobra.Command, _ []string) {
			version := "(devel)"
			if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
				version = info.Main.Version
			}
			fmt.Fprintf(cmd.OutOrStdout(), "uraiden %s\nchannel contract %s (µRaiden-compatible), %s\n",
				version, contracts.Version, contracts.ChannelsArtifact.Compiler)
		},
	}
}
