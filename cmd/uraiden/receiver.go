package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/keys"
	"github.com/uraiden/uraiden/ledger"
)

// receiverOpsHelp is what every command that sends the receiver's transactions needs said.
const receiverOpsHelp = `Stop 'uraiden serve' first: Badger allows one process per ledger directory, and the
command refuses a ledger in use. With ledger.backend: etcd, the ledger is the one of
chain.chain_id, chain.contract_address and the receiver; the command (but --dry-run) acts as
the chain side, whose watchtower sends from the same account: it takes the replicas' chain
side election and refuses while a running replica holds it, so stop every replica first.
It sends through a node, so it needs chain.rpc_url,
chain.chain_id, chain.contract_address and receiver.key_file: the embedded dev chain lives
only inside a running 'uraiden serve'.

Transactions go out from the receiver's account with consecutive nonces and EIP-1559 fees
(twice the base fee plus the node's suggested tip, at most --max-fee-gwei); a channel whose
transaction would revert is not sent. Every receipt is awaited (--timeout). A channel that
fails is reported and the others go on; the command exits non-zero if any failed.
Token amounts are in the token's base units.`

// newChannelsCmd keeps 'uraiden channels close-all', the name of close-all before the
// commands were grouped, working for scripts; the help shows close-all only.
func newChannelsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "channels",
		Short:  "Act on the receiver's channels on chain (stop the server first)",
		Hidden: true,
	}
	closeAll := newCloseAllCmd(a)
	closeAll.Deprecated = "'uraiden channels close-all' is now 'uraiden close-all'"
	cmd.AddCommand(closeAll)
	return cmd
}

func newCloseAllCmd(a *app) *cobra.Command {
	var f receiverFlags
	cmd := &cobra.Command{
		Use:   "close-all [--dry-run] [--max-fee-gwei G]",
		Short: "Cooperatively close every channel the ledger holds a payment for (stop the server first)",
		Long: `Closes every open or closing channel with a balance proof (balance above 0) with
cooperativeClose (cooperativeCloseTyped for a typed proof): the sender's latest balance
proof and the receiver's closing signature, signed in the proof's scheme. The contract pays the receiver the balance (less what it withdrew before) and the sender the
rest at once, without a challenge period. Each channel's closing signature is recorded in
the ledger before its transaction goes out, so the channel takes no more payments when the
server runs again; the server's chain watcher records the settlements. A channel whose
close failed stays closed to payments: run the command again to retry it.

Channels whose dispute the watchtower is still sending, and channels no longer on chain,
are skipped. Reported per channel and in total: the tokens recovered (the settlement's
_receiver_tokens) and the gas spent (gas used x effective gas price, in ETH).

` + receiverOpsHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCloseAll(cmd, a, f)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newWithdrawCmd(a *app) *cobra.Command {
	var f receiverFlags
	var minimum string
	cmd := &cobra.Command{
		Use:   "withdraw [--min N] [--dry-run] [--max-fee-gwei G]",
		Short: "Withdraw earned tokens from open channels without closing them (stop the server first)",
		Long: `Sends withdraw (withdrawTyped for a typed proof) for every open channel where the
balance proof held exceeds what was already withdrawn (read from the contract) by at least
--min token base units: the contract
pays the receiver the difference and the channel stays open. Reported per channel and in
total: the tokens withdrawn (ChannelWithdraw's _withdrawn_balance) and the gas spent. The
ledger is left to the server's chain watcher, which records the withdrawals when it runs.

` + receiverOpsHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, ok := new(big.Int).SetString(minimum, 10)
			if !ok || n.Sign() <= 0 {
				return fmt.Errorf("--min: not a positive whole number of token base units: %q", minimum)
			}
			return runWithdraw(cmd, a, f, n)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&minimum, "min", "1", "withdraw from a channel only when at least this many token base units are unwithdrawn")
	return cmd
}

func runCloseAll(cmd *cobra.Command, a *app, f receiverFlags) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	s, err := a.openReceiverSession(ctx, f, cmd.Name())
	if err != nil {
		return err
	}
	defer s.Close()
	out := cmd.OutOrStdout()
	s.header(out)
	p, err := chain.PlanClose(ctx, s.ledger, s.receiver)
	if err != nil {
		return err
	}
	printPlan(out, p, "close", f.dryRun)
	if f.dryRun {
		return nil
	}
	claims, unsigned := s.receiver.SignCloses(ctx, s.ledger, p.Todo)
	results := append(unsigned, s.receiver.CooperativeClose(ctx, claims)...)
	return report(out, closeWords, results, len(p.Skip))
}

func runWithdraw(cmd *cobra.Command, a *app, f receiverFlags, minimum *big.Int) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	s, err := a.openReceiverSession(ctx, f, cmd.Name())
	if err != nil {
		return err
	}
	defer s.Close()
	out := cmd.OutOrStdout()
	s.header(out)
	p, err := chain.PlanWithdraw(ctx, s.ledger, s.receiver, minimum)
	if err != nil {
		return err
	}
	printPlan(out, p, "withdraw from", f.dryRun)
	if f.dryRun {
		return nil
	}
	claims := make([]chain.Claim, len(p.Todo))
	for i, c := range p.Todo {
		claims[i] = c.Claim()
	}
	return report(out, withdrawWords, s.receiver.Withdraw(ctx, claims), len(p.Skip))
}

// receiverFlags are the flags of the commands that send the receiver's transactions.
type receiverFlags struct {
	dryRun     bool
	maxFeeGwei string
	timeout    time.Duration
}

func (f *receiverFlags) register(flags *pflag.FlagSet) {
	flags.BoolVar(&f.dryRun, "dry-run", false, "list what would be sent; send nothing and change nothing")
	flags.StringVar(&f.maxFeeGwei, "max-fee-gwei", "", "fee cap per gas, in gwei (default: chain.max_fee_gwei)")
	flags.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up waiting for receipts after this long")
}

// maxFeeWei is --max-fee-gwei, or chain.max_fee_gwei without it.
func (f receiverFlags) maxFeeWei(c config.Chain) (*big.Int, error) {
	if f.maxFeeGwei == "" {
		return c.MaxFeeWei()
	}
	fee, err := config.Chain{MaxFeeGwei: f.maxFeeGwei}.MaxFeeWei()
	if err != nil || fee.Sign() == 0 {
		return nil, fmt.Errorf("--max-fee-gwei: not a positive decimal number: %q", f.maxFeeGwei)
	}
	return fee, nil
}

// receiverSession is the ledger, the node and the receiver's key, opened for one command.
type receiverSession struct {
	ledger *ledger.Ledger
	// closeLedger closes the ledger and, on etcd, its client and the chain side's election.
	closeLedger func()
	client      *chain.Client
	receiver    *chain.Receiver
	maxFee      *big.Int
}

// errNeedsNode explains why the receiver's commands cannot use the dev chain.
var errNeedsNode = errors.New("chain.rpc_url is not set: this command sends the receiver's transactions through a node " +
	"(set chain.rpc_url, chain.chain_id, chain.contract_address and receiver.key_file); " +
	"the embedded dev chain lives only inside a running 'uraiden serve'")

// openReceiverSession opens the ledger before dialing: a ledger in use (or on etcd, a chain
// side held by a replica) is the likeliest error.
func (a *app) openReceiverSession(ctx context.Context, f receiverFlags, command string) (*receiverSession, error) {
	cfg := a.cfg
	if cfg.Chain.RPCURL == "" {
		return nil, errNeedsNode
	}
	maxFee, err := f.maxFeeWei(cfg.Chain)
	if err != nil {
		return nil, err
	}
	key, err := keys.Load(cfg.Receiver.KeyFile, cfg.Receiver.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("receiver key: %w", err)
	}
	s := &receiverSession{maxFee: maxFee}
	want := ledger.Identity{ChainID: cfg.Chain.ChainID, Contract: cfg.Chain.Contract(), Receiver: crypto.PubkeyToAddress(key.PublicKey)}
	if a.usesEtcd() {
		chainSide := command
		if f.dryRun {
			chainSide = "" // reads only: the replicas may run
		}
		s.ledger, s.closeLedger, err = a.openEtcdLedger(ctx, want, chainSide)
	} else {
		s.ledger, err = openReceiverLedger(cfg.Ledger.Dir, want, a)
		s.closeLedger = func() { s.ledger.Close() }
	}
	if err != nil {
		return nil, err
	}
	s.client, err = chain.Dial(ctx, cfg.Chain.RPCURL, chain.Expect{ChainID: cfg.Chain.ChainID, Contract: cfg.Chain.Contract()})
	if err != nil {
		s.closeLedger()
		return nil, err
	}
	account := chain.Account{ChainID: s.client.ChainID, Contract: s.client.Contract.Address, Key: keys.NewSecret(key), MaxFeeCap: maxFee}
	s.receiver = chain.NewReceiver(chain.ReceiverConfig{Client: s.client.Client, Account: account, Logger: a.log})
	return s, nil
}

// openReceiverLedger opens an existing ledger, which must be the configured receiver's.
func openReceiverLedger(dir string, want ledger.Identity, a *app) (*ledger.Ledger, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("ledger.dir: %w", err)
	}
	l, err := ledger.OpenExisting(dir, a.log)
	if errors.Is(err, ledger.ErrLocked) {
		return nil, fmt.Errorf("%w: stop 'uraiden serve' first (Badger allows one process per directory)", err)
	}
	if err != nil {
		return nil, err
	}
	if got := l.Identity(); got != want {
		l.Close()
		return nil, fmt.Errorf("%w: %s holds chain %d, contract %s, receiver %s; configured chain %d, contract %s, receiver %s",
			ledger.ErrWrongLedger, dir, got.ChainID, got.Contract, got.Receiver, want.ChainID, want.Contract, want.Receiver)
	}
	return l, nil
}

func (s *receiverSession) Close() {
	s.client.Close()
	s.closeLedger()
}

// header says whose channels are acted on, where.
func (s *receiverSession) header(w io.Writer) {
	fmt.Fprintf(w, "receiver %s, chain %s, contract %s, fee cap %s gwei\n",
		s.receiver.Address(), s.client.ChainID, s.client.Contract.Address, formatUnits(s.maxFee, 9))
}

// printPlan lists the skipped channels, and in a dry run what would be done.
func printPlan(w io.Writer, p chain.Plan, verb string, dryRun bool) {
	for _, s := range p.Skip {
		fmt.Fprintf(w, "skipped %s: %s\n", s.Channel, s.Why)
	}
	if !dryRun {
		return
	}
	total := new(big.Int)
	for _, c := range p.Todo {
		fmt.Fprintf(w, "would %s %s at balance %s: %s tokens to the receiver\n", verb, c.Channel.ID, c.Channel.Balance, c.Expected)
		total.Add(total, c.Expected)
	}
	fmt.Fprintf(w, "dry run: would %s %d channels for %s tokens; nothing sent\n", verb, len(p.Todo), total)
}

// words name what a command did, in its report.
type words struct {
	done   string // one channel: "closed"
	total  string // in the total: "channels closed"
	gained string // the tokens: "recovered"
}

var (
	closeWords    = words{done: "closed", total: "channels closed", gained: "recovered"}
	withdrawWords = words{done: "withdrew from", total: "channels withdrawn from", gained: "received"}
)

// report prints every result and the totals, and returns an error when any failed.
func report(w io.Writer, say words, results []chain.Result, skippedCount int) error {
	tokens, fees, gas, failed := new(big.Int), new(big.Int), uint64(0), 0
	for _, r := range results {
		c := r.Claim
		tokens.Add(tokens, r.Tokens)
		fees.Add(fees, r.Fee)
		gas += r.GasUsed
		cost := fmt.Sprintf("gas %d = %s ETH", r.GasUsed, formatUnits(r.Fee, 18))
		switch {
		case r.Err != nil && r.Tx == (common.Hash{}):
			failed++
			fmt.Fprintf(w, "FAILED %s at balance %s: %v\n", c.Channel, c.Balance, r.Err)
		case r.Err != nil:
			failed++
			fmt.Fprintf(w, "FAILED %s at balance %s: %v; %s, tx %s\n", c.Channel, c.Balance, r.Err, cost, r.Tx.Hex())
		default:
			fmt.Fprintf(w, "%s %s at balance %s: %s %s tokens, %s, tx %s (block %d)\n",
				say.done, c.Channel, c.Balance, say.gained, r.Tokens, cost, r.Tx.Hex(), r.Block)
		}
	}
	fmt.Fprintf(w, "total: %d %s, %d failed, %d skipped; %s %s tokens; gas %d = %s ETH\n",
		len(results)-failed, say.total, failed, skippedCount, say.gained, tokens, gas, formatUnits(fees, 18))
	if failed > 0 {
		return fmt.Errorf("%d of %d channels failed", failed, len(results))
	}
	return nil
}

// formatUnits writes x / 10^decimals in decimal, without trailing zeros.
func formatUnits(x *big.Int, decimals int) string {
	unit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil)
	whole, frac := new(big.Int).QuoRem(new(big.Int).Abs(x), unit, new(big.Int))
	sign := ""
	if x.Sign() < 0 {
		sign = "-"
	}
	if frac.Sign() == 0 {
		return sign + whole.String()
	}
	digits := fmt.Sprintf("%0*s", decimals, frac.String())
	for digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	return sign + whole.String() + "." + digits
}
