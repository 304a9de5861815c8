package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/discovery"
)

func newPricesCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "prices URL",
		Short: "Show what a uraiden server sells and how it is paid (its discovery document)",
		Long: `Reads a server's discovery document and prints its price rules, in the order they are
tried, and how to pay it: chain, receiver, contract, token, proof schemes, confirmations.
URL is a server's base URL (the document is read from /.well-known/uraiden) or the
document's own address (<gateway path>/prices). --json prints the document as this
client reads it (fields of a newer format it does not know are left out).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := client.Prices(cmd.Context(), nil, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				return enc.Encode(doc)
			}
			printPrices(cmd.OutOrStdout(), doc)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the discovery document as JSON")
	return cmd
}

func printPrices(out io.Writer, doc *discovery.Document) {
	token := doc.Token.Symbol
	if token == "" {
		token = "token"
	}
	fmt.Fprintf(out, "chain %d, receiver %s, contract %s\n", doc.ChainID, doc.ReceiverAddress.Hex(), doc.ContractAddress.Hex())
	decimals := "no decimals: prices in base units"
	if doc.Token.Decimals != nil {
		decimals = fmt.Sprintf("%d decimals", *doc.Token.Decimals)
	}
	fmt.Fprintf(out, "token %s %s (%s); proofs %s; deposits count after %d confirmations; challenge period %d blocks; channel API at %s\n\n",
		token, doc.Token.Address.Hex(), decimals, strings.Join(doc.ProofSchemes, ", "), doc.Confirmations, doc.ChallengePeriod, doc.GatewayPath)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tMETHODS\tHOST\tPATH\tPRICE")
	orAny := func(s string) string {
		if s == "" {
			return "any"
		}
		return s
	}
	for _, r := range doc.Rules {
		price := "computed per request"
		if r.Price != nil {
			price = priceText(*r.Price, token)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Name, orAny(strings.Join(r.Methods, ",")), orAny(r.Host), r.Path, price)
	}
	fmt.Fprintf(w, "(default)\t\t\t(no rule matches)\t%s\n", priceText(doc.DefaultPrice, token))
	w.Flush()
}

// priceText is a price as a person reads it: in tokens when the token's decimals are known,
// with the base units the wire carries.
func priceText(p discovery.Price, token string) string {
	switch {
	case p.Base.Sign() == 0:
		return "free"
	case p.Tokens != "":
		return fmt.Sprintf("%s %s (%s base units)", p.Tokens, token, p.Base)
	default:
		return fmt.Sprintf("%s base units", p.Base)
	}
}
