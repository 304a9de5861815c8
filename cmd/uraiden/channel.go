package main

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/client"
)

func newChannelCmd(a *app) *cobra.Command {
	var f senderFlags
	cmd := &cobra.Command{
		Use:   "channel",
		Short: "Open, top up, list, close and settle the sender's payment channels",
	}
	f.register(cmd.PersistentFlags())
	withClient := func(run func(cmd *cobra.Command, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			if f.contract == "" {
				return errors.New("--contract is required (a server's 402 names it in RDN-Contract-Address)")
			}
			c, err := f.open(cmd.Context(), a, "")
			if err != nil {
				return err
			}
			defer c.Close()
			return run(cmd, c, args)
		}
	}
	funding := func() client.OpenOptions { return client.OpenOptions{ERC20: f.erc20} }
	var api string
	var cooperative bool
	closeCmd := &cobra.Command{
		Use:   "close RECEIVER OPEN_BLOCK",
		Short: "Close a channel: cooperatively (the server's closing signature, checked) or, with --cooperative=false, by starting the challenge period",
		Long: `Closes a channel. Cooperatively (the default) it asks the server's channel API for the
receiver's closing signature on the last balance, checks it and sends the close, which
settles at once. The close is in the scheme of the channel's last balance proof (eip712:
cooperativeCloseTyped; legacy: cooperativeClose) unless --proof-scheme forces one, in which
case that balance is signed again in it. With --cooperative=false it asks the contract to
close at the last balance and the challenge period starts; see settle.`,
		Args: cobra.ExactArgs(2),
		RunE: withClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			receiver, block, err := channelArgs(args)
			if err != nil {
				return err
			}
			if _, err := c.Refresh(cmd.Context(), receiver, block); err != nil {
				return err
			}
			var ch client.Channel
			if cooperative {
				ch, err = c.CloseCooperatively(cmd.Context(), receiver, block, api)
			} else {
				ch, err = c.CloseUncooperatively(cmd.Context(), receiver, block)
			}
			if err != nil {
				return err
			}
			printChannels(cmd.OutOrStdout(), []client.Channel{ch})
			return nil
		}),
	}
	closeCmd.Flags().StringVar(&api, "api", "", "the server's channel API base URL, e.g. http://127.0.0.1:8080/api/1 (default: learned from its 402s)")
	f.registerProofScheme(closeCmd.Flags())
	closeCmd.Flags().BoolVar(&cooperative, "cooperative", true, "ask the server to sign the close; --cooperative=false starts an uncooperative close")

	cmd.AddCommand(
		&cobra.Command{
			Use:   "open RECEIVER DEPOSIT",
			Short: "Open a channel to RECEIVER with DEPOSIT token base units",
			Args:  cobra.ExactArgs(2),
			RunE: withClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
				receiver, amount, err := receiverAmount(args[0], args[1])
				if err != nil {
					return err
				}
				ch, err := c.Open(cmd.Context(), receiver, amount, funding())
				if err != nil {
					return err
				}
				printChannels(cmd.OutOrStdout(), []client.Channel{ch})
				return nil
			}),
		},
		&cobra.Command{
			Use:   "topup RECEIVER OPEN_BLOCK AMOUNT",
			Short: "Add AMOUNT token base units to a channel's deposit",
			Args:  cobra.ExactArgs(3),
			RunE: withClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
				receiver, block, err := channelArgs(args[:2])
				if err != nil {
					return err
				}
				_, amount, err := receiverAmount(args[0], args[2])
				if err != nil {
					return err
				}
				ch, err := c.TopUp(cmd.Context(), receiver, block, amount, funding())
				if err != nil {
					return err
				}
				printChannels(cmd.OutOrStdout(), []client.Channel{ch})
				return nil
			}),
		},
		&cobra.Command{
			Use:   "list",
			Short: "List the sender's channels, rebuilt from the chain's events and merged with the local store",
			Args:  cobra.NoArgs,
			RunE: withClient(func(cmd *cobra.Command, c *client.Client, _ []string) error {
				chs, err := c.Channels(cmd.Context(), nil)
				if err != nil {
					return err
				}
				printChannels(cmd.OutOrStdout(), chs)
				return nil
			}),
		},
		closeCmd,
		&cobra.Command{
			Use:   "settle RECEIVER OPEN_BLOCK",
			Short: "Settle an uncooperative close once its challenge period is over",
			Args:  cobra.ExactArgs(2),
			RunE: withClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
				receiver, block, err := channelArgs(args)
				if err != nil {
					return err
				}
				ch, err := c.Settle(cmd.Context(), receiver, block)
				if err != nil {
					return err
				}
				printChannels(cmd.OutOrStdout(), []client.Channel{ch})
				return nil
			}),
		},
	)
	return cmd
}

func receiverAmount(addr, amount string) (common.Address, *big.Int, error) {
	if !common.IsHexAddress(addr) {
		return common.Address{}, nil, fmt.Errorf("not a receiver address: %q", addr)
	}
	v, ok := new(big.Int).SetString(amount, 10)
	if !ok || v.Sign() <= 0 {
		return common.Address{}, nil, fmt.Errorf("not a positive amount of token base units: %q", amount)
	}
	return common.HexToAddress(addr), v, nil
}

func channelArgs(args []string) (common.Address, uint32, error) {
	if !common.IsHexAddress(args[0]) {
		return common.Address{}, 0, fmt.Errorf("not a receiver address: %q", args[0])
	}
	block, err := strconv.ParseUint(args[1], 10, 32)
	if err != nil {
		return common.Address{}, 0, fmt.Errorf("not an open block: %q", args[1])
	}
	return common.HexToAddress(args[0]), uint32(block), nil
}

func printChannels(w io.Writer, chs []client.Channel) {
	fmt.Fprintf(w, "%-42s  %10s  %-7s  %20s  %20s\n", "RECEIVER", "OPEN_BLOCK", "STATE", "DEPOSIT", "BALANCE")
	for _, ch := range chs {
		fmt.Fprintf(w, "%-42s  %10d  %-7s  %20s  %20s", ch.Receiver.Hex(), ch.OpenBlock, ch.State, ch.Deposit, ch.Balance)
		if ch.State == client.StateClosing {
			fmt.Fprintf(w, "  settle after block %d", ch.SettleBlock)
		}
		fmt.Fprintln(w)
	}
}
