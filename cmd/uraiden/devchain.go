package main

import (
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/internal/config"
)

func newDevchainCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devchain",
		Short: "Run the embedded Ethereum development chain alone, with the contracts deployed",
		Long: `Runs an in-process Ethereum chain (go-ethereum, today's mainnet rules, chain id 1337)
that mines a block whenever a transaction arrives, deploys a test token and the channel
contract, funds a fixed set of development accounts with ETH and tokens, and serves
JSON-RPC over HTTP and WebSocket on devchain.listen (default 127.0.0.1:8545).

The accounts' private keys are printed: they are derived from public strings and are for
development only. The chain lives in memory and is gone when the command stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := startDevChain(cmd, a.cfg.DevChain, a)
			if err != nil {
				return err
			}
			defer c.Close()
			printDevChain(cmd.OutOrStdout(), c)
			a.log.Info("dev chain running; stop with Ctrl-C", "rpc", c.HTTPEndpoint(), "ws", c.WSEndpoint())
			<-ctx.Done()
			a.log.Info("stopping dev chain")
			return nil
		},
	}
	flags := cmd.Flags()
	flags.String("listen", "127.0.0.1:8545", "JSON-RPC listen address (HTTP and WebSocket)")
	flags.Duration("block-period", 0, "also mine a block on this period (0: only when transactions arrive)")
	flags.Int("accounts", 4, "number of funded development accounts")
	flags.Uint32("challenge-period", 500, "challenge period of the channel contract, in blocks")
	a.bind(flags, "devchain.listen", "listen")
	a.bind(flags, "devchain.block_period", "block-period")
	a.bind(flags, "devchain.accounts", "accounts")
	a.bind(flags, "devchain.challenge_period", "challenge-period")
	return cmd
}

func startDevChain(cmd *cobra.Command, cfg config.DevChain, a *app) (*devchain.Chain, error) {
	c, err := devchain.Start(cmd.Context(), devchain.Config{
		Listen:          cfg.Listen,
		BlockPeriod:     cfg.BlockPeriod,
		Accounts:        cfg.Accounts,
		ChallengePeriod: cfg.ChallengePeriod,
		Logger:          a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("start dev chain: %w", err)
	}
	return c, nil
}

func printDevChain(w io.Writer, c *devchain.Chain) {
	d := c.Deployment()
	fmt.Fprintf(w, `Embedded dev chain (chain id %d)
  JSON-RPC:          %s  (WebSocket: %s)
  token:             %s  (UraidenTestToken, symbol RDNDEV, 18 decimals, open faucet)
  channel contract:  %s  (deployed in block %d)

Development accounts. DEV ONLY: these keys are public; never send real funds to them.
`, devchain.ChainID, c.HTTPEndpoint(), c.WSEndpoint(), d.Token, d.Channels, d.ChannelsBlock)
	for i, acc := range c.Accounts() {
		role := "sender"
		if i == 0 {
			role = "receiver, deployer"
		}
		fmt.Fprintf(w, "  (%d) %s  key %s  [%s]\n", i, acc.Address, hexutil.Encode(crypto.FromECDSA(acc.Key)), role)
	}
	fmt.Fprintf(w, "  each: %s wei of ETH and %s base units of RDNDEV\n\n", devchain.AccountEther, devchain.AccountTokens)
}
