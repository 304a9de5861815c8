package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/internal/server"
)

func newDemoCmd(a *app) *cobra.Command {
	var replicas int
	var proofScheme string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole payment cycle in-process on the dev chain and check the money",
		Long: `Starts the embedded dev chain, the server and the gateway on free loopback ports, opens a
channel from dev account 1, pays 20 requests through the gateway (10 one after the other,
10 in parallel), tells what the server's ledger holds (from /api/1/stats), closes the
channel cooperatively and prints the token balances before and after. It fails unless the receiver gained exactly
what was paid and the sender lost exactly that. It pays with EIP-712 typed proofs when the
server offers them (its contract has eip712Domain()), and says which scheme it paid with
and why; --proof-scheme legacy pays with µRaiden's legacy proofs instead.

With --replicas N (at least 2) it shows the replicated mode instead: a 3-member etcd
cluster, one dev chain and N uraiden replicas sharing one ledger on etcd, all in-process
on loopback. A client pays for a steady stream of requests through a gateway that spreads
the Checks over the replicas; mid-run the replica running the chain side is stopped, then
the etcd leader. The client then closes its channel cooperatively, and the demo fails
unless the requests served, the charges on every remaining replica, the settled balance
and the receiver's gain on chain all agree. Replicas log warnings only, unless --log-level
is given.`,
		Example: `  uraiden demo
  uraiden demo --replicas 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scheme, err := client.ParseProofScheme(proofScheme)
			if err != nil {
				return fmt.Errorf("--proof-scheme: %w", err)
			}
			if !cmd.Flags().Changed("replicas") {
				return runDemo(cmd.Context(), cmd.OutOrStdout(), a, scheme)
			}
			if cmd.Flags().Changed("proof-scheme") {
				return errors.New("--proof-scheme applies to the single-server demo, not to --replicas")
			}
			logger := a.log
			if !cmd.Flags().Changed("log-level") {
				// Stopping a replica and an etcd member is the point here: the info lines
				// each of them logs would bury the story.
				lc := a.cfg.Log
				lc.Level = "warn"
				logger = lc.Logger()
			}
			return runReplicaDemo(cmd.Context(), cmd.OutOrStdout(), a, replicas, logger)
		},
	}
	cmd.Flags().StringVar(&proofScheme, "proof-scheme", string(client.ProofSchemeAuto), "scheme of the client's balance proofs and close: auto (eip712 when offered), eip712 or legacy")
	cmd.Flags().IntVar(&replicas, "replicas", 0, "run N uraiden replicas (N >= 2) on a 3-member embedded etcd cluster, stop one and the etcd leader mid-run, check the tally")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, a *app, scheme client.ProofScheme) error {
	dir, err := os.MkdirTemp("", "uraiden-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	cfg := a.cfg
	cfg.Chain.RPCURL = ""
	cfg.DevChain.Listen, cfg.DevChain.Confirmations = "", 0
	cfg.Authz.Listen, cfg.Admin.Listen, cfg.Gateway.Listen, cfg.Gateway.Upstream = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.Admin.Token, cfg.Admin.TokenFile = hex.EncodeToString(token), ""
	cfg.Ledger.Dir = dir
	s, err := server.Start(ctx, cfg, a.log)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(out, "dev chain, server (ext_authz %s) and gateway (%s) running\n", s.Addr(), s.Gateway.URL())

	sender := s.DevChain.Accounts()[1]
	c, err := client.New(ctx, client.Config{Node: s.DevChain.Client(), Key: sender.Key, Contract: s.Contract.Address,
		ProofScheme: scheme, Logger: a.log})
	if err != nil {
		return err
	}
	receiver := s.DevChain.Accounts()[0].Address
	before, err := balances(ctx, s, receiver, sender.Address)
	if err != nil {
		return err
	}
	rt := c.Transport(client.TransportConfig{})
	u := demoUnits(s)
	if err := payRequests(ctx, out, rt, s.Gateway.URL(), u); err != nil {
		return err
	}
	paid := rt.Spent()
	used, why := rt.ProofScheme()
	fmt.Fprintf(out, "paid with %s balance proofs: %s\n", used, why)
	if err := printLedger(ctx, out, s, cfg.APIPrefix(), cfg.Admin.Token, u); err != nil {
		return err
	}
	return closeAndCheck(ctx, out, s, c, receiver, sender.Address, before, paid, u)
}

// units writes amounts in base units as whole tokens, as prices.yaml states them: the wire
// format's 5000000000000000 is 0.005 RDNDEV.
type units struct {
	decimals int
	symbol   string
}

// demoUnits are the units of the demo's dev chain token: its decimals as the price table
// converted with them, base units when it has none.
func demoUnits(s *server.Server) units {
	if tok, ok := s.Prices.Current().Token(); ok {
		return units{decimals: int(tok.Decimals), symbol: devchain.TokenSymbol}
	}
	return units{symbol: "base units"}
}

func (u units) of(x *big.Int) string { return formatUnits(x, u.decimals) + " " + u.symbol }

// ofString formats a decimal amount in base units, or returns it as is when it is not one.
func (u units) ofString(s string) string {
	x, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return s
	}
	return u.of(x)
}

// payRequests pays 10 requests one after the other, then 10 in parallel.
func payRequests(ctx context.Context, out io.Writer, rt http.RoundTripper, base string, u units) error {
	hc := &http.Client{Transport: rt}
	get := func(path string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %s %s", path, resp.Status, body)
		}
		return fmt.Sprintf("%s -> %q (price %s)", path, body, u.ofString(resp.Header.Get("RDN-Price"))), nil
	}
	for i := range 10 {
		path := fmt.Sprintf("/echofix/seq%d", i)
		if i%2 == 1 {
			path = fmt.Sprintf("/echodyn/%s", "abcdefghij"[:i])
		}
		line, err := get(path)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, "paid", line)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			line, err := get(fmt.Sprintf("/echofix/par%d", i))
			errs[i] = err
			if err == nil {
				fmt.Fprintln(out, "paid in parallel", line)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// printLedger tells what the server's ledger holds, from /api/1/stats: the story's middle,
// between the requests paid and the tokens moved.
func printLedger(ctx context.Context, out io.Writer, s *server.Server, prefix, token string, u units) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Admin.Addr()+prefix+"/stats", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stats: %s %s", resp.Status, body)
	}
	var st struct {
		OpenChannels  int    `json:"open_channels"`
		UniqueSenders int    `json:"unique_senders"`
		DepositSum    string `json:"deposit_sum"`
		BalanceSum    string `json:"balance_sum"`
		ChargedSum    string `json:"charged_sum"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	fmt.Fprintf(out, "the server's ledger: %d open channel(s) from %d sender(s), %s deposited, %s signed over to the receiver, %s charged for the requests served\n",
		st.OpenChannels, st.UniqueSenders, u.ofString(st.DepositSum), u.ofString(st.BalanceSum), u.ofString(st.ChargedSum))
	return nil
}

func balances(ctx context.Context, s *server.Server, receiver, sender common.Address) ([2]*big.Int, error) {
	var b [2]*big.Int
	for i, who := range []common.Address{receiver, sender} {
		v, err := contracts.TokenBalance(ctx, s.Client, s.Contract.Token, who)
		if err != nil {
			return b, err
		}
		b[i] = v
	}
	return b, nil
}

// closeAndCheck closes the channel cooperatively and checks the tokens moved by what was paid.
func closeAndCheck(ctx context.Context, out io.Writer, s *server.Server, c *client.Client, receiver, sender common.Address, before [2]*big.Int, paid *big.Int, u units) error {
	chs, err := c.Channels(ctx, &receiver)
	if err != nil {
		return err
	}
	for _, ch := range chs {
		if ch.State != client.StateOpen {
			continue
		}
		if _, err := c.CloseCooperatively(ctx, ch.Receiver, ch.OpenBlock, ""); err != nil {
			return err
		}
		fmt.Fprintf(out, "closed channel %s/%d cooperatively at balance %s (deposit %s)\n", ch.Receiver, ch.OpenBlock, u.of(ch.Balance), u.of(ch.Deposit))
	}
	after, err := balances(ctx, s, receiver, sender)
	if err != nil {
		return err
	}
	gain, loss := new(big.Int).Sub(after[0], before[0]), new(big.Int).Sub(before[1], after[1])
	fmt.Fprintf(out, "receiver %s: %s -> %s (+%s)\nsender   %s: %s -> %s (-%s)\npaid for 20 requests: %s\n",
		receiver, u.of(before[0]), u.of(after[0]), u.of(gain), sender, u.of(before[1]), u.of(after[1]), u.of(loss), u.of(paid))
	if gain.Cmp(paid) != 0 || loss.Cmp(paid) != 0 {
		return fmt.Errorf("balance check failed: the receiver gained %s and the sender lost %s, but %s was paid (base units)", gain, loss, paid)
	}
	fmt.Fprintln(out, "balance check OK: the receiver gained exactly what was paid")
	return nil
}
