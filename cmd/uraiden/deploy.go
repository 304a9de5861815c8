package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/keys"
)

type deployFlags struct {
	rpc, keyFile, passwordFile           string
	chainID                              uint64
	challengePeriod                      uint32
	tokenAddress, tokenName, tokenSymbol string
	supply                               string
	decimals                             uint8
	trusted                              []string
	timeout                              time.Duration
	mainnetTestToken                     bool
}

// mainnetChainID is Ethereum mainnet's: no place for a token with an open faucet.
const mainnetChainID = 1

func newDeployCmd(a *app) *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "deploy --rpc URL --key-file F [--token-address T | --token-name N --token-symbol S --supply X]",
		Short: "Deploy the channel contract (and a test token) to a network",
		Long: `Deploys RaidenMicroTransferChannels with the given challenge period, on an existing
ERC20 token (--token-address) or on a new UraidenTestToken (--token-name, --token-symbol,
--supply in whole tokens, --token-decimals). Waits for every receipt, checks the code on
chain is the code sent, and prints the settings for config.yaml.

The key file holds the deployer's key: a geth JSON keystore (with --password-file) or a
hex key; it must not be readable by group or others.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDeploy(cmd, f)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&f.rpc, "rpc", "", "JSON-RPC URL of the node (http, ws or IPC path)")
	flags.StringVar(&f.keyFile, "key-file", "", "deployer key file (JSON keystore or hex)")
	flags.StringVar(&f.passwordFile, "password-file", "", "password file of a JSON keystore")
	flags.Uint64Var(&f.chainID, "chain-id", 0, "refuse to deploy unless the node's chain id is this (0: any)")
	flags.Uint32Var(&f.challengePeriod, "challenge-period", contracts.MinChallengePeriod, "blocks a receiver has to dispute a close (at least 500)")
	flags.StringVar(&f.tokenAddress, "token-address", "", "existing ERC20 token to use")
	flags.StringVar(&f.tokenName, "token-name", "", "name of a new test token")
	flags.StringVar(&f.tokenSymbol, "token-symbol", "", "symbol of a new test token")
	flags.StringVar(&f.supply, "supply", "10000000", "initial supply of a new test token, in whole tokens, minted to the deployer")
	flags.Uint8Var(&f.decimals, "token-decimals", 18, "decimals of a new test token")
	flags.StringSliceVar(&f.trusted, "trusted", nil, "contracts allowed to open channels on behalf of senders")
	flags.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up waiting for receipts after this long")
	flags.BoolVar(&f.mainnetTestToken, "allow-test-token-on-mainnet", false, "deploy the test token (anyone can mint it) even on Ethereum mainnet")
	_ = cmd.MarkFlagRequired("rpc")
	_ = cmd.MarkFlagRequired("key-file")
	return cmd
}

func (f deployFlags) params() (chain.DeployParams, error) {
	p := chain.DeployParams{ChallengePeriod: f.challengePeriod}
	if f.challengePeriod < contracts.MinChallengePeriod {
		return p, fmt.Errorf("--challenge-period must be at least %d blocks", contracts.MinChallengePeriod)
	}
	for _, t := range f.trusted {
		if !common.IsHexAddress(t) {
			return p, fmt.Errorf("--trusted: not an address: %q", t)
		}
		p.TrustedContracts = append(p.TrustedContracts, common.HexToAddress(t))
	}
	if f.tokenAddress != "" {
		if f.tokenName != "" || f.tokenSymbol != "" {
			return p, errors.New("--token-address excludes --token-name and --token-symbol")
		}
		if !common.IsHexAddress(f.tokenAddress) {
			return p, fmt.Errorf("--token-address: not an address: %q", f.tokenAddress)
		}
		p.Token = common.HexToAddress(f.tokenAddress)
		return p, nil
	}
	if f.tokenName == "" || f.tokenSymbol == "" {
		return p, errors.New("give --token-address, or --token-name and --token-symbol for a new test token")
	}
	whole, ok := new(big.Int).SetString(f.supply, 10)
	if !ok || whole.Sign() < 0 {
		return p, fmt.Errorf("--supply: not a non-negative whole number: %q", f.supply)
	}
	unit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(f.decimals)), nil)
	p.NewToken = chain.TokenParams{Name: f.tokenName, Symbol: f.tokenSymbol, Decimals: f.decimals, Supply: whole.Mul(whole, unit)}
	return p, nil
}

func runDeploy(cmd *cobra.Command, f deployFlags) error {
	p, err := f.params()
	if err != nil {
		return err
	}
	key, err := keys.Load(f.keyFile, f.passwordFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	ec, id, err := chain.Connect(ctx, f.rpc, f.chainID)
	if err != nil {
		return err
	}
	defer ec.Close()
	if p.Token == (common.Address{}) && id.Cmp(big.NewInt(mainnetChainID)) == 0 && !f.mainnetTestToken {
		return errors.New("refusing to deploy the test token, which anyone can mint, to Ethereum mainnet: use --token-address (or --allow-test-token-on-mainnet)")
	}
	d, err := chain.Deploy(ctx, ec, key, p)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "# Deployed by %s on chain %d; the code on chain matches this build.\n", d.Deployer, d.ChainID)
	if d.TokenDeployed {
		fmt.Fprintf(out, "# New test token %q (%s, %d decimals): %s\n", p.NewToken.Name, p.NewToken.Symbol, p.NewToken.Decimals, d.Token)
	} else {
		fmt.Fprintf(out, "# Token: %s\n", d.Token)
	}
	fmt.Fprintf(out, "# Channel contract deployed in block %d, challenge period %d blocks.\nchain:\n  rpc_url: %s\n  chain_id: %d\n  contract_address: %s\n",
		d.ChannelsBlock, p.ChallengePeriod, f.rpc, d.ChainID, d.Channels)
	return nil
}
