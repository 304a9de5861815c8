package main

import (
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/uraiden/uraiden/internal/config"
)

// annotationConfigRequired marks commands for which a missing configuration file is an error.
const annotationConfigRequired = "config-required"

// app is what every command shares: the configuration sources and, once loaded, the result.
type app struct {
	v          *viper.Viper
	configPath string
	cfg        config.Config
	log        *slog.Logger
}

func newRootCmd() *cobra.Command {
	a := &app{v: config.New()}
	root := &cobra.Command{
		Use:   "uraiden",
		Short: "Sell HTTP requests for µRaiden off-chain micropayments, behind Envoy",
		Long: `uraiden is an Envoy external-authorization service that charges for HTTP requests
with µRaiden payment channels, plus the tools around it.

Configuration comes from config.yaml (--config), overridden by URAIDEN_* environment
variables (chain.rpc_url is URAIDEN_CHAIN_RPC_URL) and then by flags.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			required := cmd.Flags().Changed("config") || cmd.Annotations[annotationConfigRequired] == "true"
			cfg, err := config.Load(a.v, a.configPath, required)
			if err != nil {
				return err
			}
			a.cfg, a.log = cfg, cfg.Log.Logger()
			return nil
		},
	}
	flags := root.PersistentFlags()
	flags.StringVar(&a.configPath, "config", "config.yaml", "configuration file (YAML); a missing default file is not an error")
	flags.String("log-level", "info", "log level: debug, info, warn or error")
	flags.String("log-format", "text", "log format: text or json")
	a.bind(flags, "log.level", "log-level")
	a.bind(flags, "log.format", "log-format")

	// The help lists the commands by role: a client paying for requests, the operator of
	// the server that sells them, and the developer's tools.
	root.AddGroup(
		&cobra.Group{ID: groupPaying, Title: "Paying (a client of a uraiden server):"},
		&cobra.Group{ID: groupOperating, Title: "Operating (the receiver's server and its channels):"},
		&cobra.Group{ID: groupDevelopment, Title: "Development:"},
	)
	inGroup(groupPaying, root, newGetCmd(a), newPricesCmd(), newChannelCmd(a))
	inGroup(groupOperating, root, newServeCmd(a), newDeployCmd(a), newCloseAllCmd(a), newWithdrawCmd(a),
		newBackupCmd(a), newRestoreCmd(a), newResyncCmd(a), newConfigCmd(a))
	inGroup(groupDevelopment, root, newDevchainCmd(a), newDemoCmd(a), newBenchCmd(a))
	root.AddCommand(newVersionCmd(), newChannelsCmd(a))
	return root
}

// The command groups of the help.
const (
	groupPaying      = "paying"
	groupOperating   = "operating"
	groupDevelopment = "development"
)

// inGroup adds commands to root in a group.
func inGroup(group string, root *cobra.Command, cmds ...*cobra.Command) {
	for _, c := range cmds {
		c.GroupID = group
		root.AddCommand(c)
	}
}

// bind makes a flag override the configuration key when it is set.
func (a *app) bind(flags *pflag.FlagSet, key, flag string) {
	if err := a.v.BindPFlag(key, flags.Lookup(flag)); err != nil {
		panic(err) // a typo in a flag name: a programming error
	}
}
