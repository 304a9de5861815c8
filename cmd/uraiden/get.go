package main

import (
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/rdn"
)

func newGetCmd(a *app) *cobra.Command {
	var (
		f        senderFlags
		include  bool
		method   string
		data     string
		maxPrice string
		maxSpend string
	)
	cmd := &cobra.Command{
		Use:   "get URL",
		Short: "Fetch a URL like curl, paying for it through a µRaiden channel",
		Long: `Fetches URL and prints the body. A 402 is paid: from an open channel to the server's
receiver with room for the price, or a top-up, or a new channel (10× the price), then the
request is sent again with the balance proof. The contract is --contract, or the one the
server's 402 names (checked to be a µRaiden contract).

Proofs are EIP-712 typed data when the server's 402 offers eip712 for the client's chain
and contract (RDN-Proof-Schemes and the body's eip712_domain), legacy µRaiden proofs
otherwise; --proof-scheme eip712 or legacy forces one, and fails against a server that
does not offer it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if _, err := f.scheme(); err != nil {
				return err // before anything is asked of the server
			}
			contract := f.contract
			if contract == "" {
				var err error
				if contract, err = discoverContract(cmd, args[0], method, data); err != nil {
					return err
				}
			}
			c, err := f.open(ctx, a, contract)
			if err != nil {
				return err
			}
			defer c.Close()
			cfg := client.TransportConfig{Funding: client.OpenOptions{ERC20: f.erc20}}
			if cfg.MaxPrice, err = optionalAmount("--max-price", maxPrice); err != nil {
				return err
			}
			if cfg.MaxSpend, err = optionalAmount("--max-spend", maxSpend); err != nil {
				return err
			}
			req, err := newRequest(cmd, args[0], method, data)
			if err != nil {
				return err
			}
			resp, err := (&http.Client{Transport: c.Transport(cfg)}).Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			out := cmd.OutOrStdout()
			if include {
				printHead(out, resp)
			}
			if _, err := io.Copy(out, resp.Body); err != nil {
				return err
			}
			if resp.StatusCode >= 400 {
				return fmt.Errorf("%s", resp.Status)
			}
			return nil
		},
	}
	flags := cmd.Flags()
	f.register(flags)
	f.registerProofScheme(flags)
	flags.BoolVarP(&include, "include", "i", false, "print the status line and headers too")
	flags.StringVarP(&method, "request", "X", "", "HTTP method (default GET, or POST with -d)")
	flags.StringVarP(&data, "data", "d", "", "request body")
	flags.StringVar(&maxPrice, "max-price", "", "refuse to pay more than this per request (token base units)")
	flags.StringVar(&maxSpend, "max-spend", "", "refuse to pay more than this in total (token base units)")
	return cmd
}

func newRequest(cmd *cobra.Command, url, method, data string) (*http.Request, error) {
	if method == "" {
		method = http.MethodGet
		if data != "" {
			method = http.MethodPost
		}
	}
	var body io.Reader
	if data != "" {
		body = strings.NewReader(data)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, url, body)
	if err != nil {
		return nil, err
	}
	if data != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // as curl -d
	}
	return req, nil
}

// discoverContract asks the URL once without paying and reads RDN-Contract-Address.
func discoverContract(cmd *cobra.Command, url, method, data string) (string, error) {
	req, err := newRequest(cmd, url, method, data)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	contract := resp.Header.Get(rdn.HeaderContractAddress)
	if resp.StatusCode != http.StatusPaymentRequired || contract == "" {
		return "", fmt.Errorf("%s answered %s without RDN-Contract-Address: nothing to pay (give --contract to pay anyway)", url, resp.Status)
	}
	return contract, nil
}

func optionalAmount(flag, text string) (*big.Int, error) {
	if text == "" {
		return nil, nil
	}
	v, ok := new(big.Int).SetString(text, 10)
	if !ok || v.Sign() < 0 {
		return nil, fmt.Errorf("%s: not a non-negative integer: %q", flag, text)
	}
	return v, nil
}

func printHead(w io.Writer, resp *http.Response) {
	fmt.Fprintf(w, "%s %s\n", resp.Proto, resp.Status)
	names := make([]string, 0, len(resp.Header))
	for name := range resp.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range resp.Header[name] {
			fmt.Fprintf(w, "%s: %s\n", name, v)
		}
	}
	fmt.Fprintln(w)
}
