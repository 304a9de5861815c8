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
	"github.com/uraiden/uraiden/internal/keys"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// receiverOpsHelp is what every command that sends the receiver's transactions needs said.
const receiverOpsHelp = `Stop 'uraiden serve' first: Badger allows one process per ledger directory, and the
command refuses a ledger in use. It sends through a node, so it needs chain.rpc_url,
chain.chain_id, chain.contract_address and receiver.key_file: the embedded dev chain lives
only inside a running 'uraiden serve'.

Transactions go out from the receiver's account with consecutive nonces and EIP-1559 fees
(twice the base fee plus the node's suggested tip, at most --max-fee-gwei); a channel whose
transaction would revert is not sent. Every receipt is awaited (--timeout). A channel that
fails is reported and the others go on; the command exits non-zero if any failed.
Token amounts are in the token's base units.`

func newChannelsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "channels",
		Short: "Act on the receiver's channels on chain (stop the server first)",
	}
	cmd.AddCommand(newCloseAllCmd(a))
	return cmd
}

func newCloseAllCmd(a *app) *cobra.Command {
	var f receiverFlags
	cmd := &cobra.Command{
		Use:   "close-all [--dry-run] [--max-fee-gwei G]",
		Short: "Cooperatively close every channel the ledger holds a payment for (stop the server first)",
		Long: `Closes every open or closing channel with a balance proof (balance above 0) with
cooperativeClose: the sender's latest balance proof and the receiver's closing signature.
The contract pays the receiver the balance (less what it withdrew before) and the sender the
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
		Long: `Sends withdraw for every open channel where the balance proof held exceeds what was
already withdrawn (read from the contract) by at least --min token base units: the contract
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
	s, err := a.openReceiverSession(ctx, f)
	if err != nil {
		return err
	}
	defer s.Close()
	out := cmd.OutOrStdout()
	s.header(out)
	p, err := s.planClose(ctx)
	if err != nil {
		return err
	}
	p.print(out, "close", f.dryRun)
	if f.dryRun {
		return nil
	}
	claims, unsigned := s.signCloses(ctx, p.todo)
	results := append(unsigned, s.receiver.CooperativeClose(ctx, claims)...)
	return report(out, closeWords, results, len(p.skip))
}

// planClose picks the channels to close: open or closing, with a payment, on chain, and
// without a dispute in flight (the watchtower owns that transaction).
func (s *receiverSession) planClose(ctx context.Context) (plan, error) {
	var p plan
	chs, err := s.channels(ledger.StateOpen, ledger.StateClosing)
	if err != nil {
		return p, err
	}
	disputed, err := s.activeDisputes()
	if err != nil {
		return p, err
	}
	for _, c := range chs {
		if c.Balance.Sign() == 0 {
			p.skipf(c.ID, "no payment (balance 0)")
			continue
		}
		if disputed[c.ID] {
			p.skipf(c.ID, "the watchtower's dispute is in flight; 'uraiden serve' completes it")
			continue
		}
		info, err := s.receiver.ChannelInfo(ctx, c.ID)
		if err != nil {
			return p, err
		}
		if !info.Exists {
			p.skipf(c.ID, "not on chain: settled already (the server records it when it runs)")
			continue
		}
		// The contract settles at least at what was withdrawn, and pays the rest.
		settled := bigMax(c.Balance, info.Withdrawn)
		p.todo = append(p.todo, candidate{ch: c, expected: new(big.Int).Sub(settled, info.Withdrawn)})
	}
	return p, nil
}

// signCloses records each close in the ledger, which signs it: from then on the channel
// takes no payment above the balance, before the signature leaves the process. A channel
// the ledger refuses to close comes back as a failed result.
func (s *receiverSession) signCloses(ctx context.Context, todo []candidate) ([]chain.Claim, []chain.Result) {
	var claims []chain.Claim
	var failed []chain.Result
	for _, c := range todo {
		claim := chain.Claim{Channel: c.ch.ID, Balance: c.ch.Balance, BalanceSignature: c.ch.Signature}
		sig, err := s.ledger.CloseCooperatively(ctx, c.ch.ID, c.ch.Balance, s.receiver.SignClose)
		if err != nil {
			failed = append(failed, chain.Result{Claim: claim, Tokens: new(big.Int), Fee: new(big.Int), Err: err})
			continue
		}
		claim.ClosingSignature = sig
		claims = append(claims, claim)
	}
	return claims, failed
}

func runWithdraw(cmd *cobra.Command, a *app, f receiverFlags, minimum *big.Int) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	s, err := a.openReceiverSession(ctx, f)
	if err != nil {
		return err
	}
	defer s.Close()
	out := cmd.OutOrStdout()
	s.header(out)
	p, err := s.planWithdraw(ctx, minimum)
	if err != nil {
		return err
	}
	p.print(out, "withdraw from", f.dryRun)
	if f.dryRun {
		return nil
	}
	claims := make([]chain.Claim, len(p.todo))
	for i, c := range p.todo {
		claims[i] = chain.Claim{Channel: c.ch.ID, Balance: c.ch.Balance, BalanceSignature: c.ch.Signature}
	}
	return report(out, withdrawWords, s.receiver.Withdraw(ctx, claims), len(p.skip))
}

// planWithdraw picks the open channels whose unwithdrawn balance is at least minimum. What
// was withdrawn is read from the contract: the ledger learns it only when the server's
// watcher runs, and a second withdrawal of the same balance would revert.
func (s *receiverSession) planWithdraw(ctx context.Context, minimum *big.Int) (plan, error) {
	var p plan
	chs, err := s.channels(ledger.StateOpen)
	if err != nil {
		return p, err
	}
	for _, c := range chs {
		if c.Balance.Cmp(minimum) < 0 {
			p.skipf(c.ID, "balance %s below --min %s", c.Balance, minimum)
			continue
		}
		info, err := s.receiver.ChannelInfo(ctx, c.ID)
		if err != nil {
			return p, err
		}
		if !info.Exists {
			p.skipf(c.ID, "not on chain: settled already (the server records it when it runs)")
			continue
		}
		switch unwithdrawn := new(big.Int).Sub(c.Balance, info.Withdrawn); {
		case info.SettleBlock != 0:
			p.skipf(c.ID, "the sender asked to close it (settle block %d): no withdrawal from a closing channel", info.SettleBlock)
		case unwithdrawn.Cmp(minimum) < 0:
			p.skipf(c.ID, "unwithdrawn %s below --min %s", unwithdrawn, minimum)
		default:
			p.todo = append(p.todo, candidate{ch: c, expected: unwithdrawn})
		}
	}
	return p, nil
}

func bigMax(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
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
	ledger   *ledger.Ledger
	client   *chain.Client
	receiver *chain.Receiver
	maxFee   *big.Int
}

// errNeedsNode explains why the receiver's commands cannot use the dev chain.
var errNeedsNode = errors.New("chain.rpc_url is not set: this command sends the receiver's transactions through a node " +
	"(set chain.rpc_url, chain.chain_id, chain.contract_address and receiver.key_file); " +
	"the embedded dev chain lives only inside a running 'uraiden serve'")

// openReceiverSession opens the ledger before dialing: a ledger in use is the likeliest
// error, and needs no network to find.
func (a *app) openReceiverSession(ctx context.Context, f receiverFlags) (*receiverSession, error) {
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
	if s.ledger, err = openReceiverLedger(cfg.Ledger.Dir, want, a); err != nil {
		return nil, err
	}
	s.client, err = chain.Dial(ctx, cfg.Chain.RPCURL, chain.Expect{ChainID: cfg.Chain.ChainID, Contract: cfg.Chain.Contract()})
	if err != nil {
		s.ledger.Close()
		return nil, err
	}
	s.receiver = chain.NewReceiver(chain.ReceiverConfig{Client: s.client.Client, ChainID: s.client.ChainID,
		Contract: s.client.Contract.Address, Key: keys.NewSecret(key), MaxFeeCap: maxFee, Logger: a.log})
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
	s.ledger.Close()
}

// header says whose channels are acted on, where.
func (s *receiverSession) header(w io.Writer) {
	fmt.Fprintf(w, "receiver %s, chain %s, contract %s, fee cap %s gwei\n",
		s.receiver.Address(), s.client.ChainID, s.client.Contract.Address, formatUnits(s.maxFee, 9))
}

// channels lists the ledger's channels in the given states.
func (s *receiverSession) channels(states ...ledger.State) ([]*ledger.Channel, error) {
	var all []*ledger.Channel
	q := ledger.Query{States: states, Limit: 1000}
	for {
		page, err := s.ledger.Channels(q)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Channels...)
		if page.Next == nil {
			return all, nil
		}
		q.After = page.Next
	}
}

// candidate is a channel a command will act on, and the tokens it expects to bring in.
type candidate struct {
	ch       *ledger.Channel
	expected *big.Int
}

// skipped is a channel left alone, and why.
type skipped struct {
	id  rdn.ChannelID
	why string
}

// plan is what a command found to do.
type plan struct {
	todo []candidate
	skip []skipped
}

func (p *plan) skipf(id rdn.ChannelID, format string, args ...any) {
	p.skip = append(p.skip, skipped{id, fmt.Sprintf(format, args...)})
}

// print lists the skipped channels, and in a dry run what would be done.
func (p plan) print(w io.Writer, verb string, dryRun bool) {
	for _, s := range p.skip {
		fmt.Fprintf(w, "skipped %s: %s\n", s.id, s.why)
	}
	if !dryRun {
		return
	}
	total := new(big.Int)
	for _, c := range p.todo {
		fmt.Fprintf(w, "would %s %s at balance %s: %s tokens to the receiver\n", verb, c.ch.ID, c.ch.Balance, c.expected)
		total.Add(total, c.expected)
	}
	fmt.Fprintf(w, "dry run: would %s %d channels for %s tokens; nothing sent\n", verb, len(p.todo), total)
}

// activeDisputes are the channels whose dispute the watchtower still owns.
func (s *receiverSession) activeDisputes() (map[rdn.ChannelID]bool, error) {
	all, err := s.ledger.Disputes()
	if err != nil {
		return nil, err
	}
	active := map[rdn.ChannelID]bool{}
	for _, d := range all {
		if d.Active() {
			active[d.Channel] = true
		}
	}
	return active, nil
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
